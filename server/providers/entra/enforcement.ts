import { ProviderError, type EnforcementState, type ProviderSubject } from '../../domain/provider.ts'
import { runBatch, type BatchOutcome } from './batch.ts'
import { graphFailure, hasStatus } from './errors.ts'
import type { GraphApi } from './graph-client.ts'

/** Legacy per-user MFA state (contracts 1.10). */
export type PerUserMfaState = 'disabled' | 'enabled' | 'enforced' | 'unknownFutureValue'

/** One subject's result in a bulk call: what changed, or why it failed (one bad user never stops the rest). */
export type BulkResult = { changed: boolean } | { error: ProviderError }

/** How the provider flips the switch: per-user MFA state or membership of a Conditional Access group. */
export interface EnforcementStrategy {
  state(externalId: string): Promise<EnforcementState>
  enforce(subject: ProviderSubject): Promise<{ changed: boolean }>
  relax(subject: ProviderSubject): Promise<{ changed: boolean }>
  /** The same as enforce/relax for many subjects, through $batch; results in the subjects' order. */
  enforceMany(subjects: readonly ProviderSubject[]): Promise<BulkResult[]>
  relaxMany(subjects: readonly ProviderSubject[]): Promise<BulkResult[]>
}

export function externalIdOf (subject: ProviderSubject): string {
  if (subject.externalId === null || subject.externalId === '') {
    throw new ProviderError(`${subject.email} has no Entra object id yet (not synced)`, false, null, 'no_external_id')
  }
  return subject.externalId
}

function requirementsPath (id: string): string {
  return `/users/${encodeURIComponent(id)}/authentication/requirements`
}

/**
 * `enforced` for a user who has a method, `enabled` (register at next sign-in) for one who has none yet. A user
 * already `enforced` is left alone: nothing stricter exists, and stepping back to `enabled` would loosen nothing.
 */
export function wantedState (current: PerUserMfaState, subject: ProviderSubject): PerUserMfaState | null {
  const wanted = subject.enrolled ? 'enforced' : 'enabled'
  return current === 'enforced' || current === wanted ? null : wanted
}

/** Per-user MFA through the beta `authentication/requirements` property: read, then PATCH only if different. */
export class PerUserEnforcement implements EnforcementStrategy {
  constructor (private readonly graph: GraphApi, private readonly concurrency: number) {}

  async read (externalId: string): Promise<PerUserMfaState> {
    const body = await this.graph.get<{ perUserMfaState: PerUserMfaState }>(requirementsPath(externalId), 'beta')
    return body.perUserMfaState
  }

  async state (externalId: string): Promise<EnforcementState> {
    const current = await this.read(externalId)
    // `enabled` already makes Entra demand MFA (registration first) at the next sign-in.
    return current === 'enabled' || current === 'enforced' ? 'enforced' : 'not_enforced'
  }

  async enforce (subject: ProviderSubject): Promise<{ changed: boolean }> {
    const id = externalIdOf(subject)
    const target = wantedState(await this.read(id), subject)
    if (target === null) return { changed: false }
    await this.graph.patch(requirementsPath(id), { perUserMfaState: target }, 'beta')
    return { changed: true }
  }

  async relax (subject: ProviderSubject): Promise<{ changed: boolean }> {
    const id = externalIdOf(subject)
    if (await this.read(id) === 'disabled') return { changed: false }
    await this.graph.patch(requirementsPath(id), { perUserMfaState: 'disabled' }, 'beta')
    return { changed: true }
  }

