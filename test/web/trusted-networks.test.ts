import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestUser, csrfFor, signIn, startTestApp } from '../helpers/app.ts'

// Supertest connects from 127.0.0.1; the office network here is 10.0.0.0/8.
async function firstMethodPage (env: Record<string, string>, forwardedFor?: string) {
  const t = await startTestApp({ TRUSTED_NETWORKS: '10.0.0.0/8', ...env })
  try {
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    const get = agent.get('/enroll/phone')
    if (forwardedFor !== undefined) get.set('x-forwarded-for', forwardedFor)
    const page = await get
    const token = await csrfFor(agent, '/')
    const post = agent.post('/enroll/phone').type('form')
    if (forwardedFor !== undefined) post.set('x-forwarded-for', forwardedFor)
    const attempt = await post.send({ phone: '+12025550143', _csrf: token })
    return { page, attempt, sent: (await t.services.outbox.latest()).filter((m) => m.channel === 'sms').length }
  } finally {
    await t.close()
  }
}

test('the first method cannot be set up from outside the trusted networks, and the page says why', async () => {
  const { page, attempt, sent } = await firstMethodPage({})
  assert.equal(page.status, 403)
  assert.match(page.text, /can only be set up from your organisation&#39;s network/)
  assert.equal(attempt.status, 403)
  assert.equal(sent, 0)
})

test('a forged X-Forwarded-For is ignored unless the request comes through a configured proxy', async () => {
  const { attempt, sent } = await firstMethodPage({}, '10.1.2.3')
  assert.equal(attempt.status, 403)
  assert.equal(sent, 0)
})

test('behind a configured trusted proxy the client address from X-Forwarded-For counts', async () => {
  const inside = await firstMethodPage({ TRUST_PROXY: '127.0.0.1' }, '10.1.2.3')
  assert.equal(inside.page.status, 200)
  assert.equal(inside.attempt.status, 303)
  assert.equal(inside.sent, 1)
  const outside = await firstMethodPage({ TRUST_PROXY: '127.0.0.1' }, '203.0.113.50')
  assert.equal(outside.attempt.status, 403)
  assert.equal(outside.sent, 0)
})

// The attack from issue #12: the client writes the left-most X-Forwarded-For entry itself, so only the hops the
// configured proxies added may count. Supertest connects from loopback, which plays the proxy here.
async function totpSetupThroughProxy (trustProxy: string, forwardedFor: string) {
  const t = await startTestApp({ TRUSTED_NETWORKS: '10.0.0.0/8', TRUST_PROXY: trustProxy })
  try {
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    const page = await agent.get('/enroll/totp').set('x-forwarded-for', forwardedFor)
    return { status: page.status, showsKey: /<code id="totp-key">/.test(page.text), methods: await t.services.methods.countFor(user.id) }
  } finally {
    await t.close()
  }
}

test('a forged left-most X-Forwarded-For entry does not put a user without a method on the trusted network', async () => {
  for (const trustProxy of ['127.0.0.1,::1', '1']) {
    const forged = await totpSetupThroughProxy(trustProxy, '10.9.9.9, 203.0.113.50')
    assert.equal(forged.status, 403, `TRUST_PROXY=${trustProxy}`)
    assert.equal(forged.showsKey, false)
    assert.equal(forged.methods, 0)
  }
})

test('behind the configured proxy, a client whose right-most hop is on the trusted network may set up a first method', async () => {
  for (const trustProxy of ['127.0.0.1,::1', '1']) {
    const inside = await totpSetupThroughProxy(trustProxy, '203.0.113.50, 10.9.9.9')
    assert.equal(inside.status, 200, `TRUST_PROXY=${trustProxy}`)
    assert.equal(inside.showsKey, true)
  }
})
