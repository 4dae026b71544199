import { rmSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { type CampaignInput } from '../../server/domain/campaigns.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import type { EngineSettings, EngineStore } from '../../server/domain/engine.ts'
import { ProviderError } from '../../server/domain/provider.ts'
import type { User } from '../../server/domain/users.ts'
import { createServices, type Services } from '../../server/wiring.ts'
import { FakeProvider, type ProviderCall } from '../fakes/provider.ts'
import { createTestUser, FakeClock, portalDatabase, tempDir, testConfig } from '../helpers/app.ts'
import { SweepTime } from '../helpers/sweep-time.ts'
import { sqlOn } from '../helpers/sql.ts'

const MINUTE = 60_000
const admin = { id: null, label: 'test-admin' }

interface RetryRecord { jobId: string, error: string, nextAttemptAt: number, now: number }

interface Rig {
  services: Services
  /** Every retryLater the engine asked of the store, as it asked it. */
  retries: RetryRecord[]
}

/** A data directory and database that several rigs share, as instances of one portal do. */
interface Storage {
  dataDir: string
  /** DATABASE_URL on PostgreSQL (TEST_WEB_BACKEND), nothing on SQLite (the file in dataDir). */
  env: Record<string, string>
  remove(): Promise<void>
}

async function freshStorage (): Promise<Storage> {
  const dataDir = tempDir()
  const database = await portalDatabase()
  return {
    dataDir,
    env: database.env,
    remove: async () => {
      await database.release()
      rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 })
    }
  }
}

/**
 * Services on a real database with the fake as the 'local' provider (its own, or `storage` shared with other rigs).
 * Workers sleep on the fake clock (SweepTime: workers wait side by side, not one after another), so retries fall due
 * without real waiting.
 */
async function openRig (t: TestContext, clock: FakeClock, fake: FakeProvider, settings: Partial<EngineSettings>, options: { storage?: Storage, sleep?: (ms: number) => Promise<void> } = {}): Promise<Rig> {
  const retries: RetryRecord[] = []
  const storage = options.storage ?? await freshStorage()
  const services = await createServices(testConfig(storage.env, storage.dataDir), {
    clock,
    providers: { [fake.name]: fake },
    engineSettings: settings,
    sleep: options.sleep ?? (async (ms) => { await SweepTime.of(clock).sleep(ms) }),
    wrapEngineStore: (store) => recordingRetries(SweepTime.of(clock).watch(store, settings.concurrency), retries)
  })
  t.after(async () => {
    await services.close()
    if (options.storage === undefined) await storage.remove()
  })
  return { services, retries }
}

