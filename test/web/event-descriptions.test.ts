import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { EXPORT_COLUMNS } from '../../server/web/routes/admin-audit.ts'
import { createTestUser, signIn, signInStaff, startTestApp, type TestApp } from '../helpers/app.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

/** An admin, a person with a failed pass sign-in and a mandatory-MFA event on record, and an event no catalogue knows. */
async function history () {
  t = await startTestApp()
  const admin = await createTestUser(t.services, { role: 'admin', email: 'root@test.example' })
  const person = await createTestUser(t.services, { email: 'pat@test.example' })
  await t.services.audit.append({ action: 'pass.signin_failure', actorLabel: person.email, subjectUserId: person.id, details: {} })
  await t.services.audit.append({ action: 'enforcement.enforced', actorLabel: 'engine', subjectUserId: person.id, details: { campaignId: 'c1', note: 'a "quoted", comma' } })
  await t.services.audit.append({ action: 'legacy.renamed_event', actorLabel: 'cli', subjectUserId: person.id, details: {} })
  return { t, admin, person }
}

/** A CSV document's rows as arrays of cells (RFC 4180 quoting). */
function parseCsv (text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let cell = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++ } else if (c === '"') quoted = false
      else cell += c
    } else if (c === '"') quoted = true
    else if (c === ',') { row.push(cell); cell = '' } else if (c === '\r' && text[i + 1] === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; i++ } else cell += c
  }
  return rows
}

test('the helpdesk timeline says in words what happened, with the event name beside the words', async () => {
  const { t, admin, person } = await history()
  const desk = await signInStaff(t, admin)
  const page = await desk.get(`/helpdesk/users/${person.id}`)
  assert.equal(page.status, 200)
  assert.match(page.text, /<td>Sign-in with an access pass failed<br><code class="event-name muted">pass\.signin_failure<\/code><\/td>/)
  assert.match(page.text, /<td>Multi-factor sign-in was made mandatory<br><code class="event-name muted">enforcement\.enforced<\/code><\/td>/)
  assert.match(page.text, /<td><code class="event-name muted">legacy\.renamed_event<\/code><\/td>/, 'an unknown name is shown as it is, never as a raw catalogue key')
  assert.doesNotMatch(page.text, /events\.legacy/)

  const german = await desk.get(`/helpdesk/users/${person.id}`).set('accept-language', 'de')
  assert.match(german.text, /Die Anmeldung mit einem Zugangscode ist fehlgeschlagen<br><code class="event-name muted">pass\.signin_failure<\/code>/)
})

test('the audit log says in words what happened, and offers the events it shows as CSV and JSON', async () => {
  const { t, admin } = await history()
  const agent = await signIn(t, admin.email)
  const page = await agent.get('/admin/audit?action=enforcement.')
  assert.equal(page.status, 200)
  assert.match(page.text, /<td>Multi-factor sign-in was made mandatory<br><code class="event-name">enforcement\.enforced<\/code><\/td>/)
  assert.match(page.text, /<a href="\/admin\/audit\/export\.csv\?action=enforcement\.">CSV<\/a> · <a href="\/admin\/audit\/export\.json\?action=enforcement\.">JSON<\/a>/)
})

test('the CSV download keeps the event name in its own column and adds the description; it is filtered like the page and audited', async () => {
  const { t, admin, person } = await history()
  const agent = await signIn(t, admin.email)
  const res = await agent.get(`/admin/audit/export.csv?subject=${encodeURIComponent(person.email)}`)
  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'], /^text\/csv; charset=utf-8/)
  assert.match(res.headers['content-disposition'], /^attachment; filename="mfa-audit-2026-11-25\.csv"$/)
  assert.equal(res.headers['cache-control'], 'no-store')
  const [header, ...rows] = parseCsv(res.text)
  assert.deepEqual(header, [...EXPORT_COLUMNS])
  const byAction = new Map(rows.map((row) => [row[header.indexOf('action')], row]))
  assert.deepEqual([...byAction.keys()], ['legacy.renamed_event', 'enforcement.enforced', 'pass.signin_failure', 'user.created'], 'only events about that person, newest first')
  const enforced = byAction.get('enforcement.enforced')!
  assert.equal(enforced[header.indexOf('description')], 'Multi-factor sign-in was made mandatory')
  assert.equal(enforced[header.indexOf('subject_email')], 'pat@test.example')
  assert.deepEqual(JSON.parse(enforced[header.indexOf('details')]), { campaignId: 'c1', note: 'a "quoted", comma' })
  assert.equal(byAction.get('legacy.renamed_event')![header.indexOf('description')], '', 'no words for a name no catalogue knows')

  const [exported] = await t.services.audit.list({ action: 'audit.exported' })
  assert.equal(exported.actorLabel, admin.email)
  assert.deepEqual(JSON.parse(exported.details), { format: 'csv', filters: { subject: person.email } })
})

test('the JSON download has each event\'s name, its description and its details as an object, in the reader\'s language', async () => {
  const { t, admin } = await history()
  const agent = await signIn(t, admin.email)
  const res = await agent.get('/admin/audit/export.json?action=pass.').set('accept-language', 'de')
  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'], /^application\/json; charset=utf-8/)
  const document = JSON.parse(res.text) as { exportedAt: string, filters: Record<string, string>, events: Array<Record<string, unknown>> }
  assert.deepEqual(document.filters, { action: 'pass.' })
  assert.deepEqual(document.events.map((e) => [e.action, e.description]), [['pass.signin_failure', 'Die Anmeldung mit einem Zugangscode ist fehlgeschlagen']])
  assert.deepEqual(document.events[0].details, {})
  assert.equal(document.events[0].subjectEmail, 'pat@test.example')
})

test('a download with a filter that cannot be used goes back to the page that explains it, and nothing is exported', async () => {
  const { t, admin } = await history()
  const agent = await signIn(t, admin.email)
  const res = await agent.get('/admin/audit/export.csv?subject=nobody%40test.example')
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/admin/audit?subject=nobody%40test.example')
  assert.equal((await t.services.audit.list({ action: 'audit.exported' })).length, 0)
})

test('only admins download the audit log', async () => {
  const { t } = await history()
  const desk = await signIn(t, (await createTestUser(t.services, { role: 'helpdesk' })).email)
  assert.equal((await desk.get('/admin/audit/export.csv')).status, 403)
  assert.equal((await t.services.audit.list({ action: 'audit.exported' })).length, 0)
})
