import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { anonymous, createTestUser, signIn, startTestApp, type Agent, type TestApp } from '../helpers/app.ts'

let t: TestApp
const agents: Record<string, Agent> = {}
before(async () => {
  t = await startTestApp()
  agents.anonymous = anonymous(t)
  for (const role of ['user', 'helpdesk', 'admin'] as const) {
    const user = await createTestUser(t.services, { role })
    agents[role] = await signIn(t, user.email)
  }
})
after(async () => { await t.close() })

// who × where → status. Anonymous visitors are sent to sign in (303); signed-in people without the role get a 403 page.
const MATRIX: Array<[string, string, number]> = [
  ['anonymous', '/', 303], ['anonymous', '/helpdesk', 303], ['anonymous', '/admin', 303], ['anonymous', '/admin/anything', 303],
  ['user', '/', 200], ['user', '/helpdesk', 403], ['user', '/admin', 403], ['user', '/admin/anything', 403],
  ['helpdesk', '/', 200], ['helpdesk', '/helpdesk', 200], ['helpdesk', '/admin', 403], ['helpdesk', '/helpdesk/anything', 404],
  ['admin', '/', 200], ['admin', '/helpdesk', 200], ['admin', '/admin', 200], ['admin', '/admin/anything', 404]
]

for (const [who, path, status] of MATRIX) {
  test(`${who} opening ${path} gets ${status}`, async () => {
    const res = await agents[who].get(path)
    assert.equal(res.status, status)
    if (status === 303) assert.equal(res.headers.location, `/login?next=${encodeURIComponent(path)}`)
    if (status === 403) {
      assert.match(res.text, /You do not have access to this page/)
      assert.match(res.headers['content-type'], /text\/html/)
    }
  })
}

test('the navigation shows only the consoles a person may open', async () => {
  const nav = async (who: string) => (await agents[who].get('/')).text
  assert.doesNotMatch(await nav('user'), /href="\/helpdesk"|href="\/admin"/)
  assert.match(await nav('helpdesk'), /href="\/helpdesk"/)
  assert.doesNotMatch(await nav('helpdesk'), /href="\/admin"/)
  assert.match(await nav('admin'), /href="\/admin"/)
})

test('API-style routes answer JSON errors with a stable code', async () => {
  const anon = await agents.anonymous.get('/api/v1/me')
  assert.equal(anon.status, 401)
  assert.deepEqual(anon.body, { error: { code: 'unauthenticated', message: 'Sign in first.' } })
  const missing = await agents.user.get('/api/v1/nothing-here')
  assert.equal(missing.status, 404)
  assert.equal(missing.body.error.code, 'not_found')
  const me = await agents.helpdesk.get('/api/v1/me')
  assert.equal(me.status, 200)
  assert.equal(me.body.role, 'helpdesk')
})

test('a console page asked for as JSON answers 403 JSON, not HTML', async () => {
  const res = await agents.user.get('/admin').set('accept', 'application/json')
  assert.equal(res.status, 403)
  assert.equal(res.body.error.code, 'forbidden')
})
