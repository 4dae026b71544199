import type { CountryCode } from 'libphonenumber-js'
import type { AuditLog } from './audit.ts'
import { DomainError } from './errors.ts'
import { maskPhone, parsePhone } from './phone.ts'
import { parseUserRef, type UserRefResolver } from './user-refs.ts'
import type { Actor } from './users.ts'

/** Storage port for the directory's phone number of a user (users.phone: what pinned mode asks users to confirm). */
export interface DirectoryPhoneStore {
  /** The stored number (null: none); undefined when there is no such user. */
  phoneOf(userId: string): Promise<string | null | undefined>
  setPhone(userId: string, phone: string): Promise<void>
  atomically<T>(work: () => Promise<T>): Promise<T>
}

export const BULK_MAX_ITEMS = 1000

export type PhoneChange = 'updated' | 'unchanged'

export interface PhoneRow {
  user: string
  phone: string
}

export type PhoneRowResult =
  | { index: number, user: string, result: PhoneChange, phone: string }
  | { index: number, user: string, result: 'error', error: { code: string, message: string } }

/**
 * Pinned phones from an HR or directory feed (DESIGN.md "Phone numbers can be pinned"): numbers are normalised to
 * E.164, setting the same number twice changes nothing (and records nothing), and every change is audited with
 * only the last digits, since the audit log is append-only and cannot be scrubbed later.
 */
export class DirectoryPhoneService {
  constructor (
    private readonly store: DirectoryPhoneStore,
    private readonly users: UserRefResolver,
    private readonly audit: AuditLog,
    private readonly defaultRegion: CountryCode
  ) {}

  /** Sets one user's number; `user_not_found` or `invalid_phone` change nothing. */
  async setPhone (userRef: string, input: string, actor: Actor, auditDetails: Record<string, unknown> = {}): Promise<{ userId: string, phone: string, result: PhoneChange }> {
    const userId = await this.resolve(userRef)
    const phone = parsePhone(input, this.defaultRegion)
    return this.store.atomically(async () => ({ userId, phone, result: await this.apply(userId, phone, actor, auditDetails) }))
  }

  /** One row of a bulk request: its user's number applied, or why not. */
  private async applyRow (row: PhoneRow, index: number, firstRowOf: Map<string, number>, actor: Actor, auditDetails: Record<string, unknown>): Promise<PhoneRowResult> {
    try {
      const userId = await this.resolve(row.user)
      const earlier = firstRowOf.get(userId)
      if (earlier !== undefined) {
        throw new DomainError('duplicate_user', `This user is already named in items[${earlier}] of this request; send one number per user.`, { earlier })
      }
      firstRowOf.set(userId, index)
      const phone = parsePhone(row.phone, this.defaultRegion)
      return { index, user: row.user, result: await this.apply(userId, phone, actor, { ...auditDetails, bulk: true }), phone }
    } catch (err) {
      if (!(err instanceof DomainError)) throw err
      return { index, user: row.user, result: 'error', error: { code: err.code, message: err.message } }
    }
  }

  /**
   * Applies every row it can and reports each one: a bad row never stops the good ones. The same user named twice
   * is refused from the second row on, since which number should win is not ours to guess.
   */
  async applyBulk (rows: PhoneRow[], actor: Actor, auditDetails: Record<string, unknown> = {}): Promise<PhoneRowResult[]> {
    if (rows.length > BULK_MAX_ITEMS) throw new DomainError('too_many_items', `Send at most ${BULK_MAX_ITEMS} rows per request.`, { max: BULK_MAX_ITEMS })
    // One transaction for the batch: one disk flush instead of a thousand.
    return this.store.atomically(async () => {
      const firstRowOf = new Map<string, number>()
      const results: PhoneRowResult[] = []
      for (const [index, row] of rows.entries()) {
        results.push(await this.applyRow(row, index, firstRowOf, actor, auditDetails))
      }
      const count = (result: string) => results.filter((r) => r.result === result).length
      await this.audit.append({
        action: 'phones.bulk_applied', actorId: actor.id, actorLabel: actor.label,
        details: { ...auditDetails, rows: rows.length, updated: count('updated'), unchanged: count('unchanged'), errors: count('error') },
        ip: actor.ip, userAgent: actor.userAgent
      })
      return results
    })
  }

  private async resolve (userRef: string): Promise<string> {
    const userId = await this.users.resolve(parseUserRef(userRef))
    if (userId === undefined) throw new DomainError('user_not_found', 'There is no user with this id, email address or external id.', { variant: 'reference' })
    return userId
  }

  private async apply (userId: string, phone: string, actor: Actor, auditDetails: Record<string, unknown>): Promise<PhoneChange> {
    const before = await this.store.phoneOf(userId) ?? null
    if (before === phone) return 'unchanged'
    await this.store.setPhone(userId, phone)
    await this.audit.append({
      action: 'user.phone_set', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId,
      details: { ...auditDetails, from: before === null ? null : maskPhone(before), to: maskPhone(phone) }, ip: actor.ip, userAgent: actor.userAgent
    })
    return 'updated'
  }
}
