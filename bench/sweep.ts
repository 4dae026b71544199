import { fork, type ChildProcess } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type Sqlite from 'better-sqlite3'
import type pg from 'pg'
import type { EngineStore } from '../server/domain/engine.ts'
import { createServices } from '../server/wiring.ts'
import { FakeProvider } from '../test/fakes/provider.ts'
import { startCpuProfile, type CpuProfile, type HotSpots } from './lib/cpu-profile.ts'
import { instrumentedStore, type StoreTiming } from './lib/instrumented-store.ts'
import { chooseBackend, connect, createBenchDatabase, engineStatements, explain, type Backend } from './lib/postgres.ts'
import { RateLimitedProvider } from './lib/rate-limited-provider.ts'
import { benchConfig, benchSecrets, seedPopulation, seedPopulationPostgres } from './lib/seed.ts'
import { serveProvider } from './lib/shared-provider.ts'
import type { FromInstance, StartMessage, ToInstance } from './lib/sweep-instance.ts'
import { describeTimings, log, printHotSpots, realSleep, SweepPhases, sweepUntilDone, type OpenJobs, type Totals } from './lib/sweep-phases.ts'

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
 *   npm run bench -- sweep [users=100000] [rate] [--concurrency 8] [--calibrate-seconds 15] [--max-seconds N]
 *     [--instances N] [--backend sqlite|postgresql] [--cpu-prof DIR]
 *
 * Backends (lib/postgres.ts): without DATABASE_URL, SQLite in a temporary directory, one instance in this process.
 * With DATABASE_URL (a server and maintenance database, e.g. postgres://postgres@127.0.0.1:5432/postgres), on
 * PostgreSQL: the bench creates a database of its own there (mfa_bench_…, dropped at the end), migrates it through
 * createServices, seeds it, and runs --instances engine processes (default 2; lib/sweep-instance.ts), each with its
 * own Services on that database and --concurrency workers, all sweeping at once. They share one provider: the fake
 * and its token bucket live in this process and the instances call it over their IPC channels
 * (lib/shared-provider.ts), so the limit, the flips and their count are one, as with a real cloud API.
 *
 * Targets: achieved_ratio >= 0.90, lost 0 (due users not enforced at the provider at the end), duplicated 0 (users
 * whose enforcement flipped more than once at the provider). Phase 2 stops claiming after --max-seconds (by default
 * twice what the rate needs for the jobs left, at least 150 s: the default run goes to the end, and an engine that
 * cannot keep up with its own rate still stops), then reported unfinished (lost: null). --cpu-prof DIR profiles
 * planning and calibration into DIR (one profile per instance) and prints the hot spots. peak_rss_mb is the largest
 * of the engine processes' (this one on SQLite); concurrency is per instance.
 *
 * Issue #18's run: two instances on PostgreSQL and the default 100,000 users (on an idle two-core machine the two
 * reach about 200 users a second together and the run takes 12 minutes; on a busy one, up to half an hour):
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npm run bench -- sweep
 *
 * On a server without autovacuum (this project's CI machines run theirs so), the engine vacuums its job queue
 * itself (server/db/pg/queue-upkeep.ts: before it did, such a run fell from the limit to 0.857 as the sweep went).
 * server_warnings in the JSON line carries what the portal warns its operator of about the server.
 *
 * A given rate far below the engine's throughput is no safer: the workers then fight over the tokens, and a job
 * throttled on every one of the engine's fast attempts waits an hour on its long retry schedule.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const INSTANCE = fileURLToPath(new URL('./lib/sweep-instance.ts', import.meta.url))
const TARGET_RATIO = 0.9

interface Options {
  users: number
  givenRate: number | null
  concurrency: number
  calibrateMs: number
  maxMs: number | null
  profileDir: string | undefined
  backend: Backend
  instances: number
}

/** What a run leaves to report, on either backend. */
interface Outcome {
  phases: SweepPhases
  fake: FakeProvider
  provider: RateLimitedProvider
  dueIds: string[]
  totals: Totals
  /** performance.now() when the first sweep began, and when the last instance's sweeping ended. */
  started: number
  ended: number
  /** Storage-level time per store method in the throttled phase (SQLite, in this process). */
  timings: Map<string, StoreTiming> | null
  hotSpots: HotSpots | undefined
  remaining: number
  database: { enforcedAt: number, enforcedState: number, failedJobs: number }
  claimQueryPlan: string[]
  /** What the portal warns its operator of about the database server (PostgreSQL without autovacuum, say). */
  serverWarnings: string[]
  peakRssMb: number
  peakSampledRssMb: number
}

function parseOptions (args: string[]): Options {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      concurrency: { type: 'string', default: '8' },
      'calibrate-seconds': { type: 'string', default: '15' },
      'max-seconds': { type: 'string' },
      instances: { type: 'string' },
      backend: { type: 'string' },
      'cpu-prof': { type: 'string' }
    }
  })
  const backend = chooseBackend(values.backend)
  const instances = wholeNumber('--instances', values.instances ?? (backend.name === 'postgresql' ? '2' : '1'), 1)
  if (backend.name === 'sqlite' && instances !== 1) throw new Error('--instances: SQLite runs one instance; set DATABASE_URL to sweep with several on PostgreSQL')
  return {
    users: wholeNumber('users', positionals[0] ?? '100000', 10),
    givenRate: positionals[1] === undefined ? null : wholeNumber('rate', positionals[1], 1),
    concurrency: wholeNumber('--concurrency', values.concurrency, 1),
    calibrateMs: wholeNumber('--calibrate-seconds', values['calibrate-seconds'], 1) * 1000,
    maxMs: values['max-seconds'] === undefined ? null : wholeNumber('--max-seconds', values['max-seconds'], 1) * 1000,
    profileDir: values['cpu-prof'] === undefined ? undefined : path.resolve(values['cpu-prof']),
    backend,
    instances
  }
}

