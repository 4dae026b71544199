import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { cleanupAbandonedAwsMfa } from '../../server/jobs/aws-mfa-cleanup.ts'
import { Sealer } from '../../server/db/sealing.ts'
import { awsCredentialReportView } from '../../server/providers/aws/evidence.ts'
import type { User } from '../../server/domain/users.ts'
import { type Agent, anonymous, createTestUser, csrfFor, csrfFrom, FakeClock, signIn, signInStaff, startTestApp, submitForm, tempDir, TEST_PASSWORD, testPasswordHash, type TestApp } from '../helpers/app.ts'
import { campaignInput } from '../helpers/campaigns.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { awsEnv, oathtool } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { sqlOn } from '../helpers/sql.ts'

const MINUTE = 60_000
const DAY = 24 * 60 * MINUTE
const SYSTEM = { id: null, label: 'test' }

let t: TestApp
let fake: FakeIam
let smtp: SmtpSink

/**
 * The portal configured as an operator would for AWS (PROVIDERS=aws + AWS_IAM_*), against the fake IAM through the
 * real SDK. One clock for both: the fake checks TOTP codes against its own `now`. 127.0.0.1 is not a trusted network.
 */
before(async () => {
  const clock = new FakeClock()
  fake = await startFakeIam({ now: () => clock.now() })
  // The clock here stands still while the adapter polls for the credential report (in real time): IAM finishes
  // the report between the first and the second poll.
  fake.report.delayMs = 0
  smtp = await startSmtpSink()
  t = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24', SMTP_URL: smtp.url }, { clock })
  const { services } = t
  for (const userName of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ken', 'liam', 'mia', 'nina', 'oscar']) {
    fake.state.addUser({ userName, consolePassword: true, tags: { email: `${userName}@example.org` } })
  }
  fake.state.addUser({ userName: 'judy', consolePassword: true, tags: { email: 'judy@example.org' }, devices: ['virtual'] })
  fake.state.addUser({ userName: 'ivan', consolePassword: true })
  await services.directorySync.sync(services.providers.aws)
  await services.campaigns.create(campaignInput(clock.now()), SYSTEM)
  await services.engine.refreshAll()
})
after(async () => {
  await t.close()
  await fake.close()
  await smtp.close()
})

async function iamUser (userName: string): Promise<User> {
  // Without an e-mail tag, the placeholder names the IAM user id (never delivered).
  const user = await t.services.users.findByEmail(userName === 'ivan' ? `${fake.state.user('ivan').userId.toLowerCase()}@aws.invalid` : `${userName}@example.org`)
  assert.ok(user, `${userName} was synced from IAM`)
  return user
}

/** Signed in with a helpdesk pass: the restricted enrollment session IAM users get (like an invitation's). */
async function passSession (userName: string): Promise<{ user: User, agent: Agent }> {
  const user = await iamUser(userName)
  const { pass } = await t.services.passes.issue(user, { lifetimeMinutes: 480, oneTime: false }, SYSTEM)
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login/pass')
  const res = await agent.post('/login/pass').type('form').send({ email: user.email, pass, _csrf: token })
  assert.equal(res.status, 303, 'signed in with the pass')
  return { user, agent }
}

/** The key shown for manual entry, without its grouping spaces. */
function keyOnPage (html: string): string {
  const match = /<code id="aws-mfa-key">([A-Z2-7 ]+)<\/code>/.exec(html)
  assert.ok(match, 'the key is on the page')
  return match[1].replace(/ /g, '')
}

async function openSetup (agent: Agent): Promise<{ key: string, token: string, html: string }> {
  const page = await agent.get('/enroll/aws-mfa')
  assert.equal(page.status, 200, page.text)
  return { key: keyOnPage(page.text), token: csrfFrom(page.text), html: page.text }
}

/** Two codes as the app shows them 30 s apart, at the portal's (and the fake IAM's) time; `gap` 2 skips one. */
function codes (key: string, gap = 1): { code1: string, code2: string } {
  const epoch = Math.floor(t.clock.now().getTime() / 1000)
  return { code1: oathtool(key, epoch), code2: oathtool(key, epoch + 30 * gap) }
}

