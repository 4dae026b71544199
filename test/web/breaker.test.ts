import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_BREAKER } from '../../server/domain/breaker.ts'
import type { CampaignInput } from '../../server/domain/campaigns.ts'
import type { User } from '../../server/domain/users.ts'
import { FakeProvider } from '../fakes/provider.ts'
import { createTestUser, FakeClock, startTestApp, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let smtp: SmtpSink
let fake: FakeProvider
let admin: User
const HOUR = 3_600_000

beforeEach(async () => {
  smtp = await startSmtpSink()
  const clock = new FakeClock()
  fake = new FakeProvider({ now: () => clock.now() })
  t = await startTestApp({ SMTP_URL: smtp.url }, { clock, overrides: { providers: { local: fake } } })
  admin = await createTestUser(t.services, { role: 'admin', email: 'admin@test.example', displayName: 'Ada Admin' })
})
afterEach(async () => {
  await t.close()
  await smtp.close()
})

const actorOf = (user: User) => ({ id: user.id, label: user.email })

/** `count` users known for long (no new-user window), under one armed campaign whose deadline is `deadlineIn` away. */
async function rollout (count: number, fields: Partial<CampaignInput> = {}, deadlineIn = DAY) {
  const users = []
  for (let i = 0; i < count; i++) users.push(await createTestUser(t.services, { email: `user${String(i).padStart(2, '0')}@test.example` }))
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE role = ?', t.clock.now().getTime() - 90 * DAY, 'user')
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now(), { deadline: new Date(t.clock.now().getTime() + deadlineIn), ...fields }), actorOf(admin))
  await t.services.campaigns.arm(campaign.id, actorOf(admin))
  return { users, campaign }
}

async function deadlineOf (userId: string): Promise<number> {
  return (await sqlOn(t.services).value<number>('SELECT deadline FROM user_states WHERE user_id = ?', userId))!
}

test('a burst of passes after a flip pauses the campaign: nobody else is flipped, the admins get one e-mail with the figures, and resuming gives the others the pause back', async () => {
  // 20 users due tomorrow, 20 a week later (an extension each): the second group is "not yet flipped".
  const { users, campaign } = await rollout(40)
  const [early, late] = [users.slice(0, 20), users.slice(20)]
  for (const u of late) await t.services.campaigns.extend(u.id, campaign.id, 7, 'starts later', actorOf(admin))
  t.clock.advance(DAY + HOUR)
  await t.services.engine.sweep()
  assert.ok(early.every((u) => fake.isEnforced(u.id)), 'the first 20 are flipped')
  assert.equal(smtp.messages.filter((m) => m.subject.startsWith('Rollout paused')).length, 0, 'a flip alone trips nothing')

  // The Monday after: the helpdesk hands out passes to 4 of the 20 flipped users (20 per 100 > 15).
  t.clock.advance(2 * HOUR)
  for (const u of early.slice(0, 4)) await t.services.passes.issue(u, { lifetimeMinutes: 60, oneTime: true, reason: 'locked out' }, actorOf(admin))
  const lateDeadline = await deadlineOf(late[0].id)
  const earlyDeadline = await deadlineOf(early[0].id)
  await t.services.engine.sweep()

  const paused = (await t.services.campaigns.find(campaign.id))!
  assert.equal(paused.pauses.length, 1)
  assert.equal(paused.pauses[0].signal, 'passes')
  assert.equal(paused.pauses[0].resumedAt, null)
  assert.deepEqual(paused.pauses[0].figures.counts, { flipped: 20, failures: 0, passes: 4, resets: 0, notMe: 0 })
  const alerts = await smtp.waitFor((m) => m.subject.startsWith('Rollout paused'))
  assert.deepEqual(alerts.to, ['admin@test.example'])
  assert.match(alerts.text, /20 passes issued and helpdesk resets per 100 users flipped \(threshold 15\)/)
  assert.match(alerts.text, /20 users flipped, 0 enforcement failures, 4 passes and 0 helpdesk resets for flipped users/)
  assert.equal((await t.services.audit.list({ action: 'campaign.paused' })).length, 1)

  // Paused for three days: the late group's deadline passes, yet nobody is flipped, and no second e-mail goes out.
  t.clock.advance(3 * DAY)
  await t.services.engine.sweep()
  t.clock.advance(5 * DAY)
  const report = await t.services.engine.sweep()
  assert.equal(report.planned, 0)
  assert.ok(late.every((u) => !fake.isEnforced(u.id)), 'no user is flipped while paused')
  assert.ok(early.every((u) => fake.isEnforced(u.id)), 'already-enforced users stay enforced')
  assert.equal((await t.services.engine.plan()).length, 0, 'the dry run lists no one either')
  assert.match((await sqlOn(t.services).value('SELECT reason FROM user_states WHERE user_id = ?', late[0].id)) as string, /paused by its breaker/)
  assert.equal(smtp.messages.filter((m) => m.subject.startsWith('Rollout paused')).length, 1, 'one e-mail per pause')

  // Resuming needs a reason, is audited, and moves the deadlines of those not yet flipped by the pause's length.
  const pausedFor = t.clock.now().getTime() - paused.pauses[0].pausedAt.getTime()
  await assert.rejects(async () => await t.services.rollout.resume(campaign.id, ' ', actorOf(admin)), /Say why/)
  await t.services.rollout.resume(campaign.id, 'Helpdesk briefed; the pass policy was fixed', actorOf(admin))
  const resumed = await t.services.audit.list({ action: 'campaign.resumed' })
  assert.equal(resumed.length, 1)
  assert.equal(resumed[0].actorId, admin.id)
  assert.equal((JSON.parse(resumed[0].details) as { reason: string }).reason, 'Helpdesk briefed; the pass policy was fixed')
  assert.equal(await deadlineOf(late[0].id), lateDeadline + pausedFor, 'the remaining users get the pause back')
  assert.equal(await deadlineOf(early[0].id), earlyDeadline, 'flipped users keep their date')
  assert.ok(early.every((u) => fake.isEnforced(u.id) && fake.changesFor(u.id) === 1), 'and stay enforced, never relaxed')
  await assert.rejects(async () => await t.services.rollout.resume(campaign.id, 'again', actorOf(admin)), /not paused/)

  // The passes are still inside the window, but a resumed campaign is only paused again by new figures.
  await t.services.engine.sweep()
  assert.ok(late.every((u) => !fake.isEnforced(u.id)), 'their new deadline has not come yet')
  t.clock.advance(pausedFor)
  await t.services.engine.sweep()
  assert.ok(late.every((u) => fake.isEnforced(u.id)), 'the remaining users are flipped at their moved deadline')
})

