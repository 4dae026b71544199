import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import type { User } from '../../server/domain/users.ts'
import { anonymous, createTestUser, sessionCookieOf, signIn, startTestApp, submitForm, totpCode, type TestApp } from '../helpers/app.ts'
import { addSoftwarePasskey, pageToken, passkeyStepUp, postJson, SoftwareAuthenticator } from '../helpers/webauthn.ts'
import { sqlOn } from '../helpers/sql.ts'

// A session id seen before a second factor was proved (over a shoulder, in a proxy log, on a shared machine)
// must not inherit that proof: the id changes at every step-up, and the old one stops working.

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

async function withApp (user: User): Promise<{ secret: string, methodId: string }> {
  const secret = new Secret({ size: 20 }).base32
  return { secret, methodId: (await t.services.methods.addTotp(user.id, 'Phone app', secret, 0)).id }
}

/** Where a request carrying only `cookie` ends up: 200 (signed in), or the page it is sent to. */
async function whereCookieLeads (cookie: string): Promise<string | number> {
  const res = await anonymous(t).get('/').set('cookie', cookie)
  return res.status === 303 ? res.headers.location : res.status
}

test('confirming it\'s you with a code issues a new session id, and the old id no longer works', async () => {
  const user = await createTestUser(t.services)
  const app = await withApp(user)
  const agent = await signIn(t, user.email)
  const before = agent.sessionCookie
  assert.equal(await whereCookieLeads(before), 200)

  const res = await submitForm(agent, '/step-up?next=/', '/step-up/totp', { methodId: app.methodId, code: totpCode(app.secret, t.clock.now().getTime()), next: '/enroll/totp' })
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/enroll/totp')
  const after = sessionCookieOf(res)
  assert.ok(after !== undefined && after !== before, 'a new session id after the step-up')
  assert.match(await whereCookieLeads(before) as string, /^\/login/, 'the old id is signed out')
  assert.equal(await whereCookieLeads(after), 200)
  // The new session carries the step-up: adding a method needs no further confirmation.
  assert.doesNotMatch((await agent.get('/enroll/totp')).text, /first confirm it&#39;s you/)
})

test('finishing the second factor at sign-in issues a new session id, and the half-signed-in id no longer works', async () => {
  const user = await createTestUser(t.services)
  const app = await withApp(user)
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)
  const agent = await signIn(t, user.email)
  const before = agent.sessionCookie
  assert.match(await whereCookieLeads(before) as string, /^\/step-up/, 'the password alone leads to the second-factor step')

  const res = await submitForm(agent, '/step-up?next=/', '/step-up/totp', { methodId: app.methodId, code: totpCode(app.secret, t.clock.now().getTime()), next: '/' })
  assert.equal(res.status, 303)
  const after = sessionCookieOf(res)
  assert.ok(after !== undefined && after !== before, 'a new session id once the second factor is done')
  assert.match(await whereCookieLeads(before) as string, /^\/login/, 'the old id is signed out, not signed in')
  assert.equal(await whereCookieLeads(after), 200)
})

test('confirming it\'s you with a passkey issues a new session id, and the old id no longer works', async () => {
  const user = await createTestUser(t.services)
  const authenticator = new SoftwareAuthenticator()
  await addSoftwarePasskey(t, user, authenticator)
  const agent = await signIn(t, user.email)
  const before = agent.sessionCookie

  const { res } = await passkeyStepUp(t, agent, authenticator, '/enroll/passkey')
  assert.equal(res.status, 200, JSON.stringify(res.body))
  const after = sessionCookieOf(res)
  assert.ok(after !== undefined && after !== before, 'a new session id after the step-up')
  assert.match(await whereCookieLeads(before) as string, /^\/login/)
  assert.equal(await whereCookieLeads(after), 200)
  assert.equal((await postJson(agent, '/enroll/passkey/options', await pageToken(agent, '/enroll/passkey'), {})).status, 200, 'the step-up came along')
})
