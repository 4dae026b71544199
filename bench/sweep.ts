import { mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type Sqlite from 'better-sqlite3'
import type { EngineStore } from '../server/domain/engine.ts'
import { createServices, type Services } from '../server/wiring.ts'
import { FakeProvider } from '../test/fakes/provider.ts'
import { startCpuProfile, type CpuProfile, type HotSpots } from './lib/cpu-profile.ts'
import { instrumentedStore, type StoreTiming } from './lib/instrumented-store.ts'
import { RateLimitedProvider, TokenBucket } from './lib/rate-limited-provider.ts'
import { benchConfig, seedPopulation } from './lib/seed.ts'

/**
 * The sweep against a rate-limited provider. `users` users past their deadline in an armed campaign, the fake
 * provider registered as 'local', real sleeps, engine.sweep() repeated until no job is queued or running.
 *
 * One database, one sweep, two phases:
 *  1. calibration: no limit, from the first claim for --calibrate-seconds (or a fifth of the users, whichever
 *     comes first): the engine's own throughput, on the full queue.
 *  2. throttled: a real-time token bucket of `rate` calls/s goes in front of the provider (beyond it: retryable
 *     'throttled' with Retry-After). Unless given, rate = 70% of the calibrated throughput: the limit binds, not
 *     the engine's CPU, with headroom for retries and a busy machine, so the ratio says how well the engine keeps
 *     the allowance used (Retry-After, backoff, re-sweeps). achieved_ratio = users enforced in this phase / its
 *     seconds / rate.
 * Planning (refresh, plan, enqueue) comes before both and is reported on its own (planning_s).
 *
 *   npm run bench -- sweep [users=100000] [rate] [--concurrency 8] [--calibrate-seconds 15] [--max-seconds 150] [--cpu-prof DIR]
 *
 * Targets: achieved_ratio >= 0.90, lost 0 (due users not enforced at the provider at the end), duplicated 0 (users
 * whose enforcement flipped more than once). Phase 2 stops claiming after --max-seconds, so a slow engine still
 * ends the run in minutes: it is then reported unfinished (lost: null). --cpu-prof DIR profiles planning and
 * calibration into DIR and prints the hot spots.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TARGET_RATIO = 0.9
const RATE_SHARE = 0.7
const CALIBRATION_SHARE = 0.2

function log (message: string): void {
  process.stderr.write(`${message}\n`)
}

const realSleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Options {
  users: number
  givenRate: number | null
  concurrency: number
  calibrateMs: number
  maxMs: number
  profileDir: string | undefined
}

interface Phase {
  /** performance.now() when it began. */
  at: number
  /** Jobs completed when it began. */
  completed: number
}

/**
 * Watches the sweep from inside the store: counts completed jobs, samples memory, and moves from planning to
 * calibration (first claim), to the limit, and to closing time, always between two jobs.
 */
class SweepMeter {
  completed = 0
  peakRss = 0
  rate = 0
  unthrottledPerS = 0
  calibration: Phase | null = null
  throttled: Phase | null = null
  /** Claims stop: the throttled phase ran out of time. */
  closed = false
  readonly timings = new Map<string, StoreTiming>()
  profile: CpuProfile | undefined
  hotSpots: Promise<HotSpots> | undefined

  constructor (private readonly options: Options, private readonly provider: RateLimitedProvider) {}

  /** The engine's store, instrumented: timings, completions, and this meter's hook before each claim. */
  wrap (store: EngineStore): EngineStore {
    const counting = Object.assign(Object.create(store) as EngineStore, {
      complete: async (...args: Parameters<EngineStore['complete']>) => {
        const done = await store.complete(...args)
        if (done) this.completed++
        return done
      }
    })
    return instrumentedStore(counting, { timings: this.timings, beforeClaim: () => this.beforeClaim() })
  }

  private beforeClaim (): boolean {
    const now = performance.now()
    if (this.completed % 64 === 0) this.peakRss = Math.max(this.peakRss, process.memoryUsage().rss)
    if (this.calibration === null) {
      this.calibration = { at: now, completed: this.completed }
      log(`planning: store time ${describeTimings(this.timings, null)}`)
      this.timings.clear()
    } else if (this.throttled === null && this.calibrated(now, this.calibration)) {
      this.limit(now, this.calibration)
    } else if (this.throttled !== null && !this.closed && now - this.throttled.at >= this.options.maxMs) {
      this.closed = true
      log(`throttled: ${this.options.maxMs / 1000} s are up; no more claims`)
    }
    return !this.closed
  }

  private calibrated (now: number, calibration: Phase): boolean {
    return now - calibration.at >= this.options.calibrateMs || this.completed - calibration.completed >= this.options.users * CALIBRATION_SHARE
  }