function recordingRetries (store: EngineStore, retries: RetryRecord[]): EngineStore {
  const retryLater: EngineStore['retryLater'] = async (jobId, owner, error, nextAttemptAt, now) => {
    retries.push({ jobId, error, nextAttemptAt: nextAttemptAt.getTime(), now: now.getTime() })
    await store.retryLater(jobId, owner, error, nextAttemptAt, now)
  }
  return new Proxy(store, {
    get (target, key) {
      if (key === 'retryLater') return retryLater
      const value = Reflect.get(target, key) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}

function campaign (clock: FakeClock, fields: Partial<CampaignInput> = {}): CampaignInput {
  return campaignInput(clock.now(), fields)
}

async function createUsers (services: Services, count: number): Promise<User[]> {
  const users: User[] = []
  for (let i = 0; i < count; i++) users.push(await createTestUser(services))
  return users
}

/** `count` long-standing users under an armed campaign whose deadline has just passed. Returns them and the campaign id. */
async function dueUsers (services: Services, clock: FakeClock, count: number): Promise<{ users: User[], campaignId: string }> {
  const users = await createUsers(services, count)
  await sqlOn(services).run('UPDATE users SET first_seen_at = ?', clock.now().getTime() - 90 * DAY)
  const c = await services.campaigns.create(campaign(clock), admin)
  await services.campaigns.arm(c.id, admin)
  clock.advance(11 * DAY)
  return { users, campaignId: c.id }
}

async function openJobs (services: Services): Promise<number> {
  return (await sqlOn(services).value("SELECT count(*) FROM enforcement_jobs WHERE status IN ('queued', 'running')")) as number
}

/** What the scheduler does every five minutes, until no job is left open. Returns how many sweeps it took. */
async function sweepUntilSettled (engines: Services[], clock: FakeClock, maxSweeps = 20): Promise<number> {
  for (let sweep = 1; sweep <= maxSweeps; sweep++) {
    await engines[0].engine.refreshAll()
    await Promise.all(engines.map(async (s) => s.engine.sweep()))
    if (await openJobs(engines[0]) === 0) return sweep
    clock.advance(5 * MINUTE)
  }
  assert.fail(`jobs still open after ${maxSweeps} sweeps`)
}

async function stateOf (services: Services, userId: string): Promise<{ state: string, reason: string }> {
  return (await sqlOn(services).get('SELECT state, reason FROM user_states WHERE user_id = ?', userId)) as { state: string, reason: string }
}

async function jobsOf (services: Services, userId: string): Promise<Array<{ action: string, status: string, attempts: number, lastError: string | null }>> {
  return await sqlOn(services).all<{ action: string, status: string, attempts: number, lastError: string | null }>('SELECT action, status, attempts, last_error AS lastError FROM enforcement_jobs WHERE user_id = ? ORDER BY created_at', userId)
}

async function enforcedAudits (services: Services): Promise<Map<string, number>> {
  const rows = await sqlOn(services).all<{ userId: string, n: number }>("SELECT subject_user_id AS userId, count(*) AS n FROM audit_events WHERE action = 'enforcement.enforced' GROUP BY subject_user_id")
  return new Map(rows.map((r) => [r.userId, r.n]))
}

async function assertEnforcedOnce (services: Services, fake: FakeProvider, users: User[]): Promise<void> {
  for (const u of users) {
    assert.equal(fake.isEnforced(u.id), true, `${u.email} is enforced at the provider`)
    assert.equal(fake.changesFor(u.id), 1, `${u.email} flipped exactly once at the provider`)
    assert.equal((await stateOf(services, u.id)).state, 'enforced', `${u.email} shows as enforced`)
    assert.notEqual((await services.users.findById(u.id))?.enforcedAt, null, `the portal records ${u.email} as enforced`)
  }
}

test('with 30% of provider calls failing (429 with Retry-After, 500, timeouts), repeated sweeps enforce every due user exactly once', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now(), seed: 1, failRate: 0.3, retryAfterMs: 30_000, rateLimit: { calls: 60, windowMs: MINUTE } })
  // Ten attempts: at 30% failures, six in a row befall about one user in 1,400, so with 200 users about one run in
  // seven would rightly end with someone in attention; ten in a row, about one run in 850.
  const { services, retries } = await openRig(t, clock, fake, { concurrency: 4, maxAttempts: 10 })
  const { users } = await dueUsers(services, clock, 200)

  const sweeps = await sweepUntilSettled([services], clock)

  await assertEnforcedOnce(services, fake, users)
  assert.equal(await openJobs(services), 0, 'no job is left queued or running')
  for (const u of users) {
    const jobs = await jobsOf(services, u.id)
    assert.deepEqual(jobs.map((j) => [j.action, j.status]), [['enforce', 'done']], `one enforce job for ${u.email}, done`)
    assert.equal(jobs[0].attempts, fake.callsFor(u.id, 'enforce').length, 'every provider call is one counted attempt')
  }
  const retried: User[] = []
  for (const u of users) if ((await jobsOf(services, u.id))[0].attempts > 1) retried.push(u)
  assert.ok(retried.length > 20, `retries happened and are visible on the jobs (${retried.length} retried)`)
  const failures = fake.calls.filter((c) => c.outcome !== 'changed' && c.outcome !== 'unchanged').length
  assert.ok(failures / fake.calls.length >= 0.25, `a real storm: ${failures} of ${fake.calls.length} calls failed`)
  const outcomes = new Set(fake.calls.map((c) => c.outcome))
  for (const kind of ['throttled', 'server_error', 'timeout']) assert.ok(outcomes.has(kind), `the storm included ${kind}`)
  assert.ok(fake.calls.some((c) => c.outcome === 'timeout' && c.changed), 'some timed-out calls had taken effect, and their retries did not flip again')

  // Retry-After honoured where the engine schedules the retry, and where the provider sees it.
  const throttledRetries = retries.filter((r) => r.error.startsWith('throttled:'))
  assert.ok(throttledRetries.length > 0)
  for (const r of throttledRetries) {
    const retryAfter = Number(/retry after (\d+) ms/.exec(r.error)?.[1])
    assert.ok(r.nextAttemptAt >= r.now + retryAfter, `next attempt ${r.nextAttemptAt - r.now} ms after a 429 asking for ${retryAfter} ms`)
  }
  for (const u of users) {
    const calls = fake.callsFor(u.id, 'enforce')
    calls.slice(1).forEach((next, i) => assertRespectsRetryAfter(calls[i], next))
  }
  const tally: Record<string, number> = {}
  for (const c of fake.calls) tally[c.outcome] = (tally[c.outcome] ?? 0) + 1
  t.diagnostic(`${sweeps} sweep(s), ${fake.calls.length} provider calls for 200 users, ${retried.length} jobs retried: ${JSON.stringify(tally)}`)
})

