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

/** Storage port: one row per key ("signin:untrusted:…", "signin:device:…", "signin:ip:…", "totp:user:…"). */
export interface ThrottleStore {
  read(key: string): Promise<ThrottleState | undefined>
  write(key: string, state: ThrottleState): Promise<void>
  clear(key: string): Promise<void>
  /**
   * Runs fn as one transaction in which nobody else reads or writes these keys: attempts at the same moment, on
   * this instance or another, are counted one after the other.
   */
  atomically<T>(keys: readonly string[], fn: () => Promise<T>): Promise<T>
}

/** The throttle rows as housekeeping sees them. */
export interface ThrottleRows extends ThrottleStore {
  /** Forgets windows and locks that ended before `before`; how many. */
  purge(before: number): Promise<number>
}

export interface ThrottlePolicy {
  maxFailures: number
  windowMs: number
  lockoutMs: number
}

export type Verdict = { locked: false } | { locked: true, until: Date }

/** One counter an attempt is charged to. */
export interface Charge {
  key: string
  policy: ThrottlePolicy
}

/**
 * The answer to a claim: granted (the attempt may be checked; `limitReached` lists the keys this attempt used up,
 * which are locked until it is settled) or refused because `key` is locked until `until`.
 */
export type ClaimVerdict =
  | { granted: true, limitReached: readonly string[], until: Date | null }
  | { granted: false, key: string, until: Date }

export class Regulator {
  constructor (private readonly store: ThrottleStore, private readonly clock: Clock) {}

  /** Is this key locked right now? Check before verifying anything. */
  async check (key: string): Promise<Verdict> {
    const state = await this.store.read(key)
    const now = this.clock.now().getTime()
    if (state?.lockedUntil != null && state.lockedUntil > now) return { locked: true, until: new Date(state.lockedUntil) }
    return { locked: false }
  }

  /** Record one failure; returns the verdict after it (locked when this failure reached the limit). */
  async fail (key: string, policy: ThrottlePolicy): Promise<Verdict & { justLocked: boolean }> {
    return await this.store.atomically([key], async () => {
      const now = this.clock.now().getTime()
      const state = await this.store.read(key)
      const fresh = state === undefined || now - state.windowStartedAt >= policy.windowMs ||
        (state.lockedUntil != null && state.lockedUntil <= now)
      const next: ThrottleState = fresh
        ? { failures: 1, windowStartedAt: now, lockedUntil: null }
        : { ...state, failures: state.failures + 1 }
      const justLocked = next.lockedUntil == null && next.failures >= policy.maxFailures
      if (justLocked) next.lockedUntil = now + policy.lockoutMs
      await this.store.write(key, next)
      return next.lockedUntil != null && next.lockedUntil > now
        ? { locked: true, until: new Date(next.lockedUntil), justLocked }
        : { locked: false, justLocked }
    })
  }

  /** A success ends the count for this key. */
  async reset (key: string): Promise<void> {
    await this.store.clear(key)
  }

  /**
   * Counts an attempt as a failure on every key before the secret is checked, all or none, so that attempts
   * made at the same moment cannot all be checked against a count that none of them has raised yet. Refused
   * (counting nothing) while any key is locked; the attempt that reaches a key's limit locks it at once, so at
   * most `maxFailures` attempts per window are ever checked. A success gives its claim back with `release`.
   */
  async claim (charges: readonly Charge[]): Promise<ClaimVerdict> {
    return await this.store.atomically(charges.map((charge) => charge.key), async () => {
      const now = this.clock.now().getTime()
      const states: Array<{ charge: Charge, state: ThrottleState }> = []
      for (const charge of charges) states.push({ charge, state: await this.current(charge, now) })
      for (const { charge, state } of states) {
        if (state.lockedUntil != null) return { granted: false, key: charge.key, until: new Date(state.lockedUntil) }
      }
      const limitReached: string[] = []
      let until: number | null = null
      for (const { charge, state } of states) {
        const next: ThrottleState = { ...state, failures: state.failures + 1 }
        if (next.failures >= charge.policy.maxFailures) {
          next.lockedUntil = now + charge.policy.lockoutMs
          until = Math.max(until ?? 0, next.lockedUntil)
          limitReached.push(charge.key)
        }
        await this.store.write(charge.key, next)
      }
      return { granted: true, limitReached, until: until === null ? null : new Date(until) }
    })
  }

  /**
   * The claimed attempt succeeded: it gives back its count on `key`, and the lock if it was the attempt that
   * reached the limit. With `forgive`, earlier failures are forgotten too, but never a lock that other
   * attempts reached meanwhile (they were wrong, and their count stands).
   */
  async release (key: string, claim: ClaimVerdict & { granted: true }, options: { forgive: boolean }): Promise<void> {
    await this.store.atomically([key], async () => {
      const state = await this.store.read(key)
      if (state === undefined) return
      const lockedByThis = claim.limitReached.includes(key)
      const lockedByOthers = state.lockedUntil != null && !lockedByThis
      if (options.forgive && !lockedByOthers) {
        await this.store.clear(key)
        return
      }
      await this.store.write(key, { ...state, failures: Math.max(0, state.failures - 1), lockedUntil: lockedByThis ? null : state.lockedUntil })
    })
  }

  /** The key's state now: a new window when there was none, the window has passed or a lock has ended. */
  private async current (charge: Charge, now: number): Promise<ThrottleState> {
    const state = await this.store.read(charge.key)
    const ended = state === undefined || (state.lockedUntil != null ? state.lockedUntil <= now : now - state.windowStartedAt >= charge.policy.windowMs)
    return ended ? { failures: 0, windowStartedAt: now, lockedUntil: null } : state
  }
}
