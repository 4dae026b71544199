import { afterEach, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { createTestUser, readable, signIn, startTestApp, stepUp, submitForm, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

const admin = { id: null, label: 'test-admin' }
let t: TestApp
beforeEach(async () => { t = await startTestApp() })
afterEach(async () => { await t.close() })

async function stateOf (userId: string): Promise<string> {
  return (await sqlOn(t.services).get<{ state: string }>('SELECT state FROM user_states WHERE user_id = ?', userId))!.state
}

async function existingUser (fields: { role?: 'user' | 'admin' } = {}) {
  const user = await createTestUser(t.services, fields)
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  return user
}

function csvRowOf (csv: string, email: string): Record<string, string> {
  const [head, ...lines] = csv.trim().split(/\r?\n/)
  const columns = head.split(',')
  const line = lines.find((l) => l.includes(email))!
  const cells = line.split(',')
  return Object.fromEntries(columns.map((c, i) => [c, cells[i]]))
}

test('a campaign asking for two methods counts a user with one as not yet enrolled, nudges them at home, and the export says who falls short', async () => {
  const user = await existingUser()
  const adminUser = await existingUser({ role: 'admin' })
  await t.services.methods.addTotp(user.id, 'Phone app', new Secret({ size: 20 }).base32, 0)
  await t.services.campaigns.create(campaignInput(t.clock.now(), { methodsRequired: 'two' }), admin)
  assert.equal(await stateOf(user.id), 'pending', 'one authenticator app is not enough here')

  const agent = await signIn(t, user.email)
  const home = await agent.get('/')
  assert.match(home.text, /One more step\./)
  assert.match(home.text, /Your organisation asks for two different ones/)
  assert.match(home.text, /id="second-method-nudge"/)
  assert.doesNotMatch(home.text, /Create recovery codes<\/a> or/, 'recovery codes do not count in this campaign')

  const staff = await signIn(t, adminUser.email)
  await stepUp(t, staff, adminUser)
  const short = csvRowOf((await staff.get('/admin/compliance.csv')).text, user.email)
  assert.deepEqual([short.enrolled, short.meets_policy, short.methods_held, short.methods_required], ['true', 'false', '1', '2'])
  assert.match((await staff.get('/admin/compliance')).text, /2 users hold one method where their campaign asks for a second/)

  // A second method of the same kind is no second kind; a phone is.
  await t.services.methods.addTotp(user.id, 'Second app', new Secret({ size: 20 }).base32, 0)
  await t.services.engine.refreshUser(user.id)
  assert.equal(await stateOf(user.id), 'pending')
  const phone = await t.services.methods.addPhone(user.id, 'Work phone', '+14155550100')
  await t.services.lifecycle.added((await t.services.users.findById(user.id))!, phone, null)
  assert.equal(await stateOf(user.id), 'enrolled')
  assert.match((await agent.get('/')).text, /Set up\./)
  const met = csvRowOf((await staff.get('/admin/compliance.csv')).text, user.email)
  assert.deepEqual([met.meets_policy, met.methods_held], ['true', '2'])
  const json = await staff.get('/admin/compliance.json')
  const row = (JSON.parse(json.text) as { rows: Array<{ email: string, meetsPolicy: boolean, methodsHeld: number, methodsRequired: string }> }).rows.find((r) => r.email === user.email)!
  assert.deepEqual([row.meetsPolicy, row.methodsHeld, row.methodsRequired], [true, 2, 'two'])
})

test('one method plus recovery codes: a local user counts once they create codes, and again falls short when the codes are gone', async () => {
  const user = await existingUser()
  await t.services.campaigns.create(campaignInput(t.clock.now(), { methodsRequired: 'one_plus_recovery' }), admin)
  const agent = await signIn(t, user.email)
  await stepUp(t, agent, user) // gives the account an authenticator app
  await t.services.engine.refreshUser(user.id)
  assert.equal(await stateOf(user.id), 'pending')
  const home = await agent.get('/')
  assert.match(home.text, /Your organisation also asks for a backup: create recovery codes or add a second method/)
  assert.match(home.text, /<a [^>]*href="\/recovery-codes"[^>]*>Create recovery codes<\/a> or/)

  assert.equal((await submitForm(agent, '/recovery-codes', '/recovery-codes')).status, 303)
  assert.equal(await stateOf(user.id), 'enrolled', 'creating the codes re-derives the state')
  assert.match((await agent.get('/')).text, /Set up\./)

  await t.services.recoveryCodes.voidAll(user.id)
  assert.equal(await stateOf(user.id), 'pending', 'voided codes no longer count')
})

test('for a directory user, "one method plus recovery codes" means two methods registered at the directory', async () => {
  const user = await existingUser()
  await sqlOn(t.services).run("UPDATE users SET provider = 'entra', external_id = 'e-1', provider_methods = '[\"totp\"]' WHERE id = ?", user.id)
  await t.services.campaigns.create(campaignInput(t.clock.now(), { methodsRequired: 'one_plus_recovery' }), admin)
  assert.equal(await stateOf(user.id), 'pending')
  await sqlOn(t.services).run('UPDATE users SET provider_methods = \'["passkey","totp"]\' WHERE id = ?', user.id)
  await t.services.engine.refreshUser(user.id)
  assert.equal(await stateOf(user.id), 'enrolled')
})

test('the campaign form sets how many methods count, and the campaign page says it', async () => {
  const adminUser = await existingUser({ role: 'admin' })
  const staff = await signIn(t, adminUser.email)
  await stepUp(t, staff, adminUser)
  const res = await submitForm(staff, '/admin/campaigns/new', '/admin/campaigns', {
    name: 'Backups', targetKind: 'all', startsAt: '2026-11-01', deadline: '2027-01-31', newUserWindowDays: '14', reminderOffsets: '30, 7, 1',
    maxExtensionDays: '30', smsPolicy: 'counts', privilegedMethods: 'any', driftPolicy: 'reapply', awsPolicyVariant: 'console_and_api', methodsRequired: 'two',
    smsSunsetAt: '2027-03-01', smsAfterSunset: 'excluded', smsSunsetGraceDays: '21'
  })
  assert.equal(res.status, 303, res.text)
  const campaign = (await t.services.campaigns.list()).find((c) => c.name === 'Backups')!
  assert.equal(campaign.methodsRequired, 'two')
  assert.equal(campaign.smsSunsetAt?.toISOString(), '2027-03-01T00:00:00.000Z')
  assert.equal(campaign.smsSunsetGraceDays, 21)
  const page = await staff.get(res.headers.location)
  assert.match(page.text, /Two methods of different kinds/)
  // The date with its time and the reader's zone (issue #16 item 8).
  assert.match(readable(page.text), /From 1 March 2027 at \d\d:\d\d \(UTC\), text messages no longer count; 21 days’ grace/)

  const bad = await submitForm(staff, '/admin/campaigns/new', '/admin/campaigns', {
    name: 'Bad', targetKind: 'all', startsAt: '2026-11-01', deadline: '2027-01-31', newUserWindowDays: '14', reminderOffsets: '30',
    maxExtensionDays: '30', smsPolicy: 'excluded', privilegedMethods: 'any', driftPolicy: 'reapply', awsPolicyVariant: 'console_and_api', methodsRequired: 'three',
    smsSunsetAt: '2027-03-01', smsSunsetGraceDays: '0'
  })
  assert.equal(bad.status, 400)
  assert.match(bad.text, /Choose how many methods a user needs/)
  assert.match(bad.text, /Text messages do not count in this campaign, so there is nothing to retire/)
  assert.match(bad.text, /The grace period after the date is a whole number of days from 1 to 365/)

  // A date already past would flip people at once: refused.
  await assert.rejects(async () => await t.services.campaigns.create(campaignInput(t.clock.now(), { smsSunsetAt: new Date(t.clock.now().getTime() - 2 * DAY) }), admin), /must be today or later/)
})
