import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServices, type Services } from '../../server/wiring.ts'
import { FakeClock, tempDir, testConfig } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra } from '../fakes/graph/server.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam } from '../fakes/iam/server.ts'

const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
const admin = { id: null, label: 'test-admin' }

/** The portal's own services, configured like an operator would (PROVIDERS + variables), with retries that do not wait. */
async function portal (env: Record<string, string>, clock: FakeClock): Promise<Services> {
  return createServices(testConfig(env), { clock, sleep: async () => {}, engineSettings: { baseBackoffMs: 1, maxBackoffMs: 5 } })
}

function rows (services: Services, provider: string) {
  return services.database.sqlite.prepare(`SELECT u.email, u.external_id AS externalId, u.display_name AS name, u.privileged, u.disabled, u.phone, u.provider_methods AS methods, s.state
    FROM users u LEFT JOIN user_states s ON s.user_id = u.id WHERE u.provider = ? ORDER BY u.external_id`).all(provider) as Array<{ email: string, externalId: string, name: string, privileged: number, disabled: number, phone: string | null, methods: string, state: string | null }>
}

test('Entra: sync brings users in once (privileged, phones, methods), a past deadline PATCHes each due user once under throttling, and drift is re-applied', async () => {
  const fake = await startFakeEntra()
  const clock = new FakeClock()
  const services = await portal({ PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string> }, clock)
  try {
    const users = Array.from({ length: 30 }, (_, i) => fake.tenant.addUser({ mobilePhone: i % 5 === 0 ? 'not a number' : '+1 425 555 01' + String(i).padStart(2, '0'), methods: i % 3 === 0 ? ['microsoftAuthenticator'] : [] }))
    const gone = fake.tenant.addUser({ accountEnabled: false })
    fake.tenant.assignRole(users[1].id, GLOBAL_ADMIN)

    const first = await services.directorySync.sync(services.providers.entra)
    assert.equal(first.created, 30, 'disabled accounts are not brought in')
    assert.equal(first.invalidPhones, 6)
    assert.equal(first.registrationSource, 'userRegistrationDetails')
    const synced = rows(services, 'entra')
    assert.equal(synced.length, 30)
    assert.ok(!synced.some((r) => r.externalId === gone.id))
    assert.equal(synced.find((r) => r.externalId === users[1].id)!.privileged, 1)
    assert.equal(synced.find((r) => r.externalId === users[1].id)!.phone, '+14255550101', 'directory phones are stored in E.164 for pinning')
    assert.deepEqual(JSON.parse(synced.find((r) => r.externalId === users[3].id)!.methods), ['authenticator'])
    assert.equal((await services.directorySync.latest('entra'))!.registrationSource, 'userRegistrationDetails', 'the admin page can say where registration facts came from')

    // Re-sync: updates, never duplicates; a user disabled in Entra is switched off in the portal.
    fake.tenant.find(users[2].id)!.accountEnabled = false
    const second = await services.directorySync.sync(services.providers.entra)
    assert.equal(second.created, 0)
    assert.equal(rows(services, 'entra').length, 30)
    assert.equal(rows(services, 'entra').find((r) => r.externalId === users[2].id)!.disabled, 1)

    const now = clock.now().getTime()
    // Accounts that existed long before the campaign (created in the directory, and seen by the portal, 90 days ago).
    services.database.sqlite.prepare("UPDATE users SET first_seen_at = ?, directory_created_at = ? WHERE provider = 'entra'").run(now - 90 * DAY, now - 90 * DAY)
    const campaign = await services.campaigns.create(campaignInput(now, { targetKind: 'provider', targetValue: 'entra', deadline: new Date(now + DAY), privilegedMethods: 'any' }), admin)
    await services.campaigns.arm(campaign.id, admin)
    clock.advance(2 * DAY)
    fake.failNext(4, { status: 429, retryAfterSeconds: 0 })
    fake.failNext(2, { status: 503 })
    for (let i = 0; i < 5; i++) await services.engine.sweep()

    for (const user of users) {
      if (user === users[2]) {
        assert.equal(fake.requirementWrites(user.id).patches, 0, 'disabled: not targeted')
        continue
      }
      assert.equal(fake.requirementWrites(user.id).changes, 1, `one change for ${user.id}`)
      // Registered users are enforced; the rest must register at next sign-in.
      assert.equal(fake.tenant.find(user.id)!.requirement, user.methods.length > 0 ? 'enforced' : 'enabled')
    }
    assert.equal(rows(services, 'entra').filter((r) => r.state === 'enforced').length, 29)

    fake.tenant.setRequirementByHand(users[4].id, 'disabled')
    assert.deepEqual(await services.engine.detectDrift(), [services.database.sqlite.prepare('SELECT id FROM users WHERE external_id = ?').pluck().get(users[4].id)])
    await services.engine.sweep()
    assert.equal(fake.tenant.find(users[4].id)!.requirement, 'enabled', 'drift re-applied')
  } finally {
    await services.close()
    await fake.close()
  }
})

