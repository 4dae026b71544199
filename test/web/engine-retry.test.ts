import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { EngineSettings } from '../../server/domain/engine.ts'
import { ProviderError } from '../../server/domain/provider.ts'
import type { User } from '../../server/domain/users.ts'
import type { Services } from '../../server/wiring.ts'
import { FakeProvider } from '../fakes/provider.ts'
import { createTestUser, csrfFor, FakeClock, signIn, startTestApp, stepUp, submitForm, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

const SYSTEM = { id: null, label: 'test' }
const DENIED = 'User: arn:aws:iam::123456789012:user/portal is not authorized to perform: iam:AttachUserPolicy'

/** The app on a real database with a scripted provider as 'local'; engine waits cost nothing. */
async function appWith (t: TestContext, fake: FakeProvider, clock: FakeClock, settings: Partial<EngineSettings> = {}): Promise<TestApp> {
  const testApp = await startTestApp({}, { clock, overrides: { providers: { local: fake }, engineSettings: { concurrency: 1, ...settings }, sleep: async (ms) => { clock.advance(ms) } } })
  t.after(async () => { await testApp.close() })
  return testApp
}

/** `count` long-standing users under an armed campaign whose deadline has just passed. */
async function dueUsers (services: Services, clock: FakeClock, count: number): Promise<{ users: User[], campaignId: string }> {
  const users: User[] = []
  for (let i = 0; i < count; i++) users.push(await createTestUser(services))
  const ids = users.map((u) => u.id)
  await sqlOn(services).run(`UPDATE users SET first_seen_at = ? WHERE id IN (${ids.map(() => '?').join(',')})`, clock.now().getTime() - 90 * DAY, ...ids)
  const campaign = await services.campaigns.create(campaignInput(clock.now(), { targetKind: 'group', targetValue: 'staff' }), SYSTEM)
  for (const id of ids) await sqlOn(services).run('INSERT INTO user_groups (user_id, group_name) VALUES (?, ?)', id, 'staff')
  await services.campaigns.arm(campaign.id, SYSTEM)
  clock.advance(11 * DAY)
  await services.engine.refreshAll()
  return { users, campaignId: campaign.id }
}

async function stateOf (services: Services, userId: string): Promise<{ state: string, reason: string }> {
  return (await sqlOn(services).get('SELECT state, reason FROM user_states WHERE user_id = ?', userId)) as { state: string, reason: string }
}

async function inAttention (services: Services, users: User[]): Promise<User[]> {
  const found: User[] = []
  for (const u of users) if ((await stateOf(services, u.id)).state === 'attention') found.push(u)
  return found
}

const denied = (): ProviderError => new ProviderError(DENIED, false, null, 'access_denied')

test('an admin retries one user in attention from the dashboard (CSRF, step-up, audited): once the cause is fixed, the next sweep enforces them', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  const testApp = await appWith(t, fake, clock)
  const { services } = testApp
  const { users } = await dueUsers(services, clock, 3)
  fake.failNext(denied())
  await services.engine.sweep()
  const [failed] = await inAttention(services, users)
  assert.ok(failed !== undefined, 'one user needs attention')
  assert.match((await stateOf(services, failed.id)).reason, /^Enforcement failed: access_denied: .*iam:AttachUserPolicy\. What to do: The portal is not allowed to do this at the provider: grant the permission the message names to the portal's AWS IAM user or Entra app, then press Retry on the dashboard\.$/)

  const adminUser = await createTestUser(services, { role: 'admin', email: 'admin@test.example' })
  const admin = await signIn(testApp, adminUser.email)
  const page = await admin.get('/admin')
  const section = /<section class="admin-section" aria-labelledby="attention-heading"[^]*?<\/section>/.exec(page.text)?.[0] ?? ''
  assert.deepEqual([...section.matchAll(/action="\/admin\/users\/([^/]+)\/retry-enforcement"/g)].map((m) => m[1]), [failed.id])
  assert.match(section, /action="\/admin\/attention\/retry"/)

  const forged = await admin.post(`/admin/users/${failed.id}/retry-enforcement`).type('form').send({ _csrf: 'forged' })
  assert.equal(forged.status, 403)
  const unconfirmed = await admin.post(`/admin/users/${failed.id}/retry-enforcement`).type('form').send({ _csrf: await csrfFor(admin, '/admin') })
  assert.notEqual(unconfirmed.headers.location, '/admin#attention', 'without a fresh step-up nothing is done')
  assert.equal((await stateOf(services, failed.id)).state, 'attention')
  assert.equal((await services.audit.list({ action: 'enforcement.retry_requested' })).length, 0)

  await stepUp(testApp, admin, adminUser)
  const res = await submitForm(admin, '/admin', `/admin/users/${failed.id}/retry-enforcement`)
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/admin#attention')
  assert.match((await admin.get('/admin')).text, /Retrying: the next sweep \(every few minutes\) tries again, if the user&#39;s deadline has passed in an armed campaign\./)
  const [event] = await services.audit.list({ action: 'enforcement.retry_requested' })
  assert.equal(event.subjectUserId, failed.id)
  assert.equal(event.actorLabel, 'admin@test.example')
  assert.equal((await stateOf(services, failed.id)).state, 'overdue')
  assert.deepEqual((await services.engine.plan()).map((p) => [p.userId, p.action]), [[failed.id, 'enforce']], 'the dry run shows the retry')

  await services.engine.sweep()
  assert.equal((await stateOf(services, failed.id)).state, 'enforced')
  assert.equal(fake.isEnforced(failed.id), true)

  const nothing = await submitForm(admin, '/admin', `/admin/users/${failed.id}/retry-enforcement`)
  assert.equal(nothing.status, 303)
  assert.match((await admin.get('/admin')).text, /This user has no failed enforcement to retry\./)
})

test('Retry all tries again everyone whose enforcement failed for good, each audited; break-glass attention is left to a person', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  const testApp = await appWith(t, fake, clock)
  const { services } = testApp
  const { users } = await dueUsers(services, clock, 4)
  const breakGlass = await createTestUser(services)
  await services.campaigns.exempt(breakGlass.id, { kind: 'break_glass', reason: 'Emergency access', owner: 'Security', expiresAt: null }, SYSTEM)
  fake.failNext(denied(), denied())
  await services.engine.sweep()
  const failed = await inAttention(services, users)
  assert.equal(failed.length, 2)

  const adminUser = await createTestUser(services, { role: 'admin' })
  const admin = await signIn(testApp, adminUser.email)
  await stepUp(testApp, admin, adminUser)
  const res = await submitForm(admin, '/admin', '/admin/attention/retry')
  assert.equal(res.status, 303)
  assert.match((await admin.get('/admin')).text, /2 users will be tried again at the next sweep \(every few minutes\), where their deadline has passed in an armed campaign\./)
  const events = await services.audit.list({ action: 'enforcement.retry_requested' })
  assert.deepEqual(events.map((e) => e.subjectUserId).sort(), failed.map((u) => u.id).sort())
  assert.ok(events.every((e) => e.actorId === adminUser.id))

  await services.engine.sweep()
  for (const u of users) assert.equal((await stateOf(services, u.id)).state, 'enforced', u.email)
  assert.equal((await stateOf(services, breakGlass.id)).state, 'attention', 'a break-glass account without a passkey still needs a person')
})

test('disarming and arming again, or exempting and revoking the exemption, tries a failed user again: the arm and revoke messages\' "next sweep" is true', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  const testApp = await appWith(t, fake, clock)
  const { services } = testApp
  const { users, campaignId } = await dueUsers(services, clock, 2)
  fake.failNext(denied(), denied())
  await services.engine.sweep()
  assert.equal((await inAttention(services, users)).length, 2)
  const [first, second] = users

  await services.campaigns.disarm(campaignId, SYSTEM)
  await services.campaigns.arm(campaignId, SYSTEM)
  assert.equal(JSON.parse((await services.audit.list({ action: 'campaign.armed' }))[0].details).failuresRetried, 2)
  await services.campaigns.exempt(first.id, { kind: 'other', reason: 'on leave', owner: 'HR', expiresAt: new Date(clock.now().getTime() + DAY) }, SYSTEM)
  const exemption = (await services.campaigns.exemptions('active')).find((e) => e.userId === first.id)!
  await services.campaigns.revokeExemption(exemption.id, SYSTEM)

  assert.deepEqual((await services.engine.plan()).map((p) => p.userId).sort(), [first.id, second.id].sort())
  await services.engine.sweep()
  for (const u of users) assert.equal((await stateOf(services, u.id)).state, 'enforced')
})

