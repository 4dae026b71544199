import type { EnforcementEngine } from '../../server/domain/engine.ts'
import type { HotSpots } from './cpu-profile.ts'
import { TokenBucket, type RateLimitedProvider } from './rate-limited-provider.ts'
import type { StoreTiming } from './instrumented-store.ts'

/**
 * What bench/sweep.ts and its engine processes (lib/sweep-instance.ts) share: the phases of one sweep, the loop
 * that sweeps until nothing is left, and how store time and hot spots are printed.
 */
export const RATE_SHARE = 0.7
const CALIBRATION_SHARE = 0.2
/** Without --max-seconds, the throttled phase may take this many times what the rate needs for the rest, at least MIN_MAX_MS. */
const TIME_HEADROOM = 2
const MIN_MAX_MS = 150_000
/** How often an instance looks again while only other instances' jobs are running. */
const POLL_MS = 100

export function log (message: string): void {
  process.stderr.write(`${message}\n`)
}

export const realSleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export interface PhaseSettings {
  users: number
  givenRate: number | null
  calibrateMs: number
  /** How long the throttled phase may claim; null: TIME_HEADROOM times what the rate needs for the jobs left. */
  maxMs: number | null
}

export interface Phase {
  /** performance.now() when it began. */
  at: number
  /** Jobs completed when it began. */
  completed: number
}

export interface PhaseEvents {
  /** The first claim: planning is over, calibration begins. */
  calibrating?(phase: Phase): void
  /** The limit is in force from now; `seconds` the calibration took. */
  limited?(phase: Phase, seconds: number): void
  /** The throttled phase ran out of time: no more claims. */
  closed?(): void
}

/**
 * Planning until the first claim, calibration (no limit) until --calibrate-seconds or a fifth of the users, then
 * the token bucket at `rate` until the end, claims closing after --max-seconds. Fed with completed jobs and moved
 * on by advance(), always between two jobs.
 */
export class SweepPhases {
  completed = 0
  rate = 0
  unthrottledPerS = 0
  calibration: Phase | null = null
  throttled: Phase | null = null
  /** Claims stop: the throttled phase ran out of time. */
  closed = false
  /** How long the throttled phase may claim (set when it begins). */
  maxMs = 0

  constructor (private readonly settings: PhaseSettings, private readonly provider: RateLimitedProvider, private readonly events: PhaseEvents = {}) {}

  /** Before a claim (or on any news): starts calibration, puts the limit in force, closes claims, as time has come. */
  advance (now = performance.now()): void {
    if (this.calibration === null) {
      this.calibration = { at: now, completed: this.completed }
      this.events.calibrating?.(this.calibration)
    } else if (this.throttled === null && this.calibrated(now, this.calibration)) {
      this.limit(now, this.calibration)
    } else if (this.throttled !== null && !this.closed && now - this.throttled.at >= this.maxMs) {
      this.closed = true
      log(`throttled: ${this.maxMs / 1000} s are up; no more claims`)
      this.events.closed?.()
    }
  }

  /** advance() for news that is not a claim: nothing starts before the first claim. */
  check (now = performance.now()): void {
    if (this.calibration !== null) this.advance(now)
  }

  private calibrated (now: number, calibration: Phase): boolean {
    return now - calibration.at >= this.settings.calibrateMs || this.completed - calibration.completed >= this.settings.users * CALIBRATION_SHARE
  }

  private limit (now: number, calibration: Phase): void {
    const seconds = (now - calibration.at) / 1000
    this.unthrottledPerS = (this.completed - calibration.completed) / seconds
    this.rate = this.settings.givenRate ?? Math.max(1, Math.round(this.unthrottledPerS * RATE_SHARE))
    this.provider.limit(new TokenBucket(this.rate, this.rate))
    this.throttled = { at: now, completed: this.completed }
    const needsMs = Math.max(0, this.settings.users - this.completed) / this.rate * 1000
    this.maxMs = this.settings.maxMs ?? Math.max(MIN_MAX_MS, Math.ceil(needsMs * TIME_HEADROOM / 1000) * 1000)
    log(`calibration: ${this.completed - calibration.completed} jobs in ${seconds.toFixed(1)} s, ${this.unthrottledPerS.toFixed(0)} users/s unthrottled; ` +
      `rate limit now ${this.rate}/s ${this.settings.givenRate === null ? `(${RATE_SHARE * 100}% of it)` : '(given)'}; ` +
      `claims close after ${this.maxMs / 1000} s${this.settings.maxMs === null ? ` (${TIME_HEADROOM}× what the rate needs for the rest)` : ''}`)
    this.events.limited?.(this.throttled, seconds)
  }
}

export interface OpenJobs {
  queued: number
  /** Running jobs: after this instance's sweep returns, other instances' only. */
  running: number
  /** When the first queued job falls due (ms since the epoch). */
  nextQueuedAt: number | null
}

export interface Totals {
  sweeps: number
  retried: number
  failed: number
}

/**
 * engine.sweep() until no job is queued or running (or claims have closed). Between sweeps it waits for the next
 * queued job to fall due, looking again every POLL_MS while another instance still runs jobs (one that ends in a
 * retry becomes queued again).
 */
export async function sweepUntilDone (engine: EnforcementEngine, openJobs: () => Promise<OpenJobs>, closed: () => boolean): Promise<Totals> {
  const totals: Totals = { sweeps: 0, retried: 0, failed: 0 }
  for (;;) {
    const report = await engine.sweep()
    totals.sweeps++
    totals.retried += report.retried
    totals.failed += report.failed
    const open = await openJobs()
    if (open.queued + open.running === 0 || closed()) return totals
    const now = Date.now()
    let next = open.queued > 0 && open.nextQueuedAt !== null ? open.nextQueuedAt : Infinity
    if (open.running > 0) next = Math.min(next, now + POLL_MS)
    // Nothing ready now: the rest wait on Retry-After or backoff. Sweep again when the first falls due.
    await realSleep(Math.max(1, Math.min(next, now + 60_000) - now))
  }
}

/** Store time per method, largest first; with `seconds`, also as a share of that span. */
export function describeTimings (timings: Map<string, StoreTiming>, seconds: number | null): string {
  return [...timings.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([name, t]) => `${name} ${(t.ms / 1000).toFixed(1)} s (${seconds === null ? '' : `${Math.round(100 * t.ms / 1000 / seconds)}%, `}${t.calls}×, ${(t.ms / t.calls).toFixed(3)} ms)`)
    .join('; ')
}

export function printHotSpots (spots: HotSpots, prefix = ''): void {
  const share = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(6)
  log(`${prefix}hot spots (planning and calibration), self time:`)
  for (const spot of spots.self) log(`  ${share(spot.selfShare)}  ${spot.where}`)
  log(`${prefix}hot spots, the repository's functions with their callees:`)
  for (const spot of spots.inclusive) log(`  ${share(spot.totalShare)}  ${spot.where}`)
}
