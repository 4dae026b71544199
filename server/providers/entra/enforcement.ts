import { ProviderError, type EnforcementOutcome, type EnforcementRecord, type EnforcementRecords, type EnforcementState, type ProviderSubject } from '../../domain/provider.ts'
import { runBatch } from './batch.ts'
import type { GraphApi } from './graph-client.ts'
import { kindsFromMethods, type EntraMethodKind } from './method-kinds.ts'

/** Legacy per-user MFA state (contracts 1.10). */
export type PerUserMfaState = 'disabled' | 'enabled' | 'enforced' | 'unknownFutureValue'

/** One subject's result in a bulk call: what changed, or why it failed (one bad user never stops the rest). */
export type BulkResult = EnforcementOutcome | { error: ProviderError }

/** How the provider flips the switch: per-user MFA state or membership of a Conditional Access group. */
export interface EnforcementStrategy {
  state(externalId: string): Promise<EnforcementState>
  enforce(subject: ProviderSubject): Promise<EnforcementOutcome>
  relax(subject: ProviderSubject): Promise<EnforcementOutcome>
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

function methodsPath (id: string): string {
  return `/users/${encodeURIComponent(id)}/authentication/methods`
}

/**
 * Methods Entra's per-user MFA can challenge with. Email is for password reset only, and a temporary access pass
 * or a password is not a second factor; the rest let a user who is `enforced` sign in.
 */
const MFA_KINDS: ReadonlySet<EntraMethodKind> = new Set(['passkey', 'totp', 'phone', 'authenticator', 'external'])

/** Whether the user's live `authentication/methods` list holds a method per-user MFA can use. */
export function hasMfaMethod (methods: ReadonlyArray<{ '@odata.type'?: string }>): boolean {
  return kindsFromMethods(methods).some((kind) => MFA_KINDS.has(kind))
}

/**
 * `enforced` only for a user Entra reports a usable method for; `enabled` (register at the next sign-in; Entra
 * moves the user to `enforced` itself once registered) for one with nothing registered at Entra, whatever the
 * portal holds for them. A user already `enforced` is left alone: nothing stricter exists.
 */
export function wantedState (current: PerUserMfaState, registeredAtEntra: boolean): PerUserMfaState | null {
  const wanted = registeredAtEntra ? 'enforced' : 'enabled'
  return current === 'enforced' || current === wanted ? null : wanted
}

/** What relax does, from the state now and the record of what the portal found and set. */
export interface RelaxDecision {
  /** The state to PATCH, or null to leave it. */
  target: PerUserMfaState | null
  /** Whether the record has served its purpose (restored, or overruled by an administrator). */
  forget: boolean
  note?: string
}

/**
 * Relax sets back what the portal set, and nothing else: the state found before the first flip, while the state
 * is still the one the portal set (or `enforced`, where Entra itself takes a registered `enabled` user). Any other
 * state is an administrator's own decision and stays; so does any state the portal has no record of setting.
 */
export function relaxDecision (current: PerUserMfaState, record: EnforcementRecord | undefined): RelaxDecision {
  if (record === undefined) {
    return current === 'disabled'
      ? { target: null, forget: false }
      : { target: null, forget: false, note: `per-user MFA left "${current}": the portal has no record of setting it` }
  }
  const portalSet = current === record.set || (record.set === 'enabled' && current === 'enforced')
  if (!portalSet) {
    return { target: null, forget: true, note: `per-user MFA left "${current}": an administrator changed it after the portal set "${record.set}" (it was "${record.found}" before the portal)` }
  }
  return { target: current === record.found ? null : record.found as PerUserMfaState, forget: true }
}

/**
 * Per-user MFA through the beta `authentication/requirements` property: read the state (and, to enforce, the
 * user's methods at Entra), then PATCH only if different. The state found before the first flip is recorded, so
 * relax can put exactly that back.
 */
export class PerUserEnforcement implements EnforcementStrategy {
  constructor (private readonly graph: GraphApi, private readonly concurrency: number, private readonly records: EnforcementRecords) {}

  async read (externalId: string): Promise<PerUserMfaState> {
    const body = await this.graph.get<{ perUserMfaState: PerUserMfaState }>(requirementsPath(externalId), 'beta')
    return body.perUserMfaState
  }

  async state (externalId: string): Promise<EnforcementState> {
    const current = await this.read(externalId)
    // `enabled` already makes Entra demand MFA (registration first) at the next sign-in.
    return current === 'enabled' || current === 'enforced' ? 'enforced' : 'not_enforced'
  }

  async enforce (subject: ProviderSubject): Promise<EnforcementOutcome> {
    const id = externalIdOf(subject)
    // Beta, like `requirements`: it lists hardware OATH tokens too.
    const [current, methods] = await Promise.all([
      this.read(id),
      this.graph.get<{ value: Array<{ '@odata.type'?: string }> }>(methodsPath(id), 'beta')
    ])
    const target = wantedState(current, hasMfaMethod(methods.value))
    if (target === null) return { changed: false }
    await this.remember(subject.userId, current, target)
    await this.graph.patch(requirementsPath(id), { perUserMfaState: target }, 'beta')
    return { changed: true }
  }