  private limit (now: number, calibration: Phase): void {
    const seconds = (now - calibration.at) / 1000
    this.unthrottledPerS = (this.completed - calibration.completed) / seconds
    this.rate = this.options.givenRate ?? Math.max(1, Math.round(this.unthrottledPerS * RATE_SHARE))
    this.provider.limit(new TokenBucket(this.rate, this.rate))
    this.throttled = { at: now, completed: this.completed }
    this.hotSpots = this.profile?.stop(path.join(this.options.profileDir!, 'sweep-unthrottled.cpuprofile'), ROOT)
    log(`calibration: ${this.completed - calibration.completed} jobs in ${seconds.toFixed(1)} s, ${this.unthrottledPerS.toFixed(0)} users/s unthrottled; ` +
      `rate limit now ${this.rate}/s ${this.options.givenRate === null ? `(${RATE_SHARE * 100}% of it)` : '(given)'}`)
    log(`calibration: store time ${describeTimings(this.timings, seconds)}`)
    this.timings.clear()
  }
}

interface Totals {
  sweeps: number
  retried: number
  failed: number
  planningS: number
}

/** engine.sweep() until no job is queued or running (or claims have closed); between sweeps, waits for the next due. */
async function sweepUntilDone (services: Services, meter: SweepMeter, started: number): Promise<Totals> {
  const openJobs = services.database.sqlite.prepare(`SELECT count(*) AS open, min(CASE status WHEN 'queued' THEN next_attempt_at ELSE lease_expires_at END) AS next
    FROM enforcement_jobs WHERE status IN ('queued', 'running')`)
  const totals: Totals = { sweeps: 0, retried: 0, failed: 0, planningS: 0 }
  for (;;) {
    const sweep = services.engine.sweep()
    // sweep() refreshes, plans and enqueues synchronously, then its workers claim: calibration starts there.
    if (totals.sweeps === 0) {
      totals.planningS = ((meter.calibration?.at ?? performance.now()) - started) / 1000
      log(`first sweep planned and enqueued in ${totals.planningS.toFixed(1)} s`)
    }
    const report = await sweep
    totals.sweeps++
    totals.retried += report.retried
    totals.failed += report.failed
    const { open, next } = openJobs.get() as { open: number, next: number | null }
    if (open === 0 || meter.closed) return totals
    // Nothing ready now: the rest wait on Retry-After or backoff. Sweep again when the first falls due.
    await realSleep(Math.max(1, (next ?? Date.now()) - Date.now()))
  }
}

function parseOptions (args: string[]): Options {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      concurrency: { type: 'string', default: '8' },
      'calibrate-seconds': { type: 'string', default: '15' },
      'max-seconds': { type: 'string', default: '150' },
      'cpu-prof': { type: 'string' }
    }
  })
  return {
    users: wholeNumber('users', positionals[0] ?? '100000', 10),
    givenRate: positionals[1] === undefined ? null : wholeNumber('rate', positionals[1], 1),
    concurrency: wholeNumber('--concurrency', values.concurrency, 1),
    calibrateMs: wholeNumber('--calibrate-seconds', values['calibrate-seconds'], 1) * 1000,
    maxMs: wholeNumber('--max-seconds', values['max-seconds'], 1) * 1000,
    profileDir: values['cpu-prof'] === undefined ? undefined : path.resolve(values['cpu-prof'])
  }
}

