import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { anonymous, createTestUser, signIn, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
const logLines: string[] = []

// The real app with its real logger at info level, writing where the test can read it.
before(async () => { t = await startTestApp({}, { logLines }) })
after(async () => { await t.close() })

const MINUTE = 60_000

async function sessionsOf (userId: string): Promise<number> {
  return (await sqlOn(t.services).value('SELECT count(*) FROM sessions WHERE user_id = ?', userId)) as number
}

test('a session opened with an access pass ends when the pass expires, however busy it is', async () => {
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const user = await createTestUser(t.services)
  const { pass } = await t.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: false }, { id: helpdesk.id, label: helpdesk.email })
  const agent = anonymous(t)
  assert.equal((await submitForm(agent, '/login/pass', '/login/pass', { email: user.email, pass })).status, 303)
  // Busy all along: never idle for long, and far from the 12-hour absolute limit.
  for (let i = 0; i < 3; i++) {
    t.clock.advance(19 * MINUTE)
    assert.equal((await agent.get('/')).status, 200, `still open after ${(i + 1) * 19} minutes`)
  }
  t.clock.advance(4 * MINUTE)
  const ended = await agent.get('/enroll/totp')
  assert.equal(ended.status, 303)
  assert.match(ended.headers.location, /^\/login\?.*ended=pass/)
  const page = await agent.get(ended.headers.location)
  assert.match(page.text, /Your temporary access pass has expired, and the session it opened ended with it/)
  assert.equal((await agent.get('/')).status, 303, 'the session stays ended')
  assert.equal(await sessionsOf(user.id), 0)
})

test('"This wasn\'t me" ends every other session of the account; the reporting browser stays signed in under a new id', async () => {
  const user = await createTestUser(t.services)
  const intruder = await t.services.methods.addPhone(user.id, 'Mobile •••• 9999', '+12025559999')
  const elsewhere = await signIn(t, user.email)
  const reporter = await signIn(t, user.email)
  assert.equal(await sessionsOf(user.id), 2)
  // The link's token, as the e-mail would carry it.
  const noticeToken = await noticeTokenFor(user.id, intruder.id)
  const res = await submitForm(reporter, `/methods/not-me?token=${noticeToken}`, '/methods/not-me', { token: noticeToken })
  assert.equal(res.status, 303)
  const newCookie = (res.headers['set-cookie'] as unknown as string[] | undefined)?.find((c) => c.startsWith('mfa_session='))?.split(';')[0]
  assert.ok(newCookie, 'the reporting browser gets a new session id')
  assert.notEqual(newCookie, reporter.sessionCookie)

  const other = await elsewhere.get('/')
  assert.equal(other.status, 303, 'the other session is over')
  assert.match(other.headers.location, /^\/login/)
  assert.equal((await reporter.get('/')).status, 200, 'the person reporting goes on')
  assert.equal(await sessionsOf(user.id), 1)
  const [event] = await t.services.audit.list({ subjectUserId: user.id, action: 'method.reported_not_me' })
  assert.equal(JSON.parse(event.details).sessionsEnded, 2)
})

test('secrets in request addresses never reach the logs: "This wasn\'t me" tokens, Microsoft callback codes, invitation links', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const secrets = ['NotMeToken0123456789abcdef', 'MicrosoftCode0123456789', 'StateValue0123456789', 'InviteToken0123456789abcdef']
  logLines.length = 0
  await agent.get(`/methods/not-me?token=${secrets[0]}`)
  await anonymous(t).get(`/login/microsoft/callback?code=${secrets[1]}&state=${secrets[2]}&session_state=x`)
  await anonymous(t).get(`/invite/${secrets[3]}`).set('x-test', '1')
  await anonymous(t).get(`/login?next=%2F&Code=${secrets[1]}`)
  const logged = logLines.join('')
  assert.match(logged, /\/methods\/not-me\?token=\[redacted\]/, 'the request is logged, without its token')
  assert.match(logged, /\/login\?next=%2F&Code=\[redacted\]/, 'other parameters stay readable')
  for (const secret of secrets) assert.ok(!logged.includes(secret), `${secret} was logged`)
})

/** Creates a "This wasn't me" notice as a method change does, and returns its token from the e-mail in the outbox. */
async function noticeTokenFor (userId: string, methodId: string): Promise<string> {
  const user = (await t.services.users.findById(userId))!
  const method = (await t.services.methods.listFor(userId)).find((m) => m.id === methodId)!
  await t.services.lifecycle.added(user, method, null)
  const mail = (await t.services.outbox.latest()).find((m) => m.bodyText.includes('/methods/not-me?token='))!
  return /\/methods\/not-me\?token=([\w-]+)/.exec(mail.bodyText)![1]
}

