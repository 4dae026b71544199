import { GetLoginProfileCommand, ListMFADevicesCommand, ListUserTagsCommand, ListUsersCommand, type User } from '@aws-sdk/client-iam'
import type { ProviderPage, ProviderUser } from '../../domain/provider.ts'
import type { AccountIdentity } from './account.ts'
import { collectPages, itemsOf, mapLimit, type IamCalls } from './client.ts'
import type { AwsConfig } from './config.ts'
import type { CredentialReportRow, CredentialReports } from './credential-report.ts'
import type { IamEnforcement } from './enforcement.ts'
import { hasCode, malformed } from './errors.ts'
import type { IamUserNames } from './user-names.ts'

/** Where AWS registration facts come from, for the admin page and the sync record. */
export const REGISTRATION_SOURCE = 'ListMFADevices'

/** A method kind as the portal counts it: the domain's, plus hardware tokens, which the portal never enrolls itself. */
export type AwsMethodKind = 'totp' | 'passkey' | 'hardware_totp'

/**
 * What kind of MFA device a ListMFADevices serial number is. IAM shows no type, only the serial's form:
 * - `arn:…:mfa/<name>`: a virtual device (authenticator app) → 'totp'
 * - `arn:…:u2f/…`: a FIDO security key or passkey registered in the AWS console → 'passkey' (phishing-resistant)
 * - anything else (a printed serial such as GAHT12345678): a hardware TOTP token → 'hardware_totp'
 */
