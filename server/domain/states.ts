/**
 * A user's rollout state, derived from facts (DESIGN.md "Deadlines and states"). Pure: the engine stores the
 * result with its history, but the rules live here only.
 */
import { failureAdvice, failureAdviceCode, retryTime } from './enforcement-failures.ts'
import type { Words } from './i18n.ts'

export const USER_STATES = ['exempt', 'not_targeted', 'pending', 'enrolled', 'overdue', 'enforced', 'attention'] as const
export type UserState = typeof USER_STATES[number]

export interface ExemptionFact {
  kind: 'break_glass' | 'service_account' | 'other'
  /** Null only for break-glass accounts, which are exempt for as long as they exist. */
  expiresAt: Date | null
}

export interface StateFacts {
  exemption: ExemptionFact | null
  /** Holds a phishing-resistant method (passkey/FIDO2): break-glass accounts must. */
  phishingResistant: boolean
  /** The effective deadline, or null when no campaign targets the user. */
  deadline: Date | null
  /** Holds a method that qualifies under the policy. */
  enrolled: boolean
  /** The provider enforces MFA for the user now. */
  enforced: boolean
  /** The user's latest job failed with an error that does not heal by itself; `lastError` says why. */
  failed: { action: 'enforce' | 'relax', lastError: string } | null
  /** The user's latest job is waiting to be tried again after a transient provider error. */
  retrying: { action: 'enforce' | 'relax', at: Date, lastError: string } | null
  /** Enforcement was found switched off by hand and the campaign's policy says flag, not re-apply. */
  driftFlagged: boolean
  /** The campaign behind the deadline is armed (may flip switches). */
  armed: boolean
}

export interface DerivedState {
  state: UserState
  /** One plain sentence in English: why the user is in this state (logs, the API, the stored record). */
  reason: string
  /** The same for pages, in the reader's language: catalogue keys (`reasons.*`) and values, said one after the other. */
  words: Words[]
  /**
   * What the engine should make true at the provider: 'enforce' applies once the deadline has passed (stored
   * ahead, so the sweep finds due users by an index range scan on the deadline), 'relax' applies at once;
   * null: leave it as it is.
   */
  desiredEnforcement: 'enforce' | 'relax' | null
}

export function activeExemption (exemption: ExemptionFact | null, now: Date): ExemptionFact | null {
  return exemption !== null && (exemption.expiresAt === null || exemption.expiresAt > now) ? exemption : null
}

export function deriveState (facts: StateFacts, now: Date): DerivedState {
  const derived = baseState(facts, now)
  const action = derived.desiredEnforcement
  // 'enforce' is stored ahead of the deadline; it is only carried out (and can only have failed) once that passed.
  const due = action === 'relax' || (action === 'enforce' && facts.deadline !== null && facts.deadline <= now)
  if (!due) return derived
  // The very action wanted again failed in a way that does not heal by itself: a person decides before any retry.
  if (facts.failed !== null && facts.failed.action === action) {
    return { state: 'attention', reason: failureReason(facts.failed), words: [failureWords(facts.failed)], desiredEnforcement: null }
  }
  // Waiting out a provider outage: the state is what it is, and says when the next try comes by itself.
  if (facts.retrying !== null && facts.retrying.action === action) {
    return { ...derived, reason: `${derived.reason} ${retryingReason(facts.retrying)}`, words: [...derived.words, retryingWords(facts.retrying)] }
  }
  return derived
}

/** "Enforcement failed: <the provider's words>. What to do: …" */
export function failureReason (failed: { action: 'enforce' | 'relax', lastError: string }): string {
  const what = failed.action === 'enforce' ? 'Enforcement' : 'Lifting enforcement'
  return `${what} failed: ${failed.lastError.replace(/\.$/, '')}. What to do: ${failureAdvice(failed.lastError)}`
}

/** The failure in the catalogue's words: what failed, the provider's own words (as they came), what to do. */
export function failureWords (failed: { action: 'enforce' | 'relax', lastError: string }): Words {
  return { key: 'reasons.failed', values: { action: failed.action, error: failed.lastError.replace(/\.$/, ''), advice: failureAdviceCode(failed.lastError) } }
}

