import { fork } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createServices } from '../server/wiring.ts'
import { median } from './lib/figures.ts'
import type { PlanChildReport } from './lib/plan-child.ts'
import { chooseBackend, connect, createBenchDatabase, type BenchDatabase } from './lib/postgres.ts'
import { benchConfig, fixedClock, seedPopulation, seedPopulationPostgres, type Population } from './lib/seed.ts'

/**
 * The sweep's planner at scale: engine.planSummary() (exact counts plus the first 500 rows; see lib/plan-child.ts) over a database of `users` users, 10% of them due (deadline passed
 * in an armed campaign), 60% pending (deadline ahead, enforcement stored ahead) and 30% not targeted.
 * Seeded straight into the database, then each measurement runs in a fresh process on the closed and reopened
 * database (the OS and database server caches stay warm; the process, its SQLite cache or its connections, and its
 * JIT start cold), as `mfa-rollout sweep` from cron would. Targets: <= 200 ms on SQLite, <= 500 ms on PostgreSQL,
 * and <= 200 MB peak RSS.
 *
 *   npm run bench -- plan [users=1000000] [--runs 3] [--warm 1] [--keep] [--backend sqlite|postgresql]
 *
 * Without DATABASE_URL: a SQLite file in a temporary data directory. With DATABASE_URL (a server and maintenance
 * database, e.g. postgres://postgres@127.0.0.1:5432/postgres): a database the bench creates there (mfa_bench_…),
 * migrates through createServices, seeds in batches and VACUUM ANALYZEs (as autovacuum would have by then), and
 * drops at the end (see lib/postgres.ts).
 *
 * ms is the median of the cold plans (one per process); warm_ms the median of the later plans in those processes.
 * --keep leaves the data directory (SQLite) or the database (PostgreSQL) in place, its name logged, for EXPLAIN and
 * experiments.
 */
const CHILD = fileURLToPath(new URL('./lib/plan-child.ts', import.meta.url))
const TARGET_MS = { sqlite: 200, postgresql: 500 }
const TARGET_RSS_MB = 200
// A fixed instant: every process plans against the same due set.
const AT = new Date('2026-11-25T09:00:00Z')

function log (message: string): void {
  process.stderr.write(`${message}\n`)
}

/** On SQLite the data directory; on PostgreSQL the database, named to the child by its DATABASE_URL. */
type Seeded = { dataDir: string } | { databaseUrl: string }

async function planInChild (seeded: Seeded, warm: number, diagnose: boolean): Promise<PlanChildReport> {
  // The child's DATABASE_URL names the bench's database, or is unset on SQLite (the parent's names only the server).
  const env = { ...process.env }
  delete env.DATABASE_URL
  const child = fork(CHILD, ['dataDir' in seeded ? seeded.dataDir : '-', AT.toISOString(), String(warm), ...(diagnose ? ['diagnose'] : [])], {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 2, 2, 'ipc'],
    env: 'databaseUrl' in seeded ? { ...env, DATABASE_URL: seeded.databaseUrl } : env
  })
  const exited = once(child, 'exit')
  const [report] = await Promise.race([
    once(child, 'message') as Promise<[PlanChildReport]>,
    exited.then(([code]) => { throw new Error(`plan child exited with ${String(code)} before reporting`) })
  ])
  await exited
  return report
}

