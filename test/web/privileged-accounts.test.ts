import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { User } from '../../server/domain/users.ts'
import { type Agent, createTestUser, csrfFor, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra, type FakeEntra } from '../fakes/graph/server.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { sqlOn, type SqlParam } from '../helpers/sql.ts'

/**
 * Issue #12 item 4: directory administrators sync in as role "user" with privileged = true. The helpdesk must not
 * be able to act on them (pass, reset, invitation, extension): each of these took such an account over before.
 */

const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
const ADMINISTRATOR_ACCESS = 'arn:aws:iam::aws:policy/AdministratorAccess'
const START = new Date('2026-11-25T09:00:10Z')
const SYSTEM = { id: null, label: 'test' }

async function helpdeskAgent (t: TestApp): Promise<Agent> {
  return signInStaff(t, await createTestUser(t.services, { role: 'helpdesk' }))
}

async function count (t: TestApp, sql: string, ...params: SqlParam[]): Promise<number> {
  return (await sqlOn(t.services).value(sql, ...params)) as number
}

/** The refusal a helpdesk member sees: a 403 page that says why and who can do it. */
function assertRefused (res: { status: number, text: string }, label: string): void {
  assert.equal(res.status, 403, label)
  assert.match(res.text, /privileged account/, label)
  assert.match(res.text, /only administrators/i, label)
}

describe('Entra administrators (Global Administrator synced as a privileged user)', () => {
  let t: TestApp
  let fake: FakeEntra
  let admin: User
  before(async () => {
    fake = await startFakeEntra({ now: () => t?.clock.now() ?? START })
    t = await startTestApp({ PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string>, TRUSTED_NETWORKS: '127.0.0.0/8,::1/128', TWO_PERSON_RULE: 'false' })
    t.clock.set(START)
    const globalAdmin = fake.tenant.addUser({ displayName: 'Gina Global', methods: ['microsoftAuthenticator'] })
    fake.tenant.assignRole(globalAdmin.id, GLOBAL_ADMIN)
    await t.services.directorySync.sync(t.services.providers.entra)
    const id = (await sqlOn(t.services).value("SELECT id FROM users WHERE provider = 'entra' AND external_id = ?", globalAdmin.id)) as string
    admin = (await t.services.users.findById(id))!
    assert.equal(admin.role, 'user')
    assert.equal(admin.privileged, true, 'the sync marks a Global Administrator privileged')
  })
  after(async () => { await t.close(); await fake.close() })

  test('the helpdesk cannot get a Microsoft temporary access pass for a Global Administrator: 403, and no pass exists at Microsoft', async () => {
    const helpdesk = await helpdeskAgent(t)
    const res = await submitForm(helpdesk, `/helpdesk/users/${admin.id}`, `/helpdesk/users/${admin.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason: 'says they lost their phone' })
    assertRefused(res, 'pass')
    assert.equal(fake.tenant.byId.get(admin.externalId!)!.tap, null, 'no TAP was created through the app\'s Graph permission')
    assert.equal((await t.services.audit.list({ action: 'pass.issued', subjectUserId: admin.id })).length, 0)
  })

  test('the helpdesk cannot reset a Global Administrator\'s methods (with or without a pass): 403, nothing removed', async () => {
    const helpdesk = await helpdeskAgent(t)
    await t.services.methods.addTotp(admin.id, 'Portal app', 'JBSWY3DPEHPK3PXP', 0)
    const res = await submitForm(helpdesk, `/helpdesk/users/${admin.id}`, `/helpdesk/users/${admin.id}/reset`, { reason: 'phone stolen', issuePass: 'on' })
    assertRefused(res, 'reset')
    assert.equal((await t.services.methods.listFor(admin.id)).length, 1)
    assert.equal(fake.tenant.byId.get(admin.externalId!)!.tap, null)
    assert.equal((await t.services.users.findById(admin.id))!.reenrollUntil, null)
  })

  test('the helpdesk page of a Global Administrator says why nothing can be done there and that an administrator must do it', async () => {
    const helpdesk = await helpdeskAgent(t)
    const page = await helpdesk.get(`/helpdesk/users/${admin.id}`)
    assert.equal(page.status, 200)
    assert.match(page.text, /privileged account/)
    assert.match(page.text, /only administrators can act on it/i)
    assert.doesNotMatch(page.text, /Issue pass|Reset methods/)
  })
})

describe('AWS administrators (AdministratorAccess attached, synced as a privileged user)', () => {
  let t: TestApp
  let fake: FakeIam
  let root: User
  before(async () => {
    fake = await startFakeIam({ now: () => t?.clock.now() ?? START })
    fake.report.delayMs = 0
    t = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24', TWO_PERSON_RULE: 'false' })
    fake.state.addUser({ userName: 'opsadmin', consolePassword: true, tags: { email: 'opsadmin@example.org' }, policies: [ADMINISTRATOR_ACCESS] })
    await t.services.directorySync.sync(t.services.providers.aws)
    root = (await t.services.users.findByEmail('opsadmin@example.org'))!
    assert.equal(root.role, 'user')
    assert.equal(root.privileged, true, 'the sync marks an IAM user with AdministratorAccess privileged')
  })
  after(async () => { await t.close(); await fake.close() })

  test('the helpdesk cannot e-mail a sign-in invitation to an AWS administrator: 403, no invitation, no e-mail', async () => {
    const helpdesk = await helpdeskAgent(t)
    const res = await submitForm(helpdesk, `/helpdesk/users/${root.id}`, `/helpdesk/users/${root.id}/invite`, { reason: 'first AWS MFA' })
    assertRefused(res, 'invitation')
    assert.equal(await count(t, 'SELECT count(*) FROM invitations WHERE user_id = ?', root.id), 0)
    assert.equal((await t.services.outbox.latest(100)).filter((m) => m.recipient === root.email).length, 0)
  })

  test('the helpdesk cannot issue a portal pass to an AWS administrator: 403, nothing stored', async () => {
    const helpdesk = await helpdeskAgent(t)
    const res = await submitForm(helpdesk, `/helpdesk/users/${root.id}`, `/helpdesk/users/${root.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason: 'lost device' })
    assertRefused(res, 'pass')
    assert.equal(await count(t, 'SELECT count(*) FROM access_passes WHERE user_id = ?', root.id), 0)
  })
})

