import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret, TOTP } from 'otpauth'
import { anonymous, createTestUser, csrfFor, readable, signIn, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let smtp: SmtpSink
before(async () => {
  smtp = await startSmtpSink()
  t = await startTestApp({ SMTP_URL: smtp.url })
})
after(async () => {
  await t.close()
  await smtp.close()
})

const SECRET = new Secret({ size: 20 }).base32
function codeAt (offsetSteps = 0): string {
  return new TOTP({ secret: Secret.fromBase32(SECRET) }).generate({ timestamp: t.clock.now().getTime() + offsetSteps * 30_000 })
}

/** A user holding an authenticator app (arranged directly in the store) and a phone. */
async function userWithMethods () {
  const user = await createTestUser(t.services)
  const app = await t.services.methods.addTotp(user.id, 'Work phone app', SECRET, 0)
  const phone = await t.services.methods.addPhone(user.id, 'Mobile •••• 0143', '+12025550143')
  return { user, app, phone, agent: await signIn(t, user.email) }
}

async function methodIds (userId: string): Promise<string[]> {
  return (await t.services.methods.listFor(userId)).map((m) => m.id).sort()
}

test('the home page lists the user\'s methods and says in plain words whether they count', async () => {
  const { agent } = await userWithMethods()
  const home = await agent.get('/')
  assert.match(home.text, /Work phone app/)
  assert.match(readable(home.text), /Mobile •••• 0143/)
  assert.match(home.text, /Set up\.<\/strong> You have a second way to prove it&#39;s you\./)
  const privileged = await createTestUser(t.services, { privileged: true })
  await t.services.methods.addTotp(privileged.id, 'App', SECRET, 0)
  const adminHome = await (await signIn(t, privileged.email)).get('/')
  assert.match(adminHome.text, /A passkey or security key is required for administrators and other privileged accounts/)
})

test('a method can be renamed; a bad name is refused with a message and changes nothing', async () => {
  const { user, app, agent } = await userWithMethods()
  const token = await csrfFor(agent, '/')
  const ok = await agent.post(`/methods/${app.id}/rename`).type('form').send({ name: '  Pixel   8 app ', _csrf: token })
  assert.equal(ok.status, 303)
  assert.equal((await t.services.methods.findFor(user.id, app.id))?.name, 'Pixel 8 app')
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'method.renamed' })).length, 1)
  for (const name of ['', '   ', 'x'.repeat(61)]) {
    const bad = await agent.post(`/methods/${app.id}/rename`).type('form').send({ name, _csrf: token })
    assert.equal(bad.status, 400, `name ${JSON.stringify(name)}`)
    assert.match(bad.text, /name of 1 to 60 characters/)
  }
  assert.equal((await t.services.methods.findFor(user.id, app.id))?.name, 'Pixel 8 app')
})

test('nobody can rename or remove another user\'s method by guessing its id', async () => {
  const victim = await userWithMethods()
  const attacker = await userWithMethods()
  const token = await csrfFor(attacker.agent, '/')
  const rename = await attacker.agent.post(`/methods/${victim.app.id}/rename`).type('form').send({ name: 'pwned', _csrf: token })
  assert.equal(rename.status, 404)
  const remove = await attacker.agent.post(`/methods/${victim.phone.id}/remove`).type('form').send({ _csrf: token })
  assert.ok(remove.status === 404 || remove.status === 303)
  assert.deepEqual(await methodIds(victim.user.id), [victim.app.id, victim.phone.id].sort())
  assert.equal((await t.services.methods.findFor(victim.user.id, victim.app.id))?.name, 'Work phone app')
})

test('removing a method needs a recent step-up; with one it works, is audited and the user is emailed', async () => {
  const { user, app, phone, agent } = await userWithMethods()
  const token = await csrfFor(agent, '/')
  const refused = await agent.post(`/methods/${phone.id}/remove`).type('form').send({ _csrf: token })
  assert.equal(refused.status, 303)
  assert.equal(refused.headers.location, '/step-up?next=/')
  assert.equal((await methodIds(user.id)).length, 2, 'nothing removed without step-up')

  const stepUpPage = await agent.get('/step-up?next=/')
  assert.match(stepUpPage.text, /Confirm it&#39;s you, then choose Remove again/)
  const confirmed = await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.id, code: codeAt(), next: '/' })
  assert.equal(confirmed.status, 303)
  assert.equal(confirmed.headers.location, '/')

  // The step-up gave the session a new id, which voids the tokens of pages shown before it: the page is reloaded.
  const fresh = await csrfFor(agent, '/')
  const removed = await agent.post(`/methods/${phone.id}/remove`).type('form').send({ _csrf: fresh })
  assert.equal(removed.status, 303)
  assert.deepEqual(await methodIds(user.id), [app.id])
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'method.removed' })).length, 1)
  const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /removed/.test(m.subject))
  assert.match(mail.text, /Mobile •••• 0143/)
  assert.match(mail.html, /This wasn't me|This wasn&#39;t me/)

  t.clock.advance(10 * 60_000)
  const stale = await agent.post(`/methods/${app.id}/remove`).type('form').send({ _csrf: fresh })
  assert.equal(stale.headers.location, '/step-up?next=/', 'the step-up lasts 10 minutes')
})

test('a step-up code is accepted once; a wrong one is refused with a message', async () => {
  const { app, agent } = await userWithMethods()
  const token = await csrfFor(agent, '/step-up')
  const wrong = await agent.post('/step-up/totp').type('form').send({ methodId: app.id, code: '000000', _csrf: token })
  assert.equal(wrong.status, 400)
  assert.match(wrong.text, /That code is not right/)
  const code = codeAt()
  assert.equal((await agent.post('/step-up/totp').type('form').send({ methodId: app.id, code, _csrf: token })).status, 303)
  // Replayed from the step-up page as reloaded after the first use (the step-up gave the session a new id).
  const replay = await agent.post('/step-up/totp').type('form').send({ methodId: app.id, code, _csrf: await csrfFor(agent, '/step-up') })
  assert.equal(replay.status, 400)
  assert.match(replay.text, /already used/)
})

