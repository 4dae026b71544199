import { ProviderError, type EnforcementOutcome, type EnforcementRecord, type EnforcementRecords, type EnforcementState, type ProviderSubject } from '../../domain/provider.ts'
import { runBatch, type BatchOutcome } from './batch.ts'
import { externalIdOf, validSubjects, type BulkResult, type EnforcementStrategy } from './enforcement.ts'
import { graphFailure, hasStatus } from './errors.ts'
import type { GraphApi } from './graph-client.ts'

/**
 * Membership of a Conditional Access group that requires MFA: read membership first, add or remove the user,
 * and treat "already a member" / "not a member" answers as the no-op they are. Relax removes only a membership the
 * portal added (recorded as found `not_member`, set `member`): one an administrator made stays. The portal adds
 * and removes direct memberships only; a user who stays a member through a nested group is not relaxed, and relax
 * says so (entra_group_nested_membership) rather than report success.
 */
export class GroupEnforcement implements EnforcementStrategy {
  constructor (private readonly graph: GraphApi, private readonly groupId: string, private readonly concurrency: number, private readonly records: EnforcementRecords) {}

  async isMember (externalId: string): Promise<boolean> {
    // checkMemberGroups is transitive, like the Conditional Access policy the group feeds.
    const body = await this.graph.post<{ value: string[] }>(`/users/${encodeURIComponent(externalId)}/checkMemberGroups`, { groupIds: [this.groupId] }, 'v1.0', { idempotent: true })
    return body.value.map((v) => v.toLowerCase()).includes(this.groupId.toLowerCase())
  }

  async state (externalId: string): Promise<EnforcementState> {
    return await this.isMember(externalId) ? 'enforced' : 'not_enforced'
  }

  async enforce (subject: ProviderSubject): Promise<EnforcementOutcome> {
    const id = externalIdOf(subject)
    if (await this.isMember(id)) return { changed: false }
    await this.records.put('entra', subject.userId, ADDED)
    try {
      // Sending it twice is harmless: the second answers "already exist", which is the no-op below.
      await this.graph.post(this.membersRef(), this.memberBody(id), 'v1.0', { idempotent: true })
      return { changed: true }
    } catch (err) {
      if (alreadyMember(err)) return { changed: false }
      throw err
    }
  }

  async relax (subject: ProviderSubject): Promise<EnforcementOutcome> {
    const id = externalIdOf(subject)
    const member = await this.isMember(id)
    const added = await this.records.get('entra', subject.userId) !== undefined
    if (!member || !added) {
      if (added) await this.records.forget('entra', subject.userId)
      return member ? { changed: false, note: 'left in the enforcement group: the portal did not add this user' } : { changed: false }
    }
    let removed = true
    try {
      await this.graph.delete(this.memberRef(id))
    } catch (err) {
      // 404: no direct membership any more (an administrator removed it); the portal's own part is gone either way.
      if (!hasStatus(err, 404)) throw err
      removed = false
    }
    await this.records.forget('entra', subject.userId)
    if (await this.isMember(id)) throw nestedMembership(subject, removed)
    return { changed: removed }
  }

  async enforceMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.many(subjects, true)
  }

  async relaxMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.many(subjects, false)
  }

  private async many (subjects: readonly ProviderSubject[], member: boolean): Promise<BulkResult[]> {
    const results = new Array<BulkResult>(subjects.length)
    const valid = validSubjects(subjects, results)
    const reads = await this.membership(valid)
    const writes: typeof valid = []
    for (const [k, o] of reads.entries()) {
      const { index } = valid[k]
      const userId = subjects[index].userId
      if ('error' in o) { results[index] = o; continue }
      const added = await this.records.get('entra', userId) !== undefined
      if (o.member === member) {
        if (!member && added) await this.records.forget('entra', userId)
        results[index] = { changed: false }
        continue
      }
      if (!member && !added) { results[index] = { changed: false, note: 'left in the enforcement group: the portal did not add this user' }; continue }
      if (member) await this.records.put('entra', userId, ADDED)
      writes.push(valid[k])
    }
    const outcomes = await runBatch(this.graph, writes.map((w) => member
      // Adding twice answers "already exist" (the no-op writeResult treats as such): safe to send again.
      ? { method: 'POST' as const, url: this.membersRef(), body: this.memberBody(w.id), idempotent: true }
      : { method: 'DELETE' as const, url: this.memberRef(w.id) }), { concurrency: this.concurrency })
    const removed: Array<{ index: number, id: string, changed: boolean }> = []
    for (const [k, o] of outcomes.entries()) {
      const { index, id } = writes[k]
      const result = this.writeResult(o, member)
      results[index] = result
      if (member || 'error' in result) continue
      await this.records.forget('entra', subjects[index].userId)
      removed.push({ index, id, changed: result.changed })
    }
    // Removed directly, but a nested group may still hold them: that is not relaxed, and it is said so.
    const after = await this.membership(removed)
    after.forEach((o, k) => {
      const { index, changed } = removed[k]
      if ('error' in o) results[index] = o
      else if (o.member) results[index] = { error: nestedMembership(subjects[index], changed) }
    })
    return results
  }

  /** Transitive membership of each user, through checkMemberGroups in $batch (a read, sent again when it fails). */
  private async membership (users: ReadonlyArray<{ id: string }>): Promise<Array<{ member: boolean } | { error: ProviderError }>> {
    const reads = await runBatch(this.graph, users.map((u) => ({ method: 'POST' as const, url: `/users/${encodeURIComponent(u.id)}/checkMemberGroups`, body: { groupIds: [this.groupId] }, idempotent: true })), { concurrency: this.concurrency })
    return reads.map((o) => o.ok
      ? { member: ((o.body as { value?: string[] }).value ?? []).some((g) => g.toLowerCase() === this.groupId.toLowerCase()) }
      : { error: o.error })
  }

  private writeResult (o: BatchOutcome, member: boolean): BulkResult {
    if (o.ok) return { changed: true }
    const error = graphFailure('Group membership change (in $batch)', o.status ?? 0, o.body, null)
    if (member && alreadyMember(error)) return { changed: false }
    if (!member && o.status === 404) return { changed: false }
    return { error: o.status === null ? o.error : error }
  }

  private membersRef (): string {
    return `/groups/${encodeURIComponent(this.groupId)}/members/$ref`
  }

  private memberRef (id: string): string {
    return `/groups/${encodeURIComponent(this.groupId)}/members/${encodeURIComponent(id)}/$ref`
  }

  private memberBody (id: string): { '@odata.id': string } {
    return { '@odata.id': `${this.graph.origin.logical}/v1.0/directoryObjects/${id}` }
  }
}

/**
 * Relax cannot lift what a nested group imposes: the portal only ever adds and removes direct memberships. A person
 * must decide, so this is not retryable, and the engine shows it to admins instead of reporting the user relaxed.
 */
function nestedMembership (subject: ProviderSubject, removed: boolean): ProviderError {
  return new ProviderError(
    `${subject.email} is still in the enforcement group through a nested group, so Entra still requires MFA: ` +
    `${removed ? 'the portal removed the membership it had added, but it' : 'the membership the portal had added was already gone, and the portal'} cannot change group nesting. ` +
    'Remove them from the nested group in Entra, or leave MFA required.', false, null, 'entra_group_nested_membership')
}

/** The record of a membership the portal added to the enforcement group. */
const ADDED: EnforcementRecord = { found: 'not_member', set: 'member' }

// Graph answers 400 "One or more added object references already exist" when the member is already there.
function alreadyMember (err: unknown): boolean {
  return hasStatus(err, 400) && /already exist/i.test(err.message)
}
