import { parseArgs } from 'node:util'
import type { ProviderSubject } from '../server/domain/provider.ts'
import { loadEntraConfig } from '../server/providers/entra/config.ts'
import { EntraProvider } from '../server/providers/entra/provider.ts'
import { fakeEnv } from '../test/fakes/graph/harness.ts'
import { startFakeEntra, type FakeEntra } from '../test/fakes/graph/server.ts'

/**
 * The Entra adapter against the wire-level fake: a full sync, then enforcement of every user through $batch.
 *
 *   npm run bench -- entra [users=100000] [--rate N] [--concurrency 8] [--calibrate-seconds 5] [--max-seconds 60]
 *
 * Enforcement runs in two phases on one population:
 *  1. calibration, no limit, for --calibrate-seconds: the adapter's own request rate (batch items per second).
 *  2. throttled: the fake admits at most `rate` requests per second (each batch item counts; beyond it an item gets
 *     429 with Retry-After in whole seconds, as Graph sends it). Unless given, rate = 70% of the calibrated rate, so
 *     the limit binds rather than the CPU. enforce_achieved_ratio = requests the fake admitted in this phase / its
 *     most it could have admitted (rate × seconds, plus the one second's burst the bucket starts with): how well
 *     the adapter keeps the allowance used while honouring Retry-After.
 * Also counted: users not enforced at the end (lost) and users whose requirement was PATCHed more than once
 * (duplicated); both should be 0. The throttled phase stops after --max-seconds and is then reported unfinished.
 */
const RATE_SHARE = 0.7
const CHUNK = 2000

function log (message: string): void {
  process.stderr.write(`${message}\n`)
}

interface Options { users: number, rate: number | null, concurrency: number, calibrateMs: number, maxMs: number }

function options (args: string[]): Options {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      rate: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
      'calibrate-seconds': { type: 'string', default: '3' },
      'max-seconds': { type: 'string', default: '60' }
    }
  })
  return {
    users: Number(positionals[0] ?? 100_000),
    rate: values.rate === undefined ? null : Number(values.rate),
    concurrency: Number(values.concurrency),
    calibrateMs: Number(values['calibrate-seconds']) * 1000,
    maxMs: Number(values['max-seconds']) * 1000
  }
}

function populate (fake: FakeEntra, users: number): void {
  for (let i = 0; i < users; i++) {
    const user = fake.tenant.addUser({ ext: { extensionAttribute15: `+1 206 555 ${String(i % 10_000).padStart(4, '0')}` }, accountEnabled: i % 50 !== 0 })
    if (i % 3 === 0) fake.tenant.addMethod(user, 'microsoftAuthenticator')
    if (i % 1000 === 0) fake.tenant.assignRole(user.id, '62e90394-69f5-4237-9190-012177145e10')
  }
}

export async function main (args: string[]): Promise<void> {
  const opts = options(args)
  const fake = await startFakeEntra({ logCalls: false })
  try {
    populate(fake, opts.users)
    const config = loadEntraConfig(fakeEnv(fake, { ENTRA_CONCURRENCY: String(opts.concurrency) }))!
    const provider = new EntraProvider(config, { graph: { retryDelaySeconds: 1 } })

    log(`sync: ${opts.users} users`)
    let t = performance.now()
    const subjects: ProviderSubject[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page = await provider.listUsers(cursor)
      for (const u of page.users) subjects.push({ userId: u.externalId, externalId: u.externalId, email: u.email, enrolled: (u.methods ?? []).length > 0 })
      cursor = page.next
      pages++
    } while (cursor !== null)
    const syncS = (performance.now() - t) / 1000
    log(`sync: ${subjects.length} users in ${pages} pages, ${syncS.toFixed(1)} s`)

    let next = 0
    let failures = 0
    const enforceChunk = async (): Promise<void> => {
      const chunk = subjects.slice(next, next + CHUNK)
      next += chunk.length
      const results = await provider.enforceMany(chunk)
      failures += results.filter((r) => 'error' in r).length
    }

    // Phase 1: calibration without a limit.
    let admitted = fake.stats.admitted
    t = performance.now()
    while (next < subjects.length && performance.now() - t < opts.calibrateMs) await enforceChunk()
    const calibratedRate = (fake.stats.admitted - admitted) / ((performance.now() - t) / 1000)
    const rate = opts.rate ?? Math.max(20, Math.floor(calibratedRate * RATE_SHARE))
    // The bucket starts full (one second's allowance), which the ratio below accounts for.
    log(`calibration: ${next} users, ${calibratedRate.toFixed(0)} requests/s unthrottled; limit set to ${rate}/s`)

    // Phase 2: the fake's rate limit binds.
    fake.setRateLimit(rate)
    const throttledBefore = fake.stats.throttled
    const phaseStart = next
    admitted = fake.stats.admitted
    t = performance.now()
    while (next < subjects.length && performance.now() - t < opts.maxMs) await enforceChunk()
    const phaseS = (performance.now() - t) / 1000
    const admittedInPhase = fake.stats.admitted - admitted
    const achievedRate = admittedInPhase / phaseS
    const admissible = rate * phaseS + rate
    const finished = next >= subjects.length
    log(`throttled: ${next - phaseStart} users in ${phaseS.toFixed(1)} s, ${achievedRate.toFixed(0)} requests/s admitted of ${rate}/s, ${fake.stats.throttled - throttledBefore} items throttled`)

    let lost = 0
    let duplicated = 0
    for (const s of subjects.slice(0, next)) {
      const user = fake.tenant.byId.get(s.externalId!)!
      if (user.requirement === 'disabled') lost++
      if (fake.requirementWrites(user.id).patches > 1) duplicated++
    }

    process.stdout.write(`${JSON.stringify({
      bench: 'entra',
      users: subjects.length,
      sync_pages: pages,
      sync_s: Number(syncS.toFixed(2)),
      sync_users_per_s: Math.round(subjects.length / syncS),
      calibrated_requests_per_s: Math.round(calibratedRate),
      allowed_requests_per_s: rate,
      achieved_requests_per_s: Math.round(achievedRate),
      enforce_achieved_ratio: Number((admittedInPhase / admissible).toFixed(3)),
      enforce_phase_s: Number(phaseS.toFixed(2)),
      enforced_users: next,
      finished,
      throttled_items: fake.stats.throttled - throttledBefore,
      failures,
      lost: finished ? lost : null,
      duplicated
    })}\n`)
  } finally {
    await fake.close()
  }
}
