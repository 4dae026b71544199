import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_BREAKER } from '../../server/domain/breaker.ts'
import type { User } from '../../server/domain/users.ts'
import { FakeProvider } from '../fakes/provider.ts'
import { createTestUser, FakeClock, startTestApp, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let fake: FakeProvider
let admin: User
const HOUR = 3_600_000

beforeEach(async () => {
  const clock = new FakeClock()
  fake = new FakeProvider({ now: () => clock.now() })
  t = await startTestApp({}, { clock, overrides: { providers: { local: fake } } })
  admin = await createTestUser(t.services, { role: 'admin', email: 'admin@test.example' })
})
afterEach(async () => { await t.close() })

const actorOf = (user: User) => ({ id: user.id, label: user.email })

async function waveOf (userId: string): Promise<number | null> {
  return (await sqlOn(t.services).value('SELECT wave FROM user_states WHERE user_id = ?', userId)) as number | null
}

async function wavesOf (users: User[]): Promise<Array<number | null>> {
  const waves: Array<number | null> = []
  for (const u of users) waves.push(await waveOf(u.id))
  return waves
}

/** 10 users in the pilot group and 30 others, known for long, under an armed campaign in three waves (7 days apart). */
async function threeWaves () {
  const users: User[] = []
  for (let i = 0; i < 40; i++) users.push(await createTestUser(t.services, { email: `user${String(i).padStart(2, '0')}@test.example` }))
  const db = sqlOn(t.services)
  await db.run('UPDATE users SET first_seen_at = ? WHERE role = ?', t.clock.now().getTime() - 90 * DAY, 'user')
  for (const u of users.slice(0, 10)) await db.run('INSERT INTO user_groups (user_id, group_name) VALUES (?, ?)', u.id, 'pilot')
  const deadline = new Date(t.clock.now().getTime() + DAY)
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now(), {
    deadline, waves: { pilot: { kind: 'group', group: 'pilot' }, offsetsDays: [7, 7] }, breaker: { ...DEFAULT_BREAKER, failurePercent: 20 }
  }), actorOf(admin))
  await t.services.campaigns.arm(campaign.id, actorOf(admin))
  const pilot = users.slice(0, 10)
  const waves = await wavesOf(users)
  const wave2 = users.filter((_, i) => waves[i] === 2)
  const wave3 = users.filter((_, i) => waves[i] === 3)
  return { campaign, deadline, pilot, wave2, wave3 }
}

test('a campaign in three waves runs the pilot, waits while the pilot is unhealthy, and starts wave 2 only after', async () => {
  const { campaign, deadline, pilot, wave2, wave3 } = await threeWaves()
  assert.ok((await wavesOf(pilot)).every((w) => w === 1))
  assert.equal(wave2.length + wave3.length, 30)
  assert.ok(wave2.length >= 3 && wave3.length >= 3, 'the others are spread over the later waves (fewer than 3 in either: p < 1e-6)')
  // Users see their own wave's deadline: the pilot's, and for later waves the earliest theirs can be.
  assert.equal((await t.services.engine.explainDeadline(pilot[0].id))?.deadline.getTime(), deadline.getTime())
  const w2 = (await t.services.engine.explainDeadline(wave2[0].id))!
  assert.equal(w2.deadline.getTime(), deadline.getTime() + 7 * DAY)
  assert.deepEqual(w2.wave, { number: 2, of: 3, counting: false, startedAt: null })
  assert.equal((await t.services.engine.explainDeadline(wave3[0].id))?.deadline.getTime(), deadline.getTime() + 14 * DAY)

  // The pilot's deadline passes; 3 of its 10 flips fail for good (30% > 20%): the pilot is unhealthy.
  fake.failAlways(pilot.slice(0, 3).map((u) => u.id), { retryable: false, message: 'user rejected' })
  t.clock.advance(DAY + HOUR)
  await t.services.engine.sweep()
  assert.equal(pilot.filter((u) => fake.isEnforced(u.id)).length, 7)
  assert.equal((await t.services.campaigns.find(campaign.id))!.pauses.length, 1, 'the breaker paused the campaign')
  assert.deepEqual((await t.services.rollout.waves((await t.services.campaigns.find(campaign.id))!)).map((w) => w.state), ['done', 'scheduled', 'scheduled'])

  // Wave 2 waits: far past its earliest deadline, still nobody in it is flipped and it has not started.
  t.clock.advance(10 * DAY)
  await t.services.engine.sweep()
  assert.ok(wave2.every((u) => !fake.isEnforced(u.id)))
  assert.equal((await t.services.engine.explainDeadline(wave2[0].id))?.wave?.counting, false)
  assert.equal((await t.services.audit.list({ action: 'campaign.wave_started' })).length, 0)

  // An admin resumes the healthy-again pilot; the next sweep starts wave 2, counting from then.
  await t.services.rollout.resume(campaign.id, 'The three rejected accounts were service accounts; exempted', actorOf(admin))
  await t.services.engine.sweep()
  const started = await t.services.audit.list({ action: 'campaign.wave_started' })
  assert.equal(started.length, 1)
  assert.equal(JSON.parse(started[0].details).wave, 2)
  const resumedAt = t.clock.now().getTime()
  const w2Now = (await t.services.engine.explainDeadline(wave2[0].id))!
  assert.equal(w2Now.wave?.counting, true)
  assert.equal(w2Now.deadline.getTime(), resumedAt + 7 * DAY, 'wave 2 gets its full 7 days from its start')
  assert.equal((await t.services.engine.explainDeadline(wave3[0].id))?.deadline.getTime(), resumedAt + 14 * DAY)
  assert.ok(wave2.every((u) => !fake.isEnforced(u.id)))

  // At wave 2's deadline its users are flipped; wave 3 still waits for wave 2 to be done.
  t.clock.advance(7 * DAY + HOUR)
  await t.services.engine.sweep()
  assert.ok(wave2.every((u) => fake.isEnforced(u.id)))
  assert.ok(wave3.every((u) => !fake.isEnforced(u.id)))
  const standings = await t.services.rollout.waves((await t.services.campaigns.find(campaign.id))!)
  assert.deepEqual(standings.map((w) => w.state), ['done', 'done', 'running'], 'wave 2 done, so wave 3 started after that sweep')
  t.clock.advance(7 * DAY + HOUR)
  await t.services.engine.sweep()
  assert.ok(wave3.every((u) => fake.isEnforced(u.id)))
})

