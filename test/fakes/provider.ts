import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import {
  ProviderError, type EnforcementState, type IdentityProvider, type ProviderCapabilities, type ProviderName,
  type ProviderPage, type ProviderSubject, type RegistrationStatus
} from '../../server/domain/provider.ts'

export type ProviderOp = 'enforce' | 'relax' | 'enforcementState' | 'registrationStatus'

/** How a fault presents itself, named like the codes real adapters give their ProviderErrors. */
export type FaultCode = 'throttled' | 'server_error' | 'timeout' | string

/** One call the fake received and what it answered. */
export interface ProviderCall {
  op: ProviderOp
  userId: string
  /** Milliseconds on the fake's clock when the call arrived. */
  at: number
  /** 'changed' / 'unchanged' for enforce and relax, 'read' for reads, else the fault's code. */
  outcome: 'changed' | 'unchanged' | 'read' | FaultCode
  /** The user's enforcement really flipped during this call (also true for a timeout whose request got through). */
  changed: boolean
  /** What the fault's Retry-After said, for throttled calls. */
  retryAfterMs?: number
}

export interface FakeProviderOptions {
  name?: ProviderName
  /** The clock call times and rate-limit windows are measured on. */
  now?: () => Date
  /** Seed of the deterministic generator behind `failRate`. */
  seed?: number
  /** Share of enforce/relax calls (0..1) failing at random: 429 with Retry-After, 500, or a timeout. */
  failRate?: number
  /** Retry-After of the random 429s. */
  retryAfterMs?: number
  /** At most `calls` admitted per fixed window of `windowMs`; beyond that 429 with Retry-After until the window ends. */
  rateLimit?: { calls: number, windowMs: number }
  /** Real time each call takes, so concurrent callers genuinely overlap. */
  delayMs?: number
  /**
   * Keep state and calls in this directory (state as JSON replaced atomically, calls appended one line each), so a
   * process killed mid-sweep leaves behind exactly what the provider saw, and a restarted fake picks the state up.
   */
  persistDir?: string
}

export interface FailAlwaysOptions {
  retryable: boolean
  message?: string
  code?: string
}

export type CallHook = (call: ProviderCall) => void | Promise<void>

export const PERSISTED_STATE = 'fake-provider-state.json'
export const PERSISTED_CALLS = 'fake-provider-calls.jsonl'

/**
 * A scriptable identity provider for engine tests. Enforcement is a per-user switch changed the way the port
 * requires (read, then set only if different), so how often it really flipped is countable: the proof of
 * "enforced exactly once in effect" however often the engine had to call.
 */
export class FakeProvider implements IdentityProvider {
  readonly name: ProviderName
  readonly capabilities: ProviderCapabilities = { enrollInPortal: { passkey: true, totp: true, phone: true }, nativeAccessPass: false, enforce: true }
  readonly calls: ProviderCall[] = []

  private readonly enforced = new Map<string, boolean>()
  private readonly changes = new Map<string, number>()
  private readonly failing = new Map<string, FailAlwaysOptions>()
  private readonly scripted: ProviderError[] = []
  private readonly hooks: CallHook[] = []
  private readonly random: () => number
  private readonly now: () => Date
  private window = { start: -1, admitted: 0 }

  constructor (private readonly options: FakeProviderOptions = {}) {
    this.name = options.name ?? 'local'
    this.now = options.now ?? (() => new Date())
    this.random = mulberry32(options.seed ?? 1)
    if (options.persistDir !== undefined) {
      const state = readPersistedState(options.persistDir)
      for (const [userId, on] of Object.entries(state)) this.enforced.set(userId, on)
    }
  }

  /** Every call for these users fails: retryable (a provider that keeps erroring) or not (e.g. a user it rejects). */
  failAlways (userIds: string[], options: FailAlwaysOptions): this {
    for (const id of userIds) this.failing.set(id, options)
    return this
  }

  /** The next enforce/relax calls, whoever they are for, fail with these errors in order (before any other fault). */
  failNext (...errors: ProviderError[]): this {
    this.scripted.push(...errors)
    return this
  }

  /** Runs at each call after it has taken effect (and been persisted), before the answer returns. */
  onCall (hook: CallHook): this {
    this.hooks.push(hook)
    return this
  }

  /** Someone changes the switch at the provider by hand (drift): not a call, and not counted as the engine's flip. */
  changeByHand (userId: string, enforced: boolean): void {
    this.enforced.set(userId, enforced)
    this.persistState()
  }

  isEnforced (userId: string): boolean {
    return this.enforced.get(userId) ?? false
  }

  /** How many times the user's enforcement really flipped. */
  changesFor (userId: string): number {
    return this.changes.get(userId) ?? 0
  }

  callsFor (userId: string, op?: ProviderOp): ProviderCall[] {
    return this.calls.filter((c) => c.userId === userId && (op === undefined || c.op === op))
  }

  async listUsers (): Promise<ProviderPage> {
    return { users: [], next: null }
  }

  async registrationStatus (subject: ProviderSubject): Promise<RegistrationStatus> {
    await this.call('registrationStatus', subject, () => 'read')
    return { methods: [], source: 'fake' }
  }

