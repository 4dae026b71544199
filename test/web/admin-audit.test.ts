import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { VERIFY_ON_EVERY_VIEW } from '../../server/web/routes/admin-audit.ts'
import { anonymous, createTestUser, signIn, startTestApp, type Agent, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close() })

async function adminApp (): Promise<{ t: TestApp, admin: Agent, adminEmail: string }> {
  t = await startTestApp()
  const user = await createTestUser(t.services, { role: 'admin', email: 'root@test.example' })
  return { t, admin: await signIn(t, user.email), adminEmail: user.email }
}

/** Event ids on a page of the log, in the order shown. */
function ids (html: string): number[] {
  return [...html.matchAll(/<tr data-id="(\d+)">/g)].map((m) => Number(m[1]))
}

function link (html: string, label: string): string | undefined {
  const match = new RegExp(`<a (?:class="\\w+" )?href="([^"]+)"(?: rel="\\w+")?>${label}</a>`).exec(html)
  return match?.[1].replace(/&amp;/g, '&')
}

async function allIds (t: TestApp): Promise<number[]> {
  return await sqlOn(t.services).values<number>('SELECT id FROM audit_events ORDER BY id DESC')
}

test('the log shows events newest first, fifty to a page; older and newer pages follow on without gaps or repeats', async () => {
  const { t, admin } = await adminApp()
  for (let i = 0; i < 120; i++) await t.services.audit.append({ action: 'test.event', actorLabel: 'cli', details: { i } })
  const everything = await allIds(t)

  const seen: number[] = []
  let page = await admin.get('/admin/audit')
  assert.equal(page.status, 200)
  assert.equal(link(page.text, 'Newer events'), undefined, 'the first page is the newest')
  const pages: string[] = []
  for (;;) {
    pages.push(page.text)
    assert.ok(ids(page.text).length <= 50)
    seen.push(...ids(page.text))
    const older = link(page.text, 'Older events')
    if (older === undefined) break
    page = await admin.get(older)
  }
  assert.deepEqual(seen, everything)
  assert.equal(pages.length, Math.ceil(everything.length / 50))

  // And back again from the last page, towards the newest.
  const back: number[] = []
  let newer = link(page.text, 'Newer events')
  while (newer !== undefined) {
    const res = await admin.get(newer)
    back.unshift(...ids(res.text))
    newer = link(res.text, 'Newer events')
  }
  assert.deepEqual([...back, ...ids(page.text)], everything)
})