test('a session cookie that names no stored session grants nothing and is cleared from the browser', async () => {
  // Validly signed (as an ended or revoked session's cookie is), but no row stands behind it.
  const cookie = `mfa_session=${encodeURIComponent(t.app.signCookie('a-session-that-ended'))}`
  const res = await anonymous(t).get('/').set('cookie', cookie)
  assert.equal(res.status, 303)
  assert.match(res.headers.location, /^\/login/)
  const cleared = ((res.headers['set-cookie'] as unknown as string[] | undefined) ?? []).find((c) => c.startsWith('mfa_session='))
  assert.ok(cleared, 'the browser is told to forget the cookie')
  assert.match(cleared, /^mfa_session=;.*Expires=Thu, 01 Jan 1970/)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM sessions WHERE sid = ?', 'a-session-that-ended'), 0, 'nor is a row made for it')
})

test('signing out deletes the session and tells the browser to forget its cookie', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  assert.equal(await sessionsOf(user.id), 1)
  const res = await submitForm(agent, '/', '/logout', {})
  assert.equal(res.status, 303)
  assert.match(((res.headers['set-cookie'] as unknown as string[] | undefined) ?? []).find((c) => c.startsWith('mfa_session=')) ?? '', /^mfa_session=;.*Expires=Thu, 01 Jan 1970/)
  assert.equal(await sessionsOf(user.id), 0)
  assert.equal((await anonymous(t).get('/').set('cookie', agent.sessionCookie)).status, 303, 'the old cookie replayed is nobody')
})

test('looking at pages writes nothing: a session row is stored again only when the session changed', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  assert.equal((await agent.get('/')).status, 200)
  const rows = sqlOn(t.services)
  // Every store of a session works its expiry out again: an expiry no store would write marks the row as untouched.
  const stored = Number(await rows.value('SELECT expires_at FROM sessions WHERE user_id = ?', user.id))
  const marked = stored - 12_345
  assert.equal(await rows.run('UPDATE sessions SET expires_at = ? WHERE user_id = ?', marked, user.id), 1)
  for (const path of ['/', '/preferences', '/api/v1/me', '/']) assert.equal((await agent.get(path)).status, 200, path)
  assert.equal(Number(await rows.value('SELECT expires_at FROM sessions WHERE user_id = ?', user.id)), marked, 'no page view rewrote the session')
  // Saving preferences leaves a message for the next page in the session: that is stored.
  const saved = await submitForm(agent, '/preferences', '/preferences', { locale: '', timeZone: 'Europe/Berlin' })
  assert.equal(saved.status, 303)
  assert.equal(Number(await rows.value('SELECT expires_at FROM sessions WHERE user_id = ?', user.id)), stored)
})

test('sessions stored by an earlier version (the session plugin\'s cookie settings kept in the row) stay signed in after an upgrade', async () => {
  const user = await createTestUser(t.services)
  const now = t.clock.now().getTime()
  const earlier = { cookie: { originalMaxAge: null, expires: null, secure: false, httpOnly: true, path: '/', sameSite: 'lax' }, auth: { userId: user.id, createdAt: now, lastSeenAt: now } }
  await sqlOn(t.services).run('INSERT INTO sessions (sid, user_id, data, expires_at) VALUES (?, ?, ?, ?)', 'from-the-earlier-version', user.id, JSON.stringify(earlier), now + 30 * MINUTE)
  const page = await anonymous(t).get('/').set('cookie', `mfa_session=${encodeURIComponent(t.app.signCookie('from-the-earlier-version'))}`)
  assert.equal(page.status, 200)
  assert.match(page.text, /Sign out/)
})

test('who is signed in is what the session itself says: a row whose user column names someone else, or no one, changes nothing', async () => {
  const user = await createTestUser(t.services, { displayName: 'Riley Session-Owner' })
  const admin = await createTestUser(t.services, { role: 'admin', displayName: 'Avery Admin' })
  await t.services.methods.addTotp(user.id, 'Riley app', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 0)
  await t.services.methods.addTotp(admin.id, 'Avery app', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 0)
  const agent = await signIn(t, user.email)
  const rows = sqlOn(t.services)
  assert.equal(await rows.run('UPDATE sessions SET user_id = ? WHERE user_id = ?', admin.id, user.id), 1)
  const page = await agent.get('/')
  assert.equal(page.status, 200)
  assert.match(page.text, /Hello, Riley Session-Owner/)
  // Nor are their methods or deadline (read with the session row, for the user it names) shown instead.
  assert.match(page.text, /Riley app/)
  assert.doesNotMatch(page.text, /Avery Admin|Avery app/)
  assert.equal((await agent.get('/admin')).status, 403, 'the other user\'s role is not borrowed either')
  await rows.run('UPDATE sessions SET user_id = NULL WHERE user_id = ?', admin.id)
  const again = await agent.get('/')
  assert.equal(again.status, 200)
  assert.match(again.text, /Hello, Riley Session-Owner/)
})
