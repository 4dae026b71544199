import { GetUserCommand, ListUsersCommand } from '@aws-sdk/client-iam'
import type { Clock } from '../../domain/clock.ts'
import { ProviderError } from '../../domain/provider.ts'
import { collectPages, itemsOf, type IamCalls } from './client.ts'
import type { AwsConfig } from './config.ts'
import { hasCode } from './errors.ts'

/** What IAM's unique ids for users look like (IAM User Guide, "IAM identifiers": users start with AIDA). */
const USER_ID = /^AIDA[A-Z0-9]{8,}$/
/**
 * How long a name learnt from a listing is used without asking IAM again. Older, one GetUser confirms the name
 * still belongs to the same id before a call is made under it (a user deleted and another created under the name
 * would otherwise be acted on); a sweep right after a sync or a walk pays nothing extra.
 */
const FRESH_MS = 5 * 60_000

export function isIamUserId (value: string): boolean {
  return USER_ID.test(value)
}

/**
 * IAM user id (`AIDA…`) → the user's current name. The portal keys IAM users by id: a name is reused when a user
 * is deleted and another created under it, and changed by a rename (UpdateUser), so a name is never an identity.
 * IAM's calls take names, so each call looks the name up here: learnt from every sync page, else from one
 * ListUsers walk (shared by concurrent callers), which is also how a rename is noticed.
 */
export class IamUserNames {
  private readonly names = new Map<string, { name: string, learntAt: number }>()
  /** Ids the last complete walk did not find: not found, without walking again for each of them. */
  private readonly gone = new Set<string>()
  private walking: Promise<void> | null = null

  constructor (private readonly iam: IamCalls, private readonly config: AwsConfig, private readonly clock: Clock) {}

  /** A user as ListUsers (or GetUser) just showed it. */
  learn (userId: string, userName: string): void {
    this.names.set(userId, { name: userName, learntAt: this.clock.now().getTime() })
    this.gone.delete(userId)
  }

  /** The user's current name, or a not_found ProviderError when no IAM user (under the configured path) has the id. */
  async nameOf (userId: string): Promise<string> {
    checkUserId(userId)
    const known = this.names.get(userId)
    if (known !== undefined) {
      if (this.clock.now().getTime() - known.learntAt < FRESH_MS || await this.stillNamed(userId, known.name)) return known.name
    } else if (this.gone.has(userId)) {
      throw goneError(userId)
    }
    await this.walk()
    const found = this.names.get(userId)
    if (found === undefined) throw goneError(userId)
    return found.name
  }

  /** GetUser: whether the name still belongs to this id (not a user deleted and another created under the name). */
  private async stillNamed (userId: string, userName: string): Promise<boolean> {
    try {
      const out = await this.iam.run('GetUser', (c) => c.send(new GetUserCommand({ UserName: userName })))
      if (out.User?.UserId !== userId) return false
      this.learn(userId, userName)
      return true
    } catch (err) {
      if (hasCode(err, 'not_found')) return false
      throw err
    }
  }

  /**
   * Runs `call` with the user's name. When IAM answers not found (or `gone` says the answer means it) for a name
   * learnt earlier, the users are listed again: a renamed user is found under its new name and the call made once
   * more; a deleted one stays not found.
   */
  async withName<T> (userId: string, call: (userName: string) => Promise<T>, gone: (result: T) => boolean = () => false): Promise<T> {
    const name = await this.nameOf(userId)
    let result: T
    try {
      result = await call(name)
      if (!gone(result)) return result
    } catch (err) {
      if (!hasCode(err, 'not_found')) throw err
      await this.walk()
      const current = this.names.get(userId)?.name
      if (current === undefined || current === name) throw err
      return await call(current)
    }
    await this.walk()
    const current = this.names.get(userId)?.name
    return current === undefined || current === name ? result : await call(current)
  }

  /** Lists every user once (pages of 1,000); concurrent callers share the walk. */
  private walk (): Promise<void> {
    this.walking ??= this.listAll().finally(() => { this.walking = null })
    return this.walking
  }

  private async listAll (): Promise<void> {
    const users = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListUsers', (c) => c.send(new ListUsersCommand({ PathPrefix: this.config.userPathPrefix, Marker, MaxItems: 1000 })))
      return { ...out, items: itemsOf('ListUsers', 'Users', out.Users, out.IsTruncated) }
    })
    const seen = new Set<string>()
    for (const user of users) {
      if (user.UserId === undefined || user.UserName === undefined) continue
      seen.add(user.UserId)
      this.learn(user.UserId, user.UserName)
    }
    for (const userId of [...this.names.keys()]) {
      if (seen.has(userId)) continue
      this.names.delete(userId)
      this.gone.add(userId)
    }
  }
}

function goneError (userId: string): ProviderError {
  return new ProviderError(`IAM has no user with the id ${userId} any more (deleted, or moved out of AWS_IAM_USER_PATH)`, false, null, 'not_found')
}

/**
 * A subject's id must be an IAM user id. A portal upgraded from a version that stored user names knows some users
 * by name until its next AWS sync rewrites them: that is worth waiting for (retryable), never a name to act on.
 */
function checkUserId (userId: string): void {
  if (isIamUserId(userId)) return
  throw new ProviderError(`The portal still knows this AWS user by the name "${userId}" from before the upgrade; the next AWS sync records its IAM user id`, true, null, 'not_synced')
}