test('filters narrow the log to matching events: action prefix, who did it, whom it was about, and days (the last one included)', async () => {
  const { t, adminEmail } = await adminApp()
  const ann = await createTestUser(t.services, { email: 'ann@test.example' })
  const bob = await createTestUser(t.services, { email: 'bob@test.example' })
  const admin2 = await createTestUser(t.services, { role: 'admin', email: 'other-admin@test.example' })
  t.clock.set('2026-12-01T10:00:00Z')
  const a = await t.services.audit.append({ action: 'enforcement.enforced', actorLabel: 'engine', subjectUserId: ann.id })
  t.clock.set('2026-12-02T23:59:00Z')
  const b = await t.services.audit.append({ action: 'enforcement.failed', actorLabel: 'engine', subjectUserId: bob.id })
  const c = await t.services.audit.append({ action: 'exemption.added', actorId: admin2.id, actorLabel: admin2.email, subjectUserId: ann.id })
  t.clock.set('2026-12-03T00:00:00Z')
  const d = await t.services.audit.append({ action: 'campaign.armed', actorLabel: 'cli' })
  // Signing in again: the clock moved past the session's idle timeout.
  const agent = await signIn(t, adminEmail)

  const shown = async (query: Record<string, string>) => {
    const res = await agent.get(`/admin/audit?${new URLSearchParams(query).toString()}`)
    assert.equal(res.status, 200, JSON.stringify(query))
    return ids(res.text)
  }
  assert.deepEqual(await shown({ action: 'enforcement.' }), [b.id, a.id])
  assert.deepEqual(await shown({ action: 'enforcement.failed' }), [b.id])
  assert.deepEqual(await shown({ actor: 'engine' }), [b.id, a.id])
  assert.deepEqual(await shown({ actor: 'Other-Admin@test.example' }), [c.id], 'an admin by email, any case')
  const aboutAnn = (await t.services.audit.list({ subjectUserId: ann.id })).map((event) => event.id)
  assert.ok(aboutAnn.includes(a.id) && aboutAnn.includes(c.id) && !aboutAnn.includes(b.id))
  assert.deepEqual(await shown({ subject: 'ann@test.example' }), aboutAnn, 'her account\'s creation too')
  assert.deepEqual(await shown({ subject: 'ann@test.example', action: 'exemption.' }), [c.id])
  assert.deepEqual(await shown({ from: '2026-12-02', to: '2026-12-02' }), [c.id, b.id], 'the whole last day, and not a minute after')
  assert.deepEqual(await shown({ from: '2026-12-03' }), [...(await allIds(t)).filter((id) => id >= d.id)])
  assert.deepEqual(await shown({ action: 'nothing.like.this' }), [])

  const page = await agent.get('/admin/audit?subject=ann%40test.example')
  assert.match(page.text, /id="subject"[^>]*value="ann@test\.example"/, 'the filter is shown as typed')
  assert.match(page.text, /<p class="cell-address">About <span class="nowrap">ann@<\/span><wbr><span class="nowrap">test\.example<\/span><\/p>/, 'events name their subject by email')
  assert.match(page.text, /href="\/admin\/audit">Clear filters<\/a>/)
})

test('the day filters are the reader\'s days: an admin in Berlin choosing 2 December sees what happened on 2 December in Berlin, and the labels say so', async () => {
  const { t, adminEmail } = await adminApp()
  const admin = (await t.services.users.findByEmail(adminEmail))!
  await t.services.users.setPreferences(admin.id, { timeZone: 'Europe/Berlin' })
  t.clock.set('2026-12-01T22:30:00Z') // 1 December, 23:30 in Berlin
  const before = await t.services.audit.append({ action: 'test.before', actorLabel: 'cli' })
  t.clock.set('2026-12-01T23:30:00Z') // 2 December, 00:30 in Berlin (still 1 December in UTC)
  const first = await t.services.audit.append({ action: 'test.first', actorLabel: 'cli' })
  t.clock.set('2026-12-02T22:59:00Z') // 2 December, 23:59 in Berlin
  const last = await t.services.audit.append({ action: 'test.last', actorLabel: 'cli' })
  t.clock.set('2026-12-02T23:00:00Z') // 3 December, 00:00 in Berlin (still 2 December in UTC)
  const after = await t.services.audit.append({ action: 'test.after', actorLabel: 'cli' })
  const agent = await signIn(t, adminEmail)

  const res = await agent.get('/admin/audit?action=test.&from=2026-12-02&to=2026-12-02')
  assert.equal(res.status, 200)
  assert.deepEqual(ids(res.text), [last.id, first.id], 'from Berlin midnight to Berlin midnight')
  assert.ok(!ids(res.text).includes(before.id) && !ids(res.text).includes(after.id))
  assert.match(res.text, /<label for="from">From \(day, in Berlin\)<\/label>/)
  assert.match(res.text, /<label for="to">To \(day, in Berlin, included\)<\/label>/)
  assert.match(res.text, /When \(Berlin\)/, 'the table names the same zone')
  assert.deepEqual(ids((await agent.get('/admin/audit?action=test.&from=2026-12-03')).text), [after.id])

  const german = await agent.get('/admin/audit?action=test.&to=2026-12-01').set('accept-language', 'de')
  assert.deepEqual(ids(german.text), [before.id])
  assert.match(german.text, /Von \(Tag, in Berlin\)/)
  assert.match(german.text, /Bis \(Tag, in Berlin, einschließlich\)/)
})

