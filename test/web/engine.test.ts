import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { type CampaignInput } from '../../server/domain/campaigns.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createServices } from '../../server/wiring.ts'
import { FakeProvider } from '../fakes/provider.ts'
import { createTestUser, startTestApp, testConfig, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

const admin = { id: null, label: 'test-admin' }
let t: TestApp
// A fresh database per test: campaigns target everyone, so they would overlap across tests.
beforeEach(async () => { t = await startTestApp() })
afterEach(async () => { await t.close() })

function campaign (fields: Partial<CampaignInput> = {}): CampaignInput {
  return campaignInput(t.clock.now(), fields)
}

async function stateOf (userId: string) {
  return (await sqlOn(t.services).get('SELECT state, deadline, deadline_version AS version FROM user_states WHERE user_id = ?', userId)) as { state: string, deadline: number, version: number }
}

test('a disarmed campaign computes deadlines but flips nothing; arming is audited and the next sweep enforces each due user once', async () => {
  const users = await Promise.all([1, 2, 3].map(async () => createTestUser(t.services)))
  // Existing users (first seen long ago) with a deadline 10 days out.
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ?', t.clock.now().getTime() - 90 * DAY)
  const c = await t.services.campaigns.create(campaign(), admin)
  for (const u of users) assert.equal((await stateOf(u.id)).state, 'pending')

  t.clock.advance(11 * DAY)
  const disarmed = await t.services.engine.sweep()
  assert.equal(disarmed.planned, 0)
  for (const u of users) {
    assert.equal((await stateOf(u.id)).state, 'overdue')
    assert.equal((await t.services.users.findById(u.id))?.enforcedAt, null)
  }

  await t.services.campaigns.arm(c.id, admin)
  assert.equal((await t.services.audit.list({ action: 'campaign.armed' })).length, 1)
  const dryRun = await t.services.engine.plan()
  const report = await t.services.engine.sweep()
  const jobs = await sqlOn(t.services).all('SELECT user_id AS userId, action FROM enforcement_jobs ORDER BY user_id')
  assert.deepEqual(jobs, dryRun.map((p) => ({ userId: p.userId, action: p.action })).sort((a, b) => a.userId.localeCompare(b.userId)), 'the dry run is what the sweep did')
  assert.equal(report.planned, users.length)
  assert.ok(users.every((u) => dryRun.some((p) => p.userId === u.id && p.action === 'enforce')))
  for (const u of users) {
    assert.equal((await stateOf(u.id)).state, 'enforced')
    assert.notEqual((await t.services.users.findById(u.id))?.enforcedAt, null)
  }
  const again = await t.services.engine.sweep()
  assert.equal(again.planned, 0, 'nothing left to do: a second sweep changes nothing')
  const transitions = await sqlOn(t.services).all('SELECT from_state, to_state FROM state_transitions WHERE user_id = ? ORDER BY id', users[0].id)
  assert.deepEqual(transitions, [{ from_state: null, to_state: 'pending' }, { from_state: 'pending', to_state: 'overdue' }, { from_state: 'overdue', to_state: 'enforced' }])
})

test('an extension within the budget gives the grace period back (relax); beyond it is refused with a clear message', async () => {
  const user = await createTestUser(t.services)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  const c = await t.services.campaigns.create(campaign({ name: 'Short', deadline: new Date(t.clock.now().getTime() + DAY), maxExtensionDays: 10 }), admin)
  await t.services.campaigns.arm(c.id, admin)
  t.clock.advance(2 * DAY)
  await t.services.engine.sweep()
  assert.equal((await stateOf(user.id)).state, 'enforced')
  const version = (await stateOf(user.id)).version

  await assert.rejects(async () => await t.services.campaigns.extend(user.id, c.id, 11, 'travelling', admin), /allows 10 extra days per person; 10 are left/)
  await assert.rejects(async () => await t.services.campaigns.extend(user.id, c.id, 5, '', admin), /Say why/)
  await t.services.campaigns.extend(user.id, c.id, 5, 'on leave until Monday', admin)
  assert.equal((await stateOf(user.id)).version, version + 1, 'a moved deadline is a new version')
  await t.services.engine.sweep()
  assert.equal((await stateOf(user.id)).state, 'pending')
  assert.equal((await t.services.users.findById(user.id))?.enforcedAt, null)
  await assert.rejects(async () => await t.services.campaigns.extend(user.id, c.id, 6, 'more', admin), /5 are left/)
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'deadline.extended' })).length, 1)
})

test('break-glass accounts are never flipped and need a passkey, or they show as needing attention', async () => {
  const user = await createTestUser(t.services)
  await t.services.campaigns.exempt(user.id, { kind: 'break_glass', reason: 'emergency access', owner: 'CISO', expiresAt: null }, admin)
  assert.equal((await stateOf(user.id)).state, 'attention')
  await t.services.engine.sweep()
  assert.equal((await t.services.users.findById(user.id))?.enforcedAt, null)
  await assert.rejects(async () => await t.services.campaigns.exempt(user.id, { kind: 'service_account', reason: 'batch job', owner: 'ops', expiresAt: null }, admin), /need an expiry/)
})

