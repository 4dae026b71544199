import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { anonymous, createTestUser, csrfFor, csrfFrom, sessionCookieOf as sessionCookie, signIn, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })


test('a user signs in with email and password and sees their name on the home page', async () => {
  const user = await createTestUser(t.services, { displayName: 'Grace Hopper' })
  const agent = await signIn(t, user.email.toUpperCase())
  const home = await agent.get('/')
  assert.equal(home.status, 200)
  assert.match(home.text, /Hello, Grace Hopper/)
  assert.match(home.text, /Not set up yet/)
  const rows = await t.services.audit.list({ subjectUserId: user.id, action: 'signin.success' })
  assert.equal(rows.length, 1)
})

test('a wrong password and an unknown account get exactly the same message', async () => {
  const user = await createTestUser(t.services)
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login')
  const wrong = await agent.post('/login').type('form').send({ email: user.email, password: 'not the password', _csrf: token })
  const unknown = await agent.post('/login').type('form').send({ email: 'nobody@test.example', password: TEST_PASSWORD, _csrf: token })
  assert.equal(wrong.status, 401)
  assert.equal(unknown.status, 401)
  const message = (html: string) => /role="alert">([^<]*)</.exec(html)?.[1]
  assert.ok(message(wrong.text))
  assert.equal(message(wrong.text), message(unknown.text))
  // The typed email is kept in the form so the user can fix a typo; the password is not.
  assert.match(wrong.text, new RegExp(`value="${user.email}"`))
  assert.doesNotMatch(wrong.text, /not the password/)
  const failures = await t.services.audit.list({ action: 'signin.failure' })
  assert.deepEqual(failures.slice(0, 2).map((r) => JSON.parse(r.details).reason).sort(), ['unknown_user', 'wrong_password'])
})

test('signing in issues a new session id, so an id planted before sign-in is worthless', async () => {
  // Session fixation: an anonymous session the attacker knows the id of, planted in the victim's browser.
  const planted = `planted-${Date.now()}`
  await t.services.sessions.set(planted, { note: 'planted' })
  const plantedCookie = `mfa_session=${encodeURIComponent(t.app.signCookie(planted))}`
  const user = await createTestUser(t.services)
  const form = await anonymous(t).get('/login').set('cookie', plantedCookie)
  assert.equal(form.status, 200)
  const res = await anonymous(t).post('/login').set('Cookie', [plantedCookie, ...cookiesOf(form)]).type('form')
    .send({ email: user.email, password: TEST_PASSWORD, _csrf: csrfFrom(form.text) })
  assert.equal(res.status, 303)
  const afterSignIn = sessionCookie(res)
  assert.ok(afterSignIn)
  assert.notEqual(afterSignIn, plantedCookie)
  // The planted id is gone from the store: replaying it gives an anonymous visitor, never the victim's session.
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM sessions WHERE sid = ?', planted), 0)
  const replay = await anonymous(t).get('/').set('cookie', plantedCookie)
  assert.equal(replay.status, 303)
  assert.match(replay.headers.location, /^\/login/)
})

test('looking at the sign-in page stores no session: only a signed CSRF cookie, HttpOnly and SameSite=Lax', async () => {
  const rows = async () => (await sqlOn(t.services).value('SELECT count(*) FROM sessions')) as number
  const before = await rows()
  for (let i = 0; i < 50; i++) {
    const res = await anonymous(t).get('/login')
    assert.equal(res.status, 200)
    assert.equal(sessionCookie(res), undefined, 'no session cookie for a visitor who has done nothing')
    assert.ok(cookiesOf(res).some((c) => c.startsWith('mfa_csrf=')), 'the form\'s token comes with its own cookie')
  }
  assert.equal(await rows(), before, '50 anonymous page views, no new session rows')
  const raw = (await anonymous(t).get('/login')).headers['set-cookie'] as unknown as string[]
  const csrfCookie = raw.find((c) => c.startsWith('mfa_csrf='))!
  assert.match(csrfCookie, /HttpOnly/)
  assert.match(csrfCookie, /SameSite=Lax/)
  assert.match(csrfCookie, /^mfa_csrf=[^;.]+\.[^;]+;/, 'signed')
  assert.doesNotMatch(csrfCookie, /Max-Age|Expires/)
})