/** The wait in the catalogue's words: when the next try comes (a moment, in the reader's zone), and why. */
export function retryingWords (retrying: { at: Date, lastError: string }): Words {
  return { key: 'reasons.retrying', values: { at: retrying.at, error: retrying.lastError.replace(/\.$/, '') } }
}

/** "Retrying at 14:05 UTC on 2026-12-06 — provider unavailable (…)." */
export function retryingReason (retrying: { at: Date, lastError: string }): string {
  return `Retrying at ${retryTime(retrying.at)} — provider unavailable (${retrying.lastError.replace(/\.$/, '')}). Nothing to do: it retries by itself.`
}

function baseState (facts: StateFacts, now: Date): DerivedState {
  const exemption = activeExemption(facts.exemption, now)
  if (exemption !== null) {
    // Never flipped automatically; an enforced state is relaxed, since exemptions are deliberate decisions.
    const relax = facts.enforced ? 'relax' : null
    if (exemption.kind === 'break_glass' && !facts.phishingResistant) {
      return { state: 'attention', reason: 'Break-glass account without a passkey or security key: it must hold one.', words: [{ key: 'reasons.break_glass_without_key' }], desiredEnforcement: relax }
    }
    const until = exemption.expiresAt === null ? '' : ` until ${exemption.expiresAt.toISOString().slice(0, 10)}`
    const words: Words = exemption.expiresAt === null
      ? { key: 'reasons.exempt', values: { kind: exemption.kind } }
      : { key: 'reasons.exempt_until', values: { kind: exemption.kind, until: exemption.expiresAt } }
    return { state: 'exempt', reason: `Exempt (${exemption.kind.replace('_', ' ')})${until}.`, words: [words], desiredEnforcement: relax }
  }
  if (facts.deadline === null) {
    return { state: 'not_targeted', reason: 'No campaign includes this user.', words: [{ key: 'reasons.not_targeted' }], desiredEnforcement: facts.enforced ? 'relax' : null }
  }
  const due = facts.deadline <= now
  if (!due) {
    // A deadline moved into the future (extension) gives the grace period back; otherwise enforce when it passes.
    const desired = facts.enforced ? 'relax' : facts.armed ? 'enforce' : null
    return facts.enrolled
      ? { state: 'enrolled', reason: 'Has a qualifying method; MFA becomes mandatory at the deadline.', words: [{ key: 'reasons.enrolled_before_deadline' }], desiredEnforcement: desired }
      : { state: 'pending', reason: 'Grace period running: no qualifying method yet.', words: [{ key: 'reasons.pending' }], desiredEnforcement: desired }
  }
  if (facts.enforced) {
    return {
      state: 'enforced',
      reason: facts.enrolled ? 'MFA is mandatory.' : 'MFA is mandatory; the user must register a method at next sign-in.',
      words: [{ key: facts.enrolled ? 'reasons.enforced' : 'reasons.enforced_register' }],
      desiredEnforcement: null
    }
  }
  if (facts.driftFlagged) {
    return { state: 'attention', reason: 'MFA enforcement was switched off at the provider by hand. The campaign only flags this: re-apply it or exempt the user.', words: [{ key: 'reasons.drift_flagged' }], desiredEnforcement: null }
  }
  if (!facts.armed) {
    return { state: facts.enrolled ? 'enrolled' : 'overdue', reason: 'Deadline passed; the campaign is not armed, so nothing is enforced yet.', words: [{ key: 'reasons.not_armed' }], desiredEnforcement: null }
  }
  return facts.enrolled
    ? { state: 'enrolled', reason: 'Deadline passed: making MFA mandatory.', words: [{ key: 'reasons.enforcing' }], desiredEnforcement: 'enforce' }
    : { state: 'overdue', reason: 'Deadline passed without a qualifying method: making MFA mandatory.', words: [{ key: 'reasons.enforcing_overdue' }], desiredEnforcement: 'enforce' }
}
