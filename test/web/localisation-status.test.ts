import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadCatalogues, Localiser } from '../../server/domain/i18n.ts'
import { deriveState, type StateFacts } from '../../server/domain/states.ts'
import { decodeWords, encodeWords, sayWords } from '../../server/domain/stored-words.ts'
import { createTestUser, signIn, signInStaff, startTestApp, stepUp, submitForm, type Agent, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

// Issue #16 item 10: the sentences the domain used to write in English (the home page's status line, the states'
// reasons, the SMS refusal's countries) reach each reader in their own language, with times in their zone.
const GERMAN = 'de-DE,de;q=0.9,en;q=0.5'
const localiser = new Localiser(loadCatalogues(path.join(fileURLToPath(new URL('../../', import.meta.url)), 'locales')), { locale: 'en', timeZone: 'UTC' })

let t: TestApp
before(async () => {
  t = await startTestApp({ SMS_ALLOWED_COUNTRIES: 'US,CA' })
  await t.services.campaigns.create(campaignInput(t.clock.now()), { id: null, label: 'test' })
})
after(async () => { await t.close() })

/** A page as a German reader gets it: marked German, with no message key left showing. */
async function germanPage (agent: Agent, url: string): Promise<string> {
  agent.set('Accept-Language', GERMAN)
  const res = await agent.get(url)
  assert.equal(res.status, 200, url)
  assert.match(res.text, /<html lang="de">/)
  const raw = /(?<![\w/.@-])(?:status|reasons)\.[a-z][a-z0-9_]+/.exec(res.text)
  assert.equal(raw, null, `${url} shows a raw message key: ${raw?.[0]}`)
  return res.text
}

test('the home page says where a German reader stands in German, and in the same English as before otherwise', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const english = await agent.get('/')
  assert.match(english.text, /Not set up yet\.<\/strong> You have not set up a second sign-in method yet\. Add a passkey, an authenticator app or a phone\./)

  const german = await germanPage(agent, '/')
  assert.match(german, /Sie haben noch keine zweite Anmeldemethode eingerichtet\. Fügen Sie einen Passkey, eine Authenticator-App oder ein Telefon hinzu\./)
  assert.doesNotMatch(german, /You have not set up/)
})

test('a directory user is told in German which sign-in is still unprotected', () => {
  const de = localiser.for({ locale: 'de' })
  const en = localiser.for({ locale: 'en' })
  assert.equal(en.t('status.directory_nothing', { directory: 'Microsoft', need: 'any' }), 'Nothing protects your Microsoft sign-in yet: add a second way to prove it\'s you below.')
  assert.equal(de.t('status.directory_nothing', { directory: 'Microsoft', need: 'passkey' }),
    'Ihre Microsoft-Anmeldung ist noch nicht geschützt: Fügen Sie unten einen Passkey oder Sicherheitsschlüssel hinzu (Administratoren und andere privilegierte Konten benötigen einen).')
})

test('the admin state lists give each user\'s reason in German, an exemption\'s end with its time in the admin\'s zone', async () => {
  const admin = await createTestUser(t.services, { role: 'admin' })
  await t.services.users.setPreferences(admin.id, { timeZone: 'Europe/Berlin' })
  const agent = await signIn(t, admin.email)
  agent.set('Accept-Language', GERMAN)
  await stepUp(t, agent, admin)

  const pending = await createTestUser(t.services)
  await t.services.engine.refreshUser(pending.id)
  const exempt = await createTestUser(t.services)
  const until = new Date(Date.UTC(2031, 0, 10, 23, 30))
  await t.services.campaigns.exempt(exempt.id, { kind: 'service_account', reason: 'a build robot', owner: 'ops@test.example', expiresAt: until }, { id: admin.id, label: admin.email })
  await t.services.engine.refreshUser(exempt.id)

  const pendingList = await germanPage(agent, '/admin/states/pending')
  assert.match(pendingList, /Übergangsfrist läuft: noch keine zählende Anmeldemethode\./)
  assert.doesNotMatch(pendingList, /Grace period running/)

  const exemptList = await germanPage(agent, '/admin/states/exempt')
  assert.match(exemptList, /Ausgenommen \(Dienstkonto\) bis 11\. Januar 2031 um 00:30 \(Berlin\)\./, 'the end in Berlin time: the next day')

  // The stored record stays English (logs, the API, exports).
  const stored = await sqlOn(t.services).value('SELECT reason FROM user_states WHERE user_id = ?', exempt.id)
  assert.equal(stored, 'Exempt (service account) until 2031-01-10.')
  // And an English reader reads the same words the page always showed.
  agent.set('Accept-Language', 'en')
  assert.match((await agent.get('/admin/states/pending')).text, /Grace period running: no qualifying method yet\./)
})