export async function main (args: string[]): Promise<void> {
  const options = parseOptions(args)
  if (options.profileDir !== undefined) mkdirSync(options.profileDir, { recursive: true })
  const outcome = options.backend.name === 'postgresql' ? await sweepOnPostgres(options) : await sweepOnSqlite(options)
  report(options, outcome)
}

/** One instance in this process on a SQLite file. */
async function sweepOnSqlite (options: Options): Promise<Outcome> {
  const config = benchConfig()
  const fake = new FakeProvider()
  const provider = new RateLimitedProvider(fake)
  const timings = new Map<string, StoreTiming>()
  let profile: CpuProfile | undefined
  let hotSpots: Promise<HotSpots> | undefined
  let peakRss = 0
  const phases = new SweepPhases(options, provider, {
    calibrating: () => {
      log(`planning: store time ${describeTimings(timings, null)}`)
      timings.clear()
    },
    limited: (_phase, seconds) => {
      hotSpots = profile?.stop(path.join(options.profileDir!, 'sweep-unthrottled.cpuprofile'), ROOT)
      log(`calibration: store time ${describeTimings(timings, seconds)}`)
      timings.clear()
    }
  })
  const wrap = (store: EngineStore): EngineStore => {
    const counting = Object.assign(Object.create(store) as EngineStore, {
      complete: async (...args: Parameters<EngineStore['complete']>) => {
        const done = await store.complete(...args)
        if (done) phases.completed++
        return done
      }
    })
    return instrumentedStore(counting, {
      timings,
      beforeClaim: () => {
        if (phases.completed % 64 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss)
        phases.advance()
        return !phases.closed
      }
    })
  }
  const services = await createServices(config, {
    providers: { local: provider },
    engineSettings: { concurrency: options.concurrency },
    sleep: realSleep,
    wrapEngineStore: wrap
  })
  const sqlite = services.database.sqlite
  try {
    const seeding = performance.now()
    const { dueIds } = seedPopulation(sqlite, { due: options.users, pending: 0, untargeted: 0 }, new Date())
    log(`seeded ${options.users} due users in ${((performance.now() - seeding) / 1000).toFixed(1)} s; concurrency ${options.concurrency}`)

    const openJobsQuery = sqlite.prepare(`SELECT coalesce(sum(status = 'queued'), 0) AS queued, coalesce(sum(status = 'running'), 0) AS running,
      min(CASE status WHEN 'queued' THEN next_attempt_at END) AS nextQueuedAt FROM enforcement_jobs WHERE status IN ('queued', 'running')`)
    const openJobs = async (): Promise<OpenJobs> => openJobsQuery.get() as OpenJobs
    profile = options.profileDir === undefined ? undefined : await startCpuProfile()
    const started = performance.now()
    // With a provider that answers at once, this only gets to run while workers sleep on Retry-After.
    const progress = setInterval(() => { logProgress(phases, provider, started) }, 10_000)
    let totals: Totals
    try {
      totals = await sweepUntilDone(services.engine, openJobs, () => phases.closed)
    } finally {
      clearInterval(progress)
    }
    const ended = performance.now()
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
    const database = sqlite.prepare(`SELECT
        (SELECT count(*) FROM users WHERE enforced_at IS NOT NULL) AS enforcedAt,
        (SELECT count(*) FROM user_states WHERE state = 'enforced') AS enforcedState,
        (SELECT count(*) FROM enforcement_jobs WHERE status = 'failed') AS failedJobs`).get() as Outcome['database']
    return {
      phases,
      fake,
      provider,
      dueIds,
      totals,
      started,
      ended,
      timings,
      hotSpots: await hotSpots,
      remaining: sqlite.prepare("SELECT count(*) FROM enforcement_jobs WHERE status IN ('queued', 'running')").pluck().get() as number,
      database,
      claimQueryPlan: sqliteClaimQueryPlan(sqlite, services.engineStore),
      serverWarnings: await services.storage.advice(),
      peakRssMb: process.resourceUsage().maxRSS / 1024,
      peakSampledRssMb: peakRss / 2 ** 20
    }
  } finally {
    await services.close()
    rmSync(config.dataDir, { recursive: true, force: true })
  }
}

