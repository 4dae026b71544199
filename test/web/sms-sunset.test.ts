import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { createTestUser, signIn, startTestApp, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { sqlOn } from '../helpers/sql.ts'

const admin = { id: null, label: 'test-admin' }
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

async function stored (userId: string): Promise<{ state: string, deadline: number | null }> {
  return (await sqlOn(t.services).get('SELECT state, deadline FROM user_states WHERE user_id = ?', userId)) as { state: string, deadline: number | null }
}

async function existingUser () {
  const user = await createTestUser(t.services)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  return user
}

const day = (at: number): string => new Date(at).toISOString().slice(0, 10)
/** The day as pages show it: ISO, or in words ("4 January 2027") once dates go through the translator. */
const shown = (at: number): string => {
  const d = new Date(at)
  return `(?:${day(at)}|${d.getUTCDate()} ${d.toLocaleString('en-GB', { month: 'long', timeZone: 'UTC' })} ${d.getUTCFullYear()})`
}

/** The sweep as the scheduler runs it: the SMS sunset first, then the engine, then the deadline reminders. */
async function sweep (): Promise<void> {
  await t.services.smsSunset.run(await t.services.engine.campaigns())
  await t.services.engine.sweep()
  await t.services.reminders.send(await t.services.engine.campaigns())
}

test('the SMS sunset: phone-only users are reminded before the date, re-derived on it (fake clock) with a new deadline and its own grace, and flipped only when that passes', async () => {
  const start = t.clock.now().getTime()
  const sunset = start + 40 * DAY
  const originalDeadline = start + 50 * DAY
  const newDeadline = sunset + 30 * DAY
  const phoneOnly = await existingUser()
  const withApp = await existingUser()
  const nothing = await existingUser()
  const switches = await existingUser()
  await t.services.methods.addPhone(phoneOnly.id, 'Mobile', '+14155550101')
  await t.services.methods.addTotp(withApp.id, 'App', new Secret({ size: 20 }).base32, 0)
  await t.services.methods.addPhone(switches.id, 'Mobile', '+14155550102')
  const campaign = await t.services.campaigns.create(campaignInput(start, {
    deadline: new Date(originalDeadline), smsPolicy: 'counts', smsSunsetAt: new Date(sunset), smsAfterSunset: 'excluded', smsSunsetGraceDays: 30
  }), admin)
  await t.services.campaigns.arm(campaign.id, admin)
  assert.equal((await stored(phoneOnly.id)).state, 'enrolled', 'until the date, text messages count')

  const home = await (await signIn(t, phoneOnly.email)).get('/')
  assert.match(home.text, new RegExp(`id="sms-sunset">From <strong>${shown(sunset)}[^<]*</strong>, text-message codes no longer count here`))

  // Forty days, one sweep a day. The one who switches adds an authenticator app on day 20.
  for (let d = 1; d < 40; d++) {
    t.clock.set(new Date(start + d * DAY))
    if (d === 20) {
      const app = await t.services.methods.addTotp(switches.id, 'App', new Secret({ size: 20 }).base32, 0)
      await t.services.lifecycle.added((await t.services.users.findById(switches.id))!, app, null)
    }
    await sweep()
  }
  const sunsetMail = (email: string) => smtp.messages.filter((m) => m.to.includes(email) && /Text-message codes stop counting/.test(m.subject))
  await smtp.waitFor(() => sunsetMail(phoneOnly.email).length >= 5)
  assert.deepEqual(sunsetMail(phoneOnly.email).map((m) => m.subject), [30, 14, 7, 3, 1].map((n) => `Text-message codes stop counting ${n === 1 ? 'tomorrow' : `in ${n} days`}: add another sign-in method`))
  assert.match(sunsetMail(phoneOnly.email)[0].text, new RegExp(`From ${shown(sunset)}[^,]*, text-message codes no longer count`))
  assert.match(sunsetMail(phoneOnly.email)[0].text, /you get a new deadline 30 days later/)
  assert.equal(sunsetMail(switches.email).length, 1, 'reminded once, before adding an app')
  assert.equal(sunsetMail(withApp.email).length + sunsetMail(nothing.email).length, 0)
  assert.equal((await stored(phoneOnly.id)).state, 'enrolled')
  assert.equal((await stored(phoneOnly.id)).deadline, originalDeadline)

  // The date: states are re-derived at once; the phone-only user falls short and gets a new deadline, no flip.
  t.clock.set(new Date(sunset))
  await sweep()
  assert.deepEqual(await stored(phoneOnly.id), { state: 'pending', deadline: newDeadline })
  assert.deepEqual(await stored(switches.id), { state: 'enrolled', deadline: originalDeadline })
  assert.deepEqual(await stored(withApp.id), { state: 'enrolled', deadline: originalDeadline })
  const [applied] = await t.services.audit.list({ action: 'campaign.sms_sunset_applied' })
  assert.deepEqual(JSON.parse(applied.details), { campaignId: campaign.id, name: 'Everyone', sunsetAt: new Date(sunset).toISOString(), becomes: 'excluded', users: 2, dropped: 1, graceDays: 30 })
  const explained = (await t.services.engine.explainDeadline(phoneOnly.id))!
  assert.equal(explained.steps.at(-1)!.rule, 'sms_sunset')

  // Their home page, countdown and calendar file show the new deadline.
  const agent = await signIn(t, phoneOnly.email)
  const page = await agent.get('/')
  assert.match(page.text, new RegExp(`Text-message codes stopped counting on <strong>${shown(sunset)}[^<]*</strong>\\. You have until <strong>${shown(newDeadline)}[^<]*</strong> \\(30 days from then\\)`))
  assert.match(page.text, /Text-message codes no longer count here since/)
  assert.match(page.text, /30 days left/)
  const ics = await agent.get('/deadline.ics')
  assert.equal(ics.status, 200)
  assert.match(ics.text, new RegExp(`DTSTART:${day(newDeadline).replace(/-/g, '')}`))
  // The new deadline has its own reminders, from the deadline reminders as for everyone.
  const deadlineMail = await smtp.waitFor((m) => m.to.includes(phoneOnly.email) && m.subject === '30 days left to set up your second sign-in method')
  assert.ok(deadlineMail !== undefined)

  // The original deadline flips the others; the phone-only user is still in their grace.
  t.clock.set(new Date(originalDeadline + 60_000))
  await sweep()
  assert.equal((await stored(withApp.id)).state, 'enforced')
  assert.equal((await stored(switches.id)).state, 'enforced')
  assert.equal((await stored(phoneOnly.id)).state, 'pending')
  t.clock.set(new Date(newDeadline + 60_000))
  await sweep()
  assert.equal((await stored(phoneOnly.id)).state, 'enforced', 'flipped when the new grace period ran out')
  assert.equal((await t.services.audit.list({ action: 'campaign.sms_sunset_applied' })).length, 1, 'the sunset is carried out once')
})

test('someone already made to use MFA before the SMS sunset stays enforced: no grace is handed back', async () => {
  const start = t.clock.now().getTime()
  const user = await existingUser()
  await t.services.methods.addPhone(user.id, 'Mobile', '+14155550103')
  const campaign = await t.services.campaigns.create(campaignInput(start, { name: 'Early', deadline: new Date(start + 5 * DAY), newUserWindowDays: 0, smsSunsetAt: new Date(start + 20 * DAY) }), admin)
  await t.services.campaigns.arm(campaign.id, admin)
  t.clock.set(new Date(start + 6 * DAY))
  await sweep()
  assert.equal((await stored(user.id)).state, 'enforced')
  t.clock.set(new Date(start + 20 * DAY))
  await sweep()
  assert.equal((await stored(user.id)).state, 'enforced')
  assert.equal((await t.services.engine.plan()).filter((item) => item.userId === user.id).length, 0, 'nothing is relaxed')
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'enforcement.relaxed' })).length, 0)
})
