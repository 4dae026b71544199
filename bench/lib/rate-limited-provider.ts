import {
  ProviderError, type EnforcementState, type IdentityProvider, type ProviderPage, type ProviderSubject, type RegistrationStatus
} from '../../server/domain/provider.ts'

/**
 * A token bucket on the real clock: `ratePerS` tokens a second, at most `capacity` banked. Starts empty, so over
 * any span no more than rate × span calls are admitted (no free burst at the start to flatter a short run).
 */
export class TokenBucket {
  private tokens = 0
  private last: number

  constructor (readonly ratePerS: number, readonly capacity: number, private readonly now: () => number = () => performance.now()) {
    this.last = now()
  }

  /** Empties the bucket and restarts its clock: the limit applies from now, with nothing banked. */
  reset (): void {
    this.tokens = 0
    this.last = this.now()
  }

  /** Takes a token and answers 0, or answers how many milliseconds until one is available. */
  take (): number {
    const now = this.now()
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.ratePerS / 1000)
    this.last = now
    if (this.tokens >= 1) {
      this.tokens -= 1
      return 0
    }
    return Math.ceil((1 - this.tokens) * 1000 / this.ratePerS)
  }
}

/**
 * A provider behind a real-time rate limit, the way a cloud API throttles: every call takes a token or fails with a
 * retryable 'throttled' ProviderError whose retryAfterMs says when the next token comes (Retry-After). Throttled
 * calls never reach the provider, so its change counts stay a record of real effects.
 */
export class RateLimitedProvider implements IdentityProvider {
  throttled = 0

  /** With no bucket, calls pass straight through (a benchmark measures the unthrottled engine first). */
  constructor (private readonly inner: IdentityProvider, private bucket: TokenBucket | null = null) {}

  /** Puts a limit in force from now on (null: none). */
  limit (bucket: TokenBucket | null): void {
    bucket?.reset()
    this.bucket = bucket
  }

  get name () { return this.inner.name }
  get capabilities () { return this.inner.capabilities }

  async listUsers (cursor: string | null): Promise<ProviderPage> {
    this.admit()
    return this.inner.listUsers(cursor)
  }

  async registrationStatus (subject: ProviderSubject): Promise<RegistrationStatus> {
    this.admit()
    return this.inner.registrationStatus(subject)
  }

  async enforcementState (subject: ProviderSubject): Promise<EnforcementState> {
    this.admit()
    return this.inner.enforcementState(subject)
  }

  async enforce (subject: ProviderSubject): Promise<{ changed: boolean }> {
    this.admit()
    return this.inner.enforce(subject)
  }

  async relax (subject: ProviderSubject): Promise<{ changed: boolean }> {
    this.admit()
    return this.inner.relax(subject)
  }

  private admit (): void {
    const waitMs = this.bucket?.take() ?? 0
    if (waitMs === 0) return
    this.throttled++
    throw new ProviderError(`Too many requests; retry after ${waitMs} ms`, true, waitMs, 'throttled')
  }
}