/** --instances processes, each with its own Services on one fresh PostgreSQL database, sharing this process's provider. */
async function sweepOnPostgres (options: Options): Promise<Outcome> {
  const database = await createBenchDatabase(options.backend.serverUrl!)
  log(`PostgreSQL database ${database.name} (created for this run, dropped at the end); ${options.instances} instances`)
  const secrets = benchSecrets()
  const config = benchConfig(undefined, { databaseUrl: database.url, secrets })
  const instances: ChildProcess[] = []
  let client: pg.Client | undefined
  try {
    // The project's migrator, as an instance starting on an empty database runs it; and what an instance warns of.
    const migrated = await createServices(config)
    const serverWarnings = await migrated.storage.advice()
    await migrated.close()
    for (const warning of serverWarnings) log(`the portal warns: ${warning}`)
    client = await connect(database.url)
    const seeding = performance.now()
    const { dueIds } = await seedPopulationPostgres(client, { due: options.users, pending: 0, untargeted: 0 }, new Date())
    log(`seeded ${options.users} due users in ${((performance.now() - seeding) / 1000).toFixed(1)} s; concurrency ${options.concurrency} per instance`)

    const fake = new FakeProvider()
    const provider = new RateLimitedProvider(fake)
    const broadcast = (message: ToInstance): void => { for (const child of instances) if (child.connected) child.send(message) }
    const phases = new SweepPhases(options, provider, {
      limited: (_phase, seconds) => { broadcast({ kind: 'phase', phase: 'throttled', calibrationSeconds: seconds }) },
      closed: () => { broadcast({ kind: 'close' }) }
    })
    const completedBy = Array.from({ length: options.instances }, () => 0)
    let ended = 0
    const reports = await Promise.all(Array.from({ length: options.instances }, async (_, i) => {
      const child = fork(INSTANCE, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 2, 2, 'ipc'] })
      instances.push(child)
      serveProvider(child, provider)
      const exited = new Promise<never>((_resolve, reject) => {
        child.once('exit', (code, signal) => { reject(new Error(`instance ${i + 1} exited (${signal ?? `code ${code}`}) before it reported`)) })
      })
      exited.catch(() => {})
      const message = <K extends FromInstance['kind']>(kind: K): Promise<Extract<FromInstance, { kind: K }>> => Promise.race([exited, new Promise<Extract<FromInstance, { kind: K }>>((resolve) => {
        child.on('message', (m: FromInstance) => { if (m.kind === kind) resolve(m as Extract<FromInstance, { kind: K }>) })
      })])
      child.on('message', (m: FromInstance) => {
        if (m.kind === 'claiming') phases.advance()
        else if (m.kind === 'completed') {
          phases.completed++
          completedBy[i]++
          phases.check()
        } else if (m.kind === 'swept') ended = Math.max(ended, performance.now())
      })
      const ready = message('ready')
      child.send({ kind: 'start', instance: i + 1, databaseUrl: database.url, secrets, concurrency: options.concurrency, profileDir: options.profileDir } satisfies StartMessage)
      await ready
      return { child, done: message('done') }
    }))
    const started = performance.now()
    broadcast({ kind: 'go' })
    // Claims close on time even while every call is being throttled and nothing completes.
    const clock = setInterval(() => { phases.check() }, 100)
    const progress = setInterval(() => { logProgress(phases, provider, started) }, 10_000)
    const waits = sampleWaits(client, database.name)
    let done: Array<Extract<FromInstance, { kind: 'done' }>>
    try {
      done = await Promise.all(reports.map((r) => r.done))
    } finally {
      clearInterval(clock)
      clearInterval(progress)
      await waits.stop()
    }
    log(`jobs completed per instance: ${completedBy.join(', ')}`)
    log(`the instances' busy connections, sampled every ${WAIT_SAMPLE_MS} ms: ${waits.describe()}`)
    const { rows: [counts] } = await client.query<Outcome['database']>(`SELECT
        (SELECT count(*)::int FROM users WHERE enforced_at IS NOT NULL) AS "enforcedAt",
        (SELECT count(*)::int FROM user_states WHERE state = 'enforced') AS "enforcedState",
        (SELECT count(*)::int FROM enforcement_jobs WHERE status = 'failed') AS "failedJobs"`)
    const { rows: [{ remaining }] } = await client.query<{ remaining: number }>("SELECT count(*)::int AS remaining FROM enforcement_jobs WHERE status IN ('queued', 'running')")
    return {
      phases,
      fake,
      provider,
      dueIds,
      totals: done.reduce((sum, d) => ({ sweeps: sum.sweeps + d.totals.sweeps, retried: sum.retried + d.totals.retried, failed: sum.failed + d.totals.failed }), { sweeps: 0, retried: 0, failed: 0 }),
      started,
      ended,
      timings: null,
      hotSpots: undefined,
      remaining,
      database: counts,
      claimQueryPlan: await postgresClaimQueryPlan(client, database.url),
      serverWarnings,
      peakRssMb: Math.max(...done.map((d) => d.peakRssMb)),
      peakSampledRssMb: Math.max(...done.map((d) => d.peakSampledRssMb))
    }
  } finally {
    for (const child of instances) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await client?.end()
    await database.drop()
    rmSync(config.dataDir, { recursive: true, force: true })
  }
}