test('one pass after one flip trips nothing: the breaker waits for its minimum sample', async () => {
  const { users, campaign } = await rollout(3)
  t.clock.advance(DAY + HOUR)
  await t.services.engine.sweep()
  await t.services.passes.issue(users[0], { lifetimeMinutes: 60, oneTime: true, reason: 'locked out' }, actorOf(admin))
  await t.services.passes.issue(users[1], { lifetimeMinutes: 60, oneTime: true, reason: 'locked out' }, actorOf(admin))
  await t.services.engine.sweep()
  assert.equal((await t.services.campaigns.find(campaign.id))!.pauses.length, 0)
  const lines = await t.services.rollout.dryRunLines((await t.services.campaigns.find(campaign.id))!)
  assert.match(lines.join('\n'), /fewer than 10 users flipped in the last 24 hours, too few to judge/)
})

test('enforcement failures above their share pause the campaign; the dry run said it would', async () => {
  const { users, campaign } = await rollout(12, { breaker: { ...DEFAULT_BREAKER, failurePercent: 20 } })
  fake.failAlways(users.slice(0, 3).map((u) => u.id), { retryable: false, message: 'user rejected' })
  t.clock.advance(DAY + HOUR)
  await t.services.engine.sweep()
  const after = (await t.services.campaigns.find(campaign.id))!
  assert.equal(after.pauses.length, 1)
  assert.equal(after.pauses[0].signal, 'failures')
  assert.equal(after.pauses[0].figures.value, 25)
  assert.match((await t.services.rollout.dryRunLines(after)).join('\n'), /paused since .* \(enforcement failures as a share of attempts passed its threshold\)/)
})

test('the dry run says the breaker would trip on today\'s figures', async () => {
  const { users, campaign } = await rollout(10, { breaker: { ...DEFAULT_BREAKER, notMePer100: 5 } })
  t.clock.advance(DAY + HOUR)
  await t.services.engine.sweep()
  // Figures that arrive between sweeps: the dry run reads them before the next sweep acts on them.
  for (const u of users.slice(0, 2)) {
    await t.services.audit.append({ action: 'method.reported_not_me', actorId: u.id, actorLabel: u.email, subjectUserId: u.id, details: {} })
  }
  const lines = (await t.services.rollout.dryRunLines((await t.services.campaigns.find(campaign.id))!)).join('\n')
  assert.match(lines, /WOULD TRIP after the next sweep: 20 "This wasn't me" reports per 100 users flipped \(threshold 5\)/)
})

test('while paused, the dry run says so instead of listing no one without a reason', async () => {
  const { users, campaign } = await rollout(12, { breaker: { ...DEFAULT_BREAKER, failurePercent: 20 } })
  fake.failAlways(users.slice(0, 3).map((u) => u.id), { retryable: false, message: 'user rejected' })
  t.clock.advance(DAY + HOUR)
  await t.services.engine.sweep()
  assert.deepEqual(await t.services.engine.plan(), [])
  assert.match((await t.services.engine.whyNothingPlanned()).join('\n'), /paused by its breaker since \d{4}-\d\d-\d\d: nobody is flipped until an admin resumes it/)
  assert.equal(campaign.pauses.length, 0, 'the campaign as created had no pause')
})

test('passes issued before a user was flipped (to set up a first method) do not count', async () => {
  const { users, campaign } = await rollout(20)
  // An hour before the deadline, inside the same 24 hours as the flips.
  t.clock.advance(DAY - HOUR)
  for (const u of users.slice(0, 5)) await t.services.passes.issue(u, { lifetimeMinutes: 60, oneTime: true, reason: 'first enrollment' }, actorOf(admin))
  t.clock.advance(2 * HOUR)
  await t.services.engine.sweep()
  await t.services.engine.sweep()
  assert.equal((await t.services.campaigns.find(campaign.id))!.pauses.length, 0)
  assert.deepEqual((await t.services.rollout.readings((await t.services.campaigns.find(campaign.id))!)).counts, { flipped: 20, failures: 0, passes: 0, resets: 0, notMe: 0 })
})
