import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { anonymous, createTestUser, csrfFor, signIn, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.ts'
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