describe('privileged portal users', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp({ TWO_PERSON_RULE: 'false' })
    await t.services.campaigns.create(campaignInput(t.clock.now(), { maxExtensionDays: 10 }), SYSTEM)
  })
  after(async () => { await t.close() })

  async function privilegedUser (): Promise<User> {
    const user = await createTestUser(t.services, { privileged: true })
    await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
    await t.services.engine.refreshUser(user.id)
    return user
  }

  test('the helpdesk cannot extend a privileged user\'s deadline: 403, the deadline stays', async () => {
    const helpdesk = await helpdeskAgent(t)
    const user = await privilegedUser()
    const before = (await t.services.engine.standing(user.id))!.deadline!.getTime()
    const res = await submitForm(helpdesk, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/extend`, { days: '7', reason: 'on leave' })
    assertRefused(res, 'extend')
    assert.equal((await t.services.engine.standing(user.id))!.deadline!.getTime(), before)
    assert.equal((await t.services.audit.list({ action: 'deadline.extended', subjectUserId: user.id })).length, 0)
  })

  test('a script sending the helpdesk\'s request as JSON gets a 403 JSON error with a stable code', async () => {
    const helpdesk = await helpdeskAgent(t)
    const user = await privilegedUser()
    const token = await csrfFor(helpdesk, `/helpdesk/users/${user.id}`)
    const res = await helpdesk.post(`/helpdesk/users/${user.id}/pass`).set({ accept: 'application/json', 'x-csrf-token': token })
      .send({ lifetimeMinutes: '60', oneTime: 'on', reason: 'lost phone', _csrf: token })
    assert.equal(res.status, 403)
    assert.equal(res.body.error.code, 'forbidden')
    assert.match(res.body.error.message, /privileged account/)
    assert.equal(await count(t, 'SELECT count(*) FROM access_passes WHERE user_id = ?', user.id), 0)
  })

  test('an administrator may still act on a privileged user (the two-person rule switched off here): the pass is issued', async () => {
    const admin = await signInStaff(t, await createTestUser(t.services, { role: 'admin' }))
    const user = await privilegedUser()
    const res = await submitForm(admin, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason: 'lost phone, identity checked' })
    assert.equal(res.status, 200)
    assert.match(res.text, /<code id="pass-value">/)
    const extended = await submitForm(admin, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/extend`, { days: '3', reason: 'travelling' })
    assert.equal(extended.status, 303)
  })
})