test('AWS: only IAM users with a console password are targeted; the policy is created once and attached once per due user; drift is re-applied; an extension detaches it', async () => {
  const clock = new FakeClock()
  const fake = await startFakeIam({ now: () => clock.now() })
  const services = await portal({ PROVIDERS: 'aws', ...awsEnv(fake) }, clock)
  try {
    for (let i = 0; i < 12; i++) {
      fake.state.addUser({ userName: `dev${i}`, consolePassword: i % 3 !== 0, tags: i === 1 ? { email: 'dev1@example.org' } : {}, devices: i === 2 ? ['virtual'] : [] })
    }
    const report = await services.directorySync.sync(services.providers.aws)
    assert.equal(report.created, 12)
    const synced = rows(services, 'aws')
    assert.equal(synced.find((r) => r.name === 'dev1')!.email, 'dev1@example.org')
    // IAM users are keyed by user id; one without an e-mail tag gets an address that is never delivered, naming the id.
    assert.equal(synced.find((r) => r.name === 'dev4')!.externalId, fake.state.user('dev4').userId)
    assert.equal(synced.find((r) => r.name === 'dev4')!.email, `${fake.state.user('dev4').userId.toLowerCase()}@aws.invalid`, 'no email tag: an address that is never delivered')
    assert.deepEqual(JSON.parse(synced.find((r) => r.name === 'dev2')!.methods), ['totp'])

    const now = clock.now().getTime()
    // Accounts that existed long before the campaign (created in the directory, and seen by the portal, 90 days ago).
    services.database.sqlite.prepare("UPDATE users SET first_seen_at = ?, directory_created_at = ? WHERE provider = 'aws'").run(now - 90 * DAY, now - 90 * DAY)
    const campaign = await services.campaigns.create(campaignInput(now, { targetKind: 'provider', targetValue: 'aws', deadline: new Date(now + DAY), maxExtensionDays: 30 }), admin)
    await services.engine.refreshAll()
    assert.equal(rows(services, 'aws').filter((r) => r.state === 'not_targeted').length, 4, 'no console password: not targeted')
    await services.campaigns.arm(campaign.id, admin)
    clock.advance(2 * DAY)
    fake.inject('throttle', { times: 2, action: 'AttachUserPolicy' })
    for (let i = 0; i < 5; i++) await services.engine.sweep()

    assert.equal(fake.callsTo('CreatePolicy', { ok: true }).length, 1, 'the policy is created once')
    const attached = fake.callsTo('AttachUserPolicy', { ok: true }).map((c) => c.params.UserName).sort()
    assert.deepEqual(attached, ['dev1', 'dev10', 'dev11', 'dev2', 'dev4', 'dev5', 'dev7', 'dev8'])

    // Someone detaches the policy from dev7 in the AWS console: found by the drift check, attached again by the next sweep.
    const policyArn = fake.callsTo('AttachUserPolicy', { ok: true })[0].params.PolicyArn
    fake.state.detachUserPolicy('dev7', policyArn)
    const dev7 = services.database.sqlite.prepare("SELECT id FROM users WHERE display_name = 'dev7'").pluck().get() as string
    assert.deepEqual(await services.engine.detectDrift(), [dev7])
    await services.engine.sweep()
    assert.deepEqual(fake.callsTo('AttachUserPolicy', { ok: true }).map((c) => c.params.UserName).filter((name) => name === 'dev7'), ['dev7', 'dev7'], 'attached again')

    const dev5 = services.database.sqlite.prepare("SELECT id FROM users WHERE display_name = 'dev5'").pluck().get() as string
    await services.campaigns.extend(dev5, campaign.id, 10, 'travelling', admin)
    await services.engine.sweep()
    assert.deepEqual(fake.callsTo('DetachUserPolicy', { ok: true }).map((c) => c.params.UserName), ['dev5'])
  } finally {
    await services.close()
    await fake.close()
  }
})

