import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'csv-parse/sync'
import request from 'supertest'
import { assessMethods } from '../../server/domain/methods.ts'
import { countingMethods } from '../../server/domain/protection.ts'
import type { User } from '../../server/domain/users.ts'
import { automationServices } from '../../server/wiring-automation.ts'
import { createTestUser, signIn, startTestApp, type Agent, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

const SYSTEM = { id: null, label: 'test' }

interface Seed { email: string, groups?: string[], privileged?: boolean, disabled?: boolean, portal?: Array<'totp' | 'phone'>, aws?: { methods: string[], consolePassword: boolean }, exempt?: true }

/**
 * A population in every state. Two campaigns: "late" (armed, deadline passed yesterday) and "staff" (disarmed,
 * deadline in 10 days, text messages count but are weak). Everyone was first seen 90 days ago.
 *
 * | user              | campaign | methods (portal / AWS)   | state        | enrolled     |
 * |-------------------|----------|--------------------------|--------------|--------------|
 * | (the admin)       | –        | –                        | not_targeted | no           |
 * | late-enrolled     | late     | totp; MFA enforced       | enforced     | yes          |
 * | late-missing      | late     | –                        | overdue      | no           |
 * | staff-pending     | staff    | –                        | pending      | no           |
 * | staff-totp        | staff    | totp                     | enrolled     | yes          |
 * | staff-sms         | staff    | phone                    | enrolled     | yes (weak)   |
 * | staff-privileged  | staff    | totp (not a passkey)     | pending      | no           |
 * | staff-exempt      | staff    | –; service account       | exempt       | no           |
 * | nobody            | –        | phone                    | not_targeted | yes (default)|
 * | leaver            | staff    | –; disabled              | not_targeted | no           |
 * | aws-mfa           | staff    | – / totp; console pwd    | enrolled     | yes          |
 * | aws-no-mfa        | staff    | –; console password      | pending      | no           |
 * | aws-no-password   | staff    | –; no console password   | pending      | no           |
 * | aws-portal-only   | staff    | totp / –; console pwd    | pending      | no (portal only) |
 * | newcomer          | (not evaluated yet)                 | –            | no           |
 */
const SEEDS: Seed[] = [
  { email: 'late-enrolled@test.example', groups: ['late'], portal: ['totp'] },
  { email: 'late-missing@test.example', groups: ['late'] },
  { email: 'staff-pending@test.example', groups: ['staff'] },
  { email: 'staff-totp@test.example', groups: ['staff'], portal: ['totp'] },
  { email: 'staff-sms@test.example', groups: ['staff'], portal: ['phone'] },
  { email: 'staff-privileged@test.example', groups: ['staff'], privileged: true, portal: ['totp'] },
  { email: 'staff-exempt@test.example', groups: ['staff'], exempt: true },
  { email: 'nobody@test.example', portal: ['phone'] },
  { email: 'leaver@test.example', groups: ['staff'], disabled: true },
  { email: 'aws-mfa@test.example', groups: ['staff'], aws: { methods: ['totp'], consolePassword: true } },
  { email: 'aws-no-mfa@test.example', groups: ['staff'], aws: { methods: [], consolePassword: true } },
  { email: 'aws-no-password@test.example', groups: ['staff'], aws: { methods: [], consolePassword: false } },
  { email: 'aws-portal-only@test.example', groups: ['staff'], portal: ['totp'], aws: { methods: [], consolePassword: true } }
]

const EXPECTED: Record<string, { state: string, enrolled: string, weak?: string }> = {
  'late-enrolled': { state: 'enforced', enrolled: 'true' },
  'late-missing': { state: 'overdue', enrolled: 'false' },
  'staff-pending': { state: 'pending', enrolled: 'false' },
  'staff-totp': { state: 'enrolled', enrolled: 'true' },
  'staff-sms': { state: 'enrolled', enrolled: 'true', weak: 'true' },
  'staff-privileged': { state: 'pending', enrolled: 'false' },
  'staff-exempt': { state: 'exempt', enrolled: 'false' },
  nobody: { state: 'not_targeted', enrolled: 'true' },
  leaver: { state: 'not_targeted', enrolled: 'false' },
  'aws-mfa': { state: 'enrolled', enrolled: 'true' },
  'aws-no-mfa': { state: 'pending', enrolled: 'false' },
  'aws-no-password': { state: 'pending', enrolled: 'false' },
  // The portal's authenticator app protects the portal, not the AWS console sign-in.
  'aws-portal-only': { state: 'pending', enrolled: 'false' },
  newcomer: { state: '', enrolled: 'false' }
}

async function seededApp (): Promise<{ t: TestApp, admin: Agent, adminUser: User }> {
  t = await startTestApp()
  const { services, clock } = t
  const db = sqlOn(services)
  const now = clock.now().getTime()
  const adminUser = await createTestUser(services, { role: 'admin', email: 'admin@test.example' })
  for (const seed of SEEDS) {
    const user = await services.userService.createUser({ email: seed.email, displayName: seed.email, groups: seed.groups ?? [], privileged: seed.privileged ?? false }, SYSTEM)
    if (seed.disabled === true) await db.run('UPDATE users SET disabled = TRUE WHERE id = ?', user.id)
    if (seed.aws !== undefined) {
      await db.run("UPDATE users SET provider = 'aws', external_id = ?, provider_methods = ?, provider_attributes = ? WHERE id = ?",
        seed.email.split('@')[0], JSON.stringify(seed.aws.methods), JSON.stringify({ consolePassword: seed.aws.consolePassword, arn: 'arn:aws:iam::1:user/x' }), user.id)
    }
    for (const kind of seed.portal ?? []) {
      if (kind === 'totp') await services.methods.addTotp(user.id, 'App', 'JBSWY3DPEHPK3PXP', 0)
      else await services.methods.addPhone(user.id, 'Mobile', '+4915112345678')
    }
  }
  await db.run('UPDATE users SET first_seen_at = ?', now - 90 * DAY)
  await services.campaigns.create(campaignInput(now, { name: 'Staff', targetKind: 'group', targetValue: 'staff', deadline: new Date(now + 10 * DAY), smsPolicy: 'weak' }), SYSTEM)
  const late = await services.campaigns.create(campaignInput(now, { name: 'Late', targetKind: 'group', targetValue: 'late', deadline: new Date(now - DAY) }), SYSTEM)
  await services.campaigns.arm(late.id, SYSTEM)
  const idOf = async (local: string) => (await services.users.findByEmail(`${local}@test.example`))!.id
  await services.campaigns.exempt(await idOf('staff-exempt'), { kind: 'service_account', reason: 'Nightly batch job', owner: 'Ops', expiresAt: new Date(now + 30 * DAY) }, SYSTEM)
  await services.engineStore.setEnforcedAt(await idOf('late-enrolled'), new Date(now - 3_600_000))
  await services.engine.refreshAll()
  // Created after everything was evaluated: no state yet.
  await services.userService.createUser({ email: 'newcomer@test.example', displayName: 'Newcomer' }, SYSTEM)
  return { t, admin: await signIn(t, adminUser.email), adminUser }
}

/** The database's own answer for every user, read without the compliance code, in user id order. */
async function databaseRows (t: TestApp): Promise<Array<Record<string, string>>> {
  const db = sqlOn(t.services)
  const users = await db.all<{
    id: string, email: string, provider: string, externalId: string | null, privileged: number, disabled: number, enforcedAt: number | null,
    providerMethods: string, attributes: string, state: string | null, deadline: number | null
  }>(`SELECT u.id, u.email, u.provider, u.external_id AS externalId, u.privileged, u.disabled, u.enforced_at AS enforcedAt,
      u.provider_methods AS providerMethods, u.provider_attributes AS attributes, s.state, s.deadline
    FROM users u LEFT JOIN user_states s ON s.user_id = u.id ORDER BY u.id`)
  const rows: Array<Record<string, string>> = []
  for (const u of users) {
    const portal = await db.values<string>('SELECT DISTINCT kind FROM auth_methods WHERE user_id = ? ORDER BY kind', u.id)
    const provider = (JSON.parse(u.providerMethods) as string[]).sort()
    const methods = [...new Set([...portal, ...provider])].sort()
    // The engine's own policy lookup and counting rule, so the export is checked against the rule the engine applies.
    const assessment = assessMethods(u.privileged === 1, countingMethods({ provider: u.provider, portalMethods: portal, providerMethods: provider }), (await t.services.engine.deadlineAndPolicy(u.id)).policy, t.clock.now())
    const consolePassword = (JSON.parse(u.attributes) as { consolePassword?: boolean }).consolePassword
    rows.push({
      user_id: u.id,
      email: u.email,
      provider: u.provider,
      external_id: u.externalId ?? '',
      privileged: String(u.privileged === 1),
      disabled: String(u.disabled === 1),
      methods: methods.join(' '),
      portal_methods: portal.join(' '),
      provider_methods: provider.join(' '),
      enrolled: String(assessment.enrolled),
      weak: String(assessment.weak),
      state: u.state ?? '',
      deadline: u.deadline === null ? '' : new Date(u.deadline).toISOString(),
      enforced_at: u.enforcedAt === null ? '' : new Date(u.enforcedAt).toISOString(),
      console_password: consolePassword === undefined ? '' : String(consolePassword),
      protection: u.provider === 'local' ? (assessment.enrolled ? 'protected in the portal' : 'not protected') : (assessment.enrolled ? 'protected at the directory' : 'not protected at the directory'),
      meets_policy: String(assessment.enrolled),
      methods_held: String(assessment.held),
      methods_required: '1',
      recovery_codes: 'false'
    })
  }
  return rows
}

async function auditExports (t: TestApp): Promise<Array<{ actorId: string, details: string }>> {
  return await sqlOn(t.services).all<{ actorId: string, details: string }>("SELECT actor_id AS actorId, details FROM audit_events WHERE action = 'compliance.exported' ORDER BY id")
}

test('the CSV export, parsed back, equals the database for a population in every state, and its download is audited', async () => {
  const { t, admin, adminUser } = await seededApp()

  const res = await admin.get('/admin/compliance.csv')

  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'], /^text\/csv; charset=utf-8/)
  assert.match(res.headers['content-disposition'], /^attachment; filename="mfa-compliance-2026-11-25\.csv"$/)
  assert.equal(res.headers['cache-control'], 'no-store')
  const records = parse(res.text, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>
  assert.deepEqual(records, await databaseRows(t))
  assert.equal(records.length, 15)

  const byLocal = Object.fromEntries(records.map((r) => [r.email.split('@')[0], r]))
  for (const [local, expected] of Object.entries(EXPECTED)) {
    assert.equal(byLocal[local].state, expected.state, `${local}: state`)
    assert.equal(byLocal[local].enrolled, expected.enrolled, `${local}: enrolled`)
    assert.equal(byLocal[local].weak, expected.weak ?? 'false', `${local}: weak`)
  }
  assert.equal(byLocal['aws-mfa'].methods, 'totp')
  assert.equal(byLocal['aws-mfa'].provider_methods, 'totp')
  assert.equal(byLocal['aws-mfa'].portal_methods, '')
  assert.equal(byLocal['aws-mfa'].external_id, 'aws-mfa')
  assert.equal(byLocal['aws-mfa'].protection, 'protected at the directory')
  assert.equal(byLocal['aws-portal-only'].protection, 'not protected at the directory', 'a portal method is no protection for the AWS sign-in')
  assert.equal(byLocal['aws-portal-only'].portal_methods, 'totp')
  assert.equal(byLocal['staff-totp'].protection, 'protected in the portal')
  assert.equal(byLocal['aws-no-password'].console_password, 'false')
  assert.equal(byLocal['staff-totp'].console_password, '')
  assert.equal(byLocal['late-enrolled'].enforced_at, new Date(t.clock.now().getTime() - 3_600_000).toISOString())
  assert.equal(byLocal['staff-pending'].deadline, new Date(t.clock.now().getTime() + 10 * DAY).toISOString())
  assert.deepEqual(await auditExports(t), [{ actorId: adminUser.id, details: '{"format":"csv"}' }])
})

test('the summary counts CIS AWS 1.10 (console-password users with an AWS MFA device) and MFA for non-privileged users', async () => {
  const { t, admin } = await seededApp()

  const json = await admin.get('/admin/compliance.json')
  const page = await admin.get('/admin/compliance')

  assert.equal(json.status, 200)
  const { summary, rows } = JSON.parse(json.text) as { summary: Record<string, any>, rows: Array<Record<string, unknown>> }
  // aws-mfa has a device at AWS; aws-no-mfa has none; aws-portal-only's portal app does not guard the AWS console.
  assert.deepEqual(summary.rules.cisAws110, {
    id: 'cis-aws-1.10',
    title: summary.rules.cisAws110.title,
    scope: summary.rules.cisAws110.scope,
    total: 3,
    compliant: 1,
    percentage: 33.3,
    result: 'fail'
  })
  // Everyone but staff-privileged and the disabled leaver: 13, of whom 5 hold a qualifying method where they sign in
  // (aws-portal-only's portal app does not count for the AWS sign-in).
  assert.deepEqual([summary.rules.nonPrivilegedMfa.total, summary.rules.nonPrivilegedMfa.compliant, summary.rules.nonPrivilegedMfa.percentage, summary.rules.nonPrivilegedMfa.result], [13, 5, 38.5, 'fail'])
  assert.equal(summary.users, 15)
  assert.equal(summary.enrolled, 5)
  assert.deepEqual(summary.byState, { exempt: 1, not_targeted: 3, pending: 5, enrolled: 3, overdue: 1, enforced: 1, attention: 0, unevaluated: 1 })

  assert.equal(rows.length, 15)
  const { secret } = await automationServices(t.services).tokens.create({ name: 'Auditor', scopes: ['compliance:read'], expiresInDays: 1 }, SYSTEM)
  const api = await request(t.app.server).get('/api/v1/compliance?limit=500').set('authorization', `Bearer ${secret}`)
  assert.deepEqual(rows, api.body.rows, 'the download and the API say the same')

  assert.equal(page.status, 200)
  assert.match(page.text, /CIS AWS Foundations 1.10[\s\S]*?Fail<\/strong>\s*1 of 3 users \(33.3%\)/)
  assert.match(page.text, /MFA for non-privileged users[\s\S]*?Fail<\/strong>\s*5 of 13 users \(38.5%\)/)
  assert.match(page.text, /href="\/admin\/compliance.csv"/)
  assert.match(page.text, /href="\/admin\/compliance.json"/)
  assert.deepEqual((await auditExports(t)).map((e) => e.details), ['{"format":"json"}'], 'viewing the summary page is not a download')
})

test('a rule passes when every user in scope complies, and an empty scope passes with no percentage', async () => {
  t = await startTestApp()
  const admin = await createTestUser(t.services, { role: 'admin' })
  await t.services.methods.addTotp(admin.id, 'App', 'JBSWY3DPEHPK3PXP', 0)
  const agent = await signIn(t, admin.email)

  const { summary } = JSON.parse((await agent.get('/admin/compliance.json')).text) as { summary: Record<string, any> }

  assert.deepEqual([summary.rules.nonPrivilegedMfa.total, summary.rules.nonPrivilegedMfa.compliant, summary.rules.nonPrivilegedMfa.percentage, summary.rules.nonPrivilegedMfa.result], [1, 1, 100, 'pass'])
  assert.deepEqual([summary.rules.cisAws110.total, summary.rules.cisAws110.percentage, summary.rules.cisAws110.result], [0, null, 'pass'])
  assert.match((await agent.get('/admin/compliance')).text, /CIS AWS Foundations 1.10[\s\S]*?Pass<\/strong>\s*No users are in scope/)
})

test('CSV cells a spreadsheet would run as formulas are made plain text, and commas and quotes are quoted', async () => {
  t = await startTestApp()
  const admin = await createTestUser(t.services, { role: 'admin', email: 'admin@test.example' })
  const formula = await t.services.userService.createUser({ email: '=cmd|calc@evil.example', displayName: 'x' }, SYSTEM)
  const quoted = await t.services.userService.createUser({ email: '"a,b"@odd.example', displayName: 'y' }, SYSTEM)
  const db = sqlOn(t.services)
  await db.run("UPDATE users SET provider = 'aws', external_id = '@SUM(A1)' WHERE id = ?", formula.id)
  await db.run("UPDATE users SET provider = 'entra', external_id = '-2+3' WHERE id = ?", quoted.id)
  const agent = await signIn(t, admin.email)

  const res = await agent.get('/admin/compliance.csv')

  assert.ok(!/(^|,)[=+\-@]/m.test(res.text), 'no cell starts with a formula character')
  assert.ok(res.text.includes(",'=cmd|calc@evil.example,aws,'@SUM(A1),"))
  assert.ok(res.text.includes(',"""a,b""@odd.example",entra,\'-2+3,'))
  const records = parse(res.text, { columns: true }) as Array<Record<string, string>>
  const byId = Object.fromEntries(records.map((r) => [r.user_id, r]))
  assert.equal(byId[formula.id].email, "'=cmd|calc@evil.example")
  assert.equal(byId[quoted.id].email, '"a,b"@odd.example')
  assert.equal(byId[quoted.id].external_id, "'-2+3")
  assert.equal(byId[admin.id].email, 'admin@test.example')
})

test('only admins reach the compliance pages and downloads; refused attempts are not recorded as downloads', async () => {
  t = await startTestApp()
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const user = await createTestUser(t.services)
  const agents = [await signIn(t, helpdesk.email), await signIn(t, user.email)]
  const { secret } = await automationServices(t.services).tokens.create({ name: 'Reader', scopes: ['compliance:read'], expiresInDays: 1 }, SYSTEM)

  for (const agent of agents) {
    for (const path of ['/admin/compliance', '/admin/compliance.csv', '/admin/compliance.json']) assert.equal((await agent.get(path)).status, 403, path)
  }
  const anonymous = await request(t.app.server).get('/admin/compliance.csv')
  assert.equal(anonymous.status, 303)
  const withToken = await request(t.app.server).get('/admin/compliance.csv').set('authorization', `Bearer ${secret}`)
  assert.equal(withToken.status, 303, 'an API token opens the API, not the admin pages')
  assert.deepEqual(await auditExports(t), [])
})
