import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { anonymous, createTestUser, csrfFor, csrfFrom, signIn, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.ts'
import { sqlOn, type SqlParam } from '../helpers/sql.ts'

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

async function countRows (table: string, where = '1 = 1', ...params: SqlParam[]): Promise<number> {
  return (await sqlOn(t.services).get<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, ...params))!.n
}

test('a sign-in POST without a CSRF token is refused with 403 and signs nobody in', async () => {
  const user = await createTestUser(t.services)
  const agent = anonymous(t)
  await agent.get('/login')
  const auditBefore = await countRows('audit_events')
  const res = await agent.post('/login').type('form').send({ email: user.email, password: TEST_PASSWORD })
  assert.equal(res.status, 403)
  assert.match(res.text, /This form has expired or was not sent from this site/)
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 0)
  assert.equal(await countRows('audit_events'), auditBefore, 'the password was not even checked')
  assert.equal((await agent.get('/')).status, 303)
})

test('a sign-in POST with a wrong or foreign CSRF token is refused the same way', async () => {
  const user = await createTestUser(t.services)
  const other = anonymous(t)
  const foreignToken = await csrfFor(other, '/login')
  const agent = anonymous(t)
  await agent.get('/login')
  for (const token of ['forged-token', foreignToken]) {
    const res = await agent.post('/login').type('form').send({ email: user.email, password: TEST_PASSWORD, _csrf: token })
    assert.equal(res.status, 403)
  }
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 0)
})

test('a sign-out POST without a CSRF token is refused and the session stays valid', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const res = await agent.post('/logout').type('form').send({})
  assert.equal(res.status, 403)
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 1)
  assert.equal((await agent.get('/')).status, 200)
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'signout' })).length, 0)
})

test('scripts may send the token in the x-csrf-token header instead of the form', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const token = await csrfFor(agent, '/')
  const res = await agent.post('/logout').set('x-csrf-token', token)
  assert.equal(res.status, 303)
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 0)
})

test('every page carries a different token, and each one is accepted, from a form or a script', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const first = await csrfFor(agent, '/')
  const second = await csrfFor(agent, '/')
  const third = await csrfFor(agent, '/preferences')
  assert.equal(new Set([first, second, third]).size, 3, 'no two responses carry the same token')
  const zone = await agent.post('/preferences/time-zone').set('x-csrf-token', first).send({ timeZone: 'Europe/Berlin' })
  assert.equal(zone.status, 204)
  assert.equal((await t.services.users.findById(user.id))?.timeZone, 'Europe/Berlin')
  const out = await agent.post('/logout').type('form').send({ _csrf: third })
  assert.equal(out.status, 303)
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 0)
})

test('a token shown before sign-in, or made for another session, is refused once signed in', async () => {
  const user = await createTestUser(t.services)
  const agent = anonymous(t)
  const beforeSignIn = await csrfFor(agent, '/login')
  const signedIn = await agent.post('/login').type('form').send({ email: user.email, password: TEST_PASSWORD, _csrf: beforeSignIn })
  assert.equal(signedIn.status, 303)
  const other = await signIn(t, (await createTestUser(t.services)).email)
  const othersToken = await csrfFor(other, '/')
  for (const token of [beforeSignIn, othersToken]) {
    const res = await agent.post('/logout').type('form').send({ _csrf: token })
    assert.equal(res.status, 403)
  }
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 1)
  assert.equal((await agent.get('/')).status, 200)
})

test('a secret cookie planted in someone\'s browser does not let its planter make tokens for their session', async () => {
  // The planter's own cookie and tokens: made for their session and before sign-in, with the secret they plant.
  const planter = anonymous(t)
  const loginPage = await planter.get('/login')
  const plantersLoginToken = csrfFrom(loginPage.text)
  const plantedCookie = (loginPage.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('mfa_csrf='))?.split(';')[0]
  assert.ok(plantedCookie, 'the planter holds a CSRF cookie')
  await planter.post('/login').type('form').send({ email: (await createTestUser(t.services)).email, password: TEST_PASSWORD, _csrf: plantersLoginToken })
  const plantersToken = await csrfFor(planter, '/')
  const victim = await createTestUser(t.services)
  const victimsCookies = `${(await signIn(t, victim.email)).sessionCookie}; ${plantedCookie}`
  for (const token of [plantersLoginToken, plantersToken]) {
    const res = await anonymous(t).post('/logout').set('Cookie', victimsCookies).type('form').send({ _csrf: token })
    assert.equal(res.status, 403)
  }
  assert.equal(await countRows('sessions', 'user_id = ?', victim.id), 1)
})

test('a token changed in one character, cut short, lengthened or not a token at all is refused, and nothing happens', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const token = await csrfFor(agent, '/')
  const other = (c: string): string => c === 'A' ? 'B' : 'A'
  const half = token.length / 2
  const forged = [
    other(token[0]) + token.slice(1),
    token.slice(0, half) + other(token[half]) + token.slice(half + 1),
    token.slice(0, -1) + other(token.at(-1)!),
    token.slice(0, -2),
    token.slice(2),
    `${token}AA`,
    token.slice(half),
    token.slice(0, -1) + '.',
    token.replace(/^./, 'é'),
    'A'.repeat(600),
    ''
  ]
  for (const forgery of forged) {
    const res = await agent.post('/logout').type('form').send({ _csrf: forgery })
    assert.equal(res.status, 403, `refused: ${forgery.slice(0, 20)}…`)
    const script = await agent.post('/preferences/time-zone').set('x-csrf-token', forgery).send({ timeZone: 'Asia/Tokyo' })
    assert.equal(script.status, 403)
  }
  assert.equal(await countRows('sessions', 'user_id = ?', user.id), 1)
  assert.equal((await t.services.users.findById(user.id))?.timeZone ?? null, null)
  assert.equal((await agent.post('/logout').type('form').send({ _csrf: token })).status, 303, 'the genuine token still works')
})
