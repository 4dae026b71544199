import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { User } from '../../server/domain/users.ts'
import { pino } from 'pino'
import { ConfigError } from '../../server/config.ts'
import { runHousekeeping } from '../../server/jobs/housekeeping.ts'
import { type Agent, anonymous, createTestUser, csrfFor, hiddenFields, signIn, signInStaff, startTestApp, stepUp, submitForm, testConfig, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra, type FakeEntra } from '../fakes/graph/server.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { sqlOn } from '../helpers/sql.ts'

/**
 * The two-person rule (issue #12 item 4, on by default): a pass, reset or invitation for a privileged or staff
 * account is a request; a different administrator approves it with their own fresh step-up before it takes effect.
 */

const SYSTEM = { id: null, label: 'test' }
const HOUR = 3_600_000
const HELD = `/step-up?next=${encodeURIComponent('/step-up/continue')}`

interface RequestRow { id: string, kind: string, status: string, requestedBy: string, decidedBy: string | null, options: string }

async function requests (t: TestApp, userId: string): Promise<RequestRow[]> {
  return await sqlOn(t.services).all<RequestRow>('SELECT id, kind, status, requested_by AS requestedBy, decided_by AS decidedBy, options FROM approval_requests WHERE user_id = ? ORDER BY requested_at, id', userId)
}

async function passCount (t: TestApp, userId: string): Promise<number> {
  return (await sqlOn(t.services).value('SELECT count(*) FROM access_passes WHERE user_id = ?', userId)) as number
}

function passFrom (html: string): string {
  const match = /<code id="pass-value">([^<]+)<\/code>/.exec(html)
  assert.ok(match, 'the pass is on the page')
  return match[1].replace(/ /g, '')
}

async function passSignIn (t: TestApp, email: string, pass: string) {
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login/pass')
  return agent.post('/login/pass').type('form').send({ email, pass, _csrf: token })
}

/** Posts a decision from the approvals page as a browser would (the page's own CSRF token). */
async function decide (agent: Agent, requestId: string, decision: 'approve' | 'refuse') {
  return submitForm(agent, '/admin/approvals', `/admin/approvals/${requestId}/${decision}`)
}

async function admin (t: TestApp, fields: { displayName?: string } = {}): Promise<{ user: User, agent: Agent }> {
  const user = await createTestUser(t.services, { role: 'admin', ...fields })
  return { user, agent: await signInStaff(t, user) }
}

