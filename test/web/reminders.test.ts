import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, startTestApp, testConfig, type TestApp } from '../helpers/app.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let smtp: SmtpSink
before(async () => {
  smtp = await startSmtpSink()
  t = await startTestApp({ SMTP_URL: smtp.url })
})
after(async () => {
  await t.close()
  await smtp.close()
})

test('two sweeps sending reminders at the same moment send each one once; none after the user enrolls', async () => {
  const now = t.clock.now().getTime()
  const users = await Promise.all([1, 2, 3, 4].map(async () => createTestUser(t.services)))
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ?', now - 90 * DAY)
  await t.services.campaigns.create(campaignInput(now, { deadline: new Date(now + 6 * DAY), newUserWindowDays: 0 }), { id: null, label: 'test' })
  // One user is already set up: no reminder for them.
  const enrolled = users[3]
  const app = await t.services.methods.addTotp(enrolled.id, 'App', new Secret({ size: 20 }).base32, 0)
  await t.services.lifecycle.added((await t.services.users.findById(enrolled.id))!, app, null)

  // A second process on the same database, at the same instant.
  const other = await createServices(testConfig({ ...t.databaseEnv, SMTP_URL: smtp.url }, t.dataDir), { clock: t.clock })
  try {
    const [a, b] = await Promise.all([t.services.reminders.send(await t.services.engine.campaigns()), other.reminders.send(await other.engine.campaigns())])
    assert.equal(a + b, 3)
  } finally {
    await other.close()
  }
  const reminders = () => smtp.messages.filter((m) => /left to set up your second sign-in method/.test(m.subject))
  await smtp.waitFor(() => reminders().length >= 3)
  assert.deepEqual(reminders().map((m) => m.to[0]).sort(), users.slice(0, 3).map((u) => u.email).sort())
  const [first] = reminders()
  assert.equal(first.subject, '6 days left to set up your second sign-in method')
  // The deadline with its time and zone, in the recipient's zone (DEFAULT_TIME_ZONE, UTC, when none is saved).
  const shown = new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'UTC' }).format(new Date(now + 6 * DAY))
  assert.match(first.text, new RegExp(`In 6 days, on ${shown} \\(UTC\\)`))
  assert.match(first.text, /http:\/\/localhost:3000\//)

  assert.equal(await t.services.reminders.send(await t.services.engine.campaigns()), 0, 'the 7-day reminder was sent already')
  t.clock.advance(3 * DAY)
  assert.equal(await t.services.reminders.send(await t.services.engine.campaigns()), 3, 'the 3-day reminder is due')
  assert.equal(reminders().filter((m) => m.to.includes(enrolled.email)).length, 0)
})
