import { rmSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import type { EngineStore } from '../../server/domain/engine.ts'
import { createServices } from '../../server/wiring.ts'
import { FakeProvider } from '../../test/fakes/provider.ts'
import { startCpuProfile, type CpuProfile, type HotSpots } from './cpu-profile.ts'
import { instrumentedStore, type StoreTiming } from './instrumented-store.ts'
import { benchConfig, type BenchSecrets } from './seed.ts'
import { RemoteProvider } from './shared-provider.ts'
import { describeTimings, log, printHotSpots, realSleep, sweepUntilDone, type OpenJobs, type Totals } from './sweep-phases.ts'

/**
 * One portal instance for bench/sweep.ts on PostgreSQL: its own Services (createServices) on the shared database,
 * the shared provider reached through the parent (lib/shared-provider.ts), and engine.sweep() until no job is left,
 * started together with the other instances. The parent owns the phases (and the token bucket); this process tells
 * it when it first claims and each job it completes, and stops claiming when told to close.
 *
 *   forked by bench/sweep.ts: node --import tsx bench/lib/sweep-instance.ts (then the messages below)
 */
export interface StartMessage {
  kind: 'start'
  instance: number
  databaseUrl: string
  secrets: BenchSecrets
  concurrency: number
  /** Profile planning and calibration into this directory. */
  profileDir?: string
}

export type ToInstance = StartMessage | { kind: 'go' } | { kind: 'phase', phase: 'throttled', calibrationSeconds: number } | { kind: 'close' }

export type FromInstance =
  | { kind: 'ready' }
  | { kind: 'claiming' }
  | { kind: 'completed' }
  /** Sweeping is over (claims found nothing left); the process is now closing down. */
  | { kind: 'swept' }
  | { kind: 'done', totals: Totals, peakRssMb: number, peakSampledRssMb: number, completed: number }

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

function send (message: FromInstance): void {
  process.send!(message)
}

function next<T extends ToInstance['kind']> (kind: T): Promise<Extract<ToInstance, { kind: T }>> {
  return new Promise((resolve) => {
    const listener = (message: ToInstance): void => {
      if (message.kind !== kind) return
      process.off('message', listener)
      resolve(message as Extract<ToInstance, { kind: T }>)
    }
    process.on('message', listener)
  })
}

const start = await next('start')
const label = `instance ${start.instance}`
const timings = new Map<string, StoreTiming>()
let claimed = false
let closed = false
let completed = 0
let peakRss = 0
let phaseStarted = performance.now()
let profile: CpuProfile | undefined
let hotSpots: Promise<HotSpots> | undefined

process.on('message', (message: ToInstance) => {
  if (message.kind === 'close') closed = true
  if (message.kind === 'phase') {
    log(`${label} calibration: store time ${describeTimings(timings, message.calibrationSeconds)}`)
    timings.clear()
    phaseStarted = performance.now()
    hotSpots = profile?.stop(path.join(start.profileDir!, `sweep-unthrottled-${start.instance}.cpuprofile`), ROOT)
    profile = undefined
  }
})

function wrap (store: EngineStore): EngineStore {
  const counting = Object.assign(Object.create(store) as EngineStore, {
    complete: async (...args: Parameters<EngineStore['complete']>) => {
      const done = await store.complete(...args)
      if (done) {
        completed++
        send({ kind: 'completed' })
      }
      return done
    }
  })
  return instrumentedStore(counting, {
    timings,
    beforeClaim: () => {
      if (completed % 64 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss)
      if (!claimed) {
        claimed = true
        send({ kind: 'claiming' })
        log(`${label} planning: store time ${describeTimings(timings, null)}`)
        timings.clear()
      }
      return !closed
    }
  })
}

// Its data directory holds nothing on PostgreSQL; it is removed at the end.
const config = benchConfig(undefined, { databaseUrl: start.databaseUrl, secrets: start.secrets })
const services = await createServices(config, {
  providers: { local: new RemoteProvider('local', new FakeProvider().capabilities) },
  engineSettings: { concurrency: start.concurrency },
  sleep: realSleep,
  wrapEngineStore: wrap
})
const client = new pg.Client({ connectionString: start.databaseUrl, application_name: `mfa-rollout bench ${label}` })
await client.connect()
const openJobs = async (): Promise<OpenJobs> => {
  const { rows: [row] } = await client.query<{ queued: number, running: number, next: string | null }>(`SELECT count(*) FILTER (WHERE status = 'queued')::int AS queued,
      count(*) FILTER (WHERE status = 'running')::int AS running, min(next_attempt_at) FILTER (WHERE status = 'queued') AS next
    FROM enforcement_jobs WHERE status IN ('queued', 'running')`)
  return { queued: row.queued, running: row.running, nextQueuedAt: row.next === null ? null : Number(row.next) }
}

send({ kind: 'ready' })
await next('go')
profile = start.profileDir === undefined ? undefined : await startCpuProfile()
let totals: Totals
try {
  totals = await sweepUntilDone(services.engine, openJobs, () => closed)
} finally {
  await client.end()
}
send({ kind: 'swept' })
const seconds = (performance.now() - phaseStarted) / 1000
log(`${label}: ${completed} jobs completed, ${totals.sweeps} sweeps, ${totals.retried} retries, ${totals.failed} failed; ` +
  `throttled store time ${describeTimings(timings, seconds)}`)
const spots = await (hotSpots ?? profile?.stop(path.join(start.profileDir!, `sweep-${start.instance}.cpuprofile`), ROOT))
if (spots !== undefined) printHotSpots(spots, `${label} `)
peakRss = Math.max(peakRss, process.memoryUsage().rss)
await services.close()
rmSync(config.dataDir, { recursive: true, force: true })
// Disconnecting lets the process end once the report is out.
process.send!({ kind: 'done', totals, peakRssMb: process.resourceUsage().maxRSS / 1024, peakSampledRssMb: peakRss / 2 ** 20, completed } satisfies FromInstance, () => { process.disconnect() })
