import type { Clock } from './clock.ts'

/**
 * Brute-force protection in one place (after Authelia's "regulation"): every route that checks a secret
 * (password, code, pass) asks a Regulator before checking and tells it about failures afterwards.
 */
export interface ThrottleState {
  failures: number
  windowStartedAt: number
  lockedUntil: number | null
}

/** Storage port: one row per key ("signin:account:…", "signin:ip:…", "totp:user:…"). */
export interface ThrottleStore {
  read(key: string): ThrottleState | undefined
  write(key: string, state: ThrottleState): void
  clear(key: string): void
  /** Runs fn atomically with respect to other writers of the same store. */
  atomically<T>(fn: () => T): T
}

export interface ThrottlePolicy {
  maxFailures: number
  windowMs: number
  lockoutMs: number
}

export type Verdict = { locked: false } | { locked: true, until: Date }

export class Regulator {
  constructor (private readonly store: ThrottleStore, private readonly clock: Clock) {}

  /** Is this key locked right now? Check before verifying anything. */
  check (key: string): Verdict {
    const state = this.store.read(key)
    const now = this.clock.now().getTime()
    if (state?.lockedUntil != null && state.lockedUntil > now) return { locked: true, until: new Date(state.lockedUntil) }
    return { locked: false }
  }

  /** Record one failure; returns the verdict after it (locked when this failure reached the limit). */
  fail (key: string, policy: ThrottlePolicy): Verdict & { justLocked: boolean } {
    return this.store.atomically(() => {
      const now = this.clock.now().getTime()
      const state = this.store.read(key)
      const fresh = state === undefined || now - state.windowStartedAt >= policy.windowMs ||
        (state.lockedUntil != null && state.lockedUntil <= now)
      const next: ThrottleState = fresh
        ? { failures: 1, windowStartedAt: now, lockedUntil: null }
        : { ...state, failures: state.failures + 1 }
      const justLocked = next.lockedUntil == null && next.failures >= policy.maxFailures
      if (justLocked) next.lockedUntil = now + policy.lockoutMs
      this.store.write(key, next)
      return next.lockedUntil != null && next.lockedUntil > now
        ? { locked: true, until: new Date(next.lockedUntil), justLocked }
        : { locked: false, justLocked }
    })
  }

  /** A success ends the count for this key. */
  reset (key: string): void {
    this.store.clear(key)
  }
}
