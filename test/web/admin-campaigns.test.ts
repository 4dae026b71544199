import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { type CampaignInput } from '../../server/domain/campaigns.ts'
import { sayWords } from '../../server/domain/stored-words.ts'
import { english } from '../../server/web/english.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { type Agent, anonymous, createTestUser, csrfFor, signIn, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
// A fresh database per test: campaigns target everyone, so they would overlap across tests.
afterEach(async () => { await t?.close() })

async function adminApp (): Promise<{ t: TestApp, admin: Agent, adminId: string }> {
  t = await startTestApp()
  const user = await createTestUser(t.services, { role: 'admin' })
  return { t, admin: await signInStaff(t, user), adminId: user.id }
}

/** A complete, valid form as a browser would send it (the clock starts on 2026-11-25). */
function validForm (fields: Record<string, string> = {}): Record<string, string> {
  return {
    name: 'MFA for everyone',
    targetKind: 'all',
    targetValue: '',
    startsAt: '2026-11-25',
    deadline: '2027-01-31',
    privilegedDeadline: '',
    newUserWindowDays: '14',
    reminderOffsets: '30, 14, 7, 3, 1',
    maxExtensionDays: '30',
    softBlockDays: '',
    smsPolicy: 'counts',
    privilegedMethods: 'phishing_resistant',
    driftPolicy: 'reapply',
    ...fields
  }
}

function pastCampaign (t: TestApp, fields: Partial<CampaignInput> = {}): CampaignInput {
  const now = t.clock.now().getTime()
  return campaignInput(now, { name: 'Overdue rollout', deadline: new Date(now - DAY), ...fields })
}

/** The dry-run table as [email, what would happen] pairs. */
function planRows (html: string): Array<[string, string]> {
  return [...html.matchAll(/<tr>\s*<td class="wrap-anywhere">([^<]*)<\/td>\s*<td>([^<]*)<\/td>/g)].map((m) => [m[1], m[2]])
}

test('an admin creates a campaign from the form: stored disarmed with UTC-midnight dates, audited, and the page says to review the dry run', async () => {
  const { t, admin, adminId } = await adminApp()
  const form = await admin.get('/admin/campaigns/new')
  assert.equal(form.status, 200)
  assert.match(form.text, /id="startsAt" name="startsAt" type="date" value="2026-11-25"/, 'the start defaults to today')
  assert.match(form.text, /id="newUserWindowDays"[^>]*value="14"/)
  assert.match(form.text, /id="reminderOffsets"[^>]*value="30, 14, 7, 3, 1"/)
  assert.match(form.text, /id="maxExtensionDays"[^>]*value="30"/)
  assert.match(form.text, /id="smsPolicy-counts"[^>]*checked/, 'text messages count unless the admin says otherwise')
  assert.match(form.text, /id="privilegedMethods-phishing_resistant"[^>]*checked/)
  assert.match(form.text, /id="driftPolicy-reapply"[^>]*checked/)

  const fields = validForm({
    name: '  Admins first  ', targetKind: 'group', targetValue: ' Finance ', privilegedDeadline: '2027-01-15', reminderOffsets: '7,30 14', maxExtensionDays: '10',
    softBlockDays: '5', smsPolicy: 'weak', privilegedMethods: 'any', driftPolicy: 'flag'
  })
  const res = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', fields)
  assert.equal(res.status, 303)
  const [campaign] = await t.services.campaigns.list()
  assert.equal(res.headers.location, `/admin/campaigns/${campaign.id}`)
  assert.equal(campaign.name, 'Admins first')
  assert.equal(campaign.targetKind, 'group')
  assert.equal(campaign.targetValue, 'Finance')
  assert.equal(campaign.startsAt.toISOString(), '2026-11-25T00:00:00.000Z')
  assert.equal(campaign.deadline.toISOString(), '2027-01-31T00:00:00.000Z')
  assert.equal(campaign.privilegedDeadline?.toISOString(), '2027-01-15T00:00:00.000Z')
  assert.deepEqual(campaign.reminderOffsets, [30, 14, 7])
  assert.equal(campaign.maxExtensionDays, 10)
  assert.equal(campaign.smsPolicy, 'weak')
  assert.equal(campaign.privilegedMethods, 'any')
  assert.equal(campaign.softBlockDays, 5)
  assert.equal(campaign.driftPolicy, 'flag')
  assert.equal(campaign.armedAt, null)

  const audit = await t.services.audit.list({ action: 'campaign.created' })
  assert.equal(audit.length, 1)
  assert.equal(audit[0].actorId, adminId)

  const page = await admin.get(res.headers.location)
  assert.equal(page.status, 200)
  assert.match(page.text, /Created\. It is disarmed: review the dry run, then arm it\./)
  assert.match(page.text, /Group &quot;Finance&quot;/)
  const list = await admin.get('/admin/campaigns')
  assert.match(list.text, /Admins first/)
  assert.match(list.text, /Disarmed/)
  assert.match(list.text, /href="\/admin\/campaigns\/new"/)
})

