import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { User } from '../../server/domain/users.ts'
import { createTestUser, readable, signIn, startTestApp, stepUp, submitForm, type Agent, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'

// Issue #16 items 8, 10, 11: the helpdesk and admin consoles speak the reader's language, with times in their zone.
let t: TestApp
before(async () => {
  t = await startTestApp()
  await t.services.campaigns.create(campaignInput(t.clock.now(), { maxExtensionDays: 10 }), { id: null, label: 'test' })
})
after(async () => { await t.close() })

/** A staff member whose browser asks for German, signed in and confirmed (step-up). */
async function germanStaff (role: 'admin' | 'helpdesk', timeZone?: string): Promise<{ user: User, agent: Agent }> {
  const user = await createTestUser(t.services, { role })
  if (timeZone !== undefined) await t.services.users.setPreferences(user.id, { timeZone })
  const agent = await signIn(t, user.email)
  agent.set('Accept-Language', 'de-DE,de;q=0.9,en;q=0.5')
  await stepUp(t, agent, user)
  return { user, agent }
}

/** A German page: the document says so, and no message key was left untranslated. */
async function germanPage (agent: Agent, path: string): Promise<string> {
  const res = await agent.get(path)
  assert.equal(res.status, 200, path)
  assert.match(res.text, /<html lang="de">/, `${path} is marked German`)
  const raw = /(?<![\w/.@-])(?:admin|helpdesk|approvals|tokens|exemptions|common|errors)\.[a-z][a-z0-9_]+/.exec(res.text.replace(/<script[\s\S]*?<\/script>/g, ''))
  assert.equal(raw, null, `${path} shows a raw message key: ${raw?.[0]}`)
  return readable(res.text)
}

test('an admin whose browser asks for German sees the dashboard, a state list and the outbox in German', async () => {
  const { agent } = await germanStaff('admin')
  const person = await createTestUser(t.services, { displayName: 'Greta Beispiel' })
  await t.services.engine.refreshUser(person.id)

  const dashboard = await germanPage(agent, '/admin')
  assert.match(dashboard, /<h1>Verwaltung<\/h1>/)
  assert.match(dashboard, /Wo alle stehen/)
  assert.match(dashboard, /<span class="stat-name">Übergangsfrist<\/span>/)
  assert.match(dashboard, /Probelauf: was der nächste Durchlauf tun würde/)
  assert.match(dashboard, /<th scope="col">In diesem Portal eingerichtet<\/th>/)
  assert.match(dashboard, /<a href="\/admin\/exemptions">Ausnahmen<\/a>/)
  assert.doesNotMatch(dashboard, /Where everyone stands|Needs attention/)

  const pending = await germanPage(agent, '/admin/states/pending')
  assert.match(pending, /<title>Benutzer: Übergangsfrist/)
  assert.match(pending, /in diesem Stand/)
  // The deadline with its time and zone, in German.
  assert.match(pending, /<time datetime="[^"]+">\d{1,2}\. \p{L}+ \d{4} um \d\d:\d\d \(UTC\)<\/time>/u)

  const outbox = await germanPage(agent, '/admin/outbox')
  assert.match(outbox, /<h1>Postausgang<\/h1>/)
  assert.match(outbox, /aufbewahrt/)
})

test('exemptions, approvals and API tokens speak German too, validation messages included', async () => {
  const { agent, user: admin } = await germanStaff('admin')
  const backup = await createTestUser(t.services, { email: 'backup-job@lang.example' })
  await t.services.campaigns.exempt(backup.id, { kind: 'service_account', reason: 'Nächtliche Sicherung', owner: 'Betrieb', expiresAt: new Date(t.clock.now().getTime() + 30 * DAY) }, { id: admin.id, label: admin.email })

  const exemptions = await germanPage(agent, '/admin/exemptions')
  assert.match(exemptions, /<h1>Ausnahmen<\/h1>/)
  assert.match(exemptions, /<td>Dienstkonto \(ein Programm, keine Person\)<\/td>/)
  assert.match(exemptions, /Zeiten in UTC/, 'the table names the zone of its times')
  assert.match(exemptions, /<time datetime="2026-11-25">25\.11\.2026|<time datetime="2026-11-25">25\. November 2026<\/time>/)
  const refused = await submitForm(agent, '/admin/exemptions', '/admin/exemptions', { email: '', kind: '', reason: '', owner: '', expiresAt: '' })
  assert.equal(refused.status, 400)
  assert.match(refused.text, /Geben Sie die E-Mail-Adresse des Kontos ein, das ausgenommen werden soll\./)
  assert.match(refused.text, /Nennen Sie die für dieses Konto verantwortliche Person\./)
  assert.match(refused.text, /<span class="visually-hidden">Fehler: <\/span>/)

  const approvals = await germanPage(agent, '/admin/approvals')
  assert.match(approvals, /<h1>Genehmigungen<\/h1>/)
  assert.match(approvals, /Vier-Augen-Prinzip/)
  assert.match(approvals, /Warten auf eine Entscheidung/)

  const empty = await submitForm(agent, '/admin/tokens/new', '/admin/tokens', { name: '', expiresInDays: '0' })
  assert.equal(empty.status, 400)
  assert.match(empty.text, /Geben Sie dem Token einen Namen mit höchstens 100 Zeichen/)
  assert.match(empty.text, /Wählen Sie mindestens eine Sache, die das Token darf\./)
  assert.match(empty.text, /Die Laufzeit ist eine ganze Zahl von Tagen von 1 bis 3650/)
  const created = await submitForm(agent, '/admin/tokens/new', '/admin/tokens', { name: 'HR-Feed', scopes: 'status:read', expiresInDays: '30' })
  assert.equal(created.status, 200)
  assert.match(created.text, /<h1>Token erstellt<\/h1>/)
  assert.match(created.text, /25\. Dezember 2026 um 09:00 \(UTC\)/, 'the expiry with its time and zone')
  const tokens = await germanPage(agent, '/admin/tokens')
  assert.match(tokens, /<h1>API-Tokens<\/h1>/)
  assert.match(tokens, /1 Token, neueste zuerst \(Zeiten in UTC\)/)
  assert.match(tokens, /<td>Aktiv<\/td>/)
  assert.match(await germanPage(agent, '/admin/tokens/new'), /Was das Token darf/)
})

test('the helpdesk searches in German and the pass page gives the expiry with its time in the member\'s saved zone', async () => {
  const { agent } = await germanStaff('helpdesk', 'Europe/Berlin')
  const person = await createTestUser(t.services, { displayName: 'Hanna Muster', email: 'hanna.muster@lang.example' })
  await t.services.engine.refreshUser(person.id)

  const search = await germanPage(agent, '/helpdesk?q=hanna')
  assert.match(search, /Personen, die zu „hanna“ passen/)
  assert.match(search, /<th scope="col">Verzeichnis<\/th>/)
  assert.match(await germanPage(agent, '/helpdesk?q=h'), /Geben Sie mindestens zwei Zeichen ein\./)

  const res = await submitForm(agent, `/helpdesk/users/${person.id}`, `/helpdesk/users/${person.id}/pass`, { lifetimeMinutes: '90', oneTime: 'on', reason: 'Telefon verloren' })
  assert.equal(res.status, 200)
  assert.match(res.text, /<html lang="de">/)
  assert.match(res.text, /<h1>Befristeter Zugangscode ausgestellt<\/h1>/)
  // Issued at 09:00 UTC for 90 minutes: until 10:30 UTC, which is 11:30 in Berlin.
  assert.match(res.text, /Er gilt bis <strong>25\. November 2026 um 11:30 \(Berlin\)<\/strong>, für eine Anmeldung/)
  assert.match(res.text, /Die Person meldet sich unter <strong>http:\/\/localhost:3000\/login\/pass<\/strong> an/)
  assert.doesNotMatch(res.text, /(?<![\w/.@-])helpdesk\.[a-z][a-z0-9_]+/, 'no raw key')
})

test('without a language preference the pass page stays English, with the time and the saved zone named', async () => {
  const helper = await createTestUser(t.services, { role: 'helpdesk' })
  await t.services.users.setPreferences(helper.id, { timeZone: 'Europe/Berlin' })
  const agent = await signIn(t, helper.email)
  await stepUp(t, agent, helper)
  const person = await createTestUser(t.services)
  const res = await submitForm(agent, `/helpdesk/users/${person.id}`, `/helpdesk/users/${person.id}/pass`, { lifetimeMinutes: '90', reason: 'new phone' })
  assert.equal(res.status, 200)
  assert.match(res.text, /It works until <strong>25 November 2026 at 11:30 \(Berlin\)<\/strong>, and only to set up sign-in methods/)
})
