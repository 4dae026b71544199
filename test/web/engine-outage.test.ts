import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { Services } from '../../server/wiring.ts'
import { createTestUser, FakeClock, readable, signIn, startTestApp, type Agent, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra } from '../fakes/graph/server.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam } from '../fakes/iam/server.ts'
import { sqlOn } from '../helpers/sql.ts'
import { SweepTime } from '../helpers/sweep-time.ts'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const SYSTEM = { id: null, label: 'test' }
const USERS = 200

/**
 * The portal as an operator configures it (PROVIDERS + variables) against a wire-level fake, with the app for the
 * dashboard. The engine's waits run on the fake clock (SweepTime), so backoffs cost no real time.
 */
async function portal (t: TestContext, env: Record<string, string>, clock: FakeClock, onSleep: () => Promise<void> = async () => {}): Promise<TestApp> {
  const time = SweepTime.of(clock)
  const testApp = await startTestApp(env, {
    clock,
    overrides: {
      wrapEngineStore: (store) => time.watch(store),
      sleep: async (ms) => {
        await onSleep()
        await time.sleep(ms)
      }
    }
  })
  t.after(async () => { await testApp.close() })
  return testApp
}

/** Everyone synced from `provider` (created there long ago) is due: an armed campaign for that provider whose deadline passed. */
async function everyoneDue (services: Services, clock: FakeClock, provider: string): Promise<void> {
  await services.directorySync.sync(services.providers[provider])
  const now = clock.now().getTime()
  // Seen long ago too, whichever date the new-user window counts from.
  await sqlOn(services).run('UPDATE users SET first_seen_at = ? WHERE provider = ?', now - 90 * DAY, provider)
  const campaign = await services.campaigns.create(campaignInput(now, { targetKind: 'provider', targetValue: provider, deadline: new Date(now + DAY), privilegedMethods: 'any' }), SYSTEM)
  await services.campaigns.arm(campaign.id, SYSTEM)
  clock.advance(2 * DAY)
}

async function statesOf (services: Services, provider: string): Promise<Record<string, number>> {
  const rows = await sqlOn(services).all<{ state: string, n: number }>('SELECT s.state, count(*) AS n FROM user_states s JOIN users u ON u.id = s.user_id WHERE u.provider = ? GROUP BY s.state', provider)
  return Object.fromEntries(rows.map((r) => [r.state, r.n]))
}

async function enforcedAudits (services: Services, provider: string): Promise<number[]> {
  return await sqlOn(services).values<number>(`SELECT count(a.id) FROM users u LEFT JOIN audit_events a ON a.subject_user_id = u.id AND a.action = 'enforcement.enforced'
    WHERE u.provider = ? GROUP BY u.id`, provider)
}

async function waitingJobs (services: Services): Promise<number> {
  return (await sqlOn(services).value("SELECT count(*) FROM enforcement_jobs WHERE status = 'queued' AND last_error IS NOT NULL")) as number
}

/**
 * What the scheduler does with nobody at the keyboard: a sweep every five minutes and a directory sync every
 * `syncEvery` (the first one `firstSyncAfter` from now). Returns the fake time it took until every job was done.
 */
async function scheduler (services: Services, clock: FakeClock, provider: string, firstSyncAfter = HOUR, syncEvery = HOUR, maxHours = 3): Promise<number> {
  const started = clock.now().getTime()
  const open = async () => await sqlOn(services).value("SELECT count(*) FROM enforcement_jobs WHERE status IN ('queued', 'running')")
  let nextSync = started + firstSyncAfter
  while (clock.now().getTime() - started < maxHours * HOUR) {
    if (clock.now().getTime() >= nextSync) {
      nextSync += syncEvery
      // As the scheduler does: a sync that cannot reach the provider is logged, and the sweep runs anyway.
      await services.directorySync.sync(services.providers[provider]).catch(() => undefined)
    }
    await services.engine.sweep()
    if (await open() === 0) return clock.now().getTime() - started
    clock.advance(5 * MINUTE)
  }
  assert.fail(`jobs still open after ${maxHours} hours of sweeps and syncs`)
}