export async function main (args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { runs: { type: 'string', default: '3' }, warm: { type: 'string', default: '1' }, keep: { type: 'boolean', default: false }, backend: { type: 'string' } }
  })
  const backend = chooseBackend(values.backend)
  const targetMs = TARGET_MS[backend.name]
  const users = Number(positionals[0] ?? 1_000_000)
  const runs = Number(values.runs)
  const warm = Number(values.warm)
  if (!Number.isInteger(users) || users < 10) throw new Error(`users: expected a whole number of at least 10, got "${positionals[0]}"`)
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: expected a whole number of at least 1, got "${values.runs}"`)
  if (!Number.isInteger(warm) || warm < 0) throw new Error(`--warm: expected a whole number, got "${values.warm}"`)

  const due = Math.round(users * 0.1)
  const pending = Math.round(users * 0.6)
  const population = { due, pending, untargeted: users - due - pending }
  const config = benchConfig()
  let database: BenchDatabase | undefined
  try {
    let seeded: Seeded
    let started = performance.now()
    if (backend.name === 'postgresql') {
      database = await createBenchDatabase(backend.serverUrl!)
      log(`PostgreSQL database ${database.name} (created for this run, ${values.keep ? 'kept' : 'dropped'} at the end)`)
      seeded = { databaseUrl: database.url }
      await seedPostgres(database.url, population)
    } else {
      log(`data directory ${config.dataDir}`)
      seeded = { dataDir: config.dataDir }
      const services = await createServices(config, { clock: fixedClock(AT) })
      seedPopulation(services.database.sqlite, population, AT, (done) => log(`seeded ${done} users`))
      await services.close()
    }
    log(`seeded ${users} users (${due} due, ${population.pending} pending, ${population.untargeted} not targeted) in ${((performance.now() - started) / 1000).toFixed(1)} s`)

    const reports: PlanChildReport[] = []
    for (let i = 0; i < runs; i++) {
      started = performance.now()
      // The first process also explains and times planSummary's statements alone (after its plans, so they stay cold).
      const report = await planInChild(seeded, warm, i === 0)
      if (report.items !== due) throw new Error(`plan found ${report.items} due users, expected ${due}`)
      log(`run ${i + 1}/${runs}: cold ${report.coldMs.toFixed(0)} ms (CPU ${report.coldCpuMs.toFixed(0)} ms), warm ${report.warmMs.map((ms) => ms.toFixed(0)).join(', ') || '-'} ms; ` +
        `${report.queryOnlyMs === null ? '' : `its statements alone ${report.queryOnlyMs.toFixed(0)} ms; `}RSS ${report.baselineRssMb.toFixed(0)} MB before planning, peak ${report.peakRssMb.toFixed(0)} MB; ` +
        `the summary holds ${report.planHeapMb.toFixed(1)} MB of heap` +
        `${report.streamAllMs === null ? '' : `; streaming all ${report.items} rows ${report.streamAllMs.toFixed(0)} ms, enqueueing them ${report.enqueueMs?.toFixed(0)} ms`}`)
      reports.push(report)
    }
    const queryPlan = reports[0].queryPlan
    log(`planSummary's statements, their plans:\n  ${queryPlan.join('\n  ')}`)

    const ms = median(reports.map((r) => r.coldMs))
    const peakRss = Math.max(...reports.map((r) => r.peakRssMb))
    const warmAll = reports.flatMap((r) => r.warmMs)
    const met = { ms: ms <= targetMs, peak_rss_mb: peakRss <= TARGET_RSS_MB }
    if (!met.ms || !met.peak_rss_mb) log(`BELOW TARGET: ${!met.ms ? `plan ${ms.toFixed(0)} ms > ${targetMs} ms` : ''}${!met.ms && !met.peak_rss_mb ? '; ' : ''}${!met.peak_rss_mb ? `peak RSS ${peakRss.toFixed(0)} MB > ${TARGET_RSS_MB} MB` : ''}`)
    process.stdout.write(`${JSON.stringify({
      bench: 'plan',
      users,
      due,
      ms: Math.round(ms),
      peak_rss_mb: Math.round(peakRss),
      target_ms: targetMs,
      target_peak_rss_mb: TARGET_RSS_MB,
      met: met.ms && met.peak_rss_mb,
      ms_met: met.ms,
      peak_rss_met: met.peak_rss_mb,
      cpu_ms: Math.round(median(reports.map((r) => r.coldCpuMs))),
      warm_ms: warmAll.length === 0 ? null : Math.round(median(warmAll)),
      query_only_ms: reports[0].queryOnlyMs === null ? null : Math.round(reports[0].queryOnlyMs),
      stream_all_ms: reports[0].streamAllMs === null ? null : Math.round(reports[0].streamAllMs),
      enqueue_all_ms: reports[0].enqueueMs === null ? null : Math.round(reports[0].enqueueMs),
      baseline_rss_mb: Math.round(median(reports.map((r) => r.baselineRssMb))),
      plan_heap_mb: Math.round(median(reports.map((r) => r.planHeapMb))),
      cold_runs_ms: reports.map((r) => Math.round(r.coldMs)),
      query_plan: queryPlan,
      backend: backend.name,
      node: process.version
    })}\n`)
  } finally {
    if (values.keep) log(`kept ${database === undefined ? config.dataDir : `database ${database.name} on DATABASE_URL's server`}`)
    else await database?.drop()
    if (!values.keep || database !== undefined) rmSync(config.dataDir, { recursive: true, force: true })
  }
}

/** Migrates the new database through createServices (the project's migrator) and seeds it. */
async function seedPostgres (url: string, population: Population): Promise<void> {
  await (await createServices(benchConfig(undefined, { databaseUrl: url }), { clock: fixedClock(AT) })).close()
  const client = await connect(url)
  try {
    await seedPopulationPostgres(client, population, AT, (done) => { log(`seeded ${done} users`) })
  } finally {
    await client.end()
  }
}
