import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { buildApp } from '../../server/app.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, FakeClock, signIn, tempDir, testConfig, type TestApp } from '../helpers/app.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'

// Directory sync meets portal accounts that share an email with a directory user: an email is a claim that a
// directory admin (or anyone who can tag an IAM user) writes, not an identity.
let t: TestApp
let fake: FakeIam

before(async () => {
  const clock = new FakeClock()
  fake = await startFakeIam({ now: () => clock.now() })
  fake.report.delayMs = 0
  const dataDir = tempDir()
  const config = testConfig({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24' }, dataDir)
  const services = createServices(config, { clock })
  const app = await buildApp(services, { logger: false })
  await app.ready()
  t = {
    app, services, config, clock, dataDir,
    close: async () => {
      await app.close()
      services.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
})
after(async () => {
  await t.close()
  await fake.close()
})

function sync () {
  return t.services.directorySync.sync(t.services.providers.aws)
}

function audited (action: string, subjectUserId: string): Array<Record<string, unknown>> {
  return t.services.audit.list({ subjectUserId, action }).map((e) => JSON.parse(e.details) as Record<string, unknown>)
}

test('an IAM user tagged with a helpdesk member\'s email never takes over the helpdesk account, and deleting it disables nobody', async () => {
  const staff = await createTestUser(t.services, { role: 'helpdesk', email: 'sam.helpdesk@example.org' })
  fake.state.addUser({ userName: 'mallory', consolePassword: true, tags: { email: 'sam.helpdesk@example.org' } })
  const report = await sync()
  const after = t.services.users.findById(staff.id)!
  assert.equal(after.provider, 'local', 'the staff account is still the portal\'s own')
  assert.equal(after.role, 'helpdesk')
  assert.equal(after.externalId, null)
  assert.equal(report.skipped, 1)
  const [refusal] = audited('directory.adoption_refused', staff.id)
  assert.match(String(refusal.reason), /belongs to a portal helpdesk account, which a directory never takes over/)
  assert.equal(refusal.externalId, 'mallory')

  fake.state.users.delete('mallory')
  await sync()
  assert.equal(t.services.users.findById(staff.id)!.disabled, false, 'the IAM user going away leaves the staff account alone')
  assert.equal((await signIn(t, staff.email)).sessionCookie.startsWith('mfa_session='), true, 'and it still signs in')
})

test('a portal account that has signed in is not adopted by email; one imported and never used is, and the adoption is audited', async () => {
  const used = await createTestUser(t.services, { email: 'una@example.org' })
  await signIn(t, used.email)
  const fresh = await createTestUser(t.services, { email: 'vera@example.org' })
  fake.state.addUser({ userName: 'una', consolePassword: true, tags: { email: 'una@example.org' } })
  fake.state.addUser({ userName: 'vera', consolePassword: true, tags: { email: 'vera@example.org' } })
  await sync()

  assert.equal(t.services.users.findById(used.id)!.provider, 'local')
  assert.match(String(audited('directory.adoption_refused', used.id)[0]?.reason), /has signed in/)

  const adopted = t.services.users.findById(fresh.id)!
  assert.equal(adopted.provider, 'aws')
  assert.equal(adopted.externalId, 'vera')
  const [event] = audited('directory.adopted', fresh.id)
  assert.deepEqual(event, { provider: 'aws', externalId: 'vera', email: 'vera@example.org' })
})
