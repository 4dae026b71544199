import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import pino from 'pino'
import { startScheduler } from '../../server/jobs/scheduler.ts'
import { recordDailySnapshot } from '../../server/jobs/snapshots.ts'
import { USER_STATES } from '../../server/domain/states.ts'
import { anonymous, createTestUser, signIn, startTestApp, stepUp, submitForm, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { POPULATION_METHODS, POPULATION_PROVIDERS, POPULATION_STATES, seedPopulation, storeSnapshots } from '../helpers/rollout.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close() })

async function seeded () {
  t = await startTestApp()
  const population = await seedPopulation(t.services, t.clock)
  const admin = await signIn(t, population.admin.email)
  return { ...population, adminUser: population.admin, t, admin }
}

function stateCounts (html: string): Record<string, number> {
  return Object.fromEntries([...html.matchAll(/data-state="([a-z_]+)"><span class="stat-count">(\d+)<\/span>/g)].map((m) => [m[1], Number(m[2])]))
}

/** Rows of a table whose <tr> carries data-<attribute>: key -> the numbers in its cells. */
function tableRows (html: string, attribute: string): Record<string, number[]> {
  return Object.fromEntries([...html.matchAll(new RegExp(`<tr data-${attribute}="([^"]+)">([^]*?)</tr>`, 'g'))]
    .map((m) => [m[1], [...m[2].matchAll(/<td>(\d+)<\/td>/g)].map((c) => Number(c[1]))]))
}

test('the dashboard counts a mixed population by state (all seven), by method kind and by provider', async () => {
  const { admin } = await seeded()
  const page = await admin.get('/admin')
  assert.equal(page.status, 200)
  assert.deepEqual(stateCounts(page.text), POPULATION_STATES)
  assert.deepEqual(Object.keys(stateCounts(page.text)), [...USER_STATES], 'every state, in lifecycle order')
  assert.match(page.text, /12 users in all; <strong>5 not yet enrolled<\/strong>/)
  const methods = tableRows(page.text, 'kind')
  assert.deepEqual(methods, POPULATION_METHODS)
  assert.deepEqual(tableRows(page.text, 'provider'), POPULATION_PROVIDERS)
  for (const state of USER_STATES) assert.match(page.text, new RegExp(`href="/admin/states/${state}"`))
  for (const href of ['/admin/campaigns', '/admin/outbox', '/admin/audit', '/admin/exemptions', '/admin/tokens', '/admin/compliance']) {
    assert.match(page.text, new RegExp(`href="${href}"`), `links to ${href}`)
  }
})

test('each state count links to the list of exactly those users, with why they are in it', async () => {
  const { admin, users } = await seeded()
  const overdue = await admin.get('/admin/states/overdue')
  assert.equal(overdue.status, 200)
  const emails = [...overdue.text.matchAll(/<td class="wrap-anywhere">([^<]+)<\/td>/g)].map((m) => m[1]).sort()
  assert.deepEqual(emails, [users.late.email, users.entraLate.email].sort())
  assert.match(overdue.text, /2 users in this state/)
  assert.match(overdue.text, /Deadline passed without a qualifying method/)
  assert.equal((await admin.get('/admin/states/everyone')).status, 400, 'an unknown state is refused')
})

test('a long state list is shown fifty at a time, and the next page continues where the first stopped', async () => {
  t = await startTestApp()
  const user = await createTestUser(t.services, { role: 'admin' })
  const admin = await signIn(t, user.email)
  for (let i = 0; i < 54; i++) await createTestUser(t.services)
  await t.services.campaigns.create(campaignInput(t.clock.now()), { id: user.id, label: user.email })
  const emailsOf = (html: string) => [...html.matchAll(/<td class="wrap-anywhere">([^<]+)<\/td>/g)].map((m) => m[1])
  const first = await admin.get('/admin/states/pending')
  assert.equal(emailsOf(first.text).length, 50)
  assert.match(first.text, /55 users in this state, 50 on this page/)
  const next = /href="(\/admin\/states\/pending\?after=\d+)">Next page/.exec(first.text)
  assert.ok(next !== null, 'a link to the next page')
  const second = await admin.get(next[1].replace(/&amp;/g, '&'))
  assert.equal(emailsOf(second.text).length, 5)
  assert.doesNotMatch(second.text, /Next page/)
  assert.equal(new Set([...emailsOf(first.text), ...emailsOf(second.text)]).size, 55, 'no one twice, no one left out')
})

test('users needing attention are listed with the reason; only flagged drift offers Re-apply', async () => {
  const { admin, users } = await seeded()
  const page = await admin.get('/admin')
  const section = /<section class="admin-section" aria-labelledby="attention-heading"[^]*?<\/section>/.exec(page.text)?.[0] ?? ''
  assert.match(section, /2 users need attention/)
  assert.match(section, new RegExp(`${users.drifted.email}</td>\\s*<td>MFA enforcement was switched off at the provider by hand`))
  assert.match(section, new RegExp(`${users.breakGlass.email}</td>\\s*<td>Break-glass account without a passkey or security key`))
  const buttons = [...section.matchAll(/action="\/admin\/users\/([^/]+)\/reapply-enforcement"/g)].map((m) => m[1])
  assert.deepEqual(buttons, [users.drifted.id])
})

test('Re-apply clears the drift flag, is audited with the admin, and puts the user back into the sweep\'s plan', async () => {
  const { t, admin, adminUser, users } = await seeded()
  assert.equal((await t.services.engine.plan()).some((item) => item.userId === users.drifted.id), false, 'flagged drift is not re-applied on its own')
  await stepUp(t, admin, adminUser)
  const res = await submitForm(admin, '/admin', `/admin/users/${users.drifted.id}/reapply-enforcement`)
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/admin#attention')
  assert.equal((await t.services.engineStore.facts(users.drifted.id))?.driftFlaggedAt, null)
  const [event] = await t.services.audit.list({ action: 'enforcement.drift_reapply_approved' })
  assert.equal(event.subjectUserId, users.drifted.id)
  assert.equal(event.actorLabel, 'admin@test.example')
  assert.equal((await t.services.engine.plan()).find((item) => item.userId === users.drifted.id)?.action, 'enforce')
  const after = await admin.get('/admin')
  assert.match(after.text, /Approved: the next sweep makes MFA mandatory for this user again\./)
  assert.match(after.text, /1 user needs attention/)
})

test('Re-apply for a user without flagged drift says so and records nothing; without a CSRF token it is refused', async () => {
  const { t, admin, adminUser, users } = await seeded()
  await stepUp(t, admin, adminUser)
  const none = await submitForm(admin, '/admin', `/admin/users/${users.breakGlass.id}/reapply-enforcement`)
  assert.equal(none.status, 303)
  assert.match((await admin.get('/admin')).text, /This user has no flagged drift to act on\./)
  const forged = await admin.post(`/admin/users/${users.drifted.id}/reapply-enforcement`).type('form').send({ _csrf: 'forged' })
  assert.equal(forged.status, 403)
  assert.ok((await t.services.engineStore.facts(users.drifted.id))?.driftFlaggedAt instanceof Date, 'the drift flag stays')
  assert.equal((await t.services.audit.list({ action: 'enforcement.drift_reapply_approved' })).length, 0)
})

test('the dashboard shows the engine\'s dry run: complete counts per campaign and the first rows', async () => {
  const { t, admin, campaignId } = await seeded()
  const plan = await t.services.engine.planSummary(10)
  assert.ok(plan.enforce > 0)
  const page = await admin.get('/admin')
  assert.match(page.text, new RegExp(`<p id="plan-summary">${plan.enforce} users would be made to use multi-factor sign-in`))
  assert.match(page.text, new RegExp(`<a href="/admin/campaigns/${campaignId}">Everyone</a>: ${plan.enforce} to enforce`))
  for (const item of plan.sample) assert.ok(page.text.includes(`<td class="wrap-anywhere">${item.email}</td>`), item.email)
})

test('the burn-down chart plots the daily snapshots and today\'s live count, with the campaign\'s deadlines marked', async () => {
  const { t, admin } = await seeded()
  const snapshots = await storeSnapshots(t.services, t.clock)
  const page = await admin.get('/admin')
  const table = /<table class="data-table" id="burndown-table">[^]*?<\/table>/.exec(page.text)?.[0] ?? ''
  const rows = [...table.matchAll(/<time datetime="([\d-]+)">[^<]*<\/time>[^<]*<\/th>\s*<td>(\d+)<\/td>/g)].map((m) => [m[1], Number(m[2])])
  assert.deepEqual(rows, [...snapshots.map((s) => [s.day, s.notYetEnrolled]), ['2026-11-25', 5]])
  const dots = [...page.text.matchAll(/<circle [^>]*data-day="([\d-]+)" data-value="(\d+)"/g)].map((m) => [m[1], Number(m[2])])
  assert.deepEqual(dots, rows)
  assert.match(page.text, /<svg class="chart-svg" role="img" aria-labelledby="burndown-title burndown-desc"/)
  assert.match(page.text, /<desc id="burndown-desc">Not yet enrolled counts users in their grace period or overdue \(pending plus overdue\)/)
  const markers = [...page.text.matchAll(/<line [^>]*data-day="([\d-]+)" data-kind="(\w+)"/g)].map((m) => [m[1], m[2]])
  assert.deepEqual(markers, [['2026-11-20', 'privileged'], ['2026-11-24', 'deadline']])
  assert.doesNotMatch(page.text, /style=/, 'no inline styles (CSP)')
})

test('the daily snapshot records counts by state once per UTC day, whatever the number of sweeps', async () => {
  const { t } = await seeded()
  assert.equal(await recordDailySnapshot(t.services.dashboard, t.clock), true)
  t.clock.advance(3_600_000)
  assert.equal(await recordDailySnapshot(t.services.dashboard, t.clock), false, 'the second sweep of the day writes nothing')
  t.clock.advance(DAY)
  assert.equal(await recordDailySnapshot(t.services.dashboard, t.clock), true)
  const rows = await sqlOn(t.services).all<{ day: string, counts: string }>('SELECT day, counts FROM rollout_snapshots ORDER BY day')
  assert.deepEqual(rows.map((r) => r.day), ['2026-11-25', '2026-11-26'])
  const expected = Object.fromEntries(Object.entries(POPULATION_STATES).filter(([, n]) => n > 0))
  assert.deepEqual(JSON.parse(rows[0].counts), expected)
})

test('the scheduler records the day\'s snapshot after its sweep', async () => {
  const { t } = await seeded()
  const scheduler = startScheduler(t.services, 60_000, pino({ level: 'silent' }))
  // The first run starts on the next turn of the event loop; stop() then waits for it to finish.
  await new Promise((resolve) => setImmediate(resolve))
  await scheduler.stop()
  const days = await sqlOn(t.services).values('SELECT day FROM rollout_snapshots')
  assert.deepEqual(days, ['2026-11-25'])
})

test('only admins reach the dashboard, the state lists and Re-apply', async () => {
  const { t, users } = await seeded()
  const helpdesk = await signIn(t, (await createTestUser(t.services, { role: 'helpdesk' })).email)
  for (const path of ['/admin', '/admin/states/attention']) {
    assert.equal((await helpdesk.get(path)).status, 403, path)
    assert.equal((await anonymous(t).get(path)).status, 303, path)
  }
  const res = await submitForm(helpdesk, '/', `/admin/users/${users.drifted.id}/reapply-enforcement`)
  assert.equal(res.status, 403)
  assert.ok((await t.services.engineStore.facts(users.drifted.id))?.driftFlaggedAt instanceof Date, 'the drift flag stays')
})
