import { rmSync } from 'node:fs'
import type Sqlite from 'better-sqlite3'
import type pg from 'pg'
import { createServices, type Services } from '../../server/wiring.ts'
import { connect, engineStatements, explain, type Statement } from './postgres.ts'
import { benchConfig, fixedClock } from './seed.ts'

/**
 * One cold plan for bench/plan.ts, in a fresh process so neither the seeding's memory nor a warm database cache
 * in the process counts: opens the seeded database through createServices (the SQLite file in `dataDir`, or the
 * PostgreSQL database named by this process's DATABASE_URL), times the planner once cold and then `warmRuns` more
 * times, and reports over IPC. The process's peak RSS is then planning's peak (plus start-up).
 *
 * "The planner" is what the sweep and the admin pages run: engine.planSummary() — exact counts by action and
 * campaign from the (desired, deadline) index plus the first 500 rows with reasons. The sweep then writes the
 * jobs inside the database (one INSERT … SELECT) and the CLI streams the full list; both are timed too.
 *
 *   node --import tsx --expose-gc bench/lib/plan-child.ts <dataDir> <ISO instant> <warmRuns> [diagnose]
 *     (on PostgreSQL: DATABASE_URL=postgres://…/database in the environment, and `-` as dataDir)
 *
 * With `diagnose`, also explain and time the statements planSummary sends (the counts and the first batch of due
 * rows), time streaming every plan row, and (last, since it writes) time the sweep's enqueue of every due user.
 */
export interface PlanChildReport {
  items: number
  coldMs: number
  /** CPU time (user + system) of the cold plan: steadier than wall time when other processes share the machine. */
  coldCpuMs: number
  warmMs: number[]
  /** RSS once the services are built, before planning. */
  baselineRssMb: number
  /** The process's peak RSS (getrusage maxrss) once the plans are done, before any diagnostics. */
  peakRssMb: number
  /** JS heap held by the returned summary (heap used with it alive minus after it is collected). */
  planHeapMb: number
  /** With `diagnose`: the statements planSummary sends (counts, first batch of due rows), run on their own. */
  queryOnlyMs: number | null
  /** With `diagnose`: their plans (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE with buffers). */
  queryPlan: string[]
  /** With `diagnose`: every plan row with its reason, streamed and counted (what `sweep --dry-run` prints). */
  streamAllMs: number | null
  /** With `diagnose`: the sweep's INSERT … SELECT of a job for every due user, into an empty jobs table. */
  enqueueMs: number | null
}

/** The diagnostics' reach into one backend. */
interface Diagnostics {
  /** The plans of planSummary's statements, one line each (a blank line between statements). */
  queryPlan(): Promise<string[]>
  /** Runs planSummary's statements on their own; answers the milliseconds. */
  queryOnly(): Promise<number>
  clearJobs(): Promise<void>
  close(): Promise<void>
}

const [dataDirArg, atText, warmText, diagnose] = process.argv.slice(2)
const at = new Date(atText)
const databaseUrl = process.env.DATABASE_URL === undefined || process.env.DATABASE_URL === '' ? undefined : process.env.DATABASE_URL
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const config = databaseUrl === undefined ? benchConfig(dataDirArg) : benchConfig(undefined, { databaseUrl })
const services = await createServices(config, { clock: fixedClock(at) })
gc()
const baselineRss = process.memoryUsage().rss
const heapBefore = process.memoryUsage().heapUsed

let start = performance.now()
const cpuBefore = process.cpuUsage()
let planned: unknown | null = await services.engine.planSummary()
const coldMs = performance.now() - start
const cpu = process.cpuUsage(cpuBefore)
const items = (planned as { total: number }).total
const heapWith = process.memoryUsage().heapUsed
planned = null
gc()
const planHeap = heapWith - heapBefore

const warmMs: number[] = []
for (let i = 0; i < Number(warmText); i++) {
  start = performance.now()
  await services.engine.planSummary()
  warmMs.push(performance.now() - start)
}

