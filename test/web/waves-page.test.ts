import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { DEFAULT_BREAKER } from '../../server/domain/breaker.ts'
import type { User } from '../../server/domain/users.ts'
import { FakeProvider } from '../fakes/provider.ts'
import { createTestUser, FakeClock, signIn, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let fake: FakeProvider
let adminUser: User

beforeEach(async () => {
  const clock = new FakeClock()
  fake = new FakeProvider({ now: () => clock.now() })
  t = await startTestApp({}, { clock, overrides: { providers: { local: fake } } })
  adminUser = await createTestUser(t.services, { role: 'admin', email: 'admin@test.example' })
})
afterEach(async () => { await t.close() })

/** 12 users in a campaign in two waves (pilot: 25%), armed; 3 of the pilot's flips fail so the breaker pauses it. */
async function pausedCampaign () {
  const users: User[] = []
  for (let i = 0; i < 40; i++) users.push(await createTestUser(t.services, { email: `u${i}@test.example` }))
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE role = ?', t.clock.now().getTime() - 90 * DAY, 'user')
  const actor = { id: adminUser.id, label: adminUser.email }
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now(), {
    deadline: new Date(t.clock.now().getTime() + DAY), waves: { pilot: { kind: 'share', percent: 25 }, offsetsDays: [10] }, breaker: { ...DEFAULT_BREAKER, minFlips: 3 }
  }), actor)
  await t.services.campaigns.arm(campaign.id, actor)
  const pilot = []
  for (const u of users) if ((await t.services.engine.explainDeadline(u.id))?.wave?.number === 1) pilot.push(u)
  fake.failAlways(pilot.slice(0, Math.max(3, Math.ceil(pilot.length / 2))).map((u) => u.id), { retryable: false, message: 'user rejected' })
  t.clock.advance(DAY + 3_600_000)
  await t.services.engine.sweep()
  return campaign
}

test('the campaign page shows why the breaker paused it and each wave\'s state; an admin resumes it with a reason (CSRF, audited)', async () => {
  const campaign = await pausedCampaign()
  const url = `/admin/campaigns/${campaign.id}`
  const admin = await signInStaff(t, adminUser)
  const page = await admin.get(url)
  assert.equal(page.status, 200)
  assert.match(page.text, /id="breaker-paused"/)
  assert.match(page.text, /Paused by the breaker since/)
  assert.match(page.text, /% enforcement failures as a share of attempts \(threshold 20%\)/)
  assert.match(page.text, /data-wave="1" data-state="done"/)
  assert.match(page.text, /data-wave="2" data-state="scheduled"/)
  assert.match(page.text, /Start wave 2 now/)

  const noReason = await submitForm(admin, url, `${url}/resume`, { reason: '' })
  assert.equal(noReason.status, 303)
  assert.equal((await t.services.campaigns.find(campaign.id))!.pauses[0].resumedAt, null, 'no reason, no resume')
  const noCsrf = await admin.post(`${url}/resume`).type('form').send({ reason: 'checked' })
  assert.equal(noCsrf.status, 403)

  const done = await submitForm(admin, url, `${url}/resume`, { reason: 'Rejected accounts were service accounts' })
  assert.equal(done.status, 303)
  assert.notEqual((await t.services.campaigns.find(campaign.id))!.pauses[0].resumedAt, null)
  assert.equal((await t.services.audit.list({ action: 'campaign.resumed' }))[0].actorId, adminUser.id)
  const after = await admin.get(url)
  assert.match(after.text, /id="breaker-running"/)
  assert.match(after.text, /Earlier pauses/)
})

test('an admin starts the next wave by hand from the page; others may not resume or start anything', async () => {
  const campaign = await pausedCampaign()
  const url = `/admin/campaigns/${campaign.id}`
  const outsider = await createTestUser(t.services, { email: 'someone@test.example' })
  const user = await signIn(t, outsider.email)
  assert.equal((await user.post(`${url}/resume`).type('form').send({ reason: 'let me' })).status, 403)
  assert.equal((await user.post(`${url}/waves/2/start`).type('form').send({})).status, 403)

  const admin = await signInStaff(t, adminUser)
  const started = await submitForm(admin, url, `${url}/waves/2/start`)
  assert.equal(started.status, 303)
  const audit = await t.services.audit.list({ action: 'campaign.wave_started' })
  assert.equal(audit.length, 1)
  assert.equal(audit[0].actorId, adminUser.id)
  assert.match((await admin.get(url)).text, /data-wave="2" data-state="paused"/, 'it counts, but the campaign is still paused')
})

function campaignForm (fields: Record<string, string>): Record<string, string> {
  return {
    name: 'In waves', targetKind: 'all', targetValue: '', startsAt: '2026-11-25', deadline: '2027-01-31', privilegedDeadline: '', newUserWindowDays: '14',
    reminderOffsets: '30, 14, 7', maxExtensionDays: '30', softBlockDays: '', smsPolicy: 'counts', privilegedMethods: 'phishing_resistant', driftPolicy: 'reapply',
    awsPolicyVariant: 'console_and_api', ...fields
  }
}