  async enforcementState (subject: ProviderSubject): Promise<EnforcementState> {
    await this.call('enforcementState', subject, () => 'read')
    return this.isEnforced(subject.userId) ? 'enforced' : 'not_enforced'
  }

  async enforce (subject: ProviderSubject): Promise<{ changed: boolean }> {
    return { changed: await this.call('enforce', subject, () => this.flip(subject.userId, true)) === 'changed' }
  }

  async relax (subject: ProviderSubject): Promise<{ changed: boolean }> {
    return { changed: await this.call('relax', subject, () => this.flip(subject.userId, false)) === 'changed' }
  }

  // Read, then set only if different, in one synchronous step: the idempotence the port promises.
  private flip (userId: string, on: boolean): 'changed' | 'unchanged' {
    if (this.isEnforced(userId) === on) return 'unchanged'
    this.enforced.set(userId, on)
    this.changes.set(userId, this.changesFor(userId) + 1)
    this.persistState()
    return 'changed'
  }

  private async call (op: ProviderOp, subject: ProviderSubject, apply: () => 'changed' | 'unchanged' | 'read'): Promise<'changed' | 'unchanged' | 'read'> {
    const at = this.now().getTime()
    if (this.options.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, this.options.delayMs))
    const writes = op === 'enforce' || op === 'relax'
    const fault = this.fault(subject.userId, writes, at)
    let outcome: ProviderCall['outcome']
    let changed = false
    if (fault === null) {
      outcome = apply()
      changed = outcome === 'changed'
    } else {
      outcome = fault.error.code
      // A timed-out request may still have reached the provider: the engine cannot know, so retries must be harmless.
      if (fault.appliedAnyway) changed = apply() === 'changed'
    }
    const call: ProviderCall = { op, userId: subject.userId, at, outcome, changed }
    if (fault?.error.retryAfterMs != null) call.retryAfterMs = fault.error.retryAfterMs
    this.record(call)
    for (const hook of this.hooks) await hook(call)
    if (fault !== null) throw fault.error
    return outcome as 'changed' | 'unchanged' | 'read'
  }

  private fault (userId: string, writes: boolean, at: number): { error: ProviderError, appliedAnyway: boolean } | null {
    const always = this.failing.get(userId)
    if (always !== undefined) {
      return { error: new ProviderError(always.message ?? 'the provider rejected this user', always.retryable, null, always.code ?? (always.retryable ? 'server_error' : 'rejected')), appliedAnyway: false }
    }
    const next = writes ? this.scripted.shift() : undefined
    if (next !== undefined) return { error: next, appliedAnyway: false }
    const limit = this.options.rateLimit
    if (limit !== undefined) {
      const start = Math.floor(at / limit.windowMs) * limit.windowMs
      if (start !== this.window.start) this.window = { start, admitted: 0 }
      if (this.window.admitted >= limit.calls) {
        const retryAfterMs = start + limit.windowMs - at
        return { error: throttled(retryAfterMs), appliedAnyway: false }
      }
      this.window.admitted++
    }
    const rate = this.options.failRate ?? 0
    if (!writes || rate === 0 || this.random() >= rate) return null
    const pick = this.random()
    if (pick < 1 / 3) return { error: throttled(this.options.retryAfterMs ?? 2_000), appliedAnyway: false }
    if (pick < 2 / 3) return { error: new ProviderError('Internal server error (500)', true, null, 'server_error'), appliedAnyway: false }
    return { error: new ProviderError('The request timed out', true, null, 'timeout'), appliedAnyway: this.random() < 0.5 }
  }

  private record (call: ProviderCall): void {
    this.calls.push(call)
    // appendFileSync: each line is on disk before the answer returns, so SIGKILL cannot lose a call.
    if (this.options.persistDir !== undefined) appendFileSync(path.join(this.options.persistDir, PERSISTED_CALLS), `${JSON.stringify(call)}\n`)
  }

  private persistState (): void {
    if (this.options.persistDir === undefined) return
    const file = path.join(this.options.persistDir, PERSISTED_STATE)
    // Write then rename: a kill between the two leaves the previous whole file, never a torn one.
    writeFileSync(`${file}.tmp`, JSON.stringify(Object.fromEntries(this.enforced)))
    renameSync(`${file}.tmp`, file)
  }
}

function throttled (retryAfterMs: number): ProviderError {
  return new ProviderError(`Too many requests; retry after ${retryAfterMs} ms`, true, retryAfterMs, 'throttled')
}

/** What a persisting fake left in `dir`: who is enforced, and every call in order. */
export function readPersisted (dir: string): { enforced: Record<string, boolean>, calls: ProviderCall[] } {
  const file = path.join(dir, PERSISTED_CALLS)
  const lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((line) => line !== '') : []
  return { enforced: readPersistedState(dir), calls: lines.map((line) => JSON.parse(line) as ProviderCall) }
}

function readPersistedState (dir: string): Record<string, boolean> {
  const file = path.join(dir, PERSISTED_STATE)
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, boolean> : {}
}

/** A small seeded generator, so a fault pattern is the same on every run. */
export function mulberry32 (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
