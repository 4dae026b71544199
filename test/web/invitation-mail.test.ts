import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestUser, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { sqlOn } from '../helpers/sql.ts'

// Outside the sandbox without SMTP_URL, mail lands in the admin outbox, which every administrator can read: an
// invitation link there would let any of them sign in as the person.
let t: TestApp
let fake: FakeIam

before(async () => {
  fake = await startFakeIam()
  fake.report.delayMs = 0
  t = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24' })
  fake.state.addUser({ userName: 'rita', consolePassword: true, tags: { email: 'rita@example.org' } })
  await t.services.directorySync.sync(t.services.providers.aws)
})
after(async () => {
  await t.close()
  await fake.close()
})

test('without a mail relay outside the sandbox, an invitation is refused in words, nothing is stored and nothing reaches the outbox', async () => {
  const rita = (await t.services.users.findByEmail('rita@example.org'))!
  const staff = await signInStaff(t, await createTestUser(t.services, { role: 'helpdesk' }))
  const page = await staff.get(`/helpdesk/users/${rita.id}`)
  assert.match(page.text, /this portal has no mail relay \(<code>SMTP_URL<\/code>\)/)
  assert.doesNotMatch(page.text, /\/invite" class="card form"/, 'no invitation form is offered')

  const res = await submitForm(staff, `/helpdesk/users/${rita.id}`, `/helpdesk/users/${rita.id}/invite`, { reason: 'first AWS MFA' })
  assert.equal(res.status, 303)
  const after = await staff.get(res.headers.location as string)
  assert.match(after.text, /Invitations are sent by e-mail, and this portal has no mail relay \(SMTP_URL\)/)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM invitations WHERE user_id = ?', rita.id), 0)
  assert.ok(!(await t.services.outbox.latest(50)).some((m) => m.recipient === 'rita@example.org'), 'no link in the outbox')
  assert.equal((await t.services.audit.list({ subjectUserId: rita.id, action: 'invitation.issued' })).length, 0)
})

test('the outbox says truthfully what it holds when the portal is not a sandbox', async () => {
  const admin = await signInStaff(t, await createTestUser(t.services, { role: 'admin' }))
  const page = await admin.get('/admin/outbox')
  assert.equal(page.status, 200)
  assert.doesNotMatch(page.text, /Sandbox/)
  assert.match(page.text, /No mail relay is configured \(SMTP_URL\), so e-mail is kept here instead of being sent/)
  assert.match(page.text, /No text-message provider is configured \(SMS_PROVIDER\)/)
})

test('in the sandbox the outbox says it is the sandbox\'s', async () => {
  const sandbox = await startTestApp()
  try {
    const admin = await signInStaff(sandbox, await createTestUser(sandbox.services, { role: 'admin' }))
    assert.match((await admin.get('/admin/outbox')).text, /Sandbox: e-mail and text messages are kept here instead of being sent/)
  } finally {
    await sandbox.close()
  }
})