// The peak so far is planning's: the diagnostics below read every due row and would raise it.
const peakRssMb = process.resourceUsage().maxRSS / 1024
let queryPlan: string[] = []
let queryOnlyMs: number | null = null
let streamAllMs: number | null = null
let enqueueMs: number | null = null
if (diagnose === 'diagnose') {
  const diagnostics = databaseUrl === undefined ? sqliteDiagnostics(services) : await postgresDiagnostics(databaseUrl)
  try {
    queryPlan = await diagnostics.queryPlan()
    queryOnlyMs = await diagnostics.queryOnly()
    start = performance.now()
    let streamed = 0
    for await (const _item of services.engine.planItems()) streamed++
    streamAllMs = performance.now() - start
    if (streamed !== items) throw new Error(`streamed ${streamed} plan rows, the summary counted ${items}`)
    await diagnostics.clearJobs()
    start = performance.now()
    const enqueued = await services.engineStore.enqueueDue(at)
    enqueueMs = performance.now() - start
    if (enqueued !== items) throw new Error(`enqueued ${enqueued} jobs for ${items} due users`)
  } finally {
    await diagnostics.close()
  }
}

const report: PlanChildReport = {
  items,
  coldMs,
  coldCpuMs: (cpu.user + cpu.system) / 1000,
  warmMs,
  baselineRssMb: baselineRss / 2 ** 20,
  peakRssMb,
  planHeapMb: planHeap / 2 ** 20,
  queryOnlyMs,
  queryPlan,
  streamAllMs,
  enqueueMs
}
await services.close()
// On PostgreSQL the data directory is only the config's: the database is the parent's to drop.
if (databaseUrl !== undefined) rmSync(config.dataDir, { recursive: true, force: true })
// Disconnecting lets the process end once the report is out.
process.send!(report, () => { process.disconnect() })

/**
 * The store's prepared statements, read from the store object so the plans and timings shown are of the SQL that
 * runs (server/db/engine.ts keeps its statements private; a diagnostic reach, not an API).
 */
function sqliteDiagnostics (services: Services): Diagnostics {
  const statements = Reflect.get(services.engineStore as object, 'statements') as Record<string, Sqlite.Statement> | undefined
  // planSummary's statements with the parameters it sends: the counts, then the first batch of each due range.
  const sent: Array<[string, Record<string, unknown>]> = [
    ['dueCounts', { now: at.getTime() }],
    ['dueRelax', { after: '', limit: 500 }],
    ['dueEnforce', { now: at.getTime(), deadline: Number.MIN_SAFE_INTEGER, after: '', limit: 500 }]
  ]
  const runs = sent.map(([name, parameters]) => {
    const statement = statements?.[name]
    if (statement === undefined) throw new Error(`the SQLite engine store no longer has the statement ${name}: update bench/lib/plan-child.ts`)
    return { statement, parameters }
  })
  const sqlite = services.database.sqlite
  return {
    queryPlan: async () => runs.flatMap(({ statement, parameters }, i) => [
      ...(i > 0 ? [''] : []),
      ...(sqlite.prepare(`EXPLAIN QUERY PLAN ${statement.source}`).all(parameters) as Array<{ detail: string }>).map((row) => row.detail)
    ]),
    queryOnly: async () => {
      const begun = performance.now()
      for (const { statement, parameters } of runs) statement.all(parameters)
      return performance.now() - begun
    },
    clearJobs: async () => { sqlite.prepare('DELETE FROM enforcement_jobs').run() },
    close: async () => {}
  }
}

/** planSummary's statements as the PostgreSQL store sends them (captured from its query log), explained and run on their own. */
async function postgresDiagnostics (url: string): Promise<Diagnostics> {
  const statements: Statement[] = await engineStatements(url, async (store) => {
    await store.dueCounts(at)
    for await (const _row of store.due(at)) break
  })
  const client: pg.Client = await connect(url)
  return {
    queryPlan: async () => {
      const lines: string[] = []
      for (const statement of statements) lines.push(...(lines.length > 0 ? [''] : []), ...await explain(client, statement, 'ANALYZE, BUFFERS'))
      return lines
    },
    queryOnly: async () => {
      const begun = performance.now()
      for (const statement of statements) await client.query(statement.sql, statement.params)
      return performance.now() - begun
    },
    clearJobs: async () => { await client.query('DELETE FROM enforcement_jobs') },
    close: async () => { await client.end() }
  }
}