test('an admin without a saved zone reads days in DEFAULT_TIME_ZONE, named in the labels', async () => {
  const { admin } = await adminApp()
  const page = await admin.get('/admin/audit')
  assert.match(page.text, /<label for="from">From \(day, in UTC\)<\/label>/)
  assert.doesNotMatch(page.text, /UTC day/)
})

test('filters that cannot be used are explained at their field (400) and show no events', async () => {
  const { admin } = await adminApp()
  const unknown = await admin.get('/admin/audit?subject=nobody%40test.example')
  assert.equal(unknown.status, 400)
  assert.match(unknown.text, /<p id="subject-error" class="field-error"><span class="visually-hidden">Error: <\/span>No user has this email address\.<\/p>/)
  assert.deepEqual(ids(unknown.text), [])
  const dates = await admin.get('/admin/audit?from=2026-12-05&to=yesterday')
  assert.equal(dates.status, 400)
  assert.match(dates.text, /<p id="to-error" class="field-error">[^]*Enter the last day as a date/)
  const reversed = await admin.get('/admin/audit?from=2026-12-05&to=2026-12-01')
  assert.match(reversed.text, /The last day must be on or after the first day\./)
  assert.equal((await admin.get('/admin/audit?before=abc')).status, 400)
})

test('the chain status says intact with the number of events, and names the event where the chain breaks once a row is altered', async () => {
  const { t, admin } = await adminApp()
  for (let i = 0; i < 5; i++) await t.services.audit.append({ action: 'test.event', actorLabel: 'cli', details: { i } })
  const count = (await allIds(t)).length
  const intact = await admin.get('/admin/audit')
  assert.match(intact.text, new RegExp(`<strong>Chain intact:</strong> all ${count.toLocaleString('en-GB')} events are linked and unaltered\\.`))

  // As an attacker with the database file would: the append-only trigger has to go first.
  const target = (await allIds(t))[2]
  const db = sqlOn(t.services)
  await db.run(db.dialect === 'sqlite' ? 'DROP TRIGGER audit_events_no_update' : 'DROP TRIGGER audit_events_no_update ON audit_events')
  await db.run('UPDATE audit_events SET details = ? WHERE id = ?', '{"i":999}', target)
  const broken = await admin.get('/admin/audit')
  assert.match(broken.text, new RegExp(`<strong>Chain broken at event #${target}:</strong> its contents do not match its keyed hash \\(the row was altered\\)\\. ${target - 1} events before it are intact\\.`))
  assert.match(broken.text, new RegExp(`<tr data-id="${target}">\\s*<th scope="row">#${target} <strong class="badge">chain breaks here</strong>`))
})

test('a log too long to check on every view is checked when the admin asks, and the answer is the same', async () => {
  const { t, admin } = await adminApp()
  await t.services.atomically(async () => {
    for (let i = 0; i <= VERIFY_ON_EVERY_VIEW; i++) await t.services.audit.append({ action: 'test.filler', actorLabel: 'cli', details: { i } })
  })
  const count = (await allIds(t)).length
  const page = await admin.get('/admin/audit?action=test.')
  assert.match(page.text, new RegExp(`<strong>Chain not checked on this view\\.</strong> The log holds ${count.toLocaleString('en-GB')} events`))
  const ask = link(page.text, 'Check the whole chain now')
  assert.equal(ask, '/admin/audit?action=test.&verify=1', 'the check keeps the filters')
  const checked = await admin.get(ask)
  assert.match(checked.text, new RegExp(`<strong>Chain intact:</strong> all ${count.toLocaleString('en-GB')} events are linked and unaltered\\.`))
})

test('only admins read the audit log', async () => {
  const { t } = await adminApp()
  for (const role of ['user', 'helpdesk'] as const) {
    const agent = await signIn(t, (await createTestUser(t.services, { role })).email)
    assert.equal((await agent.get('/admin/audit')).status, 403, role)
  }
  const visitor = await anonymous(t).get('/admin/audit')
  assert.equal(visitor.status, 303)
})
