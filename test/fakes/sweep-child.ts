/**
 * One sweep in its own process, for crash-safety tests: the same refresh-then-sweep the scheduler runs, on the
 * given data directory, against a fake provider that persists what it saw there. At the chosen point it kills
 * itself with SIGKILL (no cleanup, no finally blocks), as a crash or `kill -9` would.
 *
 *   node --import tsx test/fakes/sweep-child.ts <dataDir> <killPoint> --at <ISO instant> [--nth N] [--lease-ms MS]
 *     [--provider fake|portal] [--no-refresh-all]
 *
 * Kill points, each on the Nth time it is reached:
 *   before-claim         the store is asked for a job; nothing claimed yet
 *   after-claim          a job is claimed (leased) and nothing else done
 *   after-provider-call  the provider flipped a user (and persisted it) but the engine has not heard back
 *   before-commit        the engine records the flip; the job is not marked done yet
 *   after-commit         the job's outcome is committed; the user's state not yet re-derived
 *   none                 run to the end and print the sweep's report as JSON
 * --provider portal keeps the portal's own 'local' provider (its switch is the users table, so several children share
 * it); the default is a FakeProvider persisting in <dataDir>. --no-refresh-all leaves state derivation to the
 * sweep itself (only lapsed and unassessed users), as the scheduler does.
 * Configuration (secrets, DATABASE_URL for PostgreSQL) comes from the environment, as for the real process; with
 * DATABASE_URL several children can sweep one database at once, each with its fake in its own data directory.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
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
 * engine records it inside a transaction (the store's `atomically`), that is once the outermost one has committed.
 */
function killingStore (store: EngineStore, point: KillPoint, nth: number): EngineStore {
  let claims = 0
  let completes = 0
  // The transaction a call runs in, on either database (this store's own `atomically`), and whether to die once
  // that transaction has committed: concurrent jobs' transactions overlap on PostgreSQL.
  const transaction = new AsyncLocalStorage<{ crashOnCommit: boolean }>()
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
        const inside = transaction.getStore()
        if (inside !== undefined) inside.crashOnCommit = true
        else crash()
      }
      return done
    },
    async atomically (work) {
      if (transaction.getStore() !== undefined) return await store.atomically(work)
      const outermost = { crashOnCommit: false }
      const result = await transaction.run(outermost, async () => await store.atomically(work))
      if (outermost.crashOnCommit) crash()
      return result
    }
  }
  return new Proxy(store, {
    get (target, key) {
      const replaced = (overrides as Record<PropertyKey, unknown>)[key]
      if (replaced !== undefined) return replaced
      const value = Reflect.get(target, key) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

async function main (): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      at: { type: 'string' },
      nth: { type: 'string', default: '5' },
      'lease-ms': { type: 'string', default: '30000' },
      provider: { type: 'string', default: 'fake' },
      'no-refresh-all': { type: 'boolean', default: false }
    }
  })
  const [dataDir, point = 'none'] = positionals as [string, KillPoint | undefined]
  if (dataDir === undefined || values.at === undefined) throw new Error('usage: sweep-child.ts <dataDir> <killPoint> --at <ISO instant> [--nth N] [--lease-ms MS] [--provider fake|portal] [--no-refresh-all]')
  if (point !== 'none' && !(KILL_POINTS as readonly string[]).includes(point)) throw new Error(`unknown kill point "${point}"`)
  if (values.provider !== 'fake' && values.provider !== 'portal') throw new Error(`unknown provider "${values.provider}": fake or portal`)
  if (values.provider === 'portal' && point === 'after-provider-call') throw new Error('after-provider-call needs the fake provider')
  const now = new Date(values.at)
  const nth = Number(values.nth)

  // A fixed instant: the parent decides when this run happens relative to the last one's leases.
  const fake = new FakeProvider({ now: () => now, persistDir: dataDir })
  let flips = 0
  if (point === 'after-provider-call') fake.onCall((call) => { if (call.changed && ++flips === nth) crash() })

  const services = await createServices(loadConfig({ ...process.env, DATA_DIR: dataDir }), {
    clock: { now: () => now },
    ...(values.provider === 'portal' ? {} : { providers: { local: fake } }),
    engineSettings: { concurrency: 4, leaseMs: Number(values['lease-ms']) },
    sleep: async () => {},
    wrapEngineStore: (store) => killingStore(store, point, nth)
  })
  if (values['no-refresh-all'] !== true) await services.engine.refreshAll()
  const report = await services.engine.sweep()
  await services.close()
  process.stdout.write(`${JSON.stringify({ planned: report.planned, enqueued: report.enqueued, completed: report.completed, retried: report.retried, failed: report.failed })}\n`)
}

await main()