export async function main (args: string[]): Promise<void> {
  const options = parseOptions(args)
  if (options.profileDir !== undefined) mkdirSync(options.profileDir, { recursive: true })
  const config = benchConfig()
  const fake = new FakeProvider()
  const provider = new RateLimitedProvider(fake)
  const meter = new SweepMeter(options, provider)
  const services = await createServices(config, {
    providers: { local: provider },
    engineSettings: { concurrency: options.concurrency },
    sleep: realSleep,
    wrapEngineStore: (store) => meter.wrap(store)
  })
  const sqlite = services.database.sqlite
  try {
    let started = performance.now()
    const { dueIds } = seedPopulation(sqlite, { due: options.users, pending: 0, untargeted: 0 }, new Date())
    log(`seeded ${options.users} due users in ${((performance.now() - started) / 1000).toFixed(1)} s; concurrency ${options.concurrency}`)

    // With a provider that answers at once, this only gets to run while workers sleep on Retry-After.
    const progress = setInterval(() => {
      log(`${meter.throttled === null ? 'calibration' : 'throttled'}: ${((performance.now() - started) / 1000).toFixed(0)} s, ${meter.completed} done, ${provider.throttled} throttled`)
    }, 10_000)
    meter.profile = options.profileDir === undefined ? undefined : await startCpuProfile()
    started = performance.now()
    let totals: Totals
    try {
      totals = await sweepUntilDone(services, meter, started)
    } finally {
      clearInterval(progress)
    }
    const ended = performance.now()
    meter.peakRss = Math.max(meter.peakRss, process.memoryUsage().rss)
    const phase = meter.throttled
    if (phase === null) throw new Error(`the sweep finished during calibration; use more users than ${options.users}`)
    const throttledS = (ended - phase.at) / 1000
    const throttledDone = meter.completed - phase.completed
    const achievedRatio = throttledDone / throttledS / meter.rate
    log(`throttled: ${throttledDone} users in ${throttledS.toFixed(1)} s (${(throttledDone / throttledS).toFixed(0)}/s against ${meter.rate}/s), ` +
      `${totals.sweeps} sweeps, ${totals.retried} retries, ${totals.failed} failed, ${provider.throttled} throttled`)
    log(`throttled: store time ${describeTimings(meter.timings, throttledS)}`)
    const spots = await meter.hotSpots
    if (spots !== undefined) printHotSpots(spots)

    const remaining = (sqlite.prepare("SELECT count(*) FROM enforcement_jobs WHERE status IN ('queued', 'running')").pluck().get() as number)
    const enforced = dueIds.filter((id) => fake.isEnforced(id)).length
    const duplicated = dueIds.filter((id) => fake.changesFor(id) > 1).length
    const finished = remaining === 0
    const lost = finished ? dueIds.length - enforced : null
    checkDatabase(sqlite, enforced, totals.failed)
    const met = finished && achievedRatio >= TARGET_RATIO && lost === 0 && duplicated === 0
    if (!met) {
      log(`BELOW TARGET: achieved ratio ${achievedRatio.toFixed(3)} (target ${TARGET_RATIO}), ` +
        `${finished ? `lost ${lost}` : `unfinished: ${remaining} jobs still open after ${options.maxMs / 1000} s`}, duplicated ${duplicated}`)
    }

    process.stdout.write(`${JSON.stringify({
      bench: 'sweep',
      users: options.users,
      rate_limit: meter.rate,
      achieved_ratio: round(achievedRatio, 3),
      lost,
      duplicated,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
      unthrottled_per_s: Math.round(meter.unthrottledPerS),
      elapsed_s: round(throttledS, 1),
      met,
      target_ratio: TARGET_RATIO,
      finished,
      remaining_jobs: remaining,
      enforced,
      throttled_phase_users: throttledDone,
      calibration_users: phase.completed,
      planning_s: round(totals.planningS, 1),
      total_s: round((ended - started) / 1000, 1),
      sweeps: totals.sweeps,
      retried: totals.retried,
      failed: totals.failed,
      throttled_calls: provider.throttled,
      // Calls that found the user already enforced: harmless (idempotent), but each spent a token.
      redundant_calls: fake.calls.filter((call) => call.op === 'enforce' && call.outcome === 'unchanged').length,
      peak_sampled_rss_mb: Math.round(meter.peakRss / 2 ** 20),
      concurrency: options.concurrency,
      claim_query_plan: claimQueryPlan(sqlite, services.engineStore),
      node: process.version
    })}\n`)
  } finally {
    await services.close()
    rmSync(config.dataDir, { recursive: true, force: true })
  }
}

/** The portal's own record must agree with the provider's. */
function checkDatabase (sqlite: Sqlite.Database, enforced: number, failed: number): void {
  const row = sqlite.prepare(`SELECT
      (SELECT count(*) FROM users WHERE enforced_at IS NOT NULL) AS enforcedAt,
      (SELECT count(*) FROM user_states WHERE state = 'enforced') AS enforcedState,
      (SELECT count(*) FROM enforcement_jobs WHERE status = 'failed') AS failedJobs`).get() as { enforcedAt: number, enforcedState: number, failedJobs: number }
  if (row.enforcedAt !== enforced || row.enforcedState !== enforced || row.failedJobs !== failed) {
    log(`WARNING the database disagrees with the provider: ${row.enforcedAt} users with enforced_at, ${row.enforcedState} in state 'enforced', ` +
      `${row.failedJobs} failed jobs; the provider enforced ${enforced}`)
  }
}

/** EXPLAIN QUERY PLAN of the store's claim query (read from the store, so it is the SQL that ran). */
function claimQueryPlan (sqlite: Sqlite.Database, store: unknown): string[] {
  const statements = Reflect.get(store as object, 'statements') as Record<string, Sqlite.Statement> | undefined
  const claim = statements?.claimOne
  if (claim === undefined) return []
  return (sqlite.prepare(`EXPLAIN QUERY PLAN ${claim.source}`).all({ owner: 'x', leaseUntil: 0, now: 0 }) as Array<{ detail: string }>).map((row) => row.detail)
}

/** Store time per method, largest first; with `seconds`, also as a share of that span. */
function describeTimings (timings: Map<string, StoreTiming>, seconds: number | null): string {
  return [...timings.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .map(([name, t]) => `${name} ${(t.ms / 1000).toFixed(1)} s (${seconds === null ? '' : `${Math.round(100 * t.ms / 1000 / seconds)}%, `}${t.calls}×, ${(t.ms / t.calls).toFixed(3)} ms)`)
    .join('; ')
}

function printHotSpots (spots: HotSpots): void {
  const share = (x: number) => `${(100 * x).toFixed(1)}%`.padStart(6)
  log('hot spots (planning and calibration), self time:')
  for (const spot of spots.self) log(`  ${share(spot.selfShare)}  ${spot.where}`)
  log('hot spots, the repository\'s functions with their callees:')
  for (const spot of spots.inclusive) log(`  ${share(spot.totalShare)}  ${spot.where}`)
}

function wholeNumber (name: string, text: string, min: number): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}: expected a whole number of at least ${min}, got "${text}"`)
  return value
}

function round (value: number, digits: number): number {
  return Number(value.toFixed(digits))
}