test('the campaign form sets the waves and the breaker\'s thresholds, and says what is wrong with them by field', async () => {
  const admin = await signInStaff(t, adminUser)
  const bad = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', campaignForm({ wavePilotKind: 'share', wavePilot: '0', waveOffsets: '', breakerPasses: '0' }))
  assert.equal(bad.status, 400)
  assert.match(bad.text, /The pilot’s share is a percentage from 0\.5 to 90|The pilot&#39;s share is a percentage from 0\.5 to 90/)
  assert.match(bad.text, /id="waveOffsets"[^>]*aria-describedby="waveOffsets-hint waveOffsets-error" aria-invalid="true"/)
  assert.match(bad.text, /<p id="wavePilot-error" class="field-error"><span class="visually-hidden">Error: <\/span>The pilot&#39;s share is a percentage from 0\.5 to 90/,
    'the field says what is wrong beside it, its text escaped')
  assert.match(bad.text, /<p id="breakerPasses-error" class="field-error"><span class="visually-hidden">Error: <\/span>Passes and resets per 100 users flipped/)
  assert.match(bad.text, /Passes and resets per 100 users flipped: a whole number from 1 to 100\./)
  assert.match(bad.text, /id="wavePilot"[^>]*value="0"/, 'what was typed is kept')
  assert.equal((await t.services.campaigns.list()).length, 0)

  const ok = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', campaignForm({ wavePilotKind: 'group', wavePilot: 'pilot-it', waveOffsets: '7, 14', breakerPasses: '10', breakerFailures: '25', breakerNotMe: '2', breakerMinFlips: '20' }))
  assert.equal(ok.status, 303)
  const [created] = await t.services.campaigns.list()
  assert.deepEqual(created.waves, { pilot: { kind: 'group', group: 'pilot-it' }, offsetsDays: [7, 14] })
  assert.deepEqual(created.breaker, { passesPer100: 10, failurePercent: 25, notMePer100: 2, minFlips: 20 })
  const edit = await admin.get(`/admin/campaigns/${created.id}/edit`)
  assert.match(edit.text, /id="wavePilotKind-group" name="wavePilotKind" type="radio" value="group" checked/)
  assert.match(edit.text, /id="waveOffsets"[^>]*value="7, 14"/)
  const page = await admin.get(`/admin/campaigns/${created.id}`)
  assert.match(page.text, /data-wave="1" data-state="done"/, 'nobody is in the pilot group yet')
  assert.match(page.text, /data-wave="2" data-state="scheduled"/, 'waits for the next sweep to start')
  assert.match(page.text, /data-wave="3" data-state="scheduled"/)
})

test('the campaign list says a campaign is paused, and each wave\'s burn-down keeps a daily point', async () => {
  const campaign = await pausedCampaign()
  const admin = await signInStaff(t, adminUser)
  assert.match((await admin.get('/admin/campaigns')).text, /Paused by the breaker since/)
  assert.equal(await t.services.dashboard.takeSnapshot(t.clock.now()), true)
  const rows = await sqlOn(t.services).all<{ wave: number, counts: string }>('SELECT wave, counts FROM wave_snapshots WHERE campaign_id = ? ORDER BY wave', campaign.id)
  assert.deepEqual(rows.map((r) => r.wave), [1, 2])
  t.clock.advance(DAY)
  const page = await (await signInStaff(t, adminUser)).get(`/admin/campaigns/${campaign.id}`)
  const wave2 = /<section class="wave" data-wave="2"[\s\S]*?<\/section>/.exec(page.text)?.[0] ?? ''
  assert.equal([...wave2.matchAll(/<circle /g)].length, 2, 'yesterday\'s snapshot and today\'s live count')
})

test('a user in a later wave sees their own wave\'s deadline on the home page and in the calendar file', async () => {
  const users: User[] = []
  for (let i = 0; i < 30; i++) users.push(await createTestUser(t.services, { email: `h${i}@test.example` }))
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE role = ?', t.clock.now().getTime() - 90 * DAY, 'user')
  const deadline = new Date(t.clock.now().getTime() + 10 * DAY)
  await t.services.campaigns.create(campaignInput(t.clock.now(), { deadline, waves: { pilot: { kind: 'share', percent: 20 }, offsetsDays: [21] } }), { id: adminUser.id, label: adminUser.email })
  let later: (typeof users)[number] | undefined
  for (const u of users) if (later === undefined && (await t.services.engine.explainDeadline(u.id))?.wave?.number === 2) later = u
  assert.ok(later)
  const expected = new Date(deadline.getTime() + 21 * DAY)
  const day = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(expected)
  const agent = await signIn(t, later.email)
  const home = await agent.get('/')
  assert.equal(home.status, 200)
  assert.ok(home.text.includes(day), `the home page shows ${day}`)
  const calendar = await agent.get('/deadline.ics')
  assert.equal(calendar.status, 200)
  assert.match(calendar.text, new RegExp(`DTSTART:${expected.toISOString().slice(0, 10).replace(/-/g, '')}T`))
})