/** The dashboard's "Retrying by itself" section, as an admin sees it: the rows' next-try text. */
async function retryingOnDashboard (admin: Agent): Promise<string[]> {
  const page = await admin.get('/admin')
  assert.equal(page.status, 200)
  const section = /<section class="admin-section" aria-labelledby="retrying-heading"[^]*?<\/section>/.exec(readable(page.text))?.[0] ?? ''
  return [...section.matchAll(/<td>(retrying [^<]*)<\/td>/g)].map((m) => m[1])
}

// The next try with its date, time and zone (issue #16 item 8), or the next sweep.
const RETRY_ROW = /^retrying (on \d{1,2} [A-Z][a-z]+ \d{4} at \d\d:\d\d \(UTC\)|at the next sweep) — provider unavailable$/

interface Directory {
  provider: 'aws' | 'entra'
  /** Starts the fake with USERS users created long ago; returns the portal's environment for it and its checks. */
  start(t: TestContext, clock: FakeClock): Promise<{ env: Record<string, string>, outage(afterCalls: number, forMs: number): void, assertEnforcedOnce(): void, refused(): number }>
}

const DIRECTORIES: Directory[] = [
  {
    provider: 'aws',
    async start (t, clock) {
      const fake = await startFakeIam({ now: () => clock.now() })
      t.after(async () => { await fake.close() })
      const longAgo = new Date(clock.now().getTime() - 90 * DAY)
      for (let i = 0; i < USERS; i++) fake.state.addUser({ userName: `dev${i}`, consolePassword: true, createDate: longAgo })
      return {
        // The SDK's own quiet retry off: the engine decides every retry here.
        env: { PROVIDERS: 'aws', ...awsEnv(fake, { AWS_IAM_MAX_ATTEMPTS: '1' }) },
        outage: (afterCalls, forMs) => { fake.outage({ afterCalls, forMs, kind: 'server-error' }) },
        assertEnforcedOnce: () => {
          const attached = fake.callsTo('AttachUserPolicy', { ok: true })
          for (let i = 0; i < USERS; i++) {
            assert.ok(fake.state.user(`dev${i}`).policies.has(attached[0].params.PolicyArn), `dev${i} is enforced at AWS`)
            assert.equal(attached.filter((c) => c.params.UserName === `dev${i}`).length, 1, `dev${i}: attached exactly once`)
          }
        },
        refused: () => fake.calls.filter((c) => c.injected !== null).length
      }
    }
  },
  {
    provider: 'entra',
    async start (t, clock) {
      const fake = await startFakeEntra({ now: () => clock.now() })
      t.after(async () => { await fake.close() })
      const createdDateTime = new Date(clock.now().getTime() - 90 * DAY).toISOString()
      const users = Array.from({ length: USERS }, () => fake.tenant.addUser({ createdDateTime }))
      return {
        env: { PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string> },
        // Graph's 503 with Retry-After 0: the Graph client's own retries give up at once, and the engine takes over.
        outage: (afterCalls, forMs) => { fake.outage({ afterRequests: afterCalls, forMs, status: 503, retryAfterSeconds: 0 }) },
        assertEnforcedOnce: () => {
          for (const user of users) {
            assert.equal(fake.tenant.find(user.id)!.requirement, 'enabled', 'MFA required at the next sign-in (nothing registered yet)')
            assert.equal(fake.requirementWrites(user.id).changes, 1, `${user.id}: changed exactly once`)
          }
        },
        refused: () => fake.stats.faults
      }
    }
  }
]

