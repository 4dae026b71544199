import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { sync as syncCli } from '../../server/cli/sync.ts'
import { createTestUser, FakeClock, signIn, signInStaff, startTestApp, type TestApp } from '../helpers/app.ts'
import { campaignInput } from '../helpers/campaigns.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { sqlOn } from '../helpers/sql.ts'

// Directory sync meets portal accounts that share an email with a directory user: an email is a claim that a
// directory admin (or anyone who can tag an IAM user) writes, not an identity.
let t: TestApp
let fake: FakeIam

before(async () => {
  const clock = new FakeClock()
  fake = await startFakeIam({ now: () => clock.now() })
  fake.report.delayMs = 0
  t = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24' }, { clock })
})
after(async () => {
  await t.close()
  await fake.close()
})

function sync () {
  return t.services.directorySync.sync(t.services.providers.aws)
}

async function audited (action: string, subjectUserId: string): Promise<Array<Record<string, unknown>>> {
  return (await t.services.audit.list({ subjectUserId, action })).map((e) => JSON.parse(e.details) as Record<string, unknown>)
}

test('an IAM user tagged with a helpdesk member\'s email never takes over the helpdesk account, and deleting it disables nobody', async () => {
  const staff = await createTestUser(t.services, { role: 'helpdesk', email: 'sam.helpdesk@example.org' })
  const mallory = fake.state.addUser({ userName: 'mallory', consolePassword: true, tags: { email: 'sam.helpdesk@example.org' } })
  const report = await sync()
  const after = (await t.services.users.findById(staff.id))!
  assert.equal(after.provider, 'local', 'the staff account is still the portal\'s own')
  assert.equal(after.role, 'helpdesk')
  assert.equal(after.externalId, null)
  // The IAM user is still synced, under its own id and without the address it claims (issue #14 item 10).
  assert.equal(report.skipped, 0)
  assert.deepEqual(report.conflicts.map((c) => c.name), ['mallory'])
  const own = (await t.services.users.findByEmail(`${mallory.userId.toLowerCase()}@aws.invalid`))!
  assert.equal(own.externalId, mallory.userId)
  const [refusal] = await audited('directory.adoption_refused', staff.id)
  assert.match(String(refusal.reason), /belongs to a portal helpdesk account, which a directory never takes over/)
  assert.equal(refusal.externalId, mallory.userId)
  assert.equal(refusal.name, 'mallory')

  fake.state.deleteUser('mallory')
  t.clock.advance(60_000)
  await sync()
  assert.equal((await t.services.users.findById(staff.id))!.disabled, false, 'the IAM user going away leaves the staff account alone')
  assert.equal((await t.services.users.findById(own.id))!.disabled, true, 'only the IAM user\'s own account is switched off')
  assert.equal((await signIn(t, staff.email)).sessionCookie.startsWith('mfa_session='), true, 'and it still signs in')
})

test('a portal account that has signed in is not adopted by email; one imported and never used is, and the adoption is audited', async () => {
  const used = await createTestUser(t.services, { email: 'una@example.org' })
  await signIn(t, used.email)
  const fresh = await createTestUser(t.services, { email: 'vera@example.org' })
  fake.state.addUser({ userName: 'una', consolePassword: true, tags: { email: 'una@example.org' } })
  const vera = fake.state.addUser({ userName: 'vera', consolePassword: true, tags: { email: 'vera@example.org' } })
  await sync()

  assert.equal((await t.services.users.findById(used.id))!.provider, 'local')
  assert.match(String((await audited('directory.adoption_refused', used.id))[0]?.reason), /has signed in/)

  const adopted = (await t.services.users.findById(fresh.id))!
  assert.equal(adopted.provider, 'aws')
  assert.equal(adopted.externalId, vera.userId)
  const [event] = await audited('directory.adopted', fresh.id)
  assert.deepEqual(event, { provider: 'aws', externalId: vera.userId, name: 'vera', email: 'vera@example.org' })
})

/** `mfa-rollout sync --provider aws`, as an operator runs it: its exit status and printed lines. */
async function syncCommand (): Promise<{ code: number, out: string[] }> {
  const out: string[] = []
  const code = await syncCli.run({ args: [], options: { provider: 'aws' } }, t.services, { out: (line: string) => { out.push(line) }, err: (line: string) => { out.push(line) } } as never)
  return { code, out }
}

async function dashboardLine (): Promise<string> {
  const admin = await createTestUser(t.services, { role: 'admin' })
  const page = await (await signInStaff(t, admin)).get('/admin')
  assert.equal(page.status, 200)
  return /<li data-directory="aws">([\s\S]*?)<\/li>/.exec(page.text)?.[1] ?? ''
}

