import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type { User } from '../../server/domain/users.ts'
import { createTestUser, csrfFor, hiddenFields, readable, signIn, startTestApp, submitForm, totpCode, type Agent, type TestApp } from '../helpers/app.ts'
import { pageToken, postJson, SoftwareAuthenticator } from '../helpers/webauthn.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

const HELD = `/step-up?next=${encodeURIComponent('/step-up/continue')}`
const REASON = 'Lost phone on the train, ticket 4711'

/** A helpdesk member with no sign-in method yet, signed in with a password, and a person to help. */
async function helpdeskWithoutMethod () {
  t = await startTestApp()
  const staff = await createTestUser(t.services, { role: 'helpdesk', email: 'desk@test.example' })
  const person = await createTestUser(t.services, { email: 'person@test.example' })
  return { t, staff, person, desk: await signIn(t, staff.email) }
}

/** Presses "Issue pass" on the person's page with a reason. */
async function pressIssuePass (t: TestApp, desk: Agent, person: User) {
  const page = `/helpdesk/users/${person.id}`
  const csrf = await csrfFor(desk, page)
  return desk.post(`${page}/pass`).set({ host: 'portal.test', referer: `http://portal.test${page}` }).type('form')
    .send({ _csrf: csrf, lifetimeMinutes: '60', oneTime: 'on', reason: REASON })
}

async function passesIssued (t: TestApp): Promise<number> {
  return (await t.services.audit.list({ action: 'pass.issued' })).length
}

/** Sets up an authenticator app through the real pages; returns its secret, the method and the answer to the finish. */
async function addAuthenticatorApp (t: TestApp, agent: Agent) {
  const page = await agent.get('/enroll/totp')
  assert.equal(page.status, 200, 'a first method may be set up from the trusted network')
  const secret = /<code id="totp-key">([^<]+)<\/code>/.exec(page.text)![1].replace(/\s+/g, '')
  const res = await submitForm(agent, '/enroll/totp', '/enroll/totp', { code: totpCode(secret, t.clock.now().getTime()), name: 'Work phone app' })
  return { secret, res }
}