test('the campaign form explains in words what each AWS policy blocks, keeps AWS\'s documented one unless the admin chooses, and stores the choice', async () => {
  const { t, admin } = await adminApp()
  const form = await admin.get('/admin/campaigns/new')
  assert.match(form.text, /<legend>AWS IAM users: what the policy blocks until they use MFA<\/legend>/)
  assert.match(form.text, /id="awsPolicyVariant-console_and_api"[^>]*checked/)
  assert.match(form.text, /<label for="awsPolicyVariant-console_and_api">Console and API: AWS&#39;s documented policy\.[^<]*Requests signed with a long-term access key never carry MFA, so AWS refuses them too/)
  assert.match(form.text, /<label for="awsPolicyVariant-console_only">Console only: [^<]*requests signed with a long-term access key are not refused/)

  const res = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', validForm({ awsPolicyVariant: 'console_only' }))
  assert.equal(res.status, 303)
  const [campaign] = await t.services.campaigns.list()
  assert.equal(campaign.awsPolicyVariant, 'console_only')
  assert.match((await admin.get(`/admin/campaigns/${campaign.id}`)).text, /<dt>AWS IAM users<\/dt><dd>Console only: /)
  const refused = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', validForm({ awsPolicyVariant: 'no_policy' }))
  assert.equal(refused.status, 400)
  assert.match(refused.text, /Choose which policy AWS users get\./)
})

// field, what was typed, the message shown next to that field
const INVALID: Array<[string, Record<string, string>, string, RegExp]> = [
  ['a missing name', { name: '' }, 'name', /Give the campaign a name of up to 100 characters\./],
  ['a name over 100 characters', { name: 'n'.repeat(101) }, 'name', /Give the campaign a name of up to 100 characters\./],
  ['a deadline before the start', { startsAt: '2026-12-01', deadline: '2026-11-30' }, 'deadline', /The deadline must be after the start\./],
  ['a day that does not exist', { deadline: '2027-02-30' }, 'deadline', /Enter a deadline date\./],
  ['no deadline', { deadline: '' }, 'deadline', /Enter a deadline date\./],
  ['no start date', { startsAt: '' }, 'startsAt', /Enter the start as a date, such as 2027-01-31\./],
  ['a start that is not a date', { startsAt: '25/11/2026' }, 'startsAt', /Enter the start as a date, such as 2027-01-31\./],
  ['a privileged deadline after the deadline', { privilegedDeadline: '2027-02-01' }, 'privilegedDeadline', /must fall between the start and the main deadline/],
  ['reminders that are not whole numbers', { reminderOffsets: '30, soon, 7' }, 'reminderOffsets', /Reminders are whole numbers of days/],
  ['a reminder too far out', { reminderOffsets: '400' }, 'reminderOffsets', /Reminders are whole numbers of days/],
  ['a group campaign without a group', { targetKind: 'group', targetValue: '  ' }, 'targetValue', /Name the group to target\./],
  ['a provider campaign without a provider', { targetKind: 'provider' }, 'targetValue', /Name the provider to target\./],
  ['words for a number of days', { newUserWindowDays: 'two weeks' }, 'newUserWindowDays', /The new-user window is a whole number of days/],
  ['a fraction of a day', { maxExtensionDays: '2.5' }, 'maxExtensionDays', /The extension budget is a whole number of days/],
  ['no target chosen', { targetKind: '' }, 'targetKind', /Choose who the campaign is for\./]
]

for (const [label, fields, field, message] of INVALID) {
  test(`the campaign form with ${label} comes back (400) with the message at that field, the input kept, and nothing stored`, async () => {
    const { t, admin } = await adminApp()
    const form = validForm({ ...fields })
    // A browser sends no radio value at all when none is chosen.
    if (form.targetKind === '') delete form.targetKind
    const res = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', form)
    assert.equal(res.status, 400)
    assert.match(res.text, /<title>Error: New campaign/)
    const error = new RegExp(`<p id="${field}-error" class="field-error">[^]*?</p>`).exec(res.text)
    assert.ok(error !== null, `an error next to ${field}`)
    assert.match(error[0], message)
    if (field !== 'targetKind') {
      assert.match(res.text, new RegExp(`id="${field}"[^>]*aria-describedby="${field}-hint ${field}-error" aria-invalid="true"`))
      const typed = form[field].replace(/[.]/g, '\\.')
      assert.match(res.text, new RegExp(`id="${field}"[^>]*value="${typed}"`), 'what was typed is kept')
    }
    assert.equal((await t.services.campaigns.list()).length, 0)
    assert.equal((await t.services.audit.list({ action: 'campaign.created' })).length, 0)
  })
}

test('every problem with a form is shown at once, in form order, with what was typed escaped', async () => {
  const { t, admin } = await adminApp()
  const res = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', validForm({ name: '<b>x</b>'.repeat(20), startsAt: 'soon', deadline: '', maxExtensionDays: '-1' }))
  assert.equal(res.status, 400)
  const summary = [...res.text.matchAll(/<li><a href="#([A-Za-z-]+)">/g)].map((m) => m[1])
  assert.deepEqual(summary, ['name', 'startsAt', 'deadline', 'maxExtensionDays'])
  assert.match(res.text, /value="(&lt;b&gt;x&lt;\/b&gt;){20}"/)
  assert.doesNotMatch(res.text, /<b>x<\/b>/)
  assert.equal((await t.services.campaigns.list()).length, 0)
})

test('input a form cannot send (unknown target, oversized or repeated fields) is refused with 400 and nothing stored', async () => {
  const { t, admin } = await adminApp()
  for (const fields of [validForm({ targetKind: 'everyone' }), validForm({ name: 'n'.repeat(5000) }), validForm({ reminderOffsets: '1,'.repeat(200) }), validForm({ smsPolicy: 'x'.repeat(100) })]) {
    const res = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', fields)
    assert.equal(res.status, 400)
  }
  const token = await csrfFor(admin, '/admin/campaigns/new')
  const repeated = await admin.post('/admin/campaigns').type('form').send(`${new URLSearchParams({ ...validForm(), _csrf: token }).toString()}&name=second`)
  assert.equal(repeated.status, 400)
  assert.equal((await t.services.campaigns.list()).length, 0)
})

test('the campaign page shows the dry run the sweep will follow; arming is audited, the sweep then enforces those users, and disarming works', async () => {
  const { t, admin, adminId } = await adminApp()
  const due = [await createTestUser(t.services), await createTestUser(t.services)]
  // Existing users, first seen long before the campaign started: the campaign's own deadline applies to them.
  for (const user of due) await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  const campaign = await t.services.campaigns.create(pastCampaign(t), { id: adminId, label: 'test-admin' })
  const url = `/admin/campaigns/${campaign.id}`

  const disarmed = await admin.get(url)
  assert.equal(disarmed.status, 200)
  assert.match(disarmed.text, /Disarmed/)
  assert.deepEqual(await t.services.engine.plan(), [], 'a disarmed campaign flips no one')
  assert.deepEqual(planRows(disarmed.text).map(([email]) => email).sort(), due.map((u) => u.email).sort(), 'the dry run shows whom arming would flip')
  assert.match(disarmed.text, /From now on, the sweep will make multi-factor sign-in mandatory for the users listed in the dry run/)

  const armed = await submitForm(admin, url, `${url}/arm`)
  assert.equal(armed.status, 303)
  assert.equal(armed.headers.location, url)
  assert.notEqual((await t.services.campaigns.find(campaign.id))?.armedAt, null)
  const audit = await t.services.audit.list({ action: 'campaign.armed' })
  assert.equal(audit.length, 1)
  assert.equal(audit[0].actorId, adminId)

  const page = await admin.get(url)
  assert.match(page.text, /Armed\. From now on, the sweep makes MFA mandatory/)
  assert.match(page.text, /2 users would be made to use multi-factor sign-in/)
  const plan = await t.services.engine.plan()
  assert.deepEqual(planRows(page.text), plan.map((item) => [item.email, item.action === 'enforce' ? 'Make MFA mandatory' : 'Lift enforcement']), 'the page shows the engine\'s dry run')
  assert.deepEqual(plan.map((item) => item.userId).sort(), due.map((u) => u.id).sort())
  // The engine's reason, in the reader's words: the deadline with its time and zone (issue #16 items 8, 10).
  for (const item of plan) assert.ok(page.text.includes(sayWords(english(), item.words).replace(/'/g, '&#39;')), `the reason for ${item.email}`)

  await t.services.engine.sweep()
  for (const user of due) assert.notEqual((await t.services.users.findById(user.id))?.enforcedAt, null)
  assert.match((await admin.get(url)).text, /Nothing would change\./)

  const disarm = await submitForm(admin, url, `${url}/disarm`)
  assert.equal(disarm.status, 303)
  assert.equal((await t.services.campaigns.find(campaign.id))?.armedAt, null)
  assert.equal((await t.services.audit.list({ action: 'campaign.disarmed' })).length, 1)
  const after = await admin.get(url)
  assert.match(after.text, /Disarmed\. The sweep no longer makes MFA mandatory/)
  assert.match(after.text, /Arm this campaign/)
})

test('an unknown campaign is a 404 page, for viewing and for arming', async () => {
  const { t, admin } = await adminApp()
  const page = await admin.get('/admin/campaigns/no-such-campaign')
  assert.equal(page.status, 404)
  assert.match(page.text, /Page not found/)
  const arm = await submitForm(admin, '/admin/campaigns', '/admin/campaigns/no-such-campaign/arm')
  assert.equal(arm.status, 404)
  assert.equal((await t.services.audit.list({ action: 'campaign.armed' })).length, 0)
})

test('only admins reach campaigns: anonymous visitors are sent to sign in, users and helpdesk staff get 403, and nothing changes', async () => {
  const { t } = await adminApp()
  const campaign = await t.services.campaigns.create(pastCampaign(t), { id: null, label: 'test' })
  const pages = ['/admin/campaigns', '/admin/campaigns/new', `/admin/campaigns/${campaign.id}`]
  const posts: Array<[string, Record<string, string>]> = [['/admin/campaigns', validForm()], [`/admin/campaigns/${campaign.id}/arm`, {}], [`/admin/campaigns/${campaign.id}/disarm`, {}]]

  const visitor = anonymous(t)
  for (const path of pages) {
    const res = await visitor.get(path)
    assert.equal(res.status, 303, path)
    assert.equal(res.headers.location, `/login?next=${encodeURIComponent(path)}`)
  }
  for (const [path, fields] of posts) {
    // With a valid token from the sign-in page, so it is the role guard that answers.
    const res = await submitForm(visitor, '/login', path, fields)
    assert.equal(res.status, 303, path)
    assert.equal(res.headers.location, '/login')
  }

  for (const role of ['user', 'helpdesk'] as const) {
    const agent = await signIn(t, (await createTestUser(t.services, { role })).email)
    for (const path of pages) assert.equal((await agent.get(path)).status, 403, `${role} GET ${path}`)
    for (const [path, fields] of posts) {
      const res = await submitForm(agent, '/', path, fields)
      assert.equal(res.status, 403, `${role} POST ${path}`)
      assert.match(res.text, /This area is for administrators\./)
    }
  }
  assert.equal((await t.services.campaigns.list()).length, 1)
  assert.equal((await t.services.campaigns.find(campaign.id))?.armedAt, null)
  assert.equal((await t.services.audit.list({ action: 'campaign.armed' })).length, 0)
})

test('a campaign form or arm button sent without a valid CSRF token is refused (403) and changes nothing', async () => {
  const { t, admin, adminId } = await adminApp()
  const campaign = await t.services.campaigns.create(pastCampaign(t), { id: adminId, label: 'test-admin' })
  await admin.get('/admin/campaigns/new')
  const create = await admin.post('/admin/campaigns').type('form').send(validForm())
  assert.equal(create.status, 403)
  assert.match(create.text, /This form has expired or was not sent from this site/)
  const arm = await admin.post(`/admin/campaigns/${campaign.id}/arm`).type('form').send({ _csrf: 'forged' })
  assert.equal(arm.status, 403)
  assert.equal((await t.services.campaigns.list()).length, 1)
  assert.equal((await t.services.campaigns.find(campaign.id))?.armedAt, null)
  assert.equal((await t.services.audit.list({ action: 'campaign.armed' })).length, 0)
})
