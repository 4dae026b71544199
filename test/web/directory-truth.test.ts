import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { parse } from 'csv-parse/sync'
import { createTestUser, FakeClock, signIn, startTestApp, testPasswordHash, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra } from '../fakes/graph/server.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam } from '../fakes/iam/server.ts'
import { sqlOn } from '../helpers/sql.ts'

const SYSTEM = { id: null, label: 'test' }

/**
 * One portal connected to both directories (PROVIDERS=entra,aws) through their wire-level fakes. In each, one person
 * has nothing registered at the directory (eve at Entra, ann at AWS) and one has a method there (eda: a FIDO2 key
 * at Entra; abe: a virtual MFA device at AWS). All four also hold a passkey in the portal itself.
 */
async function twoDirectories (t: TestContext) {
  const clock = new FakeClock()
  const entra = await startFakeEntra({ now: () => clock.now() })
  const iam = await startFakeIam({ now: () => clock.now() })
  t.after(async () => { await entra.close(); await iam.close() })
  const longAgo = new Date(clock.now().getTime() - 90 * DAY)
  const eve = entra.tenant.addUser({ userPrincipalName: 'eve@contoso.example', createdDateTime: longAgo.toISOString() })
  entra.tenant.addUser({ userPrincipalName: 'eda@contoso.example', createdDateTime: longAgo.toISOString(), methods: ['fido2'] })
  iam.state.addUser({ userName: 'ann', consolePassword: true, tags: { email: 'ann@example.org' }, createDate: longAgo })
  iam.state.addUser({ userName: 'abe', consolePassword: true, tags: { email: 'abe@example.org' }, createDate: longAgo, devices: ['virtual'] })

  const testApp = await startTestApp({ PROVIDERS: 'entra,aws', ...fakeEnv(entra) as Record<string, string>, ...awsEnv(iam) }, { clock, overrides: { sleep: async () => {} } })
  t.after(async () => { await testApp.close() })
  const { services } = testApp
  await services.directorySync.sync(services.providers.entra)
  await services.directorySync.sync(services.providers.aws)
  // Seen long ago too, whichever date the new-user window counts from.
  await sqlOn(services).run("UPDATE users SET first_seen_at = ? WHERE provider <> 'local'", longAgo.getTime())

  const user = async (email: string) => (await services.users.findByEmail(email))!
  const people = { eve: await user('eve@contoso.example'), eda: await user('eda@contoso.example'), ann: await user('ann@example.org'), abe: await user('abe@example.org') }
  for (const [name, person] of Object.entries(people)) {
    await services.methods.addPasskey(person.id, { name: 'Laptop key', credentialId: `cred-${name}`, publicKey: new Uint8Array([1]), counter: 0, transports: [], aaguid: '00000000-0000-0000-0000-000000000000', backedUp: false })
  }
  const campaign = await services.campaigns.create(campaignInput(clock.now(), { privilegedMethods: 'any' }), SYSTEM)
  return { testApp, entra, iam, eve, people, campaign }
}

async function stateOf (testApp: TestApp, userId: string): Promise<string> {
  return (await sqlOn(testApp.services).value('SELECT state FROM user_states WHERE user_id = ?', userId)) as string
}