function report (options: Options, outcome: Outcome): void {
  const { phases, fake, provider, dueIds, totals, remaining } = outcome
  const phase = phases.throttled
  if (phase === null) throw new Error(`the sweep finished during calibration; use more users than ${options.users}`)
  const throttledS = (outcome.ended - phase.at) / 1000
  const throttledDone = phases.completed - phase.completed
  const achievedRatio = throttledDone / throttledS / phases.rate
  const planningS = (phases.calibration!.at - outcome.started) / 1000
  log(`planning (refresh, plan, enqueue) took ${planningS.toFixed(1)} s`)
  log(`throttled: ${throttledDone} users in ${throttledS.toFixed(1)} s (${(throttledDone / throttledS).toFixed(0)}/s against ${phases.rate}/s), ` +
    `${totals.sweeps} sweeps, ${totals.retried} retries, ${totals.failed} failed, ${provider.throttled} throttled`)
  if (outcome.timings !== null) log(`throttled: store time ${describeTimings(outcome.timings, throttledS)}`)
  if (outcome.hotSpots !== undefined) printHotSpots(outcome.hotSpots)

  const enforced = dueIds.filter((id) => fake.isEnforced(id)).length
  const duplicated = dueIds.filter((id) => fake.changesFor(id) > 1).length
  const finished = remaining === 0
  const lost = finished ? dueIds.length - enforced : null
  // The portal's own record must agree with the provider's.
  const { database } = outcome
  if (database.enforcedAt !== enforced || database.enforcedState !== enforced || database.failedJobs !== totals.failed) {
    log(`WARNING the database disagrees with the provider: ${database.enforcedAt} users with enforced_at, ${database.enforcedState} in state 'enforced', ` +
      `${database.failedJobs} failed jobs; the provider enforced ${enforced}`)
  }
  if (achievedRatio < TARGET_RATIO && provider.throttled < throttledDone / 100) {
    log(`the limit hardly bound (${provider.throttled} throttled calls for ${throttledDone} users): the engine itself ran below ${phases.rate}/s, ` +
      'so the ratio measures the machine, not the engine\'s use of the allowance; on a busy machine give a lower rate')
  }
  const met = finished && achievedRatio >= TARGET_RATIO && lost === 0 && duplicated === 0
  if (!met) {
    log(`BELOW TARGET: achieved ratio ${achievedRatio.toFixed(3)} (target ${TARGET_RATIO}), ` +
      `${finished ? `lost ${lost}` : `unfinished: ${remaining} jobs still open after ${phases.maxMs / 1000} s`}, duplicated ${duplicated}`)
    if (outcome.serverWarnings.length > 0) log('the database server is one the portal warns its operator about (server_warnings, above): read the figure with that in mind')
  }

  process.stdout.write(`${JSON.stringify({
    bench: 'sweep',
    users: options.users,
    rate_limit: phases.rate,
    max_seconds: phases.maxMs / 1000,
    achieved_ratio: round(achievedRatio, 3),
    lost,
    duplicated,
    peak_rss_mb: Math.round(outcome.peakRssMb),
    unthrottled_per_s: Math.round(phases.unthrottledPerS),
    elapsed_s: round(throttledS, 1),
    met,
    target_ratio: TARGET_RATIO,
    finished,
    remaining_jobs: remaining,
    enforced,
    throttled_phase_users: throttledDone,
    calibration_users: phase.completed,
    planning_s: round(planningS, 1),
    total_s: round((outcome.ended - outcome.started) / 1000, 1),
    sweeps: totals.sweeps,
    retried: totals.retried,
    failed: totals.failed,
    throttled_calls: provider.throttled,
    // Calls that found the user already enforced: harmless (idempotent), but each spent a token.
    redundant_calls: fake.calls.filter((call) => call.op === 'enforce' && call.outcome === 'unchanged').length,
    peak_sampled_rss_mb: Math.round(outcome.peakSampledRssMb),
    concurrency: options.concurrency,
    claim_query_plan: outcome.claimQueryPlan,
    // What the portal warns its operator of about the server the figure comes from (PostgreSQL without autovacuum).
    server_warnings: outcome.serverWarnings,
    instances: options.instances,
    backend: options.backend.name,
    node: process.version
  })}\n`)
}