test('the pilot can be a stable share of users chosen by their id, the same on every run', async () => {
  const users: User[] = []
  for (let i = 0; i < 60; i++) users.push(await createTestUser(t.services, { email: `share${i}@test.example` }))
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now(), { waves: { pilot: { kind: 'share', percent: 20 }, offsetsDays: [14] } }), actorOf(admin))
  const first = await wavesOf(users)
  // The users' ids are random here, so the count is too (12 on average, 23 seen once): how close it comes to a fifth
  // is held on fixed ids by test/unit/waves.test.ts. Here: some users, and far from all of them.
  const pilots = first.filter((w) => w === 1).length
  assert.ok(pilots >= 1 && pilots <= 30, `some, and at most half, in the pilot (got ${pilots})`)
  await t.services.engine.refreshAll()
  assert.deepEqual(await wavesOf(users), first, 'the same users on every run')
  assert.ok(first.every((w) => w === 1 || w === 2))
  assert.equal(campaign.waves?.pilot.kind, 'share')
})

test('an admin may start the next wave by hand before the previous one is done (audited)', async () => {
  const { campaign, wave2 } = await threeWaves()
  await assert.rejects(async () => await t.services.rollout.startWave(campaign.id, 3, actorOf(admin)), /Wave 2 is the next to start/)
  await t.services.rollout.startWave(campaign.id, 2, actorOf(admin))
  const audit = await t.services.audit.list({ action: 'campaign.wave_started' })
  assert.equal(audit.length, 1)
  assert.equal(audit[0].actorId, admin.id)
  assert.equal(JSON.parse(audit[0].details).byHand, true)
  assert.equal((await t.services.engine.explainDeadline(wave2[0].id))?.wave?.counting, true)
  await assert.rejects(async () => await t.services.rollout.startWave(campaign.id, 2, actorOf(admin)), /Wave 3 is the next to start/)
})

test('wave plans are validated like every other campaign field', async () => {
  await assert.rejects(async () => await t.services.campaigns.create(campaignInput(t.clock.now(), { waves: { pilot: { kind: 'share', percent: 0 }, offsetsDays: [] } }), actorOf(admin)),
    (err: Error & { fields?: Record<string, string> }) => /share is a percentage/.test(err.message) && /at least one wave after the pilot/.test(err.message))
  await assert.rejects(async () => await t.services.campaigns.create(campaignInput(t.clock.now(), { breaker: { ...DEFAULT_BREAKER, passesPer100: 0 } }), actorOf(admin)), /Passes and resets per 100 users flipped/)
})

test('an extension counts from the user\'s own wave deadline', async () => {
  const { campaign, deadline, wave2 } = await threeWaves()
  const until = await t.services.campaigns.extend(wave2[0].id, campaign.id, 3, 'on leave', actorOf(admin))
  assert.equal(until.getTime(), deadline.getTime() + 10 * DAY, 'wave 2 (7 days after the pilot) plus 3 days')
  const [event] = await t.services.audit.list({ action: 'deadline.extended' })
  assert.equal(JSON.parse(event.details).from, new Date(deadline.getTime() + 7 * DAY).toISOString())
  assert.equal((await t.services.engine.explainDeadline(wave2[0].id))?.deadline.getTime(), until.getTime())
})