test('the last method of a user whose MFA is enforced cannot be removed, even after step-up', async () => {
  const user = await createTestUser(t.services)
  const app = await t.services.methods.addTotp(user.id, 'Only app', SECRET, 0)
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)
  const agent = await signIn(t, user.email)
  await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.id, code: codeAt() })
  const res = await submitForm(agent, '/', `/methods/${app.id}/remove`)
  assert.equal(res.status, 409)
  assert.match(res.text, /only sign-in method and multi-factor sign-in is required/)
  assert.deepEqual(await methodIds(user.id), [app.id])
})

test('"This wasn\'t me" from the email revokes the added method after confirmation, and alerts the admins', async () => {
  const admin = await createTestUser(t.services, { role: 'admin' })
  const user = await createTestUser(t.services)
  const intruder = await t.services.methods.addPhone(user.id, 'Mobile •••• 9999', '+12025559999')
  await t.services.lifecycle.added(user, intruder, null)
  const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /added/.test(m.subject))
  assert.match(mail.subject, /A sign-in method was added to your account: Mobile •••• 9999/)
  const link = /http:\/\/localhost:\d+(\/methods\/not-me\?token=[\w-]+)/.exec(mail.text)?.[1]
  assert.ok(link, 'the text part carries the link')
  assert.ok(mail.html.includes(link.replace(/&/g, '&amp;')), 'the HTML part carries the same link')

  const stranger = await signIn(t, (await createTestUser(t.services)).email)
  assert.equal((await stranger.get(link)).status, 404, 'the link works only for the person it was sent to')

  const agent = await signIn(t, user.email)
  const page = await agent.get(link)
  assert.equal(page.status, 200)
  assert.match(page.text, /Remove it and alert my administrators/)
  assert.equal((await methodIds(user.id)).length, 1, 'opening the link changes nothing')

  const token = new URL(link, 'http://x').searchParams.get('token')!
  const confirm = await submitForm(agent, link, '/methods/not-me', { token })
  assert.equal(confirm.status, 303)
  assert.deepEqual(await methodIds(user.id), [])
  const audit = await t.services.audit.list({ subjectUserId: user.id, action: 'method.reported_not_me' })
  assert.equal(JSON.parse(audit[0].details).revoked, true)
  const alert = await smtp.waitFor((m) => m.to.includes(admin.email) && /Security alert/.test(m.subject))
  assert.match(alert.text, /did not add the sign-in method "Mobile •••• 9999"/)

  const again = await agent.get(link)
  assert.equal(again.status, 410, 'a used link cannot be used again')
})

test('a temporary access pass opens a session that can enroll but reach nothing else', async () => {
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const user = await createTestUser(t.services, { role: 'helpdesk' })
  const { pass } = await t.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: false }, { id: helpdesk.id, label: helpdesk.email })
  const agent = anonymous(t)
  const res = await submitForm(agent, '/login/pass', '/login/pass', { email: user.email, pass: pass.toLowerCase().replace(/(.{4})/g, '$1 ') })
  assert.equal(res.status, 303)
  const home = await agent.get('/')
  assert.equal(home.status, 200)
  assert.match(home.text, /You signed in with a temporary access pass/)
  assert.equal((await agent.get('/helpdesk')).status, 403, 'not even a helpdesk user\'s console')
  assert.equal((await agent.get('/api/v1/me')).status, 403)
  assert.equal((await agent.get('/step-up')).status, 200)
  assert.equal((await submitForm(agent, '/', '/logout')).status, 303)
})

test('a one-time pass works once, even when used twice at the same moment', async () => {
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const user = await createTestUser(t.services)
  const { pass } = await t.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: true }, { id: helpdesk.id, label: helpdesk.email })
  const agents = [anonymous(t), anonymous(t)]
  const tokens = await Promise.all(agents.map((a) => csrfFor(a, '/login/pass')))
  const results = await Promise.all(agents.map((a, i) => a.post('/login/pass').type('form').send({ email: user.email, pass, _csrf: tokens[i] })))
  assert.deepEqual(results.map((r) => r.status).sort(), [303, 401])
  const later = anonymous(t)
  const third = await submitForm(later, '/login/pass', '/login/pass', { email: user.email, pass })
  assert.equal(third.status, 401)
  assert.match(third.text, /do not match an active pass/)
})

test('an expired or wrong pass is refused with the same message', async () => {
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const user = await createTestUser(t.services)
  const { pass } = await t.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: false }, { id: helpdesk.id, label: helpdesk.email })
  const agent = anonymous(t)
  const wrong = await submitForm(agent, '/login/pass', '/login/pass', { email: user.email, pass: 'ABCDEFGHJKMN' })
  t.clock.advance(61 * 60_000)
  const expired = await submitForm(agent, '/login/pass', '/login/pass', { email: user.email, pass })
  assert.equal(wrong.status, 401)
  assert.equal(expired.status, 401)
  const message = (html: string) => /role="alert">([^<]*)</.exec(html)?.[1]
  assert.equal(message(wrong.text), message(expired.text))
})

test('a pass is never issued to yourself', async () => {
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  await assert.rejects(async () => await t.services.passes.issue(helpdesk, { lifetimeMinutes: 60, oneTime: true }, { id: helpdesk.id, label: helpdesk.email }), /to yourself/)
})
