import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createTestUser, signIn, startTestApp, type TestApp } from '../helpers/app.ts'

let t: TestApp
before(async () => {
  t = await startTestApp()
  const now = t.clock.now().getTime()
  await t.services.campaigns.create(campaignInput(now, { startsAt: new Date(now - 30 * DAY), deadline: new Date(now + 12 * DAY), newUserWindowDays: 0 }), { id: null, label: 'test' })
})
after(async () => { await t.close() })

test('a user in a campaign sees the deadline and the days left on the home page and a countdown on every page', async () => {
  const user = await createTestUser(t.services)
  await t.services.engine.refreshUser(user.id)
  const agent = await signIn(t, user.email)
  const home = await agent.get('/')
  // The deadline with its time and zone (the reader's zone: UTC by default), as issue #16 item 8 asks.
  const day = new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(t.clock.now().getTime() + 12 * DAY)) + ' \\(UTC\\)'
  assert.match(home.text, new RegExp(`Your organisation's deadline: <strong>${day}</strong> \\(12 days left\\)`))
  assert.match(home.text, new RegExp(`Set up a second sign-in method by <strong>${day}</strong>: <strong>12 days left</strong>`))
  const other = await agent.get('/enroll/totp')
  assert.match(other.text, /12 days left/)
  t.clock.advance(11 * DAY + 3_600_000)
  const later = await signIn(t, user.email)
  assert.match((await later.get('/step-up')).text, /<strong>1 day left<\/strong>/)
})

test('once set up, the countdown goes away; the deadline stays on the home page', async () => {
  const user = await createTestUser(t.services)
  await t.services.methods.addTotp(user.id, 'App', new Secret({ size: 20 }).base32, 0)
  await t.services.engine.refreshUser(user.id)
  const home = await (await signIn(t, user.email)).get('/')
  assert.doesNotMatch(home.text, /Set up a second sign-in method by/)
  assert.match(home.text, /Your organisation's deadline/)
})

test('a user no campaign targets is told no deadline is set yet, with no date and no countdown', async () => {
  const t2 = await startTestApp()
  try {
    const user = await createTestUser(t2.services)
    const home = await (await signIn(t2, user.email)).get('/')
    assert.match(home.text, /has not set a deadline for your account yet/)
    assert.doesNotMatch(home.text, /days left|class="[^"]*countdown|Add to calendar/)
  } finally {
    await t2.close()
  }
})