// Issue #14 item 10: an e-mail tag is a claim; one written twice must neither hide a user nor stop every sync.
test('two IAM users sharing an e-mail tag are both synced, the second under its own id without the address, named in the sync output, the audit and the dashboard, and enforced like anyone else', async () => {
  const longAgo = new Date(t.clock.now().getTime() - 400 * 86_400_000)
  const first = fake.state.addUser({ userName: 'twin1', consolePassword: true, createDate: longAgo, tags: { email: 'twins@example.org' } })
  const second = fake.state.addUser({ userName: 'twin2', consolePassword: true, createDate: longAgo, tags: { email: 'twins@example.org' } })

  const { code, out } = await syncCommand()

  assert.equal(code, 0)
  const named = out.find((line) => line.startsWith('sync aws: e-mail already in use, synced without it: ')) ?? ''
  assert.ok(named.includes(`twin2 (twins@example.org: email twins@example.org belongs to aws user twin1 (${first.userId}))`), out.join('\n'))
  const holder = (await t.services.users.findByEmail('twins@example.org'))!
  assert.equal(holder.externalId, first.userId)
  const twin2 = await t.services.users.findByEmail(`${second.userId.toLowerCase()}@aws.invalid`)
  assert.ok(twin2, 'the second IAM user is in the portal, not skipped')
  assert.equal(twin2.externalId, second.userId)
  const [conflict] = await audited('directory.email_conflict', holder.id)
  assert.equal(conflict.name, 'twin2')
  assert.equal(conflict.syncedAs, twin2.email)
  assert.match(await dashboardLine(), /\d users? synced without their e-mail, which another account already uses<\/strong>: [^<]*twin2 \(twins@example\.org: email twins@example\.org belongs to aws user twin1/)
  // In the CIS 1.10 figures: every IAM user with a console password is a portal user with consolePassword true.
  const db = sqlOn(t.services)
  const consolePassword = db.dialect === 'sqlite' ? "json_extract(provider_attributes, '$.consolePassword') = 1" : "(provider_attributes::jsonb ->> 'consolePassword') = 'true'"
  const consoleUsers = await db.value(`SELECT count(*) FROM users WHERE provider = 'aws' AND disabled = FALSE AND ${consolePassword}`)
  assert.equal(consoleUsers, [...fake.state.users.values()].filter((u) => u.loginProfile !== null).length)

  await sync()
  assert.equal((await audited('directory.email_conflict', holder.id)).length, 1, 'a lasting conflict is audited once, not at every run')

  // Enforced like anyone else: a campaign for AWS users whose deadline has passed.
  const now = t.clock.now().getTime()
  const campaign = await t.services.campaigns.create(campaignInput(now, { targetKind: 'provider', targetValue: 'aws', deadline: new Date(now - 86_400_000), privilegedMethods: 'any' }), { id: null, label: 'test' })
  await t.services.campaigns.arm(campaign.id, { id: null, label: 'test' })
  await t.services.engine.sweep()
  assert.ok(fake.state.user('twin2').policies.has('arn:aws:iam::123456789012:policy/mfa-rollout-force-mfa'), 'the deny-unless-MFA policy is attached to twin2')
  assert.equal((await t.services.users.findById(twin2.id))!.enforcedAt !== null, true)
  await t.services.campaigns.disarm(campaign.id, { id: null, label: 'test' })
})

test('re-tagging an IAM user with an address already in use does not break the sync: that user keeps syncing, without the address', async () => {
  fake.state.addUser({ userName: 'rita', consolePassword: true, tags: { email: 'rita@example.org' } })
  const rolf = fake.state.addUser({ userName: 'rolf', consolePassword: true, tags: { email: 'rolf@example.org' } })
  await sync()
  const rolfId = (await t.services.users.findByEmail('rolf@example.org'))!.id
  rolf.tags.set('email', 'rita@example.org')

  const report = await sync()

  assert.equal(report.error, null)
  assert.ok(report.conflicts.some((c) => c.name === 'rolf' && c.email === 'rita@example.org'))
  assert.equal((await t.services.users.findById(rolfId))!.email, `${rolf.userId.toLowerCase()}@aws.invalid`, 'the same account, now without an address')
  assert.equal((await t.services.users.findByEmail('rita@example.org'))!.displayName, 'rita')
  assert.equal((await t.services.directorySync.latest('aws'))!.status, 'done')
})

// Issue #14 item 9: an IAM user is its user id; portals that stored names are carried over, not duplicated.
test('upgrading from a portal that keyed IAM users by name rewrites each user\'s id in place: no second account, nothing lost', async () => {
  const uma = fake.state.addUser({ userName: 'uma', consolePassword: true, tags: { email: 'uma@example.org' } })
  fake.state.addUser({ userName: 'udo', consolePassword: true })
  await sync()
  const before = await sqlOn(t.services).all<{ id: string, name: string }>("SELECT id, display_name AS name FROM users WHERE provider = 'aws' ORDER BY id")
  // As the previous version stored them: the IAM user name as the external id, and the name-based placeholder address.
  await sqlOn(t.services).run("UPDATE users SET external_id = display_name WHERE provider = 'aws' AND disabled = FALSE")
  await sqlOn(t.services).run("UPDATE users SET email = 'udo@aws.invalid' WHERE provider = 'aws' AND display_name = 'udo'")

  const report = await sync()

  assert.equal(report.created, 0, 'nobody was added twice')
  const after = await sqlOn(t.services).all<{ id: string, name: string, externalId: string }>("SELECT id, display_name AS name, external_id AS externalId FROM users WHERE provider = 'aws' ORDER BY id")
  assert.deepEqual(after.map(({ id, name }) => ({ id, name })), before)
  assert.ok(after.every((u) => /^AIDA/.test(u.externalId)), 'every id rewritten to the IAM user id')
  assert.equal(await t.services.users.findByEmail('udo@aws.invalid'), undefined, 'the old placeholder address is replaced by the id-based one')
  assert.equal((await t.services.users.findByEmail('uma@example.org'))!.externalId, uma.userId)
})

test('a portal account taken over by a matching e-mail is named in the sync output and on the dashboard', async () => {
  await createTestUser(t.services, { email: 'wes@example.org' })
  fake.state.addUser({ userName: 'wes', consolePassword: true, tags: { email: 'wes@example.org' } })

  const { out } = await syncCommand()

  assert.ok(out.includes('sync aws: portal accounts taken over by matching e-mail: wes@example.org by wes'), out.join('\n'))
  assert.match(await dashboardLine(), /1 portal account taken over by matching e-mail<\/strong>: wes@example\.org by wes/)
})