test('a drift check that reaches the provider again brings enforcement waiting out an outage forward to the next sweep', async (t) => {
  const clock = new FakeClock()
  const fake = new FakeProvider({ now: () => clock.now() })
  // One fast attempt: the first transient failure already waits on the long schedule.
  const testApp = await appWith(t, fake, clock, { maxAttempts: 1 })
  const { services } = testApp
  const { users } = await dueUsers(services, clock, 2)
  fake.failNext(new ProviderError('IAM AttachUserPolicy failed on the AWS side (HTTP 503)', true, null, 'server_error'))
  const report = await services.engine.sweep()
  assert.deepEqual([report.completed, report.waiting], [1, 1])
  const waiting = users.find((u) => !fake.isEnforced(u.id))!
  assert.match((await stateOf(services, waiting.id)).reason, /Retrying at 10:00 UTC on 2026-12-06 — provider unavailable \(server_error: IAM AttachUserPolicy failed on the AWS side \(HTTP 503\)\)\./)
  assert.deepEqual((await services.engine.plan()).map((p) => p.reason), ['Deadline 2026-12-05 passed without a qualifying method: making MFA mandatory (registration required at next sign-in). Waiting for the provider: next try at 10:00 UTC on 2026-12-06.'],
    'the dry run says the next sweep will not try yet')
  clock.advance(5 * 60_000)
  assert.equal((await services.engine.sweep()).completed, 0, 'not yet: it waits an hour')

  assert.deepEqual(await services.engine.detectDrift(), [], 'the enforced user is still enforced, and the provider answered')
  assert.equal((await services.audit.list({ action: 'enforcement.retry_brought_forward' })).length, 1)
  assert.match((await stateOf(services, waiting.id)).reason, /Retrying at 09:05 UTC on 2026-12-06/, "now, no longer an hour later")
  assert.equal((await services.engine.sweep()).completed, 1)
  assert.equal((await stateOf(services, waiting.id)).state, 'enforced')
})
