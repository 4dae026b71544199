import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { anonymous, createTestUser, csrfFor, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.ts'

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

async function attempt (email: string, password: string, ip?: string) {
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login')
  const req = agent.post('/login').type('form')
  if (ip !== undefined) req.set('x-forwarded-for', ip)
  return req.send({ email, password, _csrf: token })
}

test('the sixth wrong password in a minute gets the lockout message even with the right password, and is audited', async () => {
  const user = await createTestUser(t.services)
  for (let i = 1; i <= 4; i++) {
    const res = await attempt(user.email, `wrong-${i}`)
    assert.equal(res.status, 401, `attempt ${i}`)
  }
  const fifth = await attempt(user.email, 'wrong-5')
  assert.equal(fifth.status, 429)
  const sixth = await attempt(user.email, TEST_PASSWORD)
  assert.equal(sixth.status, 429)
  assert.match(sixth.text, /Too many failed attempts\. For your security, sign-in is paused for 15 minutes/)
  assert.equal(t.services.database.sqlite.prepare('SELECT count(*) AS n FROM sessions WHERE user_id = ?').pluck().get(user.id), 0)

  const lockouts = t.services.audit.list({ subjectUserId: user.id, action: 'signin.lockout' })
  assert.equal(lockouts.length, 1)
  assert.equal(JSON.parse(lockouts[0].details).scope, 'account')
  assert.equal(t.services.audit.list({ subjectUserId: user.id, action: 'signin.refused_locked' }).length, 1)

  t.clock.advance(15 * 60_000)
  const later = await attempt(user.email, TEST_PASSWORD)
  assert.equal(later.status, 303, 'the lock lifts after 15 minutes')
})

test('a success resets the account count, so occasional typos never lock anyone out', async () => {
  const user = await createTestUser(t.services)
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 4; i++) assert.equal((await attempt(user.email, 'typo')).status, 401)
    assert.equal((await attempt(user.email, TEST_PASSWORD)).status, 303)
  }
})

test('one address trying many accounts is locked per address, without locking those accounts for others', async () => {
  const t2 = await startTestApp({ TRUST_PROXY: 'true', SIGNIN_MAX_FAILURES_PER_IP: '3' })
  try {
    const attempt2 = async (email: string, password: string, ip: string) => {
      const agent = anonymous(t2)
      const token = await csrfFor(agent, '/login')
      return agent.post('/login').type('form').set('x-forwarded-for', ip).send({ email, password, _csrf: token })
    }
    const victim = await createTestUser(t2.services)
    for (const n of [1, 2]) assert.equal((await attempt2(`guess${n}@test.example`, 'x', '203.0.113.9')).status, 401)
    assert.equal((await attempt2('guess3@test.example', 'x', '203.0.113.9')).status, 429)
    assert.equal((await attempt2(victim.email, TEST_PASSWORD, '203.0.113.9')).status, 429, 'the attacking address stays locked')
    assert.equal((await attempt2(victim.email, TEST_PASSWORD, '198.51.100.7')).status, 303, 'the account itself is fine elsewhere')
    const lockout = t2.services.audit.list({ action: 'signin.lockout' })[0]
    assert.equal(JSON.parse(lockout.details).scope, 'ip')
    assert.equal(lockout.ip, '203.0.113.9')
  } finally {
    await t2.close()
  }
})