describe('two-person rule for privileged portal and staff accounts', () => {
  let t: TestApp
  let smtp: SmtpSink
  let alice: { user: User, agent: Agent }
  let bob: { user: User, agent: Agent }
  before(async () => {
    smtp = await startSmtpSink()
    t = await startTestApp({ SMTP_URL: smtp.url })
    await t.services.campaigns.create(campaignInput(t.clock.now(), { maxExtensionDays: 10 }), SYSTEM)
    alice = await admin(t, { displayName: 'Alice Admin' })
    bob = await admin(t, { displayName: 'Bob Admin' })
  })
  after(async () => {
    await t.close()
    await smtp.close()
  })

  async function privileged (): Promise<User> {
    const user = await createTestUser(t.services, { privileged: true })
    await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
    await t.services.engine.refreshUser(user.id)
    return user
  }

  async function requestPass (agent: Agent, user: User, reason = 'lost phone, identity checked by video call') {
    return submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason })
  }

  test('an administrator\'s pass for a privileged user is only a request: nothing is issued, it is audited, and the other administrators are e-mailed', async () => {
    const user = await privileged()
    const page = await alice.agent.get(`/helpdesk/users/${user.id}`)
    assert.match(page.text, /Two-person rule\./)
    assert.match(page.text, />Request pass</)
    const res = await requestPass(alice.agent, user)
    assert.equal(res.status, 303)
    const back = await alice.agent.get(res.headers.location)
    assert.match(back.text, /Nothing has changed yet/)
    assert.match(back.text, /needs a second administrator&#39;s approval|needs a second administrator's approval/)
    assert.match(back.text, /Waiting for a second administrator/, 'the person\'s page shows the waiting request')
    assert.equal(await passCount(t, user.id), 0, 'no pass exists')
    const [row] = await requests(t, user.id)
    assert.equal(row.status, 'pending')
    assert.equal(row.requestedBy, alice.user.id)
    assert.deepEqual(JSON.parse(row.options), { lifetimeMinutes: 60, oneTime: true })
    const [audit] = await t.services.audit.list({ action: 'approval.requested', subjectUserId: user.id })
    assert.equal(audit.actorId, alice.user.id)
    assert.equal(JSON.parse(audit.details).reason, 'lost phone, identity checked by video call')
    const mail = await smtp.waitFor((m) => m.to.includes(bob.user.email) && /Approval needed/.test(m.subject))
    assert.match(mail.text, /\/admin\/approvals/)
    assert.ok(!smtp.messages.some((m) => m.to.includes(alice.user.email) && /Approval needed/.test(m.subject)), 'the requester is not asked to approve')

    const again = await requestPass(alice.agent, user, 'asking twice')
    assert.equal(again.status, 400, 'one waiting request per person and kind')
    assert.match(again.text, /already waiting for a second administrator/)
    assert.equal((await requests(t, user.id)).length, 1)

    // A script gets 202 and the request to follow up, not a redirect.
    const token = await csrfFor(alice.agent, `/helpdesk/users/${user.id}`)
    const json = await alice.agent.post(`/helpdesk/users/${user.id}/reset`).set({ accept: 'application/json', 'x-csrf-token': token }).send({ reason: 'compromised phone', _csrf: token })
    assert.equal(json.status, 202)
    assert.equal(json.body.status, 'approval_required')
    assert.equal(json.body.request.kind, 'reset')
    assert.equal(json.body.request.id, (await requests(t, user.id)).find((row) => row.kind === 'reset')?.id)
  })

  test('the requester cannot approve their own request: 403, and it keeps waiting', async () => {
    const user = await privileged()
    await requestPass(alice.agent, user)
    const [row] = await requests(t, user.id)
    const list = await alice.agent.get('/admin/approvals')
    assert.match(list.text, /You asked for this: another administrator must approve it/)
    assert.doesNotMatch(list.text, new RegExp(`/admin/approvals/${row.id}/approve`), 'no Approve button for the requester')
    const res = await decide(alice.agent, row.id, 'approve')
    assert.equal(res.status, 403)
    assert.match(res.text, /a different administrator must approve it/)
    const json = await alice.agent.post(`/admin/approvals/${row.id}/approve`).set({ accept: 'application/json', 'x-csrf-token': await csrfFor(alice.agent, '/admin/approvals') }).send({})
    assert.equal(json.status, 403)
    assert.equal(json.body.error.code, 'approval_own_request')
    assert.equal((await requests(t, user.id))[0].status, 'pending')
    assert.equal(await passCount(t, user.id), 0)
  })

  test('a second administrator approves after their own step-up; the pass is shown once to them, works once, and the user is e-mailed', async () => {
    const user = await privileged()
    await requestPass(alice.agent, user)
    const [row] = await requests(t, user.id)
    // Carol, a third administrator, signs in but has not confirmed it's her: the approval is held until she steps up.
    const carol = await createTestUser(t.services, { role: 'admin' })
    const carolAgent = await signIn(t, carol.email)
    const held = await decide(carolAgent, row.id, 'approve')
    assert.equal(held.status, 303)
    assert.equal(held.headers.location, HELD)
    assert.equal((await requests(t, user.id))[0].status, 'pending', 'nothing decided without a step-up')
    t.clock.advance(30_000)
    await stepUp(t, carolAgent, carol)
    const offer = await carolAgent.get('/step-up/continue')
    assert.match(offer.text, />Approve the request</)
    const approved = await carolAgent.post(`/admin/approvals/${row.id}/approve`).type('form').send(hiddenFields(offer.text, `/admin/approvals/${row.id}/approve`))
    assert.equal(approved.status, 200)
    assert.equal(approved.headers['cache-control'], 'no-store')
    assert.match(approved.text, /You are the only one shown this pass/)
    const pass = passFrom(approved.text)

    const [decided] = await requests(t, user.id)
    assert.equal(decided.status, 'approved')
    assert.equal(decided.decidedBy, carol.id)
    const [approval] = await t.services.audit.list({ action: 'approval.approved', subjectUserId: user.id })
    assert.equal(approval.actorId, carol.id)
    assert.equal(JSON.parse(approval.details).requestedBy, alice.user.id)
    const [issued] = await t.services.audit.list({ action: 'pass.issued', subjectUserId: user.id })
    assert.equal(issued.actorId, carol.id, 'the pass is issued by the approver')
    assert.ok(!JSON.stringify(await t.services.audit.list({ subjectUserId: user.id })).includes(pass), 'the pass is in no audit row')
    assert.doesNotMatch((await alice.agent.get(`/helpdesk/users/${user.id}`)).text, new RegExp(pass), 'the requester never sees it')
    assert.doesNotMatch((await alice.agent.get('/admin/approvals')).text, new RegExp(pass))
    const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /temporary access pass/.test(m.subject))
    assert.match(mail.text, /two administrators approved this/)
    assert.ok(!mail.text.includes(pass))

    assert.equal((await passSignIn(t, user.email, pass)).status, 303, 'the pass works')
    assert.notEqual((await passSignIn(t, user.email, pass)).status, 303, 'once')
    const twice = await decide(bob.agent, row.id, 'approve')
    assert.equal(twice.status, 409, 'an approved request cannot be approved again')
    assert.equal(await passCount(t, user.id), 1)
  })

  test('a refused or withdrawn request does nothing, and both are audited', async () => {
    const user = await privileged()
    await requestPass(alice.agent, user)
    const [first] = await requests(t, user.id)
    const refused = await decide(bob.agent, first.id, 'refuse')
    assert.equal(refused.status, 303)
    assert.equal((await requests(t, user.id))[0].status, 'refused')
    assert.equal((await t.services.audit.list({ action: 'approval.refused', subjectUserId: user.id }))[0].actorId, bob.user.id)
    assert.equal((await decide(bob.agent, first.id, 'approve')).status, 409, 'a refused request cannot be approved later')

    await requestPass(alice.agent, user, 'asked again after the refusal')
    const second = (await requests(t, user.id)).find((row) => row.id !== first.id)!
    assert.equal((await decide(alice.agent, second.id, 'refuse')).status, 303)
    assert.equal((await requests(t, user.id)).find((row) => row.id === second.id)?.status, 'withdrawn')
    assert.equal((await t.services.audit.list({ action: 'approval.withdrawn', subjectUserId: user.id })).length, 1)
    assert.equal(await passCount(t, user.id), 0)
    const list = await bob.agent.get('/admin/approvals')
    assert.match(list.text, /Refused<\/strong> by/)
    assert.match(list.text, /Withdrawn<\/strong>/)
  })

  test('a request lapses after 24 hours: it can no longer be approved, and the lapse is audited', async () => {
    const user = await privileged()
    await requestPass(alice.agent, user)
    const [row] = await requests(t, user.id)
    t.clock.advance(24 * HOUR + 60_000)
    // A day later both sessions have ended too: the administrators sign in again.
    alice = { user: alice.user, agent: await signInStaff(t, alice.user) }
    bob = { user: bob.user, agent: await signInStaff(t, bob.user) }
    const res = await decide(bob.agent, row.id, 'approve')
    assert.equal(res.status, 410)
    assert.match(res.text, /lapsed/)
    assert.equal((await requests(t, user.id))[0].status, 'expired')
    const [lapse] = await t.services.audit.list({ action: 'approval.expired', subjectUserId: user.id })
    assert.equal(lapse.actorLabel, 'system')
    assert.equal(await passCount(t, user.id), 0)
  })

  test('housekeeping lapses a request whose time is up even if nobody opens it, so the log says when it lapsed', async () => {
    const user = await privileged()
    await requestPass(alice.agent, user)
    t.clock.advance(24 * HOUR + 60_000)
    await runHousekeeping(t.services, pino({ level: 'silent' }))
    assert.equal((await requests(t, user.id))[0].status, 'expired')
    const lapses = await t.services.audit.list({ action: 'approval.expired', subjectUserId: user.id })
    assert.equal(lapses.length, 1)
    assert.equal(lapses[0].at, t.clock.now().toISOString())
    alice = { user: alice.user, agent: await signInStaff(t, alice.user) }
    bob = { user: bob.user, agent: await signInStaff(t, bob.user) }
  })

  test('a reset of a privileged user waits for approval; once approved the methods go and the approver alone sees the pass', async () => {
    const user = await privileged()
    await t.services.methods.addTotp(user.id, 'Old phone', 'JBSWY3DPEHPK3PXP', 0)
    const res = await submitForm(alice.agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/reset`, { reason: 'phone stolen', issuePass: 'on' })
    assert.equal(res.status, 303)
    assert.equal((await t.services.methods.listFor(user.id)).length, 1, 'nothing removed yet')
    assert.equal((await t.services.audit.list({ action: 'methods.reset', subjectUserId: user.id })).length, 0)
    const [row] = await requests(t, user.id)
    assert.equal(row.kind, 'reset')
    const approved = await decide(bob.agent, row.id, 'approve')
    assert.equal(approved.status, 200)
    assert.match(approved.text, /Removed 1 method/)
    const pass = passFrom(approved.text)
    assert.equal((await t.services.methods.listFor(user.id)).length, 0)
    assert.equal((await t.services.audit.list({ action: 'methods.reset', subjectUserId: user.id }))[0].actorId, bob.user.id)
    await smtp.waitFor((m) => m.to.includes(user.email) && /reset by the helpdesk/.test(m.subject) && /two administrators approved this/.test(m.text))
    assert.equal((await passSignIn(t, user.email, pass)).status, 303)
  })

  test('staff accounts are under the rule too: a pass for a helpdesk member is a request, and the member concerned cannot decide one about themselves', async () => {
    const helper = await createTestUser(t.services, { role: 'helpdesk' })
    const res = await submitForm(alice.agent, `/helpdesk/users/${helper.id}`, `/helpdesk/users/${helper.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason: 'new laptop' })
    assert.equal(res.status, 303)
    assert.equal(await passCount(t, helper.id), 0)
    assert.equal((await requests(t, helper.id))[0].status, 'pending')

    const res2 = await submitForm(alice.agent, `/helpdesk/users/${bob.user.id}`, `/helpdesk/users/${bob.user.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason: 'Bob lost his key' })
    assert.equal(res2.status, 303)
    const [aboutBob] = await requests(t, bob.user.id)
    assert.match((await bob.agent.get('/admin/approvals')).text, /This is about your own account/)
    const self = await decide(bob.agent, aboutBob.id, 'approve')
    assert.equal(self.status, 403)
    assert.equal(await passCount(t, bob.user.id), 0)
  })

  test('extending a privileged user\'s deadline needs no approval, but only an administrator may do it', async () => {
    const user = await privileged()
    const before = (await t.services.engine.standing(user.id))!.deadline!.getTime()
    const res = await submitForm(alice.agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/extend`, { days: '3', reason: 'travelling' })
    assert.equal(res.status, 303)
    assert.equal((await t.services.engine.standing(user.id))!.deadline!.getTime(), before + 3 * DAY)
    assert.equal((await requests(t, user.id)).length, 0)
  })

  test('ordinary users are not under the rule: an administrator\'s pass is issued at once', async () => {
    const user = await createTestUser(t.services)
    const res = await requestPass(alice.agent, user)
    assert.equal(res.status, 200)
    passFrom(res.text)
    assert.equal((await requests(t, user.id)).length, 0)
  })
})