  async relax (subject: ProviderSubject): Promise<EnforcementOutcome> {
    const id = externalIdOf(subject)
    const decision = relaxDecision(await this.read(id), await this.records.get('entra', subject.userId))
    if (decision.target !== null) await this.graph.patch(requirementsPath(id), { perUserMfaState: decision.target }, 'beta')
    if (decision.forget) await this.records.forget('entra', subject.userId)
    return { changed: decision.target !== null, ...(decision.note === undefined ? {} : { note: decision.note }) }
  }

  async enforceMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    const results = new Array<BulkResult>(subjects.length)
    const valid = validSubjects(subjects, results)
    // One round of reads (state and methods of each user, side by side in the same batches), then the PATCHes.
    const reads = await runBatch(this.graph, valid.flatMap((v) => [
      { method: 'GET' as const, url: requirementsPath(v.id) },
      { method: 'GET' as const, url: methodsPath(v.id) }
    ]), { version: 'beta', concurrency: this.concurrency })
    const writes: Array<{ index: number, id: string, target: PerUserMfaState }> = []
    for (const [k, v] of valid.entries()) {
      const [state, methods] = [reads[2 * k], reads[2 * k + 1]]
      if (!state.ok) { results[v.index] = { error: state.error }; continue }
      if (!methods.ok) { results[v.index] = { error: methods.error }; continue }
      const current = (state.body as { perUserMfaState: PerUserMfaState }).perUserMfaState
      const target = wantedState(current, hasMfaMethod((methods.body as { value?: Array<{ '@odata.type'?: string }> }).value ?? []))
      if (target === null) { results[v.index] = { changed: false }; continue }
      await this.remember(subjects[v.index].userId, current, target)
      writes.push({ index: v.index, id: v.id, target })
    }
    const patched = await runBatch(this.graph, writes.map((w) => ({ method: 'PATCH' as const, url: requirementsPath(w.id), body: { perUserMfaState: w.target } })), { version: 'beta', concurrency: this.concurrency })
    patched.forEach((outcome, k) => { results[writes[k].index] = outcome.ok ? { changed: true } : { error: outcome.error } })
    return results
  }

  async relaxMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    const results = new Array<BulkResult>(subjects.length)
    const valid = validSubjects(subjects, results)
    const reads = await runBatch(this.graph, valid.map((v) => ({ method: 'GET' as const, url: requirementsPath(v.id) })), { version: 'beta', concurrency: this.concurrency })
    const writes: Array<{ index: number, id: string, decision: RelaxDecision }> = []
    for (const [k, v] of valid.entries()) {
      const outcome = reads[k]
      if (!outcome.ok) { results[v.index] = { error: outcome.error }; continue }
      const userId = subjects[v.index].userId
      const decision = relaxDecision((outcome.body as { perUserMfaState: PerUserMfaState }).perUserMfaState, await this.records.get('entra', userId))
      if (decision.target !== null) { writes.push({ index: v.index, id: v.id, decision }); continue }
      if (decision.forget) await this.records.forget('entra', userId)
      results[v.index] = { changed: false, ...(decision.note === undefined ? {} : { note: decision.note }) }
    }
    const patched = await runBatch(this.graph, writes.map((w) => ({ method: 'PATCH' as const, url: requirementsPath(w.id), body: { perUserMfaState: w.decision.target } })), { version: 'beta', concurrency: this.concurrency })
    for (const [k, outcome] of patched.entries()) {
      const { index } = writes[k]
      if (!outcome.ok) { results[index] = { error: outcome.error }; continue }
      await this.records.forget('entra', subjects[index].userId)
      results[index] = { changed: true }
    }
    return results
  }

  /**
   * Recorded before the PATCH, so a crash between the two still knows what was found. The state found before the
   * FIRST flip is kept when the portal moves the user on (from `enabled` to `enforced` once registered).
   */
  private async remember (userId: string, current: PerUserMfaState, target: PerUserMfaState): Promise<void> {
    const earlier = await this.records.get('entra', userId)
    await this.records.put('entra', userId, { found: earlier?.found ?? current, set: target })
  }
}

/** The subjects that have an object id, with their index; the others get their error in `results`. */
export function validSubjects (subjects: readonly ProviderSubject[], results: BulkResult[]): Array<{ index: number, id: string }> {
  const valid: Array<{ index: number, id: string }> = []
  subjects.forEach((s, index) => {
    try { valid.push({ index, id: externalIdOf(s) }) } catch (err) { results[index] = { error: err as ProviderError } }
  })
  return valid
}
