import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Role } from '../../server/domain/users.ts'
import { anonymous, createTestUser, csrfFor, hiddenFields, signIn, startTestApp, stepUp, submitForm, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let smtp: SmtpSink
before(async () => {
  smtp = await startSmtpSink()
  t = await startTestApp({ SMTP_URL: smtp.url })
  await t.services.campaigns.create(campaignInput(t.clock.now(), { maxExtensionDays: 10 }), { id: null, label: 'test' })
})
after(async () => {
  await t.close()
  await smtp.close()
})

/** A helpdesk (or admin) member with an authenticator app, signed in; `confirmed` has just stepped up. */
async function staff (role: Role = 'helpdesk', confirmed = true) {
  const user = await createTestUser(t.services, { role })
  const agent = await signIn(t, user.email)
  if (confirmed) await stepUp(t, agent, user)
  return { user, agent }
}

/** An ordinary user who joined long ago, so their deadline is the campaign's (10 days out). */
async function person (fields: { displayName?: string, email?: string } = {}) {
  const user = await createTestUser(t.services, fields)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  await t.services.engine.refreshUser(user.id)
  return user
}

async function passRows (userId: string) {
  return await sqlOn(t.services).all<{ passHash: string, oneTime: number, expiresAt: number, revokedAt: number | null, usedAt: number | null }>('SELECT pass_hash AS passHash, one_time AS oneTime, expires_at AS expiresAt, revoked_at AS revokedAt, used_at AS usedAt FROM access_passes WHERE user_id = ? ORDER BY created_at', userId)
}

function passFrom (html: string): string {
  const match = /<code id="pass-value">([A-Z0-9 ]+)<\/code>/.exec(html)
  assert.ok(match, 'the pass is on the page')
  return match[1].replace(/ /g, '')
}

async function passSignIn (email: string, pass: string) {
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login/pass')
  return { agent, res: await agent.post('/login/pass').type('form').send({ email, pass, _csrf: token }) }
}

test('search finds people by email prefix, first or last name, a page of 20 at a time', async () => {
  const { agent } = await staff()
  for (let i = 0; i < 23; i++) await person({ displayName: `Quentin Zebulon ${i}`, email: `qz${String(i).padStart(2, '0')}@search.example` })
  const byLastName = await agent.get('/helpdesk?q=zebu')
  assert.equal(byLastName.status, 200)
  assert.equal([...byLastName.text.matchAll(/Quentin Zebulon \d+<\/a>/g)].length, 20)
  const next = /<a href="(\/helpdesk\?q=zebu&amp;after=[^"]+)">Next page<\/a>/.exec(byLastName.text)
  assert.ok(next, 'a next page link')
  const second = await agent.get(next[1].replace(/&amp;/g, '&'))
  assert.equal([...second.text.matchAll(/Quentin Zebulon \d+<\/a>/g)].length, 3)
  assert.doesNotMatch(second.text, /Next page/)
  const byEmail = await agent.get('/helpdesk?q=QZ0')
  assert.equal([...byEmail.text.matchAll(/Quentin Zebulon \d+<\/a>/g)].length, 10, 'case does not matter')
  assert.match((await agent.get('/helpdesk?q=q')).text, /Type at least two characters/)
  assert.match((await agent.get('/helpdesk?q=%25%25')).text, /No one matches/, 'wildcards are literal')
})

test('a person\'s page shows their state, deadline and how it was derived, methods and timeline; ordinary users cannot open it', async () => {
  const { agent } = await staff()
  const user = await person({ displayName: 'Ada Example' })
  await t.services.methods.addPhone(user.id, 'Mobile', '+14155550100')
  await sqlOn(t.services).run('UPDATE users SET provider_methods = ? WHERE id = ?', '["passkey"]', user.id)
  const page = await agent.get(`/helpdesk/users/${user.id}`)
  assert.equal(page.status, 200)
  assert.match(page.text, /<h1>Ada Example<\/h1>/)
  assert.match(page.text, /Everyone: deadline for everyone/)
  assert.match(page.text, /10 days left/)
  assert.match(page.text, /Mobile \(Phone \(text message\)\)/)
  assert.match(page.text, /Registered with local/)
  assert.match(page.text, /user\.created/, 'the timeline comes from the audit log')
  assert.equal((await agent.get('/helpdesk/users/no-such-id')).status, 404)

  const plain = await signIn(t, (await person()).email)
  assert.equal((await plain.get(`/helpdesk/users/${user.id}`)).status, 403)
  assert.equal((await plain.get('/helpdesk?q=ada')).status, 403)
})