for (const directory of DIRECTORIES) {
  const name = directory.provider === 'aws' ? 'IAM answering 500' : 'Graph answering 503'

  test(`${directory.provider}: ${name} for 30 s in the middle of a sweep of ${USERS} due users: the retries show on the dashboard meanwhile, and each user is enforced exactly once, no one left in attention`, async (t) => {
    const clock = new FakeClock()
    const fake = await directory.start(t, clock)
    let admin: Agent | undefined
    let looked = false
    const seen: string[][] = []
    const testApp = await portal(t, fake.env, clock, async () => {
      // While the provider is down, an admin looks at the dashboard (once).
      if (admin === undefined || looked || fake.refused() === 0) return
      looked = true
      seen.push(await retryingOnDashboard(admin))
    })
    const { services } = testApp
    await everyoneDue(services, clock, directory.provider)
    admin = await signIn(testApp, (await createTestUser(services, { role: 'admin' })).email)

    fake.outage(150, 30_000)
    const first = await services.engine.sweep()
    const took = await scheduler(services, clock, directory.provider)

    assert.ok(fake.refused() > 50, `the outage struck mid-sweep (${fake.refused()} calls refused)`)
    assert.ok(seen.length === 1 && seen[0].length > 0, 'during the outage the dashboard listed users retrying by themselves')
    for (const row of seen[0]) assert.match(row, RETRY_ROW)
    assert.equal(first.failed, 0, 'an outage fails no one for good')
    fake.assertEnforcedOnce()
    assert.deepEqual(await statesOf(services, directory.provider), { enforced: USERS }, 'everyone enforced, no one in attention')
    assert.ok((await enforcedAudits(services, directory.provider)).every((n) => n === 1), 'each flip audited once')
    assert.equal(await waitingJobs(services), 0)
    t.diagnostic(`first sweep: ${JSON.stringify(first)}; all done ${took / MINUTE} min later; ${fake.refused()} calls refused by the outage`)
  })

  test(`${directory.provider}: ${name} for 30 minutes, longer than the fast retries: users wait on the long schedule (shown on the dashboard, not in attention), and the first directory sync that reaches the provider again has them enforced at once, exactly once`, async (t) => {
    const clock = new FakeClock()
    const fake = await directory.start(t, clock)
    const testApp = await portal(t, fake.env, clock)
    const { services } = testApp
    await everyoneDue(services, clock, directory.provider)
    const admin = await signIn(testApp, (await createTestUser(services, { role: 'admin' })).email)

    fake.outage(150, 30 * MINUTE)
    const first = await services.engine.sweep()
    const ownRetry = (await sqlOn(services).value("SELECT min(next_attempt_at) FROM enforcement_jobs WHERE status = 'queued'")) as number

    assert.ok(first.completed > 0 && first.waiting > 0, `the outage struck mid-sweep: ${first.completed} enforced, ${first.waiting} waiting, ${fake.refused()} refused, clock ${clock.now().toISOString()}`)
    assert.equal(first.failed, 0, 'an outage fails no one for good')
    assert.equal((await statesOf(services, directory.provider)).attention, undefined, 'no one needs attention')
    const rows = await retryingOnDashboard(admin)
    assert.equal(rows.length, Math.min(first.waiting, 20))
    // The next try with its date, time and zone (issue #16 item 8), in the reader's zone.
    for (const row of rows) assert.match(row, /^retrying on \d{1,2} [A-Z][a-z]+ \d{4} at \d\d:\d\d \(UTC\) — provider unavailable$/)
    assert.match((await admin.get('/admin')).text, new RegExp(`${first.waiting} users are waiting to be retried`))

    // The scheduler's syncs: the first (every quarter of an hour here) that reaches the provider again brings the waiting jobs forward.
    const started = clock.now().getTime()
    const took = await scheduler(services, clock, directory.provider, 15 * MINUTE, 15 * MINUTE)

    assert.ok(started + took < ownRetry, `healed ${(ownRetry - started - took) / MINUTE} min before the first waiting job's own retry was due`)
    const [broughtForward] = await services.audit.list({ action: 'enforcement.retry_brought_forward' })
    assert.equal((JSON.parse(broughtForward.details) as { users: number }).users, first.waiting, 'every waiting job was brought forward by the sync')
    fake.assertEnforcedOnce()
    assert.deepEqual(await statesOf(services, directory.provider), { enforced: USERS }, 'everyone enforced, no one in attention')
    assert.ok((await enforcedAudits(services, directory.provider)).every((n) => n === 1), 'each flip audited once')
    assert.equal(await waitingJobs(services), 0)
    t.diagnostic(`first sweep: ${JSON.stringify(first)}; healed ${took / MINUTE} min later`)
  })
}