test('the rule is on by default, requests lapse after 24 hours unless TWO_PERSON_REQUEST_HOURS says otherwise, and bad values stop the start', () => {
  assert.deepEqual(testConfig().twoPersonRule, { enabled: true, requestLifetimeMs: 24 * HOUR })
  assert.deepEqual(testConfig({ TWO_PERSON_RULE: 'false', TWO_PERSON_REQUEST_HOURS: '4' }).twoPersonRule, { enabled: false, requestLifetimeMs: 4 * HOUR })
  assert.throws(() => testConfig({ TWO_PERSON_RULE: 'maybe' }), ConfigError)
  assert.throws(() => testConfig({ TWO_PERSON_REQUEST_HOURS: '0' }), /TWO_PERSON_REQUEST_HOURS: expected a whole number from 1 to 168/)
})

describe('two-person rule with a single administrator (the sandbox demo)', () => {
  let t: TestApp
  before(async () => { t = await startTestApp() })
  after(async () => { await t.close() })

  test('the pages say that a second administrator is needed; the rule is not skipped', async () => {
    const only = await admin(t)
    const user = await createTestUser(t.services, { privileged: true })
    const page = await only.agent.get(`/helpdesk/users/${user.id}`)
    assert.match(page.text, /This needs a second administrator/)
    const res = await submitForm(only.agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason: 'demo' })
    assert.equal(res.status, 303)
    assert.match((await only.agent.get(res.headers.location)).text, /this needs a second administrator/)
    assert.equal(await passCount(t, user.id), 0, 'not issued: the rule is not bypassed')
    const approvals = await only.agent.get('/admin/approvals')
    assert.equal(approvals.status, 200)
    assert.match(approvals.text, /This needs a second administrator/)
  })
})

