/**
 * One sweep in its own process, for crash-safety tests: the same refresh-then-sweep the scheduler runs, on the
 * given data directory, against a fake provider that persists what it saw there. At the chosen point it kills
 * itself with SIGKILL (no cleanup, no finally blocks), as a crash or `kill -9` would.
 *
 *   node --import tsx test/fakes/sweep-child.ts <dataDir> <killPoint> --at <ISO instant> [--nth N] [--lease-ms MS]
 *
 * Kill points, each on the Nth time it is reached:
 *   before-claim         the store is asked for a job; nothing claimed yet
 *   after-claim          a job is claimed (leased) and nothing else done
 *   after-provider-call  the provider flipped a user (and persisted it) but the engine has not heard back
 *   before-commit        the engine records the flip; the job is not marked done yet
 *   after-commit         the job's outcome is committed; the user's state not yet re-derived
 *   none                 run to the end and print the sweep's report as JSON
 * Configuration (secrets) comes from the environment, as for the real process.
 */
import { parseArgs } from 'node:util'
import { loadConfig } from '../../server/config.ts'
import type { EngineStore } from '../../server/domain/engine.ts'
import { createServices } from '../../server/wiring.ts'
import { FakeProvider } from './provider.ts'

const KILL_POINTS = ['before-claim', 'after-claim', 'after-provider-call', 'before-commit', 'after-commit'] as const
export type KillPoint = typeof KILL_POINTS[number] | 'none'

function crash (): never {
  process.kill(process.pid, 'SIGKILL')
  throw new Error('unreachable: SIGKILL was sent')
}

/**
 * The store, killing the process at `point`. "after-commit" means after the job's outcome is durable: when the
 * engine records it inside a transaction (the store's `atomically`), that is once the transaction has committed.
 */
function killingStore (store: EngineStore, point: KillPoint, nth: number, inTransaction: () => boolean): EngineStore {
  let claims = 0
  let completes = 0
  let crashOnCommit = false
  const overrides: Partial<EngineStore> = {
    async claim (owner, limit, leaseMs, now) {
      if (point === 'before-claim' && ++claims === nth) crash()
      const jobs = await store.claim(owner, limit, leaseMs, now)
      if (point === 'after-claim' && jobs.length > 0 && ++claims === nth) crash()
      return jobs
    },
    async complete (jobId, owner, now) {
      if (point === 'before-commit' && ++completes === nth) crash()
      const done = await store.complete(jobId, owner, now)
      if (point === 'after-commit' && ++completes === nth) {
        if (inTransaction()) crashOnCommit = true
        else crash()
      }
      return done
    }
  }
  return new Proxy(store, {
    get (target, key) {
      const replaced = (overrides as Record<PropertyKey, unknown>)[key]
      if (replaced !== undefined) return replaced
      const value = Reflect.get(target, key) as unknown
      if (typeof value !== 'function') return value
      if (key !== 'atomically') return value.bind(target)
      return async (work: () => Promise<unknown>) => {
        const result = await (value as (work: () => Promise<unknown>) => Promise<unknown>).call(target, work)
        if (crashOnCommit && !inTransaction()) crash()
        return result
      }
    }
  })
}

async function main (): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { at: { type: 'string' }, nth: { type: 'string', default: '5' }, 'lease-ms': { type: 'string', default: '30000' } }
  })
  const [dataDir, point = 'none'] = positionals as [string, KillPoint | undefined]
  if (dataDir === undefined || values.at === undefined) throw new Error('usage: sweep-child.ts <dataDir> <killPoint> --at <ISO instant> [--nth N] [--lease-ms MS]')
  if (point !== 'none' && !(KILL_POINTS as readonly string[]).includes(point)) throw new Error(`unknown kill point "${point}"`)
  const now = new Date(values.at)
  const nth = Number(values.nth)

  // A fixed instant: the parent decides when this run happens relative to the last one's leases.
  const fake = new FakeProvider({ now: () => now, persistDir: dataDir })
  let flips = 0
  if (point === 'after-provider-call') fake.onCall((call) => { if (call.changed && ++flips === nth) crash() })

  let inTransaction = (): boolean => false
  const services = await createServices(loadConfig({ ...process.env, DATA_DIR: dataDir }), {
    clock: { now: () => now },
    providers: { local: fake },
    engineSettings: { concurrency: 4, leaseMs: Number(values['lease-ms']) },
    sleep: async () => {},
    wrapEngineStore: (store) => killingStore(store, point, nth, () => inTransaction())
  })
  inTransaction = () => services.database.sqlite.inTransaction
  await services.engine.refreshAll()
  const report = await services.engine.sweep()
  await services.close()
  process.stdout.write(`${JSON.stringify({ planned: report.planned, enqueued: report.enqueued, completed: report.completed, retried: report.retried, failed: report.failed })}\n`)
}

await main()