test('a failure and a retry read in German, the provider\'s own words kept and the next try in the reader\'s zone', () => {
  const now = new Date('2026-12-01T12:00:00Z')
  const base: StateFacts = { exemption: null, phishingResistant: false, deadline: new Date(now.getTime() - DAY), enrolled: false, enforced: false, failed: null, retrying: null, driftFlagged: false, armed: true }
  const failed = deriveState({ ...base, failed: { action: 'enforce', lastError: 'access_denied: IAM AttachUserPolicy was refused.' } }, now)
  const retrying = deriveState({ ...base, retrying: { action: 'enforce', at: new Date('2026-12-01T14:05:00Z'), lastError: 'server_error: busy' } }, now)
  const de = localiser.for({ locale: 'de', timeZone: 'Europe/Berlin' })
  const en = localiser.for({ locale: 'en' })

  // Stored and read back: the words survive the database, dates as dates.
  const back = (words: typeof failed.words) => decodeWords(encodeWords(words))!
  assert.equal(sayWords(en, back(failed.words)), failed.reason, 'the English page says what the English record says')
  assert.match(sayWords(de, back(failed.words)), /^Das Durchsetzen der MFA-Pflicht ist fehlgeschlagen: access_denied: IAM AttachUserPolicy was refused\. Was zu tun ist: Das Portal darf das beim Anbieter nicht/)
  assert.equal(sayWords(de, back(retrying.words)),
    'Frist ohne zählende Anmeldemethode abgelaufen: MFA wird verpflichtend gemacht. Neuer Versuch am 1. Dezember 2026 um 15:05 (Berlin) — Anbieter nicht erreichbar (server_error: busy). Nichts zu tun: Der Versuch wird automatisch wiederholt.')
  assert.equal(decodeWords('Grace period running: no qualifying method yet.'), null, 'rows from before show their English')
})

test('a number from a country not texted is refused naming the allowed countries in the reader\'s language', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const english = await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: '+44 7400 123456' })
  assert.equal(english.status, 400)
  assert.match(english.text, /This portal only texts mobile numbers from: United States and Canada\./)

  agent.set('Accept-Language', GERMAN)
  const german = await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: '+44 7400 123457' })
  assert.equal(german.status, 400)
  assert.match(german.text, /Dieses Portal sendet SMS nur an Mobilnummern aus: Vereinigte Staaten und Kanada\./)
  // The phone page names the default region in German too.
  assert.match(await germanPage(agent, '/enroll/phone'), /Vereinigte Staaten/)
})

test('the campaign form\'s validation messages come in the admin\'s language, every field at once', async () => {
  const admin = await createTestUser(t.services, { role: 'admin' })
  const agent = await signInStaff(t, admin)
  agent.set('Accept-Language', GERMAN)
  const form = {
    name: '', targetKind: 'group', targetValue: '', startsAt: '2026-11-25', deadline: '2026-11-20', privilegedDeadline: '', newUserWindowDays: '400',
    reminderOffsets: '30, 7', maxExtensionDays: '30', softBlockDays: '', smsPolicy: 'counts', privilegedMethods: 'phishing_resistant', driftPolicy: 'reapply',
    wavePilotKind: 'share', wavePilot: '95', waveOffsets: ''
  }
  const res = await submitForm(agent, '/admin/campaigns/new', '/admin/campaigns', form)
  assert.equal(res.status, 400)
  assert.match(res.text, /<html lang="de">/)
  for (const message of [
    /Geben Sie der Kampagne einen Namen mit höchstens 100 Zeichen\./,
    /Nennen Sie die Gruppe, für die die Kampagne gilt\./,
    /Die Frist muss nach dem Beginn liegen\./,
    /Die Frist für neue Konten ist eine ganze Zahl von Tagen zwischen 0 und 365\./,
    /Der Anteil des Pilots ist ein Prozentsatz zwischen 0,5 und 90/,
    /Geben Sie mindestens eine Welle nach dem Pilot an/
  ]) assert.match(res.text, message)
  assert.doesNotMatch(res.text, /Give the campaign a name|campaign-form\./)

  agent.set('Accept-Language', 'en')
  const english = await submitForm(agent, '/admin/campaigns/new', '/admin/campaigns', { ...form, startsAt: 'soon' })
  assert.match(english.text, /Enter the start as a date, such as 2027-01-31\./)
  assert.match(english.text, /Give the campaign a name of up to 100 characters\./)
})

test('the dry run on the dashboard gives each reason in the admin\'s language, the deadline with its time and zone', async () => {
  const app = await startTestApp()
  try {
    const start = new Date(app.clock.now().getTime() - 40 * DAY)
    const campaign = await app.services.campaigns.create(campaignInput(start, { deadline: new Date(start.getTime() + 30 * DAY) }), { id: null, label: 'test' })
    const late = await createTestUser(app.services)
    await sqlOn(app.services).run('UPDATE users SET first_seen_at = ?', start.getTime() - DAY)
    const admin = await createTestUser(app.services, { role: 'admin' })
    await app.services.campaigns.arm(campaign.id, { id: admin.id, label: admin.email })
    await app.services.engine.refreshUser(late.id)
    const [item] = (await app.services.engine.plan()).filter((p) => p.userId === late.id)
    assert.ok(item !== undefined, 'the late user is in the plan')

    const agent = await signInStaff(app, admin)
    agent.set('Accept-Language', GERMAN)
    const page = await agent.get('/admin')
    assert.match(page.text, /Frist \d{1,2}\. \p{L}+ \d{4} um \d\d:\d\d \(UTC\) abgelaufen, ohne zählende Anmeldemethode: MFA wird verpflichtend gemacht/u)
    assert.match(item.reason, /^Deadline \d{4}-\d\d-\d\d passed without a qualifying method/, 'the CLI and logs keep the English')
  } finally {
    await app.close()
  }
})