describe('two-person rule for directory administrators', () => {
  const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
  const START = new Date('2026-11-25T09:00:10Z')

  test('Entra: the Microsoft pass for a Global Administrator is created only when a second administrator approves, and shown to them', async () => {
    let t: TestApp | undefined
    const fake: FakeEntra = await startFakeEntra({ now: () => t?.clock.now() ?? START })
    t = await startTestApp({ PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string>, TRUSTED_NETWORKS: '127.0.0.0/8,::1/128' })
    try {
      t.clock.set(START)
      const gina = fake.tenant.addUser({ displayName: 'Gina Global' })
      fake.tenant.assignRole(gina.id, GLOBAL_ADMIN)
      await t.services.directorySync.sync(t.services.providers.entra)
      const user = (await t.services.users.findById((await sqlOn(t.services).value<string>("SELECT id FROM users WHERE external_id = ?", gina.id))!))!
      const a = await admin(t)
      const b = await admin(t)
      const res = await submitForm(a.agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '120', oneTime: 'on', reason: 'new phone' })
      assert.equal(res.status, 303)
      assert.equal(gina.tap, null, 'no TAP at Microsoft while the request waits')
      const [row] = await requests(t, user.id)
      const approved = await decide(b.agent, row.id, 'approve')
      assert.equal(approved.status, 200)
      assert.match(approved.text, /Microsoft Entra temporary access pass/)
      assert.equal(fake.tenant.byId.get(gina.id)!.tap?.lifetimeInMinutes, 120, 'the TAP is made at approval')
      const [issued] = await t.services.audit.list({ action: 'pass.issued', subjectUserId: user.id })
      assert.equal(JSON.parse(issued.details).approvalId, row.id)

      // A pass the tenant's policy refuses at approval changes nothing: the request waits again, and that is audited.
      const gus = fake.tenant.addUser({ displayName: 'Gus Global' })
      fake.tenant.assignRole(gus.id, GLOBAL_ADMIN)
      await t.services.directorySync.sync(t.services.providers.entra)
      const other = (await t.services.users.findById((await sqlOn(t.services).value<string>("SELECT id FROM users WHERE external_id = ?", gus.id))!))!
      await submitForm(a.agent, `/helpdesk/users/${other.id}`, `/helpdesk/users/${other.id}/pass`, { lifetimeMinutes: '600', oneTime: 'on', reason: 'too long a pass' })
      const [tooLong] = await requests(t, other.id)
      const failed = await decide(b.agent, tooLong.id, 'approve')
      assert.equal(failed.status, 303)
      assert.match((await b.agent.get(failed.headers.location)).text, /60 to 480 minutes[\s\S]*the request is waiting again/)
      assert.equal(gus.tap, null)
      assert.equal((await requests(t, other.id))[0].status, 'pending')
      assert.equal((await t.services.audit.list({ action: 'approval.failed', subjectUserId: other.id })).length, 1)
    } finally {
      await t.close()
      await fake.close()
    }
  })

  test('AWS: an invitation for an IAM administrator is e-mailed only after a second administrator approves', async () => {
    let t: TestApp | undefined
    const fake: FakeIam = await startFakeIam({ now: () => t?.clock.now() ?? START })
    fake.report.delayMs = 0
    const smtp = await startSmtpSink()
    t = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24', SMTP_URL: smtp.url })
    try {
      fake.state.addUser({ userName: 'opsadmin', consolePassword: true, tags: { email: 'opsadmin@example.org' }, policies: ['arn:aws:iam::aws:policy/AdministratorAccess'] })
      await t.services.directorySync.sync(t.services.providers.aws)
      const user = (await t.services.users.findByEmail('opsadmin@example.org'))!
      const a = await admin(t)
      const b = await admin(t)
      const res = await submitForm(a.agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/invite`, { reason: 'first AWS MFA' })
      assert.equal(res.status, 303)
      assert.match((await a.agent.get(res.headers.location)).text, /Nothing has changed yet/)
      assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM invitations WHERE user_id = ?', user.id), 0)
      const [row] = await requests(t, user.id)
      const approved = await decide(b.agent, row.id, 'approve')
      assert.equal(approved.status, 303)
      assert.match((await b.agent.get(approved.headers.location)).text, /The invitation was e-mailed to opsadmin@example\.org/)
      const mail = await smtp.waitFor((m) => m.to.includes('opsadmin@example.org') && /invitation/.test(m.subject))
      assert.match(mail.text, /two administrators approved this invitation/)
      assert.equal((await t.services.audit.list({ action: 'invitation.issued', subjectUserId: user.id }))[0].actorId, b.user.id)
    } finally {
      await t.close()
      await fake.close()
      await smtp.close()
    }
  })
})