test('every helpdesk action needs a fresh step-up first; without one nothing changes, and after it the action is offered as entered', async () => {
  const { agent, user: helper } = await staff('helpdesk', false)
  const user = await person()
  const res = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '90', oneTime: 'on', reason: 'lost phone' })
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, `/step-up?next=${encodeURIComponent('/step-up/continue')}`)
  assert.equal((await passRows(user.id)).length, 0)
  await stepUp(t, agent, helper)
  const offer = await agent.get('/step-up/continue')
  assert.equal(offer.status, 200)
  assert.match(offer.text, /<button type="submit" class="button button-primary">Issue a temporary access pass<\/button>/)
  assert.match(offer.text, /name="reason" value="lost phone"/)
  const sent = await agent.post(`/helpdesk/users/${user.id}/pass`).type('form').send(hiddenFields(offer.text, `/helpdesk/users/${user.id}/pass`))
  assert.equal(sent.status, 200)
  assert.equal((await passRows(user.id)).length, 1)
  assert.equal((await passRows(user.id))[0].expiresAt, t.clock.now().getTime() + 90 * 60_000, 'the lifetime entered before the step-up')
})

test('a temporary access pass is shown once, stored only as a hash, works once, and the user is emailed without it', async () => {
  const { agent, user: helper } = await staff()
  const user = await person()
  const res = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '90', oneTime: 'on', reason: 'new phone, old one wiped' })
  assert.equal(res.status, 200)
  assert.equal(res.headers['cache-control'], 'no-store')
  const pass = passFrom(res.text)
  assert.match(pass, /^[A-HJ-NP-Z2-9]{12}$/, '12 characters from the unambiguous alphabet')
  assert.match(res.text, /signs in at <strong>http:\/\/localhost:3000\/login\/pass<\/strong>/, 'the address to read out over the phone')
  const [row] = await passRows(user.id)
  assert.notEqual(row.passHash, pass)
  assert.ok(!row.passHash.includes(pass))
  assert.equal(row.expiresAt, t.clock.now().getTime() + 90 * 60_000)
  assert.doesNotMatch((await agent.get(`/helpdesk/users/${user.id}`)).text, new RegExp(pass), 'never shown again')

  const [audit] = await t.services.audit.list({ action: 'pass.issued', subjectUserId: user.id })
  assert.equal(audit.actorId, helper.id)
  assert.equal(JSON.parse(audit.details).reason, 'new phone, old one wiped')
  assert.ok(!JSON.stringify(audit).includes(pass))
  const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /temporary access pass/.test(m.subject))
  assert.ok(!mail.text.includes(pass) && !mail.html.includes(pass), 'the pass is never emailed')

  // Two sign-ins with the same one-time pass at the same moment: exactly one gets in.
  const [a, b] = await Promise.all([passSignIn(user.email, pass), passSignIn(user.email, pass.toLowerCase())])
  assert.equal([a, b].filter((attempt) => attempt.res.status === 303).length, 1)
  const winner = a.res.status === 303 ? a : b
  assert.equal((await winner.agent.get('/enroll/totp')).status, 200, 'the pass session can enroll')
  assert.equal((await winner.agent.get('/helpdesk')).status, 403, 'and reach nothing else')
})

test('a new pass replaces the old one; an expired pass is refused', async () => {
  const { agent } = await staff()
  const user = await person()
  const first = passFrom((await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '60', reason: 'first try' })).text)
  const second = passFrom((await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '60', reason: 'second try' })).text)
  assert.notEqual((await passSignIn(user.email, first)).res.status, 303, 'the first pass no longer works')
  t.clock.advance(61 * 60_000)
  const expired = await passSignIn(user.email, second)
  assert.notEqual(expired.res.status, 303, 'expired')
  assert.match(expired.res.text, /do not match an active pass/)
})