test('any method change on a break-glass account emails the admins; adding a passkey clears its attention state', async () => {
  const adminUser = await createTestUser(t.services, { role: 'admin' })
  const user = await createTestUser(t.services)
  await t.services.campaigns.exempt(user.id, { kind: 'break_glass', reason: 'emergency access', owner: 'CISO', expiresAt: null }, admin)
  assert.equal((await stateOf(user.id)).state, 'attention')
  const passkey = await t.services.methods.addPasskey(user.id, { name: 'Safe key', credentialId: 'cred-1', publicKey: new Uint8Array([1]), counter: 0, transports: [], aaguid: '00000000-0000-0000-0000-000000000000', backedUp: false })
  await t.services.lifecycle.added((await t.services.users.findById(user.id))!, passkey, null)
  assert.equal((await stateOf(user.id)).state, 'exempt', 'with a passkey the break-glass account is in order')
  const alerts = (await t.services.outbox.latest()).filter((m) => m.recipient === adminUser.email && /break-glass account/.test(m.subject ?? ''))
  assert.equal(alerts.length, 1)
  assert.match(alerts[0].bodyText, /"Safe key" \(passkey\) was added on the break-glass account/)
})

test('enrolling moves a user from pending to enrolled at once, with the transition recorded', async () => {
  const user = await createTestUser(t.services)
  await t.services.campaigns.create(campaign(), admin)
  assert.equal((await stateOf(user.id)).state, 'pending')
  const app = await t.services.methods.addTotp(user.id, 'App', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 0)
  await t.services.lifecycle.added((await t.services.users.findById(user.id))!, app, null)
  assert.equal((await stateOf(user.id)).state, 'enrolled')
  const last = await sqlOn(t.services).get('SELECT from_state, to_state FROM state_transitions WHERE user_id = ? ORDER BY id DESC LIMIT 1', user.id)
  assert.deepEqual(last, { from_state: 'pending', to_state: 'enrolled' })
})

test('drift: enforcement switched off by hand at the provider is detected, audited and re-applied by the next sweep', async () => {
  const fake = new FakeProvider()
  const services = await createServices(testConfig(t.databaseEnv, t.dataDir), { clock: t.clock, providers: { local: fake } })
  try {
    const user = await createTestUser(services)
    await sqlOn(services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
    const c = await services.campaigns.create(campaign({ deadline: new Date(t.clock.now().getTime() + DAY) }), admin)
    await services.campaigns.arm(c.id, admin)
    t.clock.advance(2 * DAY)
    await services.engine.sweep()
    assert.equal(fake.isEnforced(user.id), true)

    // An administrator turns it off in the provider's own console.
    await fake.relax({ userId: user.id, externalId: null, email: user.email, enrolled: false })
    assert.deepEqual(await services.engine.detectDrift(), [user.id])
    assert.equal((await services.audit.list({ subjectUserId: user.id, action: 'enforcement.drift_detected' })).length, 1)
    assert.equal((await services.engine.plan()).filter((p) => p.userId === user.id && p.action === 'enforce').length, 1, 'the dry run shows the re-application')
    await services.engine.sweep()
    assert.equal(fake.isEnforced(user.id), true)
    assert.deepEqual(await services.engine.detectDrift(), [], 'nothing drifted any more')
  } finally {
    await services.close()
  }
})

test('a job whose process died during every attempt ends in attention instead of being retried forever', async () => {
  const user = await createTestUser(t.services)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  const c = await t.services.campaigns.create(campaign({ deadline: new Date(t.clock.now().getTime() + DAY) }), admin)
  await t.services.campaigns.arm(c.id, admin)
  t.clock.advance(2 * DAY)
  await t.services.engine.refreshLapsed()
  await t.services.engineStore.enqueueDue(t.clock.now())
  // Five earlier sweeps claimed it and died holding the lease (the sixth claim is the last allowed attempt).
  await sqlOn(t.services).run("UPDATE enforcement_jobs SET status = 'running', attempts = 5, lease_owner = 'dead', lease_expires_at = ? WHERE user_id = ?", t.clock.now().getTime() - 1, user.id)
  const report = await t.services.engine.sweep()
  assert.equal(report.failed, 1)
  assert.equal((await stateOf(user.id)).state, 'attention')
  assert.equal((await t.services.users.findById(user.id))?.enforcedAt, null)
  assert.equal((await t.services.engine.sweep()).planned, 0, 'attention waits for a person, not for the next sweep')
})

test('a user added after the campaign and never evaluated is evaluated by the next sweep, as the dashboard says, and enforced if due', async () => {
  const c = await t.services.campaigns.create(campaign({ deadline: new Date(t.clock.now().getTime() + DAY) }), admin)
  await t.services.campaigns.arm(c.id, admin)
  // Imported afterwards, as a CSV import or the API would: no state is derived for them yet.
  const late = await createTestUser(t.services)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, late.id)
  await sqlOn(t.services).run('DELETE FROM user_states WHERE user_id = ?', late.id)
  t.clock.advance(2 * DAY)

  const report = await t.services.engine.sweep()

  assert.equal(report.completed, 1)
  assert.equal((await stateOf(late.id)).state, 'enforced')
})
