import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServices } from '../../server/wiring.ts'
import { FakeProvider } from '../fakes/provider.ts'
import { createTestUser, signIn, startTestApp, testConfig, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

const admin = { id: null, label: 'test-admin' }
let t: TestApp
beforeEach(async () => { t = await startTestApp() })
afterEach(async () => { await t.close() })

async function stateOf (userId: string): Promise<string> {
  return (await sqlOn(t.services).get<{ state: string }>('SELECT state FROM user_states WHERE user_id = ?', userId))!.state
}

async function existingUser (fields: { privileged?: boolean, role?: 'user' | 'helpdesk' | 'admin' } = {}) {
  const user = await createTestUser(t.services, fields)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  return user
}

test('text messages count, count as weak, or do not count, as the campaign says; the home page words it accordingly', async () => {
  const user = await existingUser()
  await t.services.methods.addPhone(user.id, 'Work phone', '+14155550100')
  const c = await t.services.campaigns.create(campaignInput(t.clock.now(), { smsPolicy: 'excluded' }), admin)
  assert.equal(await stateOf(user.id), 'pending', 'a phone alone does not count in this campaign')
  const agent = await signIn(t, user.email)
  assert.match((await agent.get('/')).text, /Text-message codes do not count on their own here/)

  await sqlOn(t.services).run("UPDATE campaigns SET sms_policy = 'weak' WHERE id = ?", c.id)
  await t.services.engine.refreshUser(user.id)
  assert.equal(await stateOf(user.id), 'enrolled', 'weak still qualifies')
  assert.match((await agent.get('/')).text, /A passkey or an authenticator app is safer/)
})

test('privileged users need a passkey unless the campaign accepts any qualifying method for them', async () => {
  const user = await existingUser({ privileged: true })
  await t.services.methods.addTotp(user.id, 'Phone app', 'JBSWY3DPEHPK3PXP', 0)
  const c = await t.services.campaigns.create(campaignInput(t.clock.now()), admin)
  assert.equal(await stateOf(user.id), 'pending', 'an authenticator app is not phishing-resistant')
  await sqlOn(t.services).run("UPDATE campaigns SET privileged_methods = 'any' WHERE id = ?", c.id)
  await t.services.engine.refreshUser(user.id)
  assert.equal(await stateOf(user.id), 'enrolled')
})

test('methods the provider reports (synced from the directory) count toward enrollment like portal methods', async () => {
  const user = await existingUser()
  await t.services.campaigns.create(campaignInput(t.clock.now()), admin)
  assert.equal(await stateOf(user.id), 'pending')
  await sqlOn(t.services).run('UPDATE users SET provider_methods = ? WHERE id = ?', '["email"]', user.id)
  await t.services.engine.refreshUser(user.id)
  assert.equal(await stateOf(user.id), 'pending', 'an email method proves nothing')
  await sqlOn(t.services).run('UPDATE users SET provider_methods = ? WHERE id = ?', '["totp"]', user.id)
  await t.services.engine.refreshUser(user.id)
  assert.equal(await stateOf(user.id), 'enrolled')
})

test('soft-block stage: in the last days before the deadline, a user without a method reaches only enrollment until they set one up', async () => {
  const user = await existingUser({ role: 'admin' })
  await t.services.campaigns.create(campaignInput(t.clock.now(), { softBlockDays: 5 }), admin)
  const agent = await signIn(t, user.email)
  assert.equal((await agent.get('/admin')).status, 200, 'ten days out, nothing is blocked yet')

  t.clock.advance(6 * DAY) // 4 days left: inside the 5-day soft-block stage
  const again = await signIn(t, user.email)
  const blocked = await again.get('/admin')
  assert.equal(blocked.status, 303)
  assert.equal(blocked.headers.location, '/')
  const home = await again.get('/')
  assert.equal(home.status, 200)
  assert.match(home.text, /Action required:/)
  assert.match(home.text, /rest of the portal opens once you have one/)
  assert.equal((await again.get('/enroll/totp')).status, 200, 'enrollment stays open')
  const api = await again.get('/admin').set('Accept', 'application/json')
  assert.equal(api.status, 403)
  assert.equal(api.body.error.code, 'enrollment_required')
  assert.equal(await stateOf(user.id), 'pending', 'nothing changes at the provider: still in the grace period')

  await t.services.methods.addTotp(user.id, 'Phone app', 'JBSWY3DPEHPK3PXP', 0)
  await t.services.engine.refreshUser(user.id)
  assert.equal((await again.get('/admin')).status, 200, 'with a method, the portal opens again')
  assert.doesNotMatch((await again.get('/')).text, /Action required:/)
})

test('drift under a "flag only" campaign: the user needs attention, nothing is re-applied until an admin approves it (audited)', async () => {
  const fake = new FakeProvider()
  const services = await createServices(testConfig(t.databaseEnv, t.dataDir), { clock: t.clock, providers: { local: fake } })
  try {
    const user = await createTestUser(services)
    await sqlOn(services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
    const c = await services.campaigns.create(campaignInput(t.clock.now(), { deadline: new Date(t.clock.now().getTime() + DAY), driftPolicy: 'flag' }), admin)
    await services.campaigns.arm(c.id, admin)
    t.clock.advance(2 * DAY)
    await services.engine.sweep()
    assert.equal(fake.isEnforced(user.id), true)

    await fake.relax({ userId: user.id, externalId: null, email: user.email, enrolled: false })
    assert.deepEqual(await services.engine.detectDrift(), [user.id])
    const [event] = await services.audit.list({ subjectUserId: user.id, action: 'enforcement.drift_detected' })
    assert.equal(JSON.parse(event.details).policy, 'flag')
    assert.equal((await sqlOn(services).get<{ state: string }>('SELECT state FROM user_states WHERE user_id = ?', user.id))!.state, 'attention')
    assert.equal((await services.engine.plan()).length, 0, 'the dry run plans nothing')
    const enforceCalls = fake.calls.filter((call) => call.op === 'enforce').length
    await services.engine.sweep()
    assert.equal(fake.isEnforced(user.id), false, 'flag only: the sweep leaves it off')
    assert.equal(fake.calls.filter((call) => call.op === 'enforce').length, enforceCalls)

    await assert.rejects(async () => { await services.campaigns.reapplyAfterDrift('no-such-user', admin) }, /no flagged drift/)
    await services.campaigns.reapplyAfterDrift(user.id, admin)
    assert.equal((await services.audit.list({ subjectUserId: user.id, action: 'enforcement.drift_reapply_approved' })).length, 1)
    await services.engine.sweep()
    assert.equal(fake.isEnforced(user.id), true, 'approved: the next sweep puts it back')
  } finally {
    await services.close()
  }
})
