import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret, TOTP } from 'otpauth'
import { anonymous, createTestUser, csrfFor, signIn, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

async function enforce (userId: string): Promise<void> {
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), userId)
}

test('once MFA is enforced, a password alone does not sign the user in: the second factor is asked for first', async () => {
  const user = await createTestUser(t.services)
  const secret = new Secret({ size: 20 })
  const app = await t.services.methods.addTotp(user.id, 'App', secret.base32, 0)
  await enforce(user.id)
  const agent = await signIn(t, user.email)
  for (const path of ['/', '/enroll/totp', '/api/v1/me']) {
    const res = await agent.get(path)
    assert.ok(res.status === 303 || res.status === 401, `${path} is closed until the second factor`)
    if (res.status === 303) assert.match(res.headers.location, /^\/step-up\?next=/)
  }
  const page = await agent.get('/step-up?next=/')
  assert.match(page.text, /Use one of your sign-in methods to finish signing in/)
  assert.equal((await agent.get('/static/css/app.css')).status, 200, 'the step-up page keeps its stylesheet')
  const code = new TOTP({ secret }).generate({ timestamp: t.clock.now().getTime() })
  const done = await submitForm(agent, '/step-up?next=/', '/step-up/totp', { methodId: app.id, code, next: '/' })
  assert.equal(done.headers.location, '/')
  assert.equal((await agent.get('/')).status, 200)
})

test('an enforced user with no method cannot sign in with a password and is told to ask for an access pass', async () => {
  const user = await createTestUser(t.services)
  await enforce(user.id)
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login')
  const res = await agent.post('/login').type('form').send({ email: user.email, password: 'correct horse battery staple', _csrf: token })
  assert.equal(res.status, 403)
  assert.match(res.text, /no sign-in method set up yet\. Ask your helpdesk for a temporary access pass/)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM sessions WHERE user_id = ?', user.id), 0)
})

test('a temporary access pass session still reaches its stylesheet and scripts', async () => {
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const user = await createTestUser(t.services)
  const { pass } = await t.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: false }, { id: helpdesk.id, label: helpdesk.email })
  const agent = anonymous(t)
  await submitForm(agent, '/login/pass', '/login/pass', { email: user.email, pass })
  assert.equal((await agent.get('/static/css/app.css')).status, 200)
  assert.equal((await agent.get('/static/js/passkey.js')).status, 200)
})

test('users whose MFA is optional sign in with a password as before', async () => {
  const user = await createTestUser(t.services)
  await t.services.methods.addTotp(user.id, 'App', new Secret({ size: 20 }).base32, 0)
  assert.equal((await (await signIn(t, user.email)).get('/')).status, 200)
})