test('a helpdesk member with no method who presses "Issue pass" is told to set up a method first, and that what they entered is kept', async () => {
  const { t, person, desk } = await helpdeskWithoutMethod()
  const held = await pressIssuePass(t, desk, person)
  assert.equal(held.status, 303)
  assert.equal(held.headers.location, HELD)
  assert.equal(await passesIssued(t), 0, 'nothing issued yet')

  const page = await desk.get(HELD)
  assert.equal(page.status, 200)
  assert.match(page.text, /<h1>Set up a sign-in method first<\/h1>/)
  assert.match(readable(page.text), /Set up a sign-in method first; then you will be asked to confirm it(?:'|&#39;)s you with it, and can send what you entered \(“Issue a temporary access pass”\), which is kept for 30 minutes\./)
  assert.doesNotMatch(page.text, /Confirm it(?:'|&#39;)s you first/, 'no promise of a confirmation that cannot happen yet')
  assert.doesNotMatch(page.text, /Add your first method<\/a>/, 'no link to the home page that drops the held action')
  for (const href of ['/enroll/passkey', '/enroll/totp', '/enroll/phone']) {
    assert.match(page.text, new RegExp(`<a class="card add-method" href="${href}">`), `the first method can be chosen right there (${href})`)
  }
})

test('after a first authenticator app, the held pass is offered again with the reason kept; it needs a step-up with the new app and then issues the pass', async () => {
  const { t, staff, person, desk } = await helpdeskWithoutMethod()
  await pressIssuePass(t, desk, person)

  const { secret, res } = await addAuthenticatorApp(t, desk)
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/step-up/continue', 'on to the held action, not home')
  const onward = await desk.get('/step-up/continue')
  assert.equal(onward.headers.location, HELD, 'the offer asks for a step-up with the new method first')
  const confirm = await desk.get(HELD)
  assert.match(confirm.text, /<h1>Confirm it(?:'|&#39;)s you<\/h1>/)
  assert.match(readable(confirm.text), /Your authenticator app is set up\. To send “Issue a temporary access pass”, confirm it(?:'|&#39;)s you with it: enter the next code your app shows/)
  assert.match(confirm.text, /Nothing has changed yet: what you entered is kept/)
  assert.equal(await passesIssued(t), 0)

  t.clock.advance(30_000) // the code used to set the app up works only once: the next one
  const methodId = (await t.services.methods.listFor(staff.id))[0].id
  const stepped = await submitForm(desk, HELD, '/step-up/totp', { methodId, code: totpCode(secret, t.clock.now().getTime()), next: '/step-up/continue' })
  assert.equal(stepped.status, 303)
  assert.equal(stepped.headers.location, '/step-up/continue')

  const offer = await desk.get('/step-up/continue')
  assert.equal(offer.status, 200)
  assert.match(offer.text, /<h1>Issue a temporary access pass<\/h1>/)
  assert.match(offer.text, new RegExp(`<dd>${REASON}</dd>`), 'the reason is shown as it was typed')
  assert.match(offer.text, new RegExp(`<a href="/helpdesk/users/${person.id}">Cancel</a>`))
  const fields = hiddenFields(offer.text, `/helpdesk/users/${person.id}/pass`)
  assert.equal(fields.reason, REASON)
  assert.equal(fields.lifetimeMinutes, '60')

  const sent = await desk.post(`/helpdesk/users/${person.id}/pass`).type('form').send(fields)
  assert.equal(sent.status, 200)
  assert.match(sent.text, /person@test\.example/)
  assert.equal(await passesIssued(t), 1)
  const [issued] = await t.services.audit.list({ action: 'pass.issued' })
  assert.equal(JSON.parse(issued.details).reason, REASON)
})

test('after a first passkey, the ceremony leads on to the held action', async () => {
  const { t, person, desk } = await helpdeskWithoutMethod()
  await pressIssuePass(t, desk, person)
  const authenticator = new SoftwareAuthenticator()
  const token = await pageToken(desk, '/enroll/passkey')
  const { body } = await postJson(desk, '/enroll/passkey/options', token, {})
  const res = await postJson(desk, '/enroll/passkey/verify', token, { challengeId: body.challengeId, response: authenticator.register(body.options, t.config.webauthn.origin), name: 'Laptop' })
  assert.equal(res.status, 200)
  assert.equal(res.body.redirect, '/step-up/continue')
  const confirm = await desk.get(HELD)
  assert.match(readable(confirm.text), /Your passkey &quot;Laptop&quot; is ready\. To send “Issue a temporary access pass”, confirm it(?:'|&#39;)s you with it\./)
  assert.match(confirm.text, /Use my passkey/)
})

test('after a first phone, the verification leads on to the held action', async () => {
  t = await startTestApp({ SMS_ALLOWED_COUNTRIES: 'US' })
  const staff = await createTestUser(t.services, { role: 'helpdesk' })
  const person = await createTestUser(t.services)
  const desk = await signIn(t, staff.email)
  await pressIssuePass(t, desk, person)
  const sent = await submitForm(desk, '/enroll/phone', '/enroll/phone', { phone: '+1 202 555 0143' })
  assert.equal(sent.status, 303)
  const code = /\b(\d{6})\b/.exec((await t.services.outbox.latest(5)).find((m) => m.channel === 'sms')!.bodyText)![1]
  const res = await submitForm(desk, '/enroll/phone', '/enroll/phone/verify', { code })
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/step-up/continue')
  const confirm = await desk.get(HELD)
  assert.match(readable(confirm.text), /To send “Issue a temporary access pass”, confirm it(?:'|&#39;)s you with it: ask for a code by text message below\./)
  assert.match(confirm.text, /Text a code to/)
})

test('with nothing held, or a held action older than 30 minutes, setting up a method goes home as before', async () => {
  const { t, person, desk } = await helpdeskWithoutMethod()
  await pressIssuePass(t, desk, person)
  t.clock.advance(20 * 60_000)
  await desk.get('/') // keeps the session alive
  t.clock.advance(11 * 60_000)
  const { res } = await addAuthenticatorApp(t, desk)
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/')
  assert.equal(await passesIssued(t), 0)
})

test('an ordinary person with no method opening the step-up page is told to set one up, with the choices right there', async () => {
  t = await startTestApp()
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const page = await agent.get('/step-up?next=/')
  assert.equal(page.status, 200)
  assert.match(page.text, /<h1>Set up a sign-in method first<\/h1>/)
  assert.doesNotMatch(page.text, /nothing to confirm\. <a href="\/">/)
  assert.match(page.text, /href="\/enroll\/totp"/)
})
