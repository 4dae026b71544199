import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { User } from '../../server/domain/users.ts'
import { createTestUser, csrfFrom, signIn, startTestApp, totpCode, type Agent, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { sqlOn } from '../helpers/sql.ts'

/** The manual-entry key shown on the authenticator-app setup page. */
function keyOnPage (html: string): string {
  const match = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(html)
  if (match === null) throw new Error('no key on the page')
  return match[1].replace(/ /g, '')
}

/** A person whose saved language (and, if given, time zone) is set, as the preferences page saves them. */
async function personWith (t: TestApp, preferences: { locale: string, timeZone?: string }): Promise<User> {
  const user = await createTestUser(t.services)
  await t.services.users.setPreferences(user.id, { locale: preferences.locale, timeZone: preferences.timeZone ?? null })
  return (await t.services.users.findById(user.id))!
}

/** Sets up an authenticator app through the real page: one wrong code first (the refusal's page), then the right one. */
async function addApp (t: TestApp, agent: Agent): Promise<{ refused: { status: number, text: string } }> {
  const page = await agent.get('/enroll/totp')
  assert.equal(page.status, 200)
  const key = keyOnPage(page.text)
  const token = csrfFrom(page.text)
  const refused = await agent.post('/enroll/totp').type('form').send({ _csrf: token, name: 'Handy', code: '000000' })
  const code = totpCode(key, t.clock.now().getTime())
  const done = await agent.post('/enroll/totp').type('form').send({ _csrf: csrfFrom(refused.text), name: 'Handy', code: code === '000000' ? totpCode(key, t.clock.now().getTime() + 30_000) : code })
  assert.equal(done.status, 303, done.text)
  return { refused }
}

describe('e-mails and refusals in the reader\'s language and time zone', () => {
  let t: TestApp
  let smtp: SmtpSink
  before(async () => {
    smtp = await startSmtpSink()
    // The organisation's zone for people who never chose one: New York, so it shows apart from a saved Berlin.
    t = await startTestApp({ SMTP_URL: smtp.url, DEFAULT_TIME_ZONE: 'America/New_York' })
  })
  after(async () => {
    await t.close()
    await smtp.close()
  })

  test('a person whose saved language is German gets the method-changed e-mail in German, the time in their zone with the zone named', async () => {
    const user = await personWith(t, { locale: 'de', timeZone: 'Europe/Berlin' })
    await addApp(t, await signIn(t, user.email))
    const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /Anmeldemethode/.test(m.subject))
    assert.equal(mail.subject, 'Ihrem Konto wurde eine Anmeldemethode hinzugefügt: Handy')
    assert.match(mail.text, /Guten Tag Test User \d+,/)
    assert.match(mail.text, /Ihrem Konto bei .+ wurde eine neue Anmeldemethode hinzugefügt:/)
    assert.match(mail.text, /Handy \(Authenticator-App\)/)
    // 09:00 UTC on the test clock is 10:00 in Berlin.
    assert.match(mail.text, /25\. November 2026 um 10:00 \(Berlin\)/)
    assert.match(mail.text, /Wenn Sie das nicht waren, öffnen Sie diesen Link/)
    assert.match(mail.html, /<html lang="de">/)
    assert.match(mail.html, /<a href="http[^"]+\/methods\/not-me\?token=[^"]+">Das war ich nicht<\/a>/)
    assert.doesNotMatch(mail.text + mail.subject, /sign-in method|Hello|UTC/)
  })

  test('without a saved time zone, the e-mail uses DEFAULT_TIME_ZONE and names it', async () => {
    const user = await personWith(t, { locale: 'de' })
    await addApp(t, await signIn(t, user.email))
    const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /Anmeldemethode/.test(m.subject))
    // 09:00 UTC is 04:00 in New York (winter time).
    assert.match(mail.text, /25\. November 2026 um 04:00 \(New York\)/)
  })

  test('a German page shows a refused code in German; the same refusal stays English for an English reader', async () => {
    const german = await personWith(t, { locale: 'de', timeZone: 'Europe/Berlin' })
    const { refused } = await addApp(t, await signIn(t, german.email))
    assert.equal(refused.status, 400)
    assert.match(refused.text, /Dieser Code ist nicht richtig\. Prüfen Sie, ob die Uhrzeit auf Ihrem Telefon automatisch eingestellt wird/)
    assert.doesNotMatch(refused.text, /That code is not right/)

    const english = await createTestUser(t.services)
    const { refused: englishRefusal } = await addApp(t, await signIn(t, english.email))
    assert.match(englishRefusal.text, /That code is not right\. Check the time on your phone is set automatically/)
  })

  test('the reminder e-mail is in German, with the deadline\'s time and zone', async () => {
    const now = t.clock.now().getTime()
    const user = await personWith(t, { locale: 'de', timeZone: 'Europe/Berlin' })
    await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', now - 90 * DAY, user.id)
    // The deadline at 23:30 UTC: already the next day in Berlin.
    const deadline = new Date(Date.UTC(2026, 11, 1, 23, 30))
    await t.services.campaigns.create(campaignInput(now, { deadline, newUserWindowDays: 0, reminderOffsets: [7] }), { id: null, label: 'test' })
    await t.services.engine.refreshUser(user.id)
    await t.services.reminders.send(await t.services.engine.campaigns())
    const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /zweite Anmeldemethode/.test(m.subject))
    assert.equal(mail.subject, 'Noch 7 Tage, um Ihre zweite Anmeldemethode einzurichten')
    assert.match(mail.text, /In 7 Tagen, am 2\. Dezember 2026 um 00:30 \(Berlin\), verlangt .+ bei der Anmeldung einen zweiten Nachweis/)
    assert.match(mail.html, /am <strong>2\. Dezember 2026 um 00:30 \(Berlin\)<\/strong>/)
    assert.match(mail.text, /Die angehängte Datei \(mfa-deadline\.ics\) trägt die Frist in Ihren Kalender ein/)
  })
})

describe('text messages in the page\'s language', () => {
  let t: TestApp
  before(async () => { t = await startTestApp({ SMS_ALLOWED_COUNTRIES: 'US' }) })
  after(async () => { await t.close() })

  const texts = async (to: string) => (await t.services.outbox.latest(1000)).filter((m) => m.channel === 'sms' && m.recipient === to)

  test('a phone verification code asked for from a German page (Accept-Language: de) is texted in German', async () => {
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    const page = await agent.get('/enroll/phone').set('Accept-Language', 'de-DE,de;q=0.9')
    assert.match(page.text, /<html lang="de">/)
    const sent = await agent.post('/enroll/phone').set('Accept-Language', 'de-DE,de;q=0.9').type('form').send({ _csrf: csrfFrom(page.text), phone: '+12025550143' })
    assert.equal(sent.status < 400, true, sent.text)
    const [sms] = await texts('+12025550143')
    assert.ok(sms !== undefined, 'a text message was sent')
    assert.match(sms.bodyText, /^\d{6} ist Ihr Bestätigungscode für .+\. Er läuft in 10 Minuten ab\. Geben Sie ihn nie weiter; niemand von der IT wird danach fragen\.$/)
  })

  test('without a German page the text stays English, word for word', async () => {
    const user = await createTestUser(t.services)
    const agent = await signIn(t, user.email)
    const page = await agent.get('/enroll/phone')
    await agent.post('/enroll/phone').type('form').send({ _csrf: csrfFrom(page.text), phone: '+12025550144' })
    const [sms] = await texts('+12025550144')
    assert.match(sms.bodyText, /^\d{6} is your .+ verification code\. It expires in 10 minutes\. Never share it; nobody from IT will ask for it\.$/)
  })
})