function assertRespectsRetryAfter (failed: ProviderCall, next: ProviderCall): void {
  if (failed.retryAfterMs === undefined) return
  assert.ok(next.at >= failed.at + failed.retryAfterMs, `the provider was called again ${next.at - failed.at} ms after asking for ${failed.retryAfterMs} ms`)
}

/** Sweeps every five minutes until no job is ready to run now (jobs waiting on the long schedule may remain). */
async function sweepUntilQuiet (services: Services, clock: FakeClock, maxSweeps = 20): Promise<void> {
  const ready = async (now: number) => await sqlOn(services).value("SELECT count(*) FROM enforcement_jobs WHERE status = 'running' OR (status = 'queued' AND next_attempt_at <= ?)", now)
  for (let sweep = 1; sweep <= maxSweeps; sweep++) {
    await services.engine.refreshAll()
    await services.engine.sweep()
    if (await ready(clock.now().getTime()) === 0) return
    clock.advance(5 * MINUTE)
  }
  assert.fail(`jobs still ready after ${maxSweeps} sweeps`)
}

async function jobTiming (services: Services, userId: string): Promise<{ attempts: number, waitMs: number, status: string }> {
  return (await sqlOn(services).get('SELECT attempts, next_attempt_at - updated_at AS waitMs, status FROM enforcement_jobs WHERE user_id = ? ORDER BY created_at DESC LIMIT 1', userId)) as { attempts: number, waitMs: number, status: string }
}

test('a user the provider keeps failing for now waits on a longer schedule (1 h, 6 h, 24 h, then daily) instead of attention; one it refuses needs attention with the reason and what to do', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  const { services } = await openRig(t, clock, fake, { concurrency: 4, maxAttempts: 6 })
  const { users } = await dueUsers(services, clock, 20)
  const [locked, unlicensed, ...others] = users
  fake.failAlways([locked.id], { retryable: true, code: 'server_error', message: 'Directory object is locked by another operation' })
  fake.failAlways([unlicensed.id], { retryable: false, code: 'forbidden', message: 'User has no license that allows per-user MFA' })

  await sweepUntilQuiet(services, clock)

  await assertEnforcedOnce(services, fake, others)
  assert.equal(fake.callsFor(locked.id).length, 6, 'a retryable failure is tried maxAttempts times quickly')
  assert.deepEqual(await jobTiming(services, locked.id), { attempts: 6, waitMs: 60 * MINUTE, status: 'queued' }, 'then it waits an hour instead of giving up')
  const waiting = await stateOf(services, locked.id)
  assert.equal(waiting.state, 'overdue', 'waiting out an outage is not attention')
  assert.match(waiting.reason, /Retrying at \d\d:\d\d UTC on \d{4}-\d\d-\d\d — provider unavailable \(server_error: Directory object is locked by another operation\)\. Nothing to do: it retries by itself\.$/)
  assert.equal(fake.callsFor(unlicensed.id).length, 1, 'a failure the provider says will not go away is not retried')
  assert.deepEqual((await jobsOf(services, unlicensed.id)).map((j) => [j.status, j.attempts]), [['failed', 1]])
  const { state, reason } = await stateOf(services, unlicensed.id)
  assert.equal(state, 'attention')
  assert.match(reason, /^Enforcement failed: .*User has no license that allows per-user MFA\. What to do: Fix the cause at the provider, then press Retry on the dashboard; or exempt the user\.$/)
  assert.equal(fake.isEnforced(unlicensed.id), false)
  assert.equal(await sqlOn(services).value("SELECT count(*) FROM audit_events WHERE action = 'enforcement.failed'"), 1)
  assert.equal((await services.audit.list({ subjectUserId: locked.id, action: 'enforcement.retry_scheduled' })).length, 1)

  // Until someone acts, later sweeps leave the refused user alone; the waiting one is tried again on its schedule.
  const waits: number[] = []
  for (const hours of [1, 6, 24, 24]) {
    const callsBefore = fake.callsFor(locked.id).length
    clock.advance(hours * 60 * MINUTE - 5 * MINUTE)
    await services.engine.sweep()
    assert.equal(fake.callsFor(locked.id).length, callsBefore, `not tried before its ${hours} h wait is over`)
    clock.advance(5 * MINUTE)
    await services.engine.sweep()
    assert.equal(fake.callsFor(locked.id).length, callsBefore + 1, `tried once when its ${hours} h wait is over`)
    waits.push((await jobTiming(services, locked.id)).waitMs / (60 * MINUTE))
  }
  assert.deepEqual(waits, [6, 24, 24, 24], 'after 1 h: 6 h, then 24 h, and every 24 h after that')
  assert.equal(fake.callsFor(unlicensed.id).length, 1)
  assert.equal((await stateOf(services, unlicensed.id)).state, 'attention')
  assert.equal((await stateOf(services, locked.id)).state, 'overdue')
})

