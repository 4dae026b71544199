import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { automationServices } from '../../server/wiring-automation.ts'
import { anonymous, createTestUser, csrfFor, sessionCookieOf, signIn, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.ts'
import { sqlOn, type SqlParam } from '../helpers/sql.ts'

// A second line of defence besides the CSRF token: a state-changing request that says it comes from another site
// (its Origin, or Sec-Fetch-Site) is refused even when it carries a valid token. Requests that say nothing (old
// clients, scripts) still rely on the token; the bearer-token API, which no cookie authenticates, is not affected.

let t: TestApp
let own: string
before(async () => {
  // Plain http, so that supertest sends the cookies back (https would make them Secure).
  t = await startTestApp({ PUBLIC_URL: 'http://mfa.example.org' })
  own = t.config.publicUrl.origin
})
after(async () => { await t.close() })

async function countRows (table: string, where = '1 = 1', ...params: SqlParam[]): Promise<number> {
  return (await sqlOn(t.services).get<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, ...params))!.n
}

/** A sign-in POST with a valid token, sent with `headers`. */
async function signInWith (email: string, headers: Record<string, string>) {
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login')
  return await agent.post('/login').set(headers).type('form').send({ email, password: TEST_PASSWORD, _csrf: token })
}

const FOREIGN: Array<[string, Record<string, string>]> = [
  ['another site\'s Origin', { origin: 'http://evil.example' }],
  ['a sibling host\'s Origin', { origin: 'http://evil.mfa.example.org' }],
  ['the portal\'s host over another scheme', { origin: 'https://mfa.example.org' }],
  ['the portal\'s host on another port', { origin: 'http://mfa.example.org:8080' }],
  ['Origin: null (a sandboxed frame, a cross-site redirect)', { origin: 'null' }],
  ['Origin: null from a cross-site context', { origin: 'null', 'sec-fetch-site': 'cross-site' }],
  ['Sec-Fetch-Site: cross-site without an Origin', { 'sec-fetch-site': 'cross-site' }],
  ['Sec-Fetch-Site: same-site without an Origin', { 'sec-fetch-site': 'same-site' }],
  ['the portal\'s Origin but Sec-Fetch-Site: cross-site', { origin: 'http://mfa.example.org', 'sec-fetch-site': 'cross-site' }]
]

test('a sign-in with a valid CSRF token is refused when the request says it comes from another site, and nothing happens', async () => {
  const user = await createTestUser(t.services)
  const auditBefore = await countRows('audit_events')
  for (const [label, headers] of FOREIGN) {
    const res = await signInWith(user.email, headers)
    assert.equal(res.status, 403, label)
    assert.match(res.text, /This form has expired or was not sent from this site/, label)
    assert.equal(sessionCookieOf(res), undefined, label)
  }
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 0)
  assert.equal(await countRows('audit_events'), auditBefore, 'the password was not even checked')
})

test('the portal\'s own Origin, or no Origin at all, signs in with a valid token', async () => {
  const user = await createTestUser(t.services)
  const sent: Array<Record<string, string>> = [
    { origin: own, 'sec-fetch-site': 'same-origin' },
    { origin: own },
    {},
    { 'sec-fetch-site': 'none' },
    // A portal page served with Referrer-Policy: no-referrer posts its forms with Origin: null.
    { origin: 'null', 'sec-fetch-site': 'same-origin' }
  ]
  for (const headers of sent) {
    const res = await signInWith(user.email, headers)
    assert.equal(res.status, 303, JSON.stringify(headers))
  }
})

test('a signed-in user\'s sign-out from another site is refused and the session stays valid', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const token = await csrfFor(agent, '/')
  const res = await agent.post('/logout').set('origin', 'https://evil.example').set('x-csrf-token', token)
  assert.equal(res.status, 403)
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 1)
  assert.equal((await agent.get('/')).status, 200)
})

test('a script posting JSON from another site gets the same 403 JSON as a bad CSRF token', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const token = await csrfFor(agent, '/')
  const res = await agent.post('/step-up/passkey/options').set('origin', 'null').set('x-csrf-token', token).send({})
  assert.equal(res.status, 403)
  const badToken = await agent.post('/step-up/passkey/options').set('x-csrf-token', 'not-the-token').send({})
  assert.equal(badToken.status, 403)
  // The portal's own scripts also get `display` (the message in the reader's language), in both answers alike.
  assert.deepEqual(Object.keys(res.body.error).sort(), Object.keys(badToken.body.error).sort())
  assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'display', 'message'])
  assert.equal(res.body.error.code, 'csrf_invalid')
})

test('pages still open from links on other sites: GET is not refused for its Origin', async () => {
  const res = await anonymous(t).get('/login').set('origin', 'https://evil.example').set('sec-fetch-site', 'cross-site')
  assert.equal(res.status, 200)
})

test('the bearer-token API, which no cookie authenticates, does not look at Origin', async () => {
  const user = await createTestUser(t.services)
  const { secret } = await automationServices(t.services).tokens.create({ name: 'HR feed', scopes: ['phones:write'], expiresInDays: null }, { id: null, label: 'test' })
  const res = await anonymous(t).put(`/api/v1/users/${user.id}/phone`).set('authorization', `Bearer ${secret}`).set('origin', 'https://hr.example').send({ phone: '+4915112345678' })
  assert.equal(res.status, 200)
})
