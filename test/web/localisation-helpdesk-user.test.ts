import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import type { User } from '../../server/domain/users.ts'
import { createTestUser, readable, signIn, startTestApp, stepUp, submitForm, type Agent, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

// Issue #16 items 8, 10, 11: the helpdesk's page about a person, and the offer of a held console action, speak the
// reader's language, with deadlines and expiries at their time in the reader's zone.
let t: TestApp
before(async () => {
  t = await startTestApp()
  await t.services.campaigns.create(campaignInput(t.clock.now(), { maxExtensionDays: 10 }), { id: null, label: 'test' })
})
after(async () => { await t.close() })

const GERMAN = 'de-DE,de;q=0.9,en;q=0.5'

/** A staff member whose browser asks for German, signed in; `confirmed` has stepped up. */
async function germanStaff (role: 'admin' | 'helpdesk', { timeZone, confirmed = true }: { timeZone?: string, confirmed?: boolean } = {}): Promise<{ user: User, agent: Agent }> {
  const user = await createTestUser(t.services, { role })
  if (timeZone !== undefined) await t.services.users.setPreferences(user.id, { timeZone })
  const agent = await signIn(t, user.email)
  agent.set('Accept-Language', GERMAN)
  if (confirmed) await stepUp(t, agent, user)
  return { user, agent }
}

/** An ordinary user who joined long ago, so their deadline is the campaign's (10 days out). */
async function person (fields: { displayName?: string, privileged?: boolean } = {}): Promise<User> {
  const user = await createTestUser(t.services, fields)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  await t.services.engine.refreshUser(user.id)
  return user
}

/** A German page with no message key left in it. */
async function germanPage (agent: Agent, path: string): Promise<string> {
  const res = await agent.get(path)
  assert.equal(res.status, 200, path)
  assert.match(res.text, /<html lang="de">/, `${path} is marked German`)
  const raw = /(?<![\w/.@-])(?:helpdesk-user|helpdesk|stepup|errors|domain|home|common)\.[a-z][a-z0-9_.]+/.exec(res.text.replace(/<script[\s\S]*?<\/script>/g, ''))
  assert.equal(raw, null, `${path} shows a raw message key: ${raw?.[0]}`)
  return readable(res.text)
}

/** The deadline as the catalogue writes it for a German reader in Berlin: "14. Dezember 2026 um 10:00 (Berlin)". */
function berlinDateTime (at: Date): string {
  return `${new Intl.DateTimeFormat('de-DE', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Berlin' }).format(at)} (Berlin)`
}

test('a German helpdesk member reads a person\'s page in German: where they stand, the deadline with its time in Berlin, methods, actions and timeline', async () => {
  const { agent } = await germanStaff('helpdesk', { timeZone: 'Europe/Berlin' })
  const user = await person({ displayName: 'Greta Beispiel' })
  await t.services.methods.addPhone(user.id, 'Diensthandy', '+14155550100')
  await sqlOn(t.services).run('UPDATE users SET provider_methods = ? WHERE id = ?', '["passkey"]', user.id)
  const deadline = (await t.services.engine.explainDeadline(user.id))!.deadline

  const page = await germanPage(agent, `/helpdesk/users/${user.id}`)
  assert.match(page, /<h2>Wo die Person steht<\/h2>/)
  assert.match(page, /<dt>Frist<\/dt><dd><time datetime="[^"]+">([^<]+)<\/time> \(noch 10 Tage\)<\/dd>/)
  assert.ok(page.includes(berlinDateTime(deadline)), `the deadline with its time and zone: ${berlinDateTime(deadline)}`)
  assert.match(page, /<h3>Wie die Frist berechnet wurde<\/h3>/)
  assert.match(page, /Bereits verlängert: 0 Tage; in „Everyone“ bleiben 10 weitere\./)
  assert.match(page, /Diensthandy \(Telefon \(SMS\)\), hinzugefügt am \d+\. \w+ \d{4}/)
  assert.match(page, /<li>Passkey oder Sicherheitsschlüssel<\/li>/, 'what the directory reports, in words')
  assert.match(page, /<h2>Dieser Person helfen<\/h2>/)
  assert.match(page, /<label for="pass-reason">Grund<\/label>/)
  assert.match(page, />Zugangscode ausstellen<\/button>/)
  assert.match(page, />Methoden zurücksetzen<\/button>/)
  assert.match(page, /<h2 id="timeline">Verlauf<\/h2>/)
  for (const english of ['Where they stand', 'Deadline', 'days left', 'Issue pass', 'Reason', 'Extensions used', 'Timeline', 'Sign-in methods']) {
    assert.ok(!page.includes(english), `no English left: "${english}"`)
  }
})

test('a German helpdesk member is told in German why they cannot act on a staff account', async () => {
  const { agent } = await germanStaff('helpdesk')
  const colleague = await createTestUser(t.services, { role: 'helpdesk' })
  const page = await germanPage(agent, `/helpdesk/users/${colleague.id}`)
  assert.match(page, /Nur Administratoren können an Helpdesk- und Administratorkonten etwas ändern\./)
  assert.doesNotMatch(page, /Only administrators/)
})

test('a German admin on a privileged account reads the two-person rule in German, and a waiting request lapses at a time in Berlin', async () => {
  const { agent } = await germanStaff('admin', { timeZone: 'Europe/Berlin' })
  await createTestUser(t.services, { role: 'admin' }) // someone who could approve
  const boss = await person({ displayName: 'Chefin Beispiel', privileged: true })
  const before = await germanPage(agent, `/helpdesk/users/${boss.id}`)
  assert.match(before, /<strong>Vier-Augen-Prinzip\.<\/strong>/)
  assert.match(before, />Zugangscode anfragen<\/button>/)

  const asked = await submitForm(agent, `/helpdesk/users/${boss.id}`, `/helpdesk/users/${boss.id}/pass`, { lifetimeMinutes: '60', oneTime: 'on', reason: 'Telefon verloren' })
  assert.equal(asked.status, 303)
  const page = await germanPage(agent, `/helpdesk/users/${boss.id}`)
  assert.match(page, /<h2>Wartet auf eine zweite Administratorin oder einen zweiten Administrator<\/h2>/)
  assert.match(page, /\(auf der <a href="\/admin\/approvals">Seite Genehmigungen<\/a>\)/)
  const lapses = (await t.services.approvals.pendingFor(boss.id))[0].expiresAt
  assert.ok(page.includes(`Ein befristeter Zugangscode, angefragt von `), 'the request in words')
  assert.ok(page.includes(`(„Telefon verloren“); verfällt am ${berlinDateTime(lapses)}`), `lapses at its time in Berlin: ${berlinDateTime(lapses)}`)
  assert.doesNotMatch(page, / UTC</)
})

test('the offer of a held action names it and its fields in German; a field without a label keeps its name', async () => {
  const { user, agent } = await germanStaff('helpdesk', { confirmed: false })
  const target = await person()
  const here = `/helpdesk/users/${target.id}`
  const page = await agent.get(here)
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]
  const held = await agent.post(`${here}/pass`).set({ host: 'portal.test', referer: `http://portal.test${here}` }).type('form')
    .send({ _csrf: csrf, lifetimeMinutes: '60', oneTime: 'on', reason: 'Neues Telefon', ticket: 'T-4711' })
  assert.equal(held.status, 303)
  const notice = await germanPage(agent, held.headers.location)
  assert.match(notice, /„Einen befristeten Zugangscode ausstellen“/, 'the step-up page names the action in German')

  await stepUp(t, agent, user)
  const offer = await germanPage(agent, '/step-up/continue')
  assert.match(offer, /<title>Einen befristeten Zugangscode ausstellen/)
  assert.match(offer, /<h1>Einen befristeten Zugangscode ausstellen<\/h1>/)
  assert.match(offer, /<dt>Gültig für, in Minuten<\/dt><dd>60<\/dd>/)
  assert.match(offer, /<dt>Nur für eine Anmeldung<\/dt><dd>Ja<\/dd>/)
  assert.match(offer, /<dt>Grund<\/dt><dd>Neues Telefon<\/dd>/)
  assert.match(offer, /<dt>ticket<\/dt><dd>T-4711<\/dd>/, 'a field the catalogue has no label for, by its name')
  assert.match(offer, /<button type="submit" class="button button-primary">Einen befristeten Zugangscode ausstellen<\/button>/)
  assert.match(offer, /name="reason" value="Neues Telefon"/, 'what is sent is the value as typed')
  assert.match(offer, /name="oneTime" value="on"/)
  assert.doesNotMatch(offer, /<dt>(reason|lifetimeMinutes|oneTime)<\/dt>/)
})