test('two sweeps running at once, like two processes on one database, apply each flip once and run each job once', async (t) => {
  const clock = new FakeClock()
  const storage = await freshStorage()
  // A little real latency per call, so the two sweeps' workers genuinely overlap.
  const fake = new FakeProvider({ now: () => clock.now(), delayMs: 2 })
  const first = await openRig(t, clock, fake, { concurrency: 4 }, { storage })
  const second = await openRig(t, clock, fake, { concurrency: 4 }, { storage })
  t.after(storage.remove)
  const { users } = await dueUsers(first.services, clock, 60)

  await first.services.engine.refreshAll()
  const [a, b] = await Promise.all([first.services.engine.sweep(), second.services.engine.sweep()])

  assert.ok(a.completed > 0 && b.completed > 0, `both sweeps did work (${a.completed} + ${b.completed})`)
  assert.equal(a.completed + b.completed, users.length, 'between them, each job completed once')
  assert.equal(a.enqueued + b.enqueued, users.length, 'the two plans overlapped but wrote one job per user')
  await assertEnforcedOnce(first.services, fake, users)
  const audits = await enforcedAudits(first.services)
  for (const u of users) {
    assert.equal(fake.callsFor(u.id, 'enforce').length, 1, `${u.email}: one provider call, from one sweep`)
    assert.deepEqual((await jobsOf(first.services, u.id)).map((j) => [j.status, j.attempts]), [['done', 1]])
    assert.equal(audits.get(u.id), 1, `${u.email}: one audit entry for the flip`)
  }
})

test('two sweeps running at once while the provider fails now and then still flip each user exactly once', async (t) => {
  const clock = new FakeClock()
  const storage = await freshStorage()
  const fake = new FakeProvider({ now: () => clock.now(), delayMs: 1, seed: 7, failRate: 0.25, retryAfterMs: 20_000 })
  // Leases far longer than any wait in the test: here only the two sweeps compete, no lease lapses.
  const settings = { concurrency: 3, maxAttempts: 10, leaseMs: 24 * 60 * MINUTE }
  const first = await openRig(t, clock, fake, settings, { storage })
  const second = await openRig(t, clock, fake, settings, { storage })
  t.after(storage.remove)
  const { users } = await dueUsers(first.services, clock, 60)

  await sweepUntilSettled([first.services, second.services], clock)

  await assertEnforcedOnce(first.services, fake, users)
  assert.equal(await openJobs(first.services), 0)
  const audits = await enforcedAudits(first.services)
  for (const u of users) {
    assert.deepEqual((await jobsOf(first.services, u.id)).map((j) => j.status), ['done'])
    assert.equal(audits.get(u.id), 1, `${u.email}: the flip is recorded once`)
  }
})

/** [userId, action] pairs in a stable order, for comparing a plan with what happened. */
function pairs (items: Array<{ userId: string, action?: string, op?: string }>): string[] {
  return items.map((i) => `${i.userId} ${i.action ?? i.op}`).sort()
}

/**
 * Enforced users, some then given an extension or a temporary exemption (relax), plus newly arrived users already
 * overdue (enforce) and new joiners still inside their window (nothing).
 */