async function enrollmentRows (userId: string) {
  return await sqlOn(t.services).all<{ id: string, deviceId: string, secretSealed: string | null, completedAt: number | null, expiresAt: number, attempts: number }>('SELECT id, device_id AS deviceId, secret_sealed AS secretSealed, completed_at AS completedAt, expires_at AS expiresAt, attempts FROM provider_enrollments WHERE user_id = ?', userId)
}

async function providerMethods (userId: string): Promise<string[]> {
  return (await t.services.users.findById(userId))!.providerMethods
}

async function audits (userId: string, action: string): Promise<Array<Record<string, unknown>>> {
  return (await sqlOn(t.services).all<{ details: string }>('SELECT details FROM audit_events WHERE subject_user_id = ? AND action = ? ORDER BY id', userId, action))
    .map((row) => JSON.parse(row.details) as Record<string, unknown>)
}

function decodeQr (png: Buffer): string {
  const dir = tempDir('aws-qr-')
  try {
    writeFileSync(path.join(dir, 'qr.png'), png)
    return execFileSync('zbarimg', ['-q', '--raw', path.join(dir, 'qr.png')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('an IAM user brokers an authenticator app with two consecutive codes and ends enrolled at AWS and in the portal', async () => {
  const { user, agent } = await passSession('alice')
  assert.equal((await t.services.engine.standing(user.id))?.state, 'pending')

  const { key, token } = await openSetup(agent)
  const serial = 'arn:aws:iam::123456789012:mfa/alice'
  const qr = await agent.get('/enroll/aws-mfa/qr.png').buffer(true)
  assert.equal(qr.status, 200)
  assert.equal(qr.headers['cache-control'], 'no-store')
  const uri = new URL(decodeQr(qr.body as Buffer))
  assert.equal(uri.searchParams.get('secret'), key, 'the QR code holds the key shown for manual entry')
  assert.equal(uri.searchParams.get('issuer'), 'Amazon Web Services')
  assert.equal(fake.state.devices.get(serial)?.seed, key, 'the device at AWS has that seed')
  assert.equal(fake.state.devices.get(serial)?.userName, null, 'not enabled before the codes are proven')
  const [pending] = await enrollmentRows(user.id)
  assert.equal(pending.deviceId, serial)
  assert.ok(pending.secretSealed !== null && !pending.secretSealed.includes(key), 'the seed is sealed at rest')
  const sealer = new Sealer(t.config.encryptionKey)
  assert.equal(sealer.open(pending.secretSealed, `provider-enrollment:${pending.id}`), key)
  assert.throws(() => sealer.open(pending.secretSealed!, 'provider-enrollment:another-row'), 'bound to its row: a copy elsewhere will not open')

  // Reloading the page shows the same setup: no second device at AWS.
  assert.equal((await openSetup(agent)).key, key)
  assert.equal(fake.callsTo('CreateVirtualMFADevice', { ok: true }).filter((c) => c.params.VirtualMFADeviceName === 'alice').length, 1)

  const res = await agent.post('/enroll/aws-mfa').type('form').send({ ...codes(key), _csrf: token })
  assert.equal(res.status, 303, res.text)
  assert.equal(res.headers.location, '/')
  assert.match((await agent.get('/')).text, /Your authenticator app is set up for AWS/)

  assert.equal(fake.state.devices.get(serial)?.userName, 'alice', 'AWS enabled the device for alice')
  const [done] = await enrollmentRows(user.id)
  assert.ok(done.completedAt !== null)
  assert.equal(done.secretSealed, null, 'nothing secret stays behind once AWS holds the device')
  assert.deepEqual(await providerMethods(user.id), ['totp'])
  assert.equal((await t.services.engine.standing(user.id))?.state, 'enrolled', 'the engine counts it at once')
  assert.deepEqual((await audits(user.id, 'method.added')).map((d) => [d.kind, d.provider, d.serialNumber]), [['totp', 'aws', serial]])
  const mail = await smtp.waitFor((m) => m.to.includes('alice@example.org') && /MFA device was added/.test(m.subject))
  assert.match(mail.text, /authenticator app was set up as an MFA device for your AWS user alice/)
  assert.doesNotMatch(mail.text, new RegExp(key), 'the seed is never e-mailed')

  // IAM names the portal's device after the user, so a second app cannot be brokered while this one exists.
  const again = await agent.get('/enroll/aws-mfa')
  assert.equal(again.status, 409)
  assert.match(again.text, /An authenticator app is already set up for this AWS user under its name/)
})

test('a non-consecutive pair of codes is refused with a friendly message, and the same setup can be retried', async () => {
  const { user, agent } = await passSession('bob')
  const { key, token } = await openSetup(agent)

  const refused = await agent.post('/enroll/aws-mfa').type('form').send({ ...codes(key, 2), _csrf: token })
  assert.equal(refused.status, 400)
  assert.match(refused.text, /AWS did not accept those codes\. Enter the code your app shows now, wait for it to change, then enter the next one\./)
  assert.equal(keyOnPage(refused.text), key, 'the same QR code and key, to try again')
  assert.equal(fake.state.devices.get('arn:aws:iam::123456789012:mfa/bob')?.userName, null)
  assert.deepEqual(await providerMethods(user.id), [])

  const typo = await agent.post('/enroll/aws-mfa').type('form').send({ code1: '12345', code2: 'abcdef', _csrf: token })
  assert.equal(typo.status, 400)
  assert.match(typo.text, /Enter two six-digit codes from your authenticator app\./)

  const retried = await agent.post('/enroll/aws-mfa').type('form').send({ ...codes(key), _csrf: token })
  assert.equal(retried.status, 303)
  assert.equal(fake.state.devices.get('arn:aws:iam::123456789012:mfa/bob')?.userName, 'bob')
  assert.equal(fake.callsTo('CreateVirtualMFADevice').filter((c) => c.params.VirtualMFADeviceName === 'bob').length, 1, 'one device for the whole attempt')
  assert.equal((await enrollmentRows(user.id))[0].attempts, 2)
})

test('five wrong pairs lock code entry for 15 minutes: even right codes are not sent to AWS until then', async () => {
  const { user, agent } = await passSession('carol')
  const { key, token } = await openSetup(agent)
  for (let i = 0; i < 4; i++) {
    assert.equal((await agent.post('/enroll/aws-mfa').type('form').send({ ...codes(key, 3), _csrf: token })).status, 400)
  }
  const fifth = await agent.post('/enroll/aws-mfa').type('form').send({ ...codes(key, 3), _csrf: token })
  assert.equal(fifth.status, 429)
  assert.match(fifth.text, /Too many failed attempts\. For your security, code entry is paused for 15 minutes/)

  const enables = fake.callsTo('EnableMFADevice').length
  const locked = await agent.post('/enroll/aws-mfa').type('form').send({ ...codes(key), _csrf: token })
  assert.equal(locked.status, 429)
  assert.equal(fake.callsTo('EnableMFADevice').length, enables, 'nothing reaches AWS while locked')
  assert.equal(fake.state.devices.get('arn:aws:iam::123456789012:mfa/carol')?.userName, null)
  assert.equal((await audits(user.id, 'aws_mfa.lockout')).length, 1)

  // The lock lapses before the setup does (15 of the pending device's 15 minutes): start again and finish.
  t.clock.advance(15 * MINUTE + 1000)
  const restarted = await agent.post('/enroll/aws-mfa/restart').type('form').send({ _csrf: token })
  assert.equal(restarted.status, 303)
  const fresh = await openSetup(agent)
  assert.notEqual(fresh.key, key, 'a new device with a new seed')
  const ok = await agent.post('/enroll/aws-mfa').type('form').send({ ...codes(fresh.key), _csrf: fresh.token })
  assert.equal(ok.status, 303)
  assert.deepEqual(await providerMethods(user.id), ['totp'])
})

test('the device enabled is always the user\'s own pending one, whatever serial number the form sends', async () => {
  const victim = await passSession('dave')
  const victimSetup = await openSetup(victim.agent)
  const victimSerial = 'arn:aws:iam::123456789012:mfa/dave'
  const attacker = await passSession('erin')
  const attackerSetup = await openSetup(attacker.agent)

  // Codes for the victim's seed with the victim's serial: the portal sends the attacker's own device, so AWS refuses.
  const hijack = await attacker.agent.post('/enroll/aws-mfa').type('form')
    .send({ ...codes(victimSetup.key), serialNumber: victimSerial, SerialNumber: victimSerial, _csrf: attackerSetup.token })
  assert.equal(hijack.status, 400)
  assert.deepEqual(fake.callsTo('EnableMFADevice').filter((c) => c.params.UserName === 'erin').map((c) => c.params.SerialNumber), ['arn:aws:iam::123456789012:mfa/erin'])
  assert.equal(fake.state.devices.get(victimSerial)?.userName, null, 'the victim\'s device is untouched')

  const own = await attacker.agent.post('/enroll/aws-mfa').type('form')
    .send({ ...codes(attackerSetup.key), serialNumber: victimSerial, _csrf: attackerSetup.token })
  assert.equal(own.status, 303)
  assert.equal(fake.state.devices.get('arn:aws:iam::123456789012:mfa/erin')?.userName, 'erin')
  assert.equal(fake.state.devices.get(victimSerial)?.userName, null)
  assert.equal((await enrollmentRows(victim.user.id))[0].completedAt, null, 'the victim\'s setup is still theirs to finish')
})

test('a first method needs a trusted network, a pass or a reset window; another one needs a step-up; other users are not offered these pages', async () => {
  const ken = await iamUser('ken')
  await sqlOn(t.services).run('UPDATE users SET password_hash = (SELECT password_hash FROM users WHERE id = ?) WHERE id = ?', (await createTestUser(t.services)).id, ken.id)
  const creates = fake.callsTo('CreateVirtualMFADevice').length

  const fromOutside = await signIn(t, ken.email, TEST_PASSWORD)
  const refused = await fromOutside.get('/enroll/aws-mfa')
  assert.equal(refused.status, 403)
  assert.match(refused.text, /your first sign-in method can only be set up from your organisation&#39;s network/)
  assert.doesNotMatch(refused.text, /aws-mfa-key/)
  const posted = await fromOutside.post('/enroll/aws-mfa').type('form').send({ code1: '123456', code2: '654321', _csrf: csrfFrom(refused.text) })
  assert.equal(posted.status, 403)
  assert.equal(fake.callsTo('CreateVirtualMFADevice').length, creates, 'no device is made at AWS')

  // judy already holds an app at AWS (synced): adding another is not a first method, so a password session must step up.
  const judy = await iamUser('judy')
  assert.deepEqual(judy.providerMethods, ['totp'])
  await sqlOn(t.services).run('UPDATE users SET password_hash = ? WHERE id = ?', await testPasswordHash(), judy.id)
  const judyAgent = await signIn(t, judy.email)
  const stepUp = await judyAgent.get('/enroll/aws-mfa')
  assert.equal(stepUp.status, 403)
  assert.match(stepUp.text, /first confirm it&#39;s you/)
  assert.match(stepUp.text, /ask the helpdesk for a new invitation link or a temporary access pass/)
  assert.equal(fake.callsTo('CreateVirtualMFADevice').length, creates)

  // A reset window lets a first method be set up from anywhere.
  await sqlOn(t.services).run('UPDATE users SET reenroll_until = ? WHERE id = ?', t.clock.now().getTime() + DAY, ken.id)
  assert.equal((await fromOutside.get('/enroll/aws-mfa')).status, 200)

  // With a pass, judy may add another.
  assert.equal((await (await passSession('judy')).agent.get('/enroll/aws-mfa')).status, 200)

  const local = await createTestUser(t.services)
  const localAgent = await signIn(t, local.email)
  assert.equal((await localAgent.get('/enroll/aws-mfa')).status, 404)
  assert.equal((await localAgent.get('/enroll/aws-security-key')).status, 404)
  const home = await localAgent.get('/')
  assert.doesNotMatch(home.text, /aws-mfa/)
  const awsHome = await fromOutside.get('/')
  assert.match(awsHome.text, /href="\/enroll\/aws-mfa"/)
  assert.match(awsHome.text, /href="\/enroll\/aws-security-key"/)
  assert.doesNotMatch(awsHome.text, /href="\/enroll\/phone"/, 'no text messages for IAM users')
})

test('the cleanup job deletes the device of an abandoned setup at AWS, retries when IAM fails, and leaves finished ones alone', async () => {
  // Setups left open by earlier tests are abandoned first, so this run is about frank's alone.
  t.clock.advance(16 * MINUTE)
  await cleanupAbandonedAwsMfa(t.services)
  const { user, agent } = await passSession('frank')
  await openSetup(agent)
  const serial = 'arn:aws:iam::123456789012:mfa/frank'
  assert.ok(fake.state.devices.has(serial))

  assert.deepEqual(await cleanupAbandonedAwsMfa(t.services), { deleted: 0, alreadyGone: 0, inUse: 0, failed: 0 }, 'not abandoned yet')
  t.clock.advance(15 * MINUTE + 1000)

  // Both of the SDK's attempts (AWS_IAM_MAX_ATTEMPTS=2) fail.
  fake.inject('server-error', { times: 2, action: 'DeleteVirtualMFADevice' })
  const failed = await cleanupAbandonedAwsMfa(t.services)
  assert.equal(failed.failed, 1)
  assert.ok(fake.state.devices.has(serial))
  assert.equal((await enrollmentRows(user.id)).length, 1, 'kept for the next run')

  const report = await cleanupAbandonedAwsMfa(t.services)
  assert.equal(report.deleted, 1)
  assert.ok(!fake.state.devices.has(serial), 'the abandoned device is gone at AWS')
  assert.deepEqual(await enrollmentRows(user.id), [])
  assert.equal(fake.state.devices.get('arn:aws:iam::123456789012:mfa/alice')?.userName, 'alice', 'finished devices are never touched')
  assert.deepEqual((await audits(user.id, 'aws_mfa.abandoned_deleted')).map((d) => d.outcome), ['deleted'])

  // Coming back later starts a fresh setup.
  const again = await openSetup(agent)
  assert.equal(fake.state.devices.get(serial)?.seed, again.key)
})

test('security keys are registered in the AWS console; "Check now" sees one at once and is rate-limited', async () => {
  const { user, agent } = await passSession('grace')
  const page = await agent.get('/enroll/aws-security-key')
  assert.equal(page.status, 200)
  assert.match(page.text, /href="https:\/\/123456789012\.signin\.aws\.amazon\.com\/console"/, 'the account\'s sign-in page, from the ARN the sync saw')
  assert.match(page.text, /href="https:\/\/console\.aws\.amazon\.com\/iam\/home#\/security_credentials"/)

  const token = csrfFrom(page.text)
  const none = await agent.post('/enroll/aws-security-key/check').type('form').send({ _csrf: token })
  assert.equal(none.status, 303)
  assert.match((await agent.get('/enroll/aws-security-key')).text, /AWS does not show a security key on your account yet/)

  fake.state.addEnabledDevice('grace', 'u2f')
  await agent.post('/enroll/aws-security-key/check').type('form').send({ _csrf: token })
  assert.match((await agent.get('/enroll/aws-security-key')).text, /AWS shows a security key on your account: you are set up\./)
  assert.deepEqual(await providerMethods(user.id), ['passkey'])
  assert.equal((await t.services.engine.standing(user.id))?.state, 'enrolled')

  for (let i = 0; i < 3; i++) await agent.post('/enroll/aws-security-key/check').type('form').send({ _csrf: token })
  const calls = fake.callsTo('ListMFADevices').filter((c) => c.params.UserName === 'grace').length
  await agent.post('/enroll/aws-security-key/check').type('form').send({ _csrf: token })
  assert.match((await agent.get('/enroll/aws-security-key')).text, /checking with AWS is paused/)
  assert.equal(fake.callsTo('ListMFADevices').filter((c) => c.params.UserName === 'grace').length, calls, 'the sixth check does not reach AWS')
})

/** A helpdesk member who has just stepped up with an authenticator app. */
async function helpdeskStaff (): Promise<Agent> {
  return signInStaff(t, await createTestUser(t.services, { role: 'helpdesk' }))
}

async function invite (staff: Agent, user: User, reason = 'starting MFA for AWS') {
  return submitForm(staff, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/invite`, { reason })
}

function linkIn (text: string): string {
  const match = /http:\/\/localhost:\d+\/invite\/([\w-]+)/.exec(text)
  assert.ok(match, 'the e-mail holds the link')
  return `/invite/${match[1]}`
}

test('an e-mailed invitation link signs an IAM user in once, to enrollment only; opening it changes nothing; only a hash is stored', async () => {
  const staff = await helpdeskStaff()
  const heidi = await iamUser('heidi')
  const sent = await invite(staff, heidi)
  assert.equal(sent.status, 303)
  assert.match((await staff.get(sent.headers.location as string)).text, /Invitation e-mailed to heidi@example\.org/)
  const mail = await smtp.waitFor((m) => m.to.includes('heidi@example.org') && /invitation/.test(m.subject))
  const link = linkIn(mail.text)
  const token = link.split('/').pop()!

  const rows = await sqlOn(t.services).all<{ tokenHash: string, expiresAt: number, usedAt: number | null }>('SELECT token_hash AS tokenHash, expires_at AS expiresAt, used_at AS usedAt FROM invitations WHERE user_id = ?', heidi.id)
  assert.equal(rows.length, 1)
  assert.notEqual(rows[0].tokenHash, token)
  assert.ok(!rows[0].tokenHash.includes(token.slice(0, 12)), 'only a keyed hash at rest')
  assert.equal(rows[0].expiresAt, t.clock.now().getTime() + 7 * DAY)
  assert.deepEqual((await audits(heidi.id, 'invitation.issued')).map((d) => d.reason), ['starting MFA for AWS'])

  // A mail scanner fetching the link twice uses nothing.
  const visitor = anonymous(t)
  const scanned = await anonymous(t).get(link)
  assert.equal(scanned.status, 200)
  const confirm = await visitor.get(link)
  assert.equal(confirm.status, 200)
  assert.match(confirm.text, /Hello, heidi/)
  assert.equal(confirm.headers['cache-control'], 'no-store')
  assert.equal(rows[0].usedAt, null)
  assert.equal((await sqlOn(t.services).get<{ usedAt: number | null }>('SELECT used_at AS usedAt FROM invitations WHERE user_id = ?', heidi.id))!.usedAt, null)

  const used = await visitor.post(link).type('form').send({ _csrf: csrfFrom(confirm.text) })
  assert.equal(used.status, 303)
  assert.equal(used.headers.location, '/')
  const home = await visitor.get('/')
  assert.match(home.text, /Hello, heidi/)
  assert.match(home.text, /You signed in with the invitation link from your e-mail\./, 'the page names what they used')
  assert.doesNotMatch(home.text, /temporary access pass/)
  assert.equal((await visitor.get('/enroll/aws-mfa')).status, 200, 'enrollment is open to the session')
  assert.equal((await visitor.get('/helpdesk')).status, 403, 'nothing else is')

  const second = anonymous(t)
  const again = await second.get(link)
  assert.equal(again.status, 410)
  assert.match(again.text, /This invitation was already used/)
  const replayToken = await csrfFor(second, '/login')
  const replay = await second.post(link).type('form').send({ _csrf: replayToken })
  assert.equal(replay.status, 410)
  assert.deepEqual((await audits(heidi.id, 'invitation.redeemed')).length, 1)
})

test('an invitation expires after 7 days, and a new one replaces the old link', async () => {
  const staff = await helpdeskStaff()
  const liam = await iamUser('liam')
  assert.equal((await invite(staff, liam)).status, 303)
  const first = linkIn((await smtp.waitFor((m) => m.to.includes('liam@example.org'))).text)
  const mailsBefore = smtp.messages.length
  assert.equal((await invite(staff, liam, 'lost the first e-mail')).status, 303)
  const newer = linkIn((await smtp.waitFor((m) => m.to.includes('liam@example.org') && smtp.messages.indexOf(m) >= mailsBefore)).text)
  assert.notEqual(newer, first)
  assert.equal((await anonymous(t).get(first)).status, 410, 'the earlier link stopped working')
  assert.equal((await anonymous(t).get(newer)).status, 200)

  t.clock.advance(7 * DAY - MINUTE)
  const visitor = anonymous(t)
  const page = await visitor.get(newer)
  assert.equal(page.status, 200, 'still valid just before 7 days')
  t.clock.advance(MINUTE)
  const late = await visitor.post(newer).type('form').send({ _csrf: csrfFrom(page.text) })
  assert.equal(late.status, 410)
  assert.match(late.text, /This invitation has expired/)
  assert.equal((await anonymous(t).get('/invite/not-a-real-token-at-all-000000')).status, 404)
})

test('invitations are refused for IAM users without an e-mail address, need a reason, and are helpdesk-only', async () => {
  const staff = await helpdeskStaff()
  const ivan = await iamUser('ivan')
  const refused = await invite(staff, ivan)
  assert.equal(refused.status, 303)
  const page = await staff.get(refused.headers.location as string)
  assert.match(page.text, new RegExp(`ivan has no e-mail address the portal can write to \\(${ivan.email.replace('.', '\\.')} is a placeholder\\)`))
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM invitations WHERE user_id = ?', ivan.id), 0)

  const mia = await iamUser('mia')
  const noReason = await invite(staff, mia, ' ')
  assert.match((await staff.get(noReason.headers.location as string)).text, /Say why, in a few words/)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM invitations WHERE user_id = ?', mia.id), 0)

  const ordinary = await signIn(t, (await createTestUser(t.services)).email)
  const forbidden = await submitForm(ordinary, '/', `/helpdesk/users/${mia.id}/invite`, { reason: 'let me in' })
  assert.equal(forbidden.status, 403)
  const noCsrf = await staff.post(`/helpdesk/users/${mia.id}/invite`).type('form').send({ reason: 'no token' })
  assert.equal(noCsrf.status, 403)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM invitations WHERE user_id = ?', mia.id), 0)
})

test('the CIS 1.10 evidence view lists each IAM user\'s console password, MFA and creation time from the credential report', async () => {
  const view = await awsCredentialReportView(t.services)
  assert.ok(view)
  const nina = view.rows.find((r) => r.user === 'nina')
  assert.deepEqual(Object.keys(nina ?? {}), ['user', 'password_enabled', 'mfa_active', 'user_creation_time'])
  assert.equal(nina?.password_enabled, 'true')
  assert.equal(nina?.mfa_active, 'false')
  assert.equal(view.rows.find((r) => r.user === 'judy')?.mfa_active, 'true')
  assert.ok(!view.rows.some((r) => r.user === '<root_account>'), 'root MFA is a different control')
})

test('the compliance page offers the IAM credential report as CIS 1.10 evidence, read from IAM when downloaded and audited', async () => {
  const admin = await createTestUser(t.services, { role: 'admin' })
  const agent = await signIn(t, admin.email)
  assert.match((await agent.get('/admin/compliance')).text, /href="\/admin\/compliance\/aws-credential-report.csv"/)
  const res = await agent.get('/admin/compliance/aws-credential-report.csv')
  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'], /text\/csv/)
  const [header, ...lines] = res.text.trim().split('\r\n')
  assert.equal(header, 'user,password_enabled,mfa_active,user_creation_time')
  assert.ok(lines.some((line) => /^judy,true,true,/.test(line)), 'judy has a console password and a device')
  assert.ok(lines.some((line) => /^nina,true,false,/.test(line)), 'nina has a console password and no device')
  assert.equal((await t.services.audit.list({ action: 'compliance.exported' })).filter((e) => JSON.parse(e.details).format === 'aws-credential-report').length, 1)
})

test('an invitation session ends an hour after the link was used, like an access pass, however busy it is', async () => {
  const staff = await helpdeskStaff()
  const oscar = await iamUser('oscar')
  assert.equal((await invite(staff, oscar)).status, 303)
  const mail = await smtp.waitFor((m) => m.to.includes('oscar@example.org') && /invitation/.test(m.subject))
  const link = linkIn(mail.text)
  const visitor = anonymous(t)
  const confirm = await visitor.get(link)
  assert.equal((await visitor.post(link).type('form').send({ _csrf: csrfFrom(confirm.text) })).status, 303)
  for (let i = 0; i < 3; i++) {
    t.clock.advance(19 * 60_000)
    assert.equal((await visitor.get('/enroll/aws-mfa')).status, 200, `still open after ${(i + 1) * 19} minutes`)
  }
  t.clock.advance(4 * 60_000)
  const ended = await visitor.get('/enroll/aws-mfa')
  assert.equal(ended.status, 303)
  assert.match(ended.headers.location, /^\/login\?.*ended=pass/)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM sessions WHERE user_id = ?', oscar.id), 0)
})

test('an IAM user whose only method is a device at AWS is not adding a "first" method on the portal\'s own pages either: the app and passkey pages ask for a step-up, even in a reset window', async () => {
  const judy = await iamUser('judy')
  assert.deepEqual(judy.providerMethods, ['totp'])
  await sqlOn(t.services).run('UPDATE users SET password_hash = ?, reenroll_until = ? WHERE id = ?', await testPasswordHash(), t.clock.now().getTime() + DAY, judy.id)
  try {
    const agent = await signIn(t, judy.email)
    const totp = await agent.get('/enroll/totp')
    assert.equal(totp.status, 403)
    assert.match(totp.text, /already has a sign-in method in your organisation&#39;s directory/)
    assert.doesNotMatch(totp.text, /totp-key/)
    const options = await agent.post('/enroll/passkey/options').set('accept', 'application/json').set('x-csrf-token', await csrfFor(agent, '/')).send({})
    assert.equal(options.status, 403)
    assert.equal(options.body.error.code, 'step_up_required')
    assert.equal(await sqlOn(t.services).value("SELECT count(*) FROM pending_enrollments WHERE user_id = ? AND kind = 'totp'", judy.id), 0, 'no seed was made')
  } finally {
    await sqlOn(t.services).run('UPDATE users SET reenroll_until = NULL WHERE id = ?', judy.id)
  }
})

test('the QR image of a pending AWS setup is refused once the reset window that allowed it has closed, as the page is', async () => {
  const mia = await iamUser('mia')
  await sqlOn(t.services).run('UPDATE users SET password_hash = ?, reenroll_until = ? WHERE id = ?', await testPasswordHash(), t.clock.now().getTime() + 5 * MINUTE, mia.id)
  const agent = await signIn(t, mia.email)
  await openSetup(agent)
  assert.equal((await agent.get('/enroll/aws-mfa/qr.png')).status, 200)
  t.clock.advance(6 * MINUTE)
  assert.equal((await agent.get('/enroll/aws-mfa')).status, 403, 'the page refuses from an untrusted network now')
  const qr = await agent.get('/enroll/aws-mfa/qr.png')
  assert.equal(qr.status, 403)
  assert.notEqual(qr.headers['content-type'], 'image/png', 'the pending seed is not drawn')
})