  async enforceMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.many(subjects, (current, subject) => wantedState(current, subject))
  }

  async relaxMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.many(subjects, (current) => current === 'disabled' ? null : 'disabled')
  }

  // Two rounds of $batch (beta, where `requirements` lives): read everyone, then PATCH only those that differ.
  private async many (subjects: readonly ProviderSubject[], decide: (current: PerUserMfaState, s: ProviderSubject) => PerUserMfaState | null): Promise<BulkResult[]> {
    const results = new Array<BulkResult>(subjects.length)
    const ids: Array<string | null> = subjects.map((s, i) => {
      try {
        return externalIdOf(s)
      } catch (err) {
        results[i] = { error: err as ProviderError }
        return null
      }
    })
    const readable = ids.flatMap((id, i) => id === null ? [] : [i])
    const reads = await runBatch(this.graph, readable.map((i) => ({ method: 'GET' as const, url: requirementsPath(ids[i]!) })), { version: 'beta', concurrency: this.concurrency })
    const writes: Array<{ index: number, target: PerUserMfaState }> = []
    reads.forEach((outcome, k) => {
      const index = readable[k]
      if (!outcome.ok) { results[index] = { error: outcome.error }; return }
      const target = decide((outcome.body as { perUserMfaState: PerUserMfaState }).perUserMfaState, subjects[index])
      if (target === null) results[index] = { changed: false }
      else writes.push({ index, target })
    })
    const patched = await runBatch(this.graph, writes.map((w) => ({ method: 'PATCH' as const, url: requirementsPath(ids[w.index]!), body: { perUserMfaState: w.target } })), { version: 'beta', concurrency: this.concurrency })
    patched.forEach((outcome, k) => { results[writes[k].index] = outcome.ok ? { changed: true } : { error: outcome.error } })
    return results
  }
}

/**
 * Membership of a Conditional Access group that requires MFA: read membership first, add or remove the user,
 * and treat "already a member" / "not a member" answers as the no-op they are.
 */
export class GroupEnforcement implements EnforcementStrategy {
  constructor (private readonly graph: GraphApi, private readonly groupId: string, private readonly concurrency: number) {}

  async isMember (externalId: string): Promise<boolean> {
    // checkMemberGroups is transitive, like the Conditional Access policy the group feeds.
    const body = await this.graph.post<{ value: string[] }>(`/users/${encodeURIComponent(externalId)}/checkMemberGroups`, { groupIds: [this.groupId] })
    return body.value.map((v) => v.toLowerCase()).includes(this.groupId.toLowerCase())
  }

  async state (externalId: string): Promise<EnforcementState> {
    return await this.isMember(externalId) ? 'enforced' : 'not_enforced'
  }

  async enforce (subject: ProviderSubject): Promise<{ changed: boolean }> {
    const id = externalIdOf(subject)
    if (await this.isMember(id)) return { changed: false }
    try {
      await this.graph.post(this.membersRef(), this.memberBody(id))
      return { changed: true }
    } catch (err) {
      if (alreadyMember(err)) return { changed: false }
      throw err
    }
  }

  async relax (subject: ProviderSubject): Promise<{ changed: boolean }> {
    const id = externalIdOf(subject)
    if (!await this.isMember(id)) return { changed: false }
    try {
      await this.graph.delete(this.memberRef(id))
      return { changed: true }
    } catch (err) {
      // 404: not a direct member (only through a nested group), which this group cannot undo.
      if (hasStatus(err, 404)) return { changed: false }
      throw err
    }
  }

  async enforceMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.many(subjects, true)
  }

  async relaxMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.many(subjects, false)
  }

  private async many (subjects: readonly ProviderSubject[], member: boolean): Promise<BulkResult[]> {
    const results = new Array<BulkResult>(subjects.length)
    const valid: Array<{ index: number, id: string }> = []
    subjects.forEach((s, index) => {
      try { valid.push({ index, id: externalIdOf(s) }) } catch (err) { results[index] = { error: err as ProviderError } }
    })
    const reads = await runBatch(this.graph, valid.map((v) => ({ method: 'POST' as const, url: `/users/${encodeURIComponent(v.id)}/checkMemberGroups`, body: { groupIds: [this.groupId] } })), { concurrency: this.concurrency })
    const writes: typeof valid = []
    reads.forEach((o, k) => {
      const { index } = valid[k]
      if (!o.ok) { results[index] = { error: o.error }; return }
      const isMember = ((o.body as { value?: string[] }).value ?? []).some((g) => g.toLowerCase() === this.groupId.toLowerCase())
      if (isMember === member) results[index] = { changed: false }
      else writes.push(valid[k])
    })
    const outcomes = await runBatch(this.graph, writes.map((w) => member
      ? { method: 'POST' as const, url: this.membersRef(), body: this.memberBody(w.id) }
      : { method: 'DELETE' as const, url: this.memberRef(w.id) }), { concurrency: this.concurrency })
    outcomes.forEach((o, k) => { results[writes[k].index] = this.writeResult(o, member) })
    return results
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

// Graph answers 400 "One or more added object references already exist" when the member is already there.
function alreadyMember (err: unknown): boolean {
  return hasStatus(err, 400) && /already exist/i.test(err.message)
}