async function mixedPopulation (services: Services, clock: FakeClock) {
  const { users, campaignId } = await dueUsers(services, clock, 12)
  await services.engine.refreshAll()
  await services.engine.sweep()
  const [extendedA, extendedB, extendedC, exempted] = users
  for (const u of [extendedA, extendedB, extendedC]) await services.campaigns.extend(u.id, campaignId, 5, 'travelling without a phone', admin)
  await services.campaigns.exempt(exempted.id, { kind: 'service_account', reason: 'nightly export job', owner: 'ops', expiresAt: new Date(clock.now().getTime() + 3 * DAY) }, admin)
  const latecomers = await createUsers(services, 5)
  const joiners = await createUsers(services, 3)
  for (const u of latecomers) await sqlOn(services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', clock.now().getTime() - 90 * DAY, u.id)
  return { users, campaignId, relaxed: [extendedA, extendedB, extendedC, exempted], exempted, latecomers, joiners }
}

test('the dry run lists exactly the users and actions the next sweep then carries out', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  const { services } = await openRig(t, clock, fake, { concurrency: 4 })
  const { relaxed, latecomers } = await mixedPopulation(services, clock)

  await services.engine.refreshAll()
  const dryRun = await services.engine.plan()
  const callsBefore = fake.calls.length
  const report = await services.engine.sweep()
  const performed = fake.calls.slice(callsBefore)

  assert.deepEqual(pairs(dryRun), [...relaxed.map((u) => `${u.id} relax`), ...latecomers.map((u) => `${u.id} enforce`)].sort())
  assert.deepEqual(pairs(performed), pairs(dryRun), 'the provider saw exactly what the dry run listed')
  assert.equal(report.planned, dryRun.length)
  assert.equal(report.completed, dryRun.length)
  for (const u of relaxed) assert.equal(fake.isEnforced(u.id), false)
  for (const u of latecomers) assert.equal(fake.isEnforced(u.id), true)
})

test('the dry run lists no one the next sweep leaves alone, users needing attention included', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  const { services } = await openRig(t, clock, fake, { concurrency: 4 })
  const { users: [rejected] } = await dueUsers(services, clock, 5)
  fake.failAlways([rejected.id], { retryable: false, code: 'forbidden', message: 'User has no license that allows per-user MFA' })
  await sweepUntilSettled([services], clock)
  assert.equal((await stateOf(services, rejected.id)).state, 'attention')

  clock.advance(DAY)
  await services.engine.refreshAll()
  const dryRun = await services.engine.plan()
  const callsBefore = fake.calls.length
  await services.engine.sweep()

  assert.deepEqual(pairs(fake.calls.slice(callsBefore)), pairs(dryRun), 'the provider saw exactly what the dry run listed')
})

test('when an extension or a temporary exemption runs out, the dry run and the next sweep both enforce the user again', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  const { services } = await openRig(t, clock, fake, { concurrency: 4 })
  const { relaxed, exempted } = await mixedPopulation(services, clock)
  await services.engine.refreshAll()
  await services.engine.sweep()

  // Past both the exemption's expiry (3 days) and the extended deadline (5 days after the original).
  clock.advance(4 * DAY)
  await services.engine.refreshAll()
  const dryRun = await services.engine.plan()
  const callsBefore = fake.calls.length
  await services.engine.sweep()

  assert.deepEqual(pairs(dryRun), relaxed.map((u) => `${u.id} enforce`).sort())
  assert.deepEqual(pairs(fake.calls.slice(callsBefore)), pairs(dryRun), 'the provider saw exactly what the dry run listed')
  for (const u of relaxed) {
    assert.equal(fake.isEnforced(u.id), true, `${u.email} is enforced again`)
    assert.equal((await stateOf(services, u.id)).state, 'enforced')
  }
  assert.equal(fake.changesFor(exempted.id), 3, 'enforced, relaxed for the exemption, enforced again')
})

test('a retry still pending when an admin extends the deadline does not enforce the user', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  let extend = async (): Promise<void> => {}
  // The admin grants the extension while the sweep waits out the provider's Retry-After.
  const { services } = await openRig(t, clock, fake, { concurrency: 1 }, {
    sleep: async (ms) => {
      await extend()
      clock.advance(ms)
    }
  })
  const { users: [user], campaignId } = await dueUsers(services, clock, 1)
  extend = async () => {
    await services.campaigns.extend(user.id, campaignId, 7, 'on leave', admin)
    assert.equal((await stateOf(services, user.id)).state, 'pending')
  }
  fake.failNext(new ProviderError('Too many requests; retry after 600000 ms', true, 10 * MINUTE, 'throttled'))

  await sweepUntilSettled([services], clock)

  assert.equal(fake.changesFor(user.id), 0, 'the extension wins over the retry queued before it')
  assert.equal(fake.isEnforced(user.id), false)
  assert.equal((await stateOf(services, user.id)).state, 'pending')
})