test('in English the offer lists the fields by their labels too', async () => {
  const staff = await createTestUser(t.services, { role: 'helpdesk' })
  const agent = await signIn(t, staff.email)
  const target = await person()
  const here = `/helpdesk/users/${target.id}`
  const page = await agent.get(here)
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]
  await agent.post(`${here}/extend`).set({ host: 'portal.test', referer: `http://portal.test${here}` }).type('form').send({ _csrf: csrf, days: '3', reason: 'Holiday' })
  await stepUp(t, agent, staff)
  const offer = await agent.get('/step-up/continue')
  assert.equal(offer.status, 200)
  assert.match(offer.text, /<h1>Extend the deadline<\/h1>/)
  assert.match(offer.text, /<dt>Extra days<\/dt><dd>3<\/dd>/)
  assert.match(offer.text, /<dt>Reason<\/dt><dd>Holiday<\/dd>/)
})

test('every console action names what it does with a catalogue key that English and German both have', () => {
  const en = catalogue('en')
  const de = catalogue('de')
  const dir = new URL('../../server/web/routes/', import.meta.url)
  const found: string[] = []
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.ts'))) {
    for (const match of readFileSync(new URL(file, dir), 'utf8').matchAll(/stepUp: '([^']*)'/g)) {
      found.push(match[1])
      assert.match(match[1], /^stepup\.action\.[a-z_]+$/, `${file}: config.stepUp "${match[1]}" is a catalogue key (locales/<language>/stepup.json)`)
      assert.ok(en[match[1]] !== undefined && de[match[1]] !== undefined, `${file}: ${match[1]} is in English and German`)
    }
  }
  assert.ok(found.length >= 15, 'the console actions were found')
})

function catalogue (locale: string): Record<string, string> {
  return JSON.parse(readFileSync(new URL(`../../locales/${locale}/stepup.json`, import.meta.url), 'utf8')) as Record<string, string>
}