export function methodKindOf (serialNumber: string): AwsMethodKind {
  if (/^arn:aws[\w-]*:iam::\d{12}:u2f\//.test(serialNumber)) return 'passkey'
  if (/^arn:aws[\w-]*:iam::\d{12}:mfa\//.test(serialNumber)) return 'totp'
  return 'hardware_totp'
}

/** The address in the configured tag, if it looks like one. IAM users have no e-mail field of their own. */
function emailFrom (tags: Array<{ Key?: string, Value?: string }>, key: string): string {
  const wanted = key.toLowerCase()
  // IAM tag keys are unique regardless of case, so a case-blind match finds at most one.
  const value = tags.find((t) => t.Key?.toLowerCase() === wanted)?.Value?.trim() ?? ''
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value) ? value : ''
}

/**
 * IAM users as the portal sees them: ListUsers pages (the cursor is IAM's Marker), and per user the console
 * password (GetLoginProfile, or the credential report), MFA devices, groups, attached policies and the e-mail tag.
 * Calls per user run concurrently within the process-wide limit of IamCalls.
 */
export class IamDirectory {
  /** user name → report row, from the report fetched at the start of the current sync (credential-report mode). */
  private report: Map<string, CredentialReportRow> | null = null
  /** group name → its attached managed policies, read once per sync however many members share the group. */
  private groupPolicies = new Map<string, Promise<string[]>>()

  constructor (
    private readonly iam: IamCalls,
    private readonly config: AwsConfig,
    private readonly account: AccountIdentity,
    private readonly enforcement: IamEnforcement,
    private readonly reports: CredentialReports,
    private readonly userNames: IamUserNames
  ) {}

  async listUsers (cursor: string | null): Promise<ProviderPage> {
    const out = await this.iam.run('ListUsers', (c) => c.send(new ListUsersCommand({
      PathPrefix: this.config.userPathPrefix, Marker: cursor ?? undefined, MaxItems: this.config.pageSize
    })))
    const users = itemsOf('ListUsers', 'Users', out.Users, out.IsTruncated)
    this.account.learn(users[0]?.Arn)
    for (const user of users) if (user.UserId !== undefined && user.UserName !== undefined) this.userNames.learn(user.UserId, user.UserName)
    if (cursor === null) this.groupPolicies = new Map()
    // One report per sync: fetched on the first page, reused by the pages after it (also after a restart mid-sync).
    if (this.config.sync === 'credential-report' && (cursor === null || this.report === null)) {
      const report = await this.reports.fetch()
      this.report = new Map(report.rows.filter((r) => !r.isRoot).map((r) => [r.user, r]))
    }
    const policyArns = this.config.enforcement.mode === 'policy' && users.length > 0 ? await this.enforcement.policyArns() : []
    const described = await mapLimit(users, this.config.concurrency, (user) => this.describe(user, policyArns))
    return {
      users: described.filter((u): u is ProviderUser => u !== null),
      next: out.IsTruncated === true && out.Marker !== undefined ? out.Marker : null,
      registrationSource: REGISTRATION_SOURCE
    }
  }

  /** The kinds of MFA device the user has, deduplicated. */
  async methodsOf (userName: string): Promise<AwsMethodKind[]> {
    return [...new Set((await this.devicesOf(userName)).map(methodKindOf))]
  }

  async devicesOf (userName: string): Promise<string[]> {
    const devices = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListMFADevices', (c) => c.send(new ListMFADevicesCommand({ UserName: userName, Marker })))
      return { ...out, items: itemsOf('ListMFADevices', 'MFADevices', out.MFADevices, out.IsTruncated) }
    })
    return devices.flatMap((d) => d.SerialNumber === undefined ? [] : [d.SerialNumber])
  }

  /** One user, or null when it was deleted while we were looking (NoSuchEntity): it is simply not listed. */
  private async describe (user: User, policyArns: readonly string[]): Promise<ProviderUser | null> {
    const userName = user.UserName
    if (userName === undefined) throw malformed('ListUsers', 'UserName')
    // The user id is the identity: a name can be reused after a delete or changed by a rename (issue #14 item 9).
    const userId = user.UserId
    if (userId === undefined) throw malformed('ListUsers', 'UserId')
    const needPolicies = this.config.enforcement.mode === 'policy' || this.config.privileged.adminPolicyArns.length > 0
    try {
      const [consolePassword, devices, groups, policies, tags] = await Promise.all([
        this.hasConsolePassword(userName),
        this.devicesOf(userName),
        this.enforcement.groupsOf(userName),
        needPolicies ? this.enforcement.attachedPolicies(userName) : Promise.resolve([]),
        this.config.emailTag === null ? Promise.resolve([]) : this.tagsOf(userName)
      ])
      const privileged = groups.some((group) => this.config.privileged.groups.includes(group)) ||
        await this.holdsAdminPolicy(policies, groups)
      return {
        externalId: userId,
        email: this.config.emailTag === null ? '' : emailFrom(tags, this.config.emailTag),
        displayName: userName,
        privileged,
        groups,
        enabled: true,
        methods: [...new Set(devices.map(methodKindOf))],
        phone: null,
        attributes: {
          consolePassword,
          mfaActive: devices.length > 0,
          createdAt: user.CreateDate?.toISOString() ?? null,
          passwordLastUsed: user.PasswordLastUsed?.toISOString() ?? null,
          arn: user.Arn ?? null,
          userId,
          // What IAM calls and the AWS console use; looked up afresh by id for every call (user-names.ts).
          userName,
          enforced: this.enforcement.enforcedGiven(policies, groups, policyArns)
        },
        // Without a console password there is no sign-in for MFA to protect (CIS 1.10's scope).
        targetable: consolePassword,
        createdAt: user.CreateDate ?? null,
        // Portals before issue #14 stored the user name as the id: such a row is this user, and is rewritten.
        formerExternalIds: [userName]
      }
    } catch (err) {
      if (hasCode(err, 'not_found')) return null
      throw err
    }
  }

  /**
   * An admin policy (AWS_IAM_ADMIN_POLICY_ARNS) attached to the user or to any of the user's groups: IAM grants a
   * group's policies to every member, so AdministratorAccess on a group makes each member an administrator
   * whether or not the operator named that group in AWS_IAM_PRIVILEGED_GROUPS.
   */
  private async holdsAdminPolicy (userPolicies: readonly string[], groups: readonly string[]): Promise<boolean> {
    const admin = this.config.privileged.adminPolicyArns
    if (admin.length === 0) return false
    if (userPolicies.some((arn) => admin.includes(arn))) return true
    for (const group of groups) {
      if ((await this.policiesOfGroup(group)).some((arn) => admin.includes(arn))) return true
    }
    return false
  }

  private policiesOfGroup (group: string): Promise<string[]> {
    let policies = this.groupPolicies.get(group)
    if (policies === undefined) {
      // A group deleted since ListGroupsForUser grants nothing any more; any other failure is not cached, so the
      // user's description fails and the next one asks again.
      policies = this.enforcement.groupPolicies(group).catch((err: unknown) => {
        if (hasCode(err, 'not_found')) return []
        throw err
      })
      policies.catch(() => { if (this.groupPolicies.get(group) === policies) this.groupPolicies.delete(group) })
      this.groupPolicies.set(group, policies)
    }
    return policies
  }

  private async hasConsolePassword (userName: string): Promise<boolean> {
    const row = this.report?.get(userName)
    // A user newer than the report is not in it yet: ask IAM directly.
    if (this.config.sync === 'credential-report' && row !== undefined) return row.passwordEnabled === true
    try {
      await this.iam.run('GetLoginProfile', (c) => c.send(new GetLoginProfileCommand({ UserName: userName })))
      return true
    } catch (err) {
      // NoSuchEntity here means "no console password" (contracts Part 3 "IAM" item 5), not a failure. A user that
      // is gone altogether shows up as NoSuchEntity on the other calls made alongside this one.
      if (hasCode(err, 'not_found')) return false
      throw err
    }
  }

  private async tagsOf (userName: string): Promise<Array<{ Key?: string, Value?: string }>> {
    return collectPages(async (Marker) => {
      const out = await this.iam.run('ListUserTags', (c) => c.send(new ListUserTagsCommand({ UserName: userName, Marker })))
      return { ...out, items: itemsOf('ListUserTags', 'Tags', out.Tags, out.IsTruncated) }
    })
  }
}
