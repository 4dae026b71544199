import { Secret } from 'otpauth'
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestUser, signIn, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'

/** The 6 digits of the newest text message, which only the phone's owner would see. */
async function latestCode (t: TestApp): Promise<string> {
  const text = (await t.services.outbox.latest(1000)).filter((m) => m.channel === 'sms')[0]?.bodyText ?? ''
  const code = /\b(\d{6})\b/.exec(text)?.[1]
  assert.ok(code !== undefined, `a 6-digit code in the latest text message: "${text}"`)
  return code
}

describe('code forms after a refused code', () => {
  let t: TestApp
  before(async () => { t = await startTestApp() })
  after(async () => { await t.close() })

  for (const path of ['/step-up/totp', '/step-up/phone', '/step-up/phone/send', '/step-up/recovery-code']) {
    test(`opening ${path} (the address shown after a refused code) leads back to the confirm form, keeping where to go next`, async () => {
      const user = await createTestUser(t.services)
      // With a method to confirm with, so the page is the confirm form (without one it asks for a first method).
      await t.services.methods.addTotp(user.id, 'Phone app', new Secret({ size: 20 }).base32, 0)
      const agent = await signIn(t, user.email)
      const res = await agent.get(`${path}?next=${encodeURIComponent('/enroll/phone')}`)
      assert.equal(res.status, 303)
      assert.equal(res.headers.location, `/step-up?next=${encodeURIComponent('/enroll/phone')}`)
      const page = await agent.get(res.headers.location)
      assert.equal(page.status, 200)
      assert.match(page.text, /Confirm it&#39;s you|Confirm it's you/)
    })
  }

  test('opening /step-up/totp with a foreign "next" does not send anyone elsewhere', async () => {
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    const res = await agent.get(`/step-up/totp?next=${encodeURIComponent('https://evil.example/')}`)
    assert.equal(res.status, 303)
    assert.equal(res.headers.location, '/step-up?next=%2F')
  })

  for (const path of ['/enroll/phone/verify', '/enroll/phone/resend']) {
    test(`opening ${path} (the address shown after a refused code) leads back to the phone setup page`, async () => {
      const user = await createTestUser(t.services)
      const agent = await signIn(t, user.email)
      const res = await agent.get(path)
      assert.equal(res.status, 303)
      assert.equal(res.headers.location, '/enroll/phone')
      const page = await agent.get('/enroll/phone')
      assert.equal(page.status, 200)
      assert.match(page.text, /Add a phone/)
    })
  }

  test('signed out, those addresses still go to sign-in rather than a 404', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/enroll/phone/verify' })
    assert.notEqual(res.statusCode, 404)
  })
})

describe('a locked phone setup', () => {
  let t: TestApp
  before(async () => { t = await startTestApp({ SMS_ALLOWED_COUNTRIES: 'US', SMS_MAX_PER_NUMBER_PER_HOUR: '1000' }) })
  after(async () => { await t.close() })

  test('after five wrong codes the page hides the code box and says when a new code can be asked for', async () => {
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: '+12025550143' })
    const code = await latestCode(t)
    const wrong = code === '000000' ? '111111' : '000000'
    const sentAt = t.clock.now()
    let last
    for (let i = 1; i <= 5; i++) last = await submitForm(agent, '/enroll/phone', '/enroll/phone/verify', { code: wrong })
    assert.match(last!.text, /Too many wrong codes/)
    assert.doesNotMatch(last!.text, /action="\/enroll\/phone\/verify"/, 'no code box on the refusal')
    assert.doesNotMatch(last!.text, /Add this phone/)

    const page = await agent.get('/enroll/phone')
    assert.equal(page.status, 200)
    assert.doesNotMatch(page.text, /action="\/enroll\/phone\/verify"/, 'no code box while locked')
    assert.doesNotMatch(page.text, /Add this phone/)
    const when = new Date(sentAt.getTime() + 60_000).toISOString().slice(11, 16)
    // The time in the reader's zone, named (UTC by default).
    assert.match(page.text, new RegExp(`You can ask for a new code from ${when} \\(UTC\\)`))
    assert.match(page.text, /action="\/enroll\/phone\/resend"/, 'the way to start again is offered')

    // Once the wait is over, a new code unlocks the code box again, and it works.
    t.clock.advance(61_000)
    assert.match((await agent.get('/enroll/phone')).text, /You can ask for a new code now/)
    const resent = await submitForm(agent, '/enroll/phone', '/enroll/phone/resend')
    assert.equal(resent.status, 303)
    const fresh = await agent.get('/enroll/phone')
    assert.match(fresh.text, /action="\/enroll\/phone\/verify"/)
    const done = await submitForm(agent, '/enroll/phone', '/enroll/phone/verify', { code: await latestCode(t) })
    assert.equal(done.status, 303)
    assert.equal(await t.services.methods.countFor(user.id), 1)
  })
})
