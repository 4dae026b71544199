import type Sqlite from 'better-sqlite3'
import { createServices } from '../../server/wiring.ts'
import { benchConfig, fixedClock } from './seed.ts'

/**
 * One cold plan for bench/plan.ts, in a fresh process so neither the seeding's memory nor a warm SQLite cache
 * counts: opens the seeded data directory through createServices, times the planner once cold and then
 * `warmRuns` more times, and reports over IPC. The process's peak RSS is then planning's peak (plus start-up).
 *
 * "The planner" is what the sweep and the admin pages run: engine.planSummary() — exact counts by action and
 * campaign from the (desired, deadline) index plus the first 500 rows with reasons. The sweep then writes the
 * jobs inside SQLite (one INSERT … SELECT) and the CLI streams the full list; both are timed too.
 *
 *   node --import tsx --expose-gc bench/lib/plan-child.ts <dataDir> <ISO instant> <warmRuns> [diagnose]
 *
 * With `diagnose`, also EXPLAIN QUERY PLAN and time the due query on its own, time streaming every plan row,
 * and (last, since it writes) time the sweep's enqueue of every due user.
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
  /** With `diagnose`: the due query alone, all rows in one go, not mapped to PlanItems (SQLite and row objects). */
  queryOnlyMs: number | null
  /** With `diagnose`: EXPLAIN QUERY PLAN of the due query as the store prepared it. */
  queryPlan: string[]
  /** With `diagnose`: every plan row with its reason, streamed and counted (what `sweep --dry-run` prints). */
  streamAllMs: number | null
  /** With `diagnose`: the sweep's INSERT … SELECT of a job for every due user, into an empty jobs table. */
  enqueueMs: number | null
}

const [dataDir, atText, warmText, diagnose] = process.argv.slice(2)
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {})

const services = await createServices(benchConfig(dataDir), { clock: fixedClock(new Date(atText)) })
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

// The peak so far is planning's: the diagnostics below materialise every due row at once and would raise it.
const peakRssMb = process.resourceUsage().maxRSS / 1024
const due = diagnose === 'diagnose' ? dueStatement(services.engineStore) : undefined
// Named parameters the statement does not use are ignored: these fit the store's due query, paged or not.
const parameters = { now: new Date(atText).getTime(), cursor: '', limit: -1 }
const queryPlan = due === undefined ? [] : (services.database.sqlite.prepare(`EXPLAIN QUERY PLAN ${due.source}`).all(parameters) as Array<{ detail: string }>).map((row) => row.detail)
let queryOnlyMs: number | null = null
if (due !== undefined) {
  start = performance.now()
  due.all(parameters)
  queryOnlyMs = performance.now() - start
}
let streamAllMs: number | null = null
let enqueueMs: number | null = null
if (diagnose === 'diagnose') {
  start = performance.now()
  let streamed = 0
  for await (const _item of services.engine.planItems()) streamed++
  streamAllMs = performance.now() - start
  if (streamed !== items) throw new Error(`streamed ${streamed} plan rows, the summary counted ${items}`)
  services.database.sqlite.prepare('DELETE FROM enforcement_jobs').run()
  start = performance.now()
  const enqueued = await services.engineStore.enqueueDue(new Date(atText))
  enqueueMs = performance.now() - start
  if (enqueued !== items) throw new Error(`enqueued ${enqueued} jobs for ${items} due users`)
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
// Disconnecting lets the process end once the report is out.
process.send!(report, () => { process.disconnect() })

/**
 * The store's prepared due query, read from the store object so the plan and timing shown are of the SQL that ran
 * (server/db/engine.ts keeps its statements private; a diagnostic reach, not an API).
 */
function dueStatement (store: unknown): Sqlite.Statement | undefined {
  const statements = Reflect.get(store as object, 'statements') as Record<string, Sqlite.Statement> | undefined
  return statements?.due ?? statements?.dueFirst
}