test('the session cookie is HttpOnly and SameSite=Lax, and not Secure over plain http', async () => {
  const form = await anonymous(t).get('/login')
  const res = await anonymous(t).post('/login').set('Cookie', cookiesOf(form)).type('form')
    .send({ email: (await createTestUser(t.services)).email, password: TEST_PASSWORD, _csrf: csrfFrom(form.text) })
  const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('mfa_session='))!
  assert.match(cookie, /HttpOnly/)
  assert.match(cookie, /SameSite=Lax/)
  assert.doesNotMatch(cookie, /Secure/)
  assert.doesNotMatch(cookie, /Max-Age|Expires/)
})

test('after sign-out the old session cookie no longer works', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const cookie = agent.sessionCookie
  const home = await anonymous(t).get('/').set('cookie', cookie)
  assert.equal(home.status, 200, 'the cookie alone carries the session before sign-out')
  const out = await agent.post('/logout').type('form').send({ _csrf: await csrfFor(agent, '/') })
  assert.equal(out.status, 303)
  assert.equal(out.headers.location, '/login?signed_out=1')
  const again = await anonymous(t).get('/').set('cookie', cookie)
  assert.equal(again.status, 303)
  assert.match(again.headers.location, /^\/login/)
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'signout' })).length, 1)
})

test('a session idle for longer than the idle timeout ends, and the sign-in page says why', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  t.clock.advance(29 * 60_000)
  assert.equal((await agent.get('/')).status, 200, 'still signed in after 29 idle minutes')
  t.clock.advance(29 * 60_000)
  assert.equal((await agent.get('/')).status, 200, 'activity restarted the idle clock')
  t.clock.advance(30 * 60_000)
  const res = await agent.get('/')
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/login?next=%2F&ended=idle')
  const page = await agent.get(res.headers.location)
  assert.match(page.text, /signed out after a period without activity/)
})

test('a busy session still ends at the absolute timeout', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  // A request every 20 minutes for 12 hours: never idle, yet the session must end.
  for (let step = 1; step < 36; step++) {
    t.clock.advance(20 * 60_000)
    assert.equal((await agent.get('/')).status, 200, `after ${step * 20} minutes`)
  }
  t.clock.advance(20 * 60_000)
  const res = await agent.get('/')
  assert.equal(res.status, 303)
  assert.match(res.headers.location, /ended=absolute/)
})

test('after sign-in the user lands on the page they asked for, never on another site', async () => {
  const user = await createTestUser(t.services, { role: 'helpdesk' })
  for (const [next, expected] of [['/helpdesk', '/helpdesk'], ['//evil.example/x', '/'], ['https://evil.example', '/'], ['/\\evil.example', '/']]) {
    const agent = anonymous(t)
    const token = await csrfFor(agent, '/login')
    const res = await agent.post('/login').type('form').send({ email: user.email, password: TEST_PASSWORD, next, _csrf: token })
    assert.equal(res.headers.location, expected, `next=${next}`)
  }
})

test('changing a user\'s role signs them out everywhere and is audited', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  await t.services.userService.changeRole(user.id, 'helpdesk', { id: null, label: 'test' })
  const res = await agent.get('/')
  assert.equal(res.status, 303)
  const audit = await t.services.audit.list({ subjectUserId: user.id, action: 'user.role_changed' })
  assert.deepEqual(JSON.parse(audit[0].details), { from: 'user', to: 'helpdesk', sessionsEnded: 1 })
  const fresh = await signIn(t, user.email)
  assert.equal((await fresh.get('/helpdesk')).status, 200)
})

/** The name=value pairs a response sets, to send back as a browser would. */
function cookiesOf (res: { headers: Record<string, unknown> }): string[] {
  return ((res.headers['set-cookie'] as string[] | undefined) ?? []).map((c) => c.split(';')[0])
}