test('passes outside the configured lifetime, without a reason, to yourself, or by the helpdesk to an admin are refused and nothing is stored', async () => {
  const { agent, user: helper } = await staff()
  const user = await person()
  for (const [fields, message] of [
    [{ lifetimeMinutes: '30', reason: 'lost phone' }, /A pass lasts from 60 to 480 minutes/],
    [{ lifetimeMinutes: '481', reason: 'lost phone' }, /A pass lasts from 60 to 480 minutes/],
    [{ lifetimeMinutes: '1e2', reason: 'lost phone' }, /A pass lasts from 60 to 480 minutes/],
    [{ lifetimeMinutes: '60', reason: '  ' }, /Say why/]
  ] as const) {
    const res = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, fields)
    assert.equal(res.status, 400)
    assert.match(res.text, message)
  }
  assert.equal((await passRows(user.id)).length, 0)

  const self = await agent.get(`/helpdesk/users/${helper.id}`)
  assert.match(self.text, /You cannot act on your own account/)
  assert.doesNotMatch(self.text, /Issue pass/)
  const selfIssue = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${helper.id}/pass`, { lifetimeMinutes: '60', reason: 'just me' })
  assert.equal(selfIssue.status, 403)
  assert.equal((await passRows(helper.id)).length, 0)

  const admin = await createTestUser(t.services, { role: 'admin' })
  const escalate = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${admin.id}/pass`, { lifetimeMinutes: '60', reason: 'take over' })
  assert.equal(escalate.status, 403)
  assert.match(escalate.text, /Only administrators can act on helpdesk and administrator accounts/)
  assert.equal((await passRows(admin.id)).length, 0)
})

test('extending within the campaign budget moves the deadline and emails the user; beyond it is refused with a clear message', async () => {
  const { agent } = await staff()
  const user = await person()
  const before = (await t.services.engine.standing(user.id))!.deadline!.getTime()
  const ok = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/extend`, { days: '7', reason: 'on leave' })
  assert.equal(ok.status, 303)
  assert.equal((await t.services.engine.standing(user.id))!.deadline!.getTime(), before + 7 * DAY)
  await smtp.waitFor((m) => m.to.includes(user.email) && /deadline .* was extended/.test(m.subject))

  const tooMuch = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/extend`, { days: '4', reason: 'still on leave' })
  assert.equal(tooMuch.status, 400)
  assert.match(tooMuch.text, /This campaign allows 10 extra days per person; 3 are left for this user/)
  assert.equal((await t.services.engine.standing(user.id))!.deadline!.getTime(), before + 7 * DAY, 'unchanged')
  assert.equal((await t.services.audit.list({ action: 'deadline.extended', subjectUserId: user.id })).length, 1)
})

test('a reset removes the methods, signs the user out, opens the re-enrollment window, is audited and can come with a pass', async () => {
  const { agent, user: helper } = await staff()
  const user = await person()
  await t.services.methods.addTotp(user.id, 'Old phone', 'JBSWY3DPEHPK3PXP', 0)
  await t.services.methods.addPhone(user.id, 'Old number', '+14155550111')
  const theirs = await signIn(t, user.email)
  const res = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/reset`, { reason: 'phone stolen', issuePass: 'on' })
  assert.equal(res.status, 200)
  const pass = passFrom(res.text)
  assert.match(res.text, /Removed 2 methods/)
  assert.equal((await t.services.methods.listFor(user.id)).length, 0)
  assert.equal((await t.services.users.findById(user.id))!.reenrollUntil!.getTime(), t.clock.now().getTime() + 3 * DAY)
  assert.equal((await theirs.get('/')).status, 303, 'their sessions ended')
  const [event] = await t.services.audit.list({ action: 'methods.reset', subjectUserId: user.id })
  assert.equal(event.actorId, helper.id)
  assert.equal(JSON.parse(event.details).reason, 'phone stolen')
  await smtp.waitFor((m) => m.to.includes(user.email) && /reset by the helpdesk/.test(m.subject))
  assert.equal((await passSignIn(user.email, pass)).res.status, 303, 'the pass works')

  // Without a pass, the window lets them add a first method from outside the trusted networks.
  const context = { clientIp: '203.0.113.9', passSession: false, stepUpAt: null, reenrollUntil: (await t.services.users.findById(user.id))!.reenrollUntil!.getTime(), now: t.clock.now().getTime() }
  const current = (await t.services.users.findById(user.id))!
  assert.doesNotThrow(() => { t.services.guard.assertMayAdd(current, 0, context) })
})