test('an Entra user and an AWS user with only a portal passkey are pending, then enforced at the deadline; with a method at their directory they count as enrolled', async (t) => {
  const { testApp, entra, iam, eve, people, campaign } = await twoDirectories(t)
  const { services, clock } = testApp

  assert.equal(await stateOf(testApp, people.eve.id), 'pending', 'a portal passkey does not protect the Microsoft sign-in')
  assert.equal(await stateOf(testApp, people.ann.id), 'pending', 'nor the AWS console sign-in')
  assert.equal(await stateOf(testApp, people.eda.id), 'enrolled')
  assert.equal(await stateOf(testApp, people.abe.id), 'enrolled')

  const admin = await signIn(testApp, (await createTestUser(services, { role: 'admin' })).email)
  const csv = parse((await admin.get('/admin/compliance.csv')).text, { columns: true }) as Array<Record<string, string>>
  const rowOf = (email: string) => csv.find((r) => r.email === email)!
  for (const email of ['eve@contoso.example', 'ann@example.org']) {
    assert.equal(rowOf(email).enrolled, 'false', email)
    assert.equal(rowOf(email).portal_methods, 'passkey')
    assert.equal(rowOf(email).protection, 'not protected at the directory', `${email}: said in words`)
  }
  for (const email of ['eda@contoso.example', 'abe@example.org']) {
    assert.equal(rowOf(email).enrolled, 'true', email)
    assert.equal(rowOf(email).protection, 'protected at the directory')
  }
  const summary = JSON.parse((await admin.get('/admin/compliance.json')).text) as { summary: { rules: { cisAws110: { total: number, compliant: number }, nonPrivilegedMfa: { total: number, compliant: number } } } }
  assert.deepEqual([summary.summary.rules.cisAws110.total, summary.summary.rules.cisAws110.compliant], [2, 1], 'CIS AWS 1.10: only abe\'s AWS device counts')
  assert.equal(summary.summary.rules.nonPrivilegedMfa.compliant, 2, 'MFA for non-privileged users: eda and abe')
  const dashboard = await admin.get('/admin')
  assert.match(dashboard.text, /<tr data-kind="passkey">\s*<th scope="row">Passkey or security key<\/th>\s*<td>4<\/td>\s*<td>1<\/td>\s*<td>1<\/td>/, 'four portal passkeys, one counting (eda\'s, at Entra)')

  await services.campaigns.arm(campaign.id, SYSTEM)
  clock.advance(11 * DAY)
  const report = await services.engine.sweep()

  assert.equal(report.completed, 4)
  for (const person of Object.values(people)) assert.equal(await stateOf(testApp, person.id), 'enforced', person.email)
  assert.equal(entra.tenant.find(eve.id)!.requirement, 'enabled', 'nothing registered at Entra: Entra asks eve to register at her next sign-in')
  assert.equal(entra.tenant.find(people.eda.externalId!)!.requirement, 'enforced')
  const policyArn = iam.callsTo('AttachUserPolicy', { ok: true })[0].params.PolicyArn
  assert.ok(iam.state.user('ann').policies.has(policyArn) && iam.state.user('abe').policies.has(policyArn))
})

test('the home page and the helpdesk say which methods protect what: the directory sign-in, or this portal only', async (t) => {
  const { testApp, people } = await twoDirectories(t)
  const { services } = testApp
  const password = await testPasswordHash()
  await sqlOn(services).run('UPDATE users SET password_hash = ? WHERE id IN (?, ?)', password, people.eve.id, people.abe.id)

  const eve = await (await signIn(testApp, people.eve.email)).get('/')
  assert.match(eve.text, /Not set up yet\.<\/strong> Nothing protects your Microsoft sign-in yet: add a second way to prove it&#39;s you below\. What you set up in this portal protects this portal only\./)
  assert.match(eve.text, /Laptop key<\/strong>\s*<span class="muted">Passkey or security key &middot; <strong>protects this portal only<\/strong>/)
  assert.match(eve.text, /<h2>Registered at Microsoft<\/h2>\s*<p class="muted">Nothing yet: nothing protects your Microsoft sign-in\.<\/p>/)

  const abe = await (await signIn(testApp, people.abe.email)).get('/')
  assert.match(abe.text, /Set up\.<\/strong> You have a second way to prove it&#39;s you\. It is registered for your AWS sign-in\./)
  assert.match(abe.text, /<ul class="method-list" id="directory-methods">\s*<li class="card method"><div class="method-head"><strong class="method-name">Authenticator app<\/strong><span class="muted">protects your AWS sign-in<\/span>/)
  assert.match(abe.text, /Laptop key<\/strong>\s*<span class="muted">Passkey or security key &middot; <strong>protects this portal only<\/strong>/)

  const helpdesk = await signIn(testApp, (await createTestUser(services, { role: 'helpdesk' })).email)
  const profile = await helpdesk.get(`/helpdesk/users/${people.abe.id}`)
  assert.equal(profile.status, 200)
  assert.match(profile.text, /<h3>In this portal: protects this portal only\s*<\/h3>/)
  assert.match(profile.text, /<h3>Registered with aws: protects their AWS sign-in\s*<\/h3>/)

  // Local users' pages are unchanged.
  const local = await createTestUser(services)
  await services.methods.addTotp(local.id, 'Phone app', 'JBSWY3DPEHPK3PXP', 0)
  const home = await (await signIn(testApp, local.email)).get('/')
  assert.match(home.text, /<h2>Your sign-in methods<\/h2>/)
  assert.doesNotMatch(home.text, /protects this portal only|Registered at/)
})