const WAIT_SAMPLE_MS = 250

/**
 * What the instances' connections are doing, from pg_stat_activity: waiting on a lock (which kind), waiting for the
 * instance's next statement inside a transaction, or running. Where the engine's time goes on PostgreSQL.
 */
function sampleWaits (client: pg.Client, databaseName: string): { stop(): Promise<void>, describe(): string } {
  const counts = new Map<string, number>()
  let samples = 0
  let pending: Promise<void> = Promise.resolve()
  const timer = setInterval(() => {
    pending = client.query<{ what: string, n: number }>(`SELECT CASE WHEN wait_event IS NULL THEN 'running' WHEN state = 'idle in transaction' THEN 'idle in transaction'
        ELSE wait_event_type || ':' || wait_event END AS what, count(*)::int AS n
      FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND state <> 'idle' GROUP BY 1`, [databaseName]).then(({ rows }) => {
      samples++
      for (const row of rows) counts.set(row.what, (counts.get(row.what) ?? 0) + row.n)
    }, () => {})
  }, WAIT_SAMPLE_MS)
  return {
    stop: async () => {
      clearInterval(timer)
      await pending
    },
    describe: () => samples === 0
      ? 'no samples'
      : [...counts.entries()].filter(([, n]) => n / samples >= 0.1).sort((a, b) => b[1] - a[1]).map(([what, n]) => `${what} ${(n / samples).toFixed(1)}`).join(', ') +
        ' (connections on average; rarer states left out)'
  }
}

function logProgress (phases: SweepPhases, provider: RateLimitedProvider, started: number): void {
  log(`${phases.throttled === null ? 'calibration' : 'throttled'}: ${((performance.now() - started) / 1000).toFixed(0)} s, ${phases.completed} done, ${provider.throttled} throttled`)
}

/** EXPLAIN QUERY PLAN of the store's claim query (read from the store, so it is the SQL that ran). */
function sqliteClaimQueryPlan (sqlite: Sqlite.Database, store: unknown): string[] {
  const statements = Reflect.get(store as object, 'statements') as Record<string, Sqlite.Statement> | undefined
  const claim = statements?.claimOne
  if (claim === undefined) return []
  return (sqlite.prepare(`EXPLAIN QUERY PLAN ${claim.source}`).all({ owner: 'x', leaseUntil: 0, now: 0 }) as Array<{ detail: string }>).map((row) => row.detail)
}

/**
 * EXPLAIN of the PostgreSQL store's claim statement, as the store sends it (captured from a claim at time 0, which
 * finds nothing ready and so changes nothing).
 */
async function postgresClaimQueryPlan (client: pg.Client, url: string): Promise<string[]> {
  const [claim] = await engineStatements(url, (store) => store.claim('bench-explain', 1, 60_000, new Date(0)))
  return claim === undefined ? [] : await explain(client, claim, 'COSTS OFF')
}

function wholeNumber (name: string, text: string, min: number): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min) throw new Error(`${name}: expected a whole number of at least ${min}, got "${text}"`)
  return value
}

function round (value: number, digits: number): number {
  return Number(value.toFixed(digits))
}