test('Entra: an exemption gives back the per-user state found before the first flip, after a restart too, and leaves (and audits) a state an admin changed since', async () => {
  const fake = await startFakeEntra()
  const clock = new FakeClock()
  const env = { PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string> }
  const dataDir = tempDir()
  let services = await createServices(testConfig(env, dataDir), { clock, sleep: async () => {}, engineSettings: { baseBackoffMs: 1, maxBackoffMs: 5 } })
  try {
    // An administrator had put one user on `enabled` before the campaign; the other was `disabled`.
    const presetByAdmin = fake.tenant.addUser({ methods: ['fido2'], requirement: 'enabled' })
    const changedLater = fake.tenant.addUser({ methods: ['fido2'] })
    await services.directorySync.sync(services.providers.entra)
    const now = clock.now().getTime()
    services.database.sqlite.prepare("UPDATE users SET first_seen_at = ?, directory_created_at = ? WHERE provider = 'entra'").run(now - 90 * DAY, now - 90 * DAY)
    const campaign = await services.campaigns.create(campaignInput(now, { targetKind: 'provider', targetValue: 'entra', deadline: new Date(now - DAY) }), admin)
    await services.campaigns.arm(campaign.id, admin)
    await services.engine.sweep()
    assert.deepEqual([presetByAdmin.requirement, changedLater.requirement], ['enforced', 'enforced'])

    // The portal restarts: what it found is in the database, not in memory.
    await services.close()
    services = await createServices(testConfig(env, dataDir), { clock, sleep: async () => {}, engineSettings: { baseBackoffMs: 1, maxBackoffMs: 5 } })
    fake.tenant.setRequirementByHand(changedLater.id, 'enabled')
    const idOf = (objectId: string): string => services.database.sqlite.prepare('SELECT id FROM users WHERE external_id = ?').pluck().get(objectId) as string
    for (const user of [presetByAdmin, changedLater]) {
      await services.campaigns.exempt(idOf(user.id), { kind: 'service_account', reason: 'robot account', owner: 'ops', expiresAt: new Date(now + 30 * DAY) }, admin)
    }
    await services.engine.sweep()
    assert.equal(presetByAdmin.requirement, 'enabled', 'back to the administrator\'s own setting, not disabled')
    assert.equal(changedLater.requirement, 'enabled', 'an administrator\'s later change stays')
    const relaxed = services.database.sqlite.prepare("SELECT subject_user_id AS userId, details FROM audit_events WHERE action = 'enforcement.relaxed'").all() as Array<{ userId: string, details: string }>
    const note = (objectId: string): unknown => JSON.parse(relaxed.find((r) => r.userId === idOf(objectId))!.details).note
    assert.equal(note(presetByAdmin.id), undefined)
    assert.match(String(note(changedLater.id)), /an administrator changed it after the portal set "enforced"/)
    assert.equal(services.database.sqlite.prepare('SELECT count(*) FROM directory_enforcement_records').pluck().get(), 0, 'records are dropped once used')
  } finally {
    await services.close()
    await fake.close()
  }
})

test('AWS: a policy version without the Deny put in force by hand is drift for every enforced user, and the next sweep puts the shipped document back once', async () => {
  const clock = new FakeClock()
  const fake = await startFakeIam({ now: () => clock.now() })
  const services = await portal({ PROVIDERS: 'aws', ...awsEnv(fake) }, clock)
  try {
    for (let i = 0; i < 3; i++) fake.state.addUser({ userName: `ops${i}`, consolePassword: true, createDate: new Date(clock.now().getTime() - 400 * DAY) })
    await services.directorySync.sync(services.providers.aws)
    const now = clock.now().getTime()
    services.database.sqlite.prepare("UPDATE users SET first_seen_at = ? WHERE provider = 'aws'").run(now - 90 * DAY)
    const campaign = await services.campaigns.create(campaignInput(now, { deadline: new Date(now - DAY) }), admin)
    await services.campaigns.arm(campaign.id, admin)
    await services.engine.sweep()
    const policyArn = fake.callsTo('AttachUserPolicy', { ok: true })[0].params.PolicyArn
    const shipped = fake.state.policy(policyArn).document

    fake.state.createPolicyVersion(policyArn, JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'iam:ListUsers', Resource: '*' }] }), true)
    clock.advance(5 * 60_000)
    const drift = await services.engine.checkDrift()
    assert.deepEqual({ drifted: drift.drifted.length, checked: drift.checked, unchecked: drift.unchecked }, { drifted: 3, checked: 3, unchecked: 0 })
    await services.engine.sweep()

    assert.deepEqual(JSON.parse(fake.state.policy(policyArn).document), JSON.parse(shipped))
    assert.equal(fake.callsTo('CreatePolicyVersion', { ok: true }).length, 1, 'one new version, however many users drifted')
    assert.equal(services.database.sqlite.prepare("SELECT count(*) FROM user_states WHERE state = 'enforced'").pluck().get(), 3)
    assert.deepEqual((await services.engine.checkDrift()).drifted, [])
  } finally {
    await services.close()
    await fake.close()
  }
})
