import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { ConfigError } from '../../server/config.ts'
import type { User } from '../../server/domain/users.ts'
import { automationServices } from '../../server/wiring-automation.ts'
import { cleanupAbandonedEntraOath } from '../../server/jobs/entra-oath-cleanup.ts'
import { type Agent, anonymous, createTestUser, csrfFor, csrfFrom, sessionCookieOf, signIn, signInStaff, startTestApp, submitForm, type TestApp, testConfig } from '../helpers/app.ts'
import { runCli } from '../helpers/cli.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra, type FakeEntra } from '../fakes/graph/server.ts'
import type { FakeUser } from '../fakes/graph/tenant.ts'
import { sqlOn } from '../helpers/sql.ts'

const REDIRECT = 'http://localhost:3000/login/microsoft/callback'
const START = new Date('2026-11-25T09:00:10Z')

/** A fake tenant and the portal connected to it as an operator would configure it; both on the test's clock. */
async function entraPortalApp (extra: Record<string, string> = {}): Promise<{ t: TestApp, fake: FakeEntra, close(): Promise<void> }> {
  let t: TestApp | undefined
  const fake = await startFakeEntra({ now: () => t?.clock.now() ?? START })
  t = await startTestApp({
    PROVIDERS: 'entra',
    // c1: the Conditional Access authentication context that proves MFA at Microsoft (the fake binds it to MFA).
    ...fakeEnv(fake, { ENTRA_REDIRECT_URI: REDIRECT, ENTRA_AUTH_CONTEXT: 'c1', ...extra }) as Record<string, string>,
    // Entra deployments are not sandboxes: first methods only from the office network, which tests are on.
    TRUSTED_NETWORKS: '127.0.0.0/8,::1/128'
  })
  t.clock.set(START)
  const app = t
  return { t: app, fake, close: async () => { await app.close(); await fake.close() } }
}

async function sync (t: TestApp): Promise<void> {
  await t.services.directorySync.sync(t.services.providers.entra)
}

async function portalUser (t: TestApp, fakeUser: FakeUser): Promise<User> {
  const id = (await sqlOn(t.services).value("SELECT id FROM users WHERE provider = 'entra' AND external_id = ?", fakeUser.id)) as string
  return (await t.services.users.findById(id))!
}

/**
 * The browser's part of "Sign in with Microsoft": start at the portal, let the fake authority sign `who` in, and
 * follow its redirect back to the callback. `tamper` changes the authorize request or the callback on the way.
 */
async function microsoftSignIn (t: TestApp, fake: FakeEntra, agent: Agent, who: FakeUser, options: { mfa?: boolean, authorize?: (url: URL) => void, callback?: (url: URL) => void } = {}) {
  fake.identity.signInAs(who.id, { mfa: options.mfa })
  const start = await agent.get('/login/microsoft')
  assert.equal(start.status, 303)
  const authorize = new URL(start.headers.location)
  assert.equal(authorize.origin, fake.url, 'the browser is sent to the authority the portal is configured with')
  options.authorize?.(authorize)
  const answer = await fetch(authorize, { redirect: 'manual' })
  assert.equal(answer.status, 302)
  const callback = new URL(answer.headers.get('location')!)
  options.callback?.(callback)
  return agent.get(callback.pathname + callback.search)
}

/** The session cookie a response leaves the browser with: the last non-empty one it sets. */
function signedInCookie (res: { headers: Record<string, unknown> }): string | undefined {
  const cookies = ((res.headers['set-cookie'] as string[] | undefined) ?? []).map((c) => c.split(';')[0])
  return cookies.filter((c) => /^mfa_session=./.test(c)).at(-1)
}

/** The signed-in part of the session the cookie names, as the server stored it (the session must exist). */
async function sessionAuth (t: TestApp, cookie: string | undefined): Promise<{ stepUpAt?: number, secondFactorPending?: boolean } | undefined> {
  // The cookie holds "<sid>.<signature>", URL-encoded.
  const sid = decodeURIComponent(cookie?.split('=')[1] ?? '').split('.')[0]
  const data = (await sqlOn(t.services).value('SELECT data FROM sessions WHERE sid = ?', sid)) as string | undefined
  assert.ok(data !== undefined, 'the session the cookie names is stored')
  return (JSON.parse(data) as { auth?: { stepUpAt?: number, secondFactorPending?: boolean } }).auth
}

function oathtool (secret: string, at: Date): string {
  return execFileSync('/usr/bin/oathtool', ['--totp', '-b', secret, '-N', `@${Math.floor(at.getTime() / 1000)}`], { encoding: 'utf8' }).trim()
}

describe('Sign in with Microsoft', () => {
  let t: TestApp
  let fake: FakeEntra
  let close: () => Promise<void>
  let alice: FakeUser
  let bob: FakeUser
  before(async () => {
    ({ t, fake, close } = await entraPortalApp({ ENTRA_HARDWARE_OATH: 'true' }))
    alice = fake.tenant.addUser({ displayName: 'Alice Entra', methods: ['fido2'] })
    bob = fake.tenant.addUser({ displayName: 'Bob Entra', methods: ['fido2'] })
    await sync(t)
  })
  after(async () => { await close() })

  test('the sign-in page offers "Sign in with Microsoft" beside the password form', async () => {
    const page = await anonymous(t).get('/login')
    assert.match(page.text, /<a class="button button-primary" href="\/login\/microsoft\?next=%2F">Sign in with Microsoft<\/a>/)
    assert.match(page.text, /<form method="post" action="\/login"/)
  })

  test('a synced user signs in by object id into a new session, and MFA proven at Microsoft (the authentication context in acrs) counts as a fresh step-up', async () => {
    const agent = anonymous(t)
    const before = sessionCookieOf(await agent.get('/login'))
    const res = await microsoftSignIn(t, fake, agent, alice, { mfa: true })
    assert.equal(res.status, 303)
    assert.equal(res.headers.location, '/')
    const cookie = signedInCookie(res)
    assert.ok(cookie !== undefined && cookie !== before, 'the session id is new after sign-in')
    assert.equal((await agent.get('/')).text.includes('Hello, Alice Entra'), true)
    assert.equal((await sessionAuth(t, cookie))?.stepUpAt, t.clock.now().getTime(), 'stepped up at sign-in')
    // Alice already has a passkey at Microsoft, so adding an app needs a fresh step-up: Microsoft's MFA is one.
    const app = await agent.get('/enroll/entra-app')
    assert.equal(app.status, 200)
    assert.match(app.text, /<img src="\/enroll\/entra-app\/qr.png"/)
    const [audit] = await t.services.audit.list({ action: 'signin.success', subjectUserId: (await portalUser(t, alice)).id })
    assert.equal(JSON.parse(audit.details).method, 'microsoft')
  })

  test('a sign-in that did not satisfy the authentication context is signed in but not stepped up', async () => {
    const agent = anonymous(t)
    const res = await microsoftSignIn(t, fake, agent, bob, { mfa: false })
    assert.equal(res.status, 303)
    assert.equal((await sessionAuth(t, signedInCookie(res)))?.stepUpAt, undefined)
    const app = await agent.get('/enroll/entra-app')
    assert.equal(app.status, 403)
    assert.match(app.text, /first confirm it&#39;s you|first confirm it's you/)
  })

  test('a callback whose state is wrong or missing is refused with a clear page, and nobody is signed in', async () => {
    for (const tamper of [(u: URL) => { u.searchParams.set('state', 'forged') }, (u: URL) => { u.searchParams.delete('state') }]) {
      const agent = anonymous(t)
      const res = await microsoftSignIn(t, fake, agent, alice, { mfa: true, callback: tamper })
      assert.equal(res.status, 400)
      assert.match(res.text, /does not belong to a sign-in started here/)
      assert.equal((await agent.get('/')).status, 303, 'still signed out')
    }
    // A callback in a browser that never started a sign-in is refused the same way.
    const res = await anonymous(t).get('/login/microsoft/callback?code=abc&state=xyz')
    assert.equal(res.status, 400)
  })

  test('an ID token carrying another nonce is refused', async () => {
    const agent = anonymous(t)
    const res = await microsoftSignIn(t, fake, agent, alice, { mfa: true, authorize: (u) => { u.searchParams.set('nonce', 'injected-by-someone-else') } })
    assert.equal(res.status, 400)
    assert.match(res.text, /could not be accepted/)
    assert.equal((await agent.get('/')).status, 303)
    const failures = (await t.services.audit.list({ action: 'signin.failure' })).map((r) => JSON.parse(r.details) as { method?: string, reason?: string }).filter((d) => d.method === 'microsoft')
    assert.ok(failures.some((d) => d.reason === 'nonce_mismatch'), JSON.stringify(failures))
  })

  test('a Microsoft account the portal does not know, or has switched off, is refused with a plain message', async () => {
    const stranger = fake.tenant.addUser({ displayName: 'Not synced yet' })
    const res = await microsoftSignIn(t, fake, anonymous(t), stranger, { mfa: true })
    assert.equal(res.status, 403)
    assert.match(res.text, /Your Microsoft account is not set up in this portal, or it is switched off. Contact your helpdesk./)

    const gone = fake.tenant.addUser({ displayName: 'Leaver' })
    await sync(t)
    await sqlOn(t.services).run('UPDATE users SET disabled = TRUE WHERE external_id = ?', gone.id)
    assert.equal((await microsoftSignIn(t, fake, anonymous(t), gone, { mfa: true })).status, 403)
  })

  test('an authenticator app proven with an oathtool code becomes an activated token in Entra; the seed is sealed while pending', async () => {
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, alice, { mfa: true })
    const page = await agent.get('/enroll/entra-app')
    const secret = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.text)![1].replace(/ /g, '')
    const user = await portalUser(t, alice)
    const pending = (await sqlOn(t.services).get("SELECT secret_sealed AS sealed FROM provider_enrollments WHERE user_id = ? AND kind = 'entra_oath' AND completed_at IS NULL", user.id)) as { sealed: string }
    assert.match(pending.sealed, /^v1\./)
    assert.ok(!pending.sealed.includes(secret))
    assert.equal((await agent.get('/enroll/entra-app/qr.png')).headers['content-type'], 'image/png')

    const wrong = await submitForm(agent, '/enroll/entra-app', '/enroll/entra-app', { code: '000000', name: 'Phone app' })
    assert.equal(wrong.status, 400)
    assert.match(wrong.text, /That code is not right/)
    assert.equal(fake.tenant.oathDevices.size, 0, 'a wrong code creates nothing in Entra')

    const res = await submitForm(agent, '/enroll/entra-app', '/enroll/entra-app', { code: oathtool(secret, t.clock.now()), name: 'Phone app' })
    assert.equal(res.status, 303)
    const [device] = [...fake.tenant.oathDevices.values()]
    assert.equal(device.status, 'activated')
    assert.equal(device.assignedTo, alice.id)
    assert.ok((await portalUser(t, alice)).providerMethods.includes('totp'))
    const done = (await sqlOn(t.services).get("SELECT secret_sealed AS sealed, device_id AS deviceId FROM provider_enrollments WHERE user_id = ? AND kind = 'entra_oath'", user.id)) as { sealed: string | null, deviceId: string }
    assert.deepEqual(done, { sealed: null, deviceId: device.id }, 'the seed is gone once Entra holds it')
  })

  test('the QR image of a pending Entra app setup is refused once Microsoft\'s step-up has lapsed, as the page is', async () => {
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, bob, { mfa: true })
    assert.equal((await agent.get('/enroll/entra-app')).status, 200)
    assert.equal((await agent.get('/enroll/entra-app/qr.png')).headers['content-type'], 'image/png')
    t.clock.advance(11 * 60_000)
    const qr = await agent.get('/enroll/entra-app/qr.png')
    assert.equal(qr.status, 403)
    assert.notEqual(qr.headers['content-type'], 'image/png')
  })

  test('"Check now" re-reads Entra after a passkey was registered on Microsoft\'s page', async () => {
    const carol = fake.tenant.addUser({ displayName: 'Carol Entra' })
    await sync(t)
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, carol, { mfa: true })
    const guide = await agent.get('/enroll/entra-passkey')
    assert.match(guide.text, /href="https:\/\/mysignins.microsoft.com\/security-info"/)
    fake.tenant.addMethod(carol, 'fido2')
    const res = await submitForm(agent, '/enroll/entra-passkey', '/enroll/entra-passkey/check')
    assert.equal(res.status, 303)
    assert.deepEqual((await portalUser(t, carol)).providerMethods, ['passkey'])
    assert.match((await agent.get('/enroll/entra-passkey')).text, /Microsoft has a passkey for your account/)
  })

  test('the home page offers Entra\'s ways to add a method', async () => {
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, bob, { mfa: true })
    const home = await agent.get('/')
    for (const href of ['/enroll/entra-passkey', '/enroll/entra-app', '/enroll/phone']) assert.match(home.text, new RegExp(`href="${href}"`))
    assert.doesNotMatch(home.text, /href="\/enroll\/totp"/)
  })
})

describe('phones of Entra users', () => {
  let t: TestApp
  let fake: FakeEntra
  let close: () => Promise<void>
  before(async () => { ({ t, fake, close } = await entraPortalApp()) })
  after(async () => { await close() })

  async function verifyPhone (who: FakeUser, number: string) {
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, who, { mfa: true })
    await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: number })
    const text = (await t.services.outbox.latest(1000)).filter((m) => m.channel === 'sms')[0].bodyText
    const res = await submitForm(agent, '/enroll/phone', '/enroll/phone/verify', { code: /\b(\d{6})\b/.exec(text)![1] })
    assert.equal(res.status, 303)
    return { agent, flash: (await agent.get('/')).text }
  }

  const phoneWrites = (userId: string) => fake.calls.filter((c) => c.path === `/users/${userId}/authentication/phoneMethods` ? c.method === 'POST' : c.path.startsWith(`/users/${userId}/authentication/phoneMethods/`) && c.method === 'PATCH')

  test('a phone verified in the portal becomes the mobile method in Entra, created once or updated', async () => {
    const dana = fake.tenant.addUser({ displayName: 'Dana' })
    const erin = fake.tenant.addUser({ displayName: 'Erin', methods: [{ phone: '+1 4255550100' }] })
    await sync(t)
    const { flash } = await verifyPhone(dana, '+1 202 555 0143')
    assert.match(flash, /here and in your Microsoft account/)
    assert.equal(fake.tenant.phone(dana, 'mobile')?.props.phoneNumber, '+1 2025550143')
    assert.deepEqual(phoneWrites(dana.id).map((c) => `${c.method} ${c.status}`), ['POST 201'])

    await verifyPhone(erin, '+1 202 555 0144')
    assert.equal(fake.tenant.phone(erin, 'mobile')?.props.phoneNumber, '+1 2025550144')
    assert.deepEqual(phoneWrites(erin.id).map((c) => `${c.method} ${c.status}`), ['PATCH 204'])
  })

  test('when Graph fails, the portal keeps the phone, audits the failure and tells the user gently', async () => {
    const finn = fake.tenant.addUser({ displayName: 'Finn' })
    await sync(t)
    fake.failNext(1, { status: 500, match: /phoneMethods/ })
    const { flash } = await verifyPhone(finn, '+1 202 555 0145')
    assert.match(flash, /could not also add it to your Microsoft account/)
    const user = await portalUser(t, finn)
    assert.deepEqual((await t.services.methods.listFor(user.id)).map((m) => m.phone), ['+12025550145'], 'the portal method stays')
    assert.equal(fake.tenant.phone(finn, 'mobile'), undefined)
    const [failure] = await t.services.audit.list({ action: 'entra.phone_push_failed', subjectUserId: user.id })
    const { reason } = JSON.parse(failure.details) as { reason?: string }
    assert.ok(typeof reason === 'string' && reason !== '')
  })

  test('pre-population: the dry run lists the changes and writes nothing; the real run creates each missing mobile method once and leaves another number alone', async () => {
    const g = fake.tenant.addUser({ displayName: 'Gil', mobilePhone: '+1 425 555 0101' })
    const h = fake.tenant.addUser({ displayName: 'Hana', mobilePhone: '+1 425 555 0102', methods: [{ phone: '+1 4255550199' }] })
    const i = fake.tenant.addUser({ displayName: 'Ivo', mobilePhone: '+1 425 555 0103', methods: [{ phone: '+1 4255550103' }] })
    const bad = fake.tenant.addUser({ displayName: 'Jo', mobilePhone: 'call reception' })
    await sync(t)
    const ours = new Set([g.id, h.id, i.id, bad.id])
    const writesBefore = fake.calls.filter((c) => c.method !== 'GET').length

    const dry = await t.services.entra!.phones.prepopulate({ dryRun: true }, { id: null, label: 'test' })
    const planned = Object.fromEntries(dry!.users.filter((u) => ours.has(u.externalId)).map((u) => [u.externalId, u.action]))
    assert.deepEqual(planned, { [g.id]: 'create', [h.id]: 'conflict', [i.id]: 'unchanged' }, 'pinned numbers only: an unusable directory value was never pinned')
    assert.equal(fake.calls.filter((c) => c.method !== 'GET').length, writesBefore, 'a dry run writes nothing')

    const live = await t.services.entra!.phones.prepopulate({ dryRun: true, fromDirectory: true }, { id: null, label: 'test' })
    assert.equal(live!.users.find((u) => u.externalId === bad.id)?.action, 'invalid', 'read live, the unusable value is reported, not pushed')

    const real = await t.services.entra!.phones.prepopulate({ dryRun: false }, { id: null, label: 'test' })
    assert.equal(real!.counts.failed, 0)
    assert.equal(fake.tenant.phone(g, 'mobile')?.props.phoneNumber, '+1 4255550101')
    assert.equal(fake.tenant.phone(h, 'mobile')?.props.phoneNumber, '+1 4255550199', 'another number already there is a conflict, never replaced')
    assert.equal(fake.calls.filter((c) => c.inBatch && c.method !== 'GET' && c.path.includes(`/users/${g.id}/`)).length, 1, 'one write for Gil')
    assert.equal(fake.calls.filter((c) => c.method !== 'GET' && c.path.includes(`/users/${i.id}/`)).length, 0, 'nothing for an unchanged number')
    assert.equal((await t.services.audit.list({ action: 'entra.phones_prepopulated' })).length, 1)

    const again = await t.services.entra!.phones.prepopulate({ dryRun: false }, { id: null, label: 'test' })
    assert.deepEqual(again!.users.filter((u) => ours.has(u.externalId)).map((u) => u.action).sort(), ['conflict', 'unchanged', 'unchanged'], 're-running changes nothing')
  })

  test('the API runs the same pre-population for an HR feed: dry run by default of the caller\'s choosing, a per-user report, phones:write needed', async () => {
    const k = fake.tenant.addUser({ displayName: 'Kai', mobilePhone: '+1 425 555 0111' })
    await sync(t)
    const token = (await automationServices(t.services).tokens.create({ name: 'hr feed', scopes: ['phones:write'], expiresInDays: null }, { id: null, label: 'test' })).secret
    const readOnly = (await automationServices(t.services).tokens.create({ name: 'reader', scopes: ['status:read'], expiresInDays: null }, { id: null, label: 'test' })).secret
    const refused = await anonymous(t).post('/api/v1/entra/phones/prepopulate').set('authorization', `Bearer ${readOnly}`).send({ dryRun: false })
    assert.equal(refused.status, 403)
    assert.equal(fake.tenant.phone(k, 'mobile'), undefined)
    const dry = await anonymous(t).post('/api/v1/entra/phones/prepopulate').set('authorization', `Bearer ${token}`).send({ dryRun: true })
    assert.equal(dry.status, 200)
    assert.equal(dry.body.users.find((u: { externalId: string }) => u.externalId === k.id).action, 'create')
    assert.equal(fake.tenant.phone(k, 'mobile'), undefined, 'a dry run writes nothing')
    const real = await anonymous(t).post('/api/v1/entra/phones/prepopulate').set('authorization', `Bearer ${token}`).send({ dryRun: false })
    assert.equal(real.status, 200)
    assert.equal(fake.tenant.phone(k, 'mobile')?.props.phoneNumber, '+1 4255550111')
    const unknownField = await anonymous(t).post('/api/v1/entra/phones/prepopulate').set('authorization', `Bearer ${token}`).send({ dryRun: true, everyone: true })
    assert.equal(unknownField.status, 400)
    assert.equal(unknownField.body.error.code, 'invalid_request')
  })

  test('the admin dashboard says when the directory was last synced and where registration facts came from', async () => {
    await sync(t)
    const admin = await createTestUser(t.services, { role: 'admin' })
    const page = await (await signIn(t, admin.email)).get('/admin')
    assert.equal(page.status, 200)
    assert.match(page.text, /data-directory="entra"[\s\S]*Registered methods came from <strong>userRegistrationDetails<\/strong>/)
  })

  test('the entra-phones command prints the per-user report of a dry run', async () => {
    const res = await runCli(['entra-phones', '--dry-run', '--json'], { dataDir: t.dataDir, env: { ...t.databaseEnv, PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string>, ENCRYPTION_KEY: t.config.encryptionKey.toString('base64') } })
    assert.equal(res.code, 0, res.stderr)
    const report = JSON.parse(res.stdout) as { dryRun: boolean, users: Array<{ email: string | null, action: string }> }
    assert.equal(report.dryRun, true)
    assert.ok(report.users.length > 0 && report.users.every((u) => u.email !== null && (u.action === 'unchanged' || u.action === 'conflict')))
  })
})

describe('helpdesk passes for Entra users', () => {
  let t: TestApp
  let fake: FakeEntra
  let close: () => Promise<void>
  before(async () => { ({ t, fake, close } = await entraPortalApp()) })
  after(async () => { await close() })

  async function stepUpStaff () {
    return signInStaff(t, await createTestUser(t.services, { role: 'helpdesk' }))
  }

  test('"Issue a temporary access pass" creates a Graph TAP with the requested lifetime, shows it once and stores nothing', async () => {
    const kim = fake.tenant.addUser({ displayName: 'Kim Entra' })
    await sync(t)
    const user = await portalUser(t, kim)
    const agent = await stepUpStaff()
    const res = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '120', oneTime: 'on', reason: 'new laptop, needs a passkey' })
    assert.equal(res.status, 200)
    assert.equal(res.headers['cache-control'], 'no-store')
    const shown = /<code id="pass-value">([^<]+)<\/code>/.exec(res.text)![1]
    assert.equal(kim.tap?.lifetimeInMinutes, 120)
    assert.equal(kim.tap?.isUsableOnce, true)
    assert.ok(shown.length >= 8)
    assert.match(res.text, /Microsoft Entra temporary access pass/)
    assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM access_passes WHERE user_id = ?', user.id), 0, 'never stored')
    const [audit] = await t.services.audit.list({ action: 'pass.issued', subjectUserId: user.id })
    assert.equal(JSON.parse(audit.details).provider, 'entra')
    assert.ok(!JSON.stringify(audit).includes(shown))
    assert.doesNotMatch((await agent.get(`/helpdesk/users/${user.id}`)).text, new RegExp(shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'never shown again')
    const mail = (await t.services.outbox.latest(1000)).find((m) => m.channel === 'email' && m.recipient === user.email)
    assert.ok(mail !== undefined && !mail.bodyText.includes(shown), 'emailed, without the pass')
  })

  test('a lifetime outside the tenant\'s policy is refused with its bounds, and no pass is made', async () => {
    const lee = fake.tenant.addUser({ displayName: 'Lee Entra' })
    await sync(t)
    const user = await portalUser(t, lee)
    const res = await submitForm(await stepUpStaff(), `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '600', reason: 'too long a pass' })
    assert.equal(res.status, 400)
    assert.match(res.text, /60 to 480 minutes/)
    assert.equal(lee.tap, null)
  })
})

describe('Sign in with Microsoft without an authentication context', () => {
  test('a user who did MFA at Microsoft is signed in with one factor: v2.0 ID tokens carry no amr, so nothing proves it', async () => {
    const { t, fake, close } = await entraPortalApp({ ENTRA_AUTH_CONTEXT: '' })
    try {
      const dana = fake.tenant.addUser({ displayName: 'Dana Entra', methods: ['fido2'] })
      await sync(t)
      const agent = anonymous(t)
      const res = await microsoftSignIn(t, fake, agent, dana, { mfa: true })
      assert.equal(res.status, 303)
      assert.equal((await sessionAuth(t, signedInCookie(res)))?.stepUpAt, undefined, 'no step-up from a Microsoft sign-in')
      assert.equal((await agent.get('/enroll/totp')).status, 403, 'adding a method still asks to confirm it is them')
      const [audit] = await t.services.audit.list({ action: 'signin.success', subjectUserId: (await portalUser(t, dana)).id })
      assert.equal(JSON.parse(audit.details).mfa, false)
    } finally {
      await close()
    }
  })
})

describe('what the directory sync reads from Entra', () => {
  test('a registration report refused for a missing consent stops the sync: the CLI and the dashboard name the permission to grant', async () => {
    const { t, fake, close } = await entraPortalApp()
    try {
      fake.tenant.addUser({ displayName: 'Gus Entra', methods: ['fido2'] })
      fake.tenant.reportRefusal = 'noAuditLogPermission'
      const res = await runCli(['sync', '--provider', 'entra'], { dataDir: t.dataDir, env: { ...t.databaseEnv, PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string>, ENCRYPTION_KEY: t.config.encryptionKey.toString('base64') } })
      assert.equal(res.code, 1)
      assert.match(res.stderr, /sync entra failed: .*lacks the application permission AuditLog\.Read\.All/)
      assert.equal(fake.calls.filter((c) => c.path.endsWith('/authentication/methods')).length, 0, 'no silent per-user fallback')
      const admin = await createTestUser(t.services, { role: 'admin' })
      const page = await (await signIn(t, admin.email)).get('/admin')
      assert.match(page.text, /data-directory="entra"[\s\S]*last sync failed[\s\S]*lacks the application permission AuditLog\.Read\.All/)
    } finally {
      await close()
    }
  })

  test('disabled accounts are read per user once, not at every sync, and methods Entra names that the portal does not know show on the helpdesk page', async () => {
    const { t, fake, close } = await entraPortalApp()
    try {
      const hal = fake.tenant.addUser({ displayName: 'Hal Entra', methods: ['microsoftAuthenticator'] })
      const ivy = fake.tenant.addUser({ displayName: 'Ivy Entra', methods: ['fido2'] })
      ivy.otherReportedMethods.push('x509CertificateMultiFactor')
      await sync(t)
      hal.accountEnabled = false
      const reads = (): number => fake.calls.filter((c) => c.path === `/users/${hal.id}/authentication/methods`).length
      await sync(t)
      await sync(t)
      assert.equal(reads(), 1, 'read once while disabled, then kept')
      assert.deepEqual((await portalUser(t, hal)).providerMethods, ['authenticator'])
      assert.equal((await portalUser(t, hal)).disabled, true)

      const agent = await signInStaff(t, await createTestUser(t.services, { role: 'helpdesk' }))
      const page = await agent.get(`/helpdesk/users/${(await portalUser(t, ivy)).id}`)
      assert.match(page.text, /not recognised by the portal[\s\S]*<code>x509CertificateMultiFactor<\/code>/)
    } finally {
      await close()
    }
  })
})

describe('authenticator apps registered as hardware OATH tokens', () => {
  test('a setup Entra could not finish leaves no token holding the seed: removed at once, or by housekeeping once Graph answers again', async () => {
    const { t, fake, close } = await entraPortalApp({ ENTRA_HARDWARE_OATH: 'true' })
    try {
      const erin = fake.tenant.addUser({ displayName: 'Erin Entra', methods: ['fido2'] })
      await sync(t)
      const agent = anonymous(t)
      await microsoftSignIn(t, fake, agent, erin, { mfa: true })
      const page = await agent.get('/enroll/entra-app')
      const secret = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.text)![1].replace(/ /g, '')

      // The activation fails (Graph down before acting): the token just created is unassigned and deleted at once.
      fake.failNext(1, { status: 503, match: /\/activate$/ })
      const first = await submitForm(agent, '/enroll/entra-app', '/enroll/entra-app', { code: oathtool(secret, t.clock.now()), name: 'Phone app' })
      assert.equal(first.status, 502)
      assert.match(first.text, /could not register the app right now/)
      assert.equal(fake.tenant.oathDevices.size, 0, 'no device holds the seed')

      // Again, and this time Graph also refuses the removal: the token stays until housekeeping removes it.
      t.clock.advance(30_000)
      fake.failNext(1, { status: 503, match: /\/activate$/ })
      fake.failNext(4, { status: 503, match: /^DELETE / })
      const second = await submitForm(agent, '/enroll/entra-app', '/enroll/entra-app', { code: oathtool(secret, t.clock.now()), name: 'Phone app' })
      assert.equal(second.status, 502)
      assert.equal(fake.tenant.oathDevices.size, 1, 'left behind while Graph refused to delete it')
      assert.deepEqual(await cleanupAbandonedEntraOath(t.services), { deleted: 0, alreadyGone: 0, inUse: 0, failed: 0 }, 'a setup may still be finishing: not before its time')

      t.clock.advance(20 * 60_000)
      const report = await cleanupAbandonedEntraOath(t.services)
      assert.equal(report.deleted, 1)
      assert.equal(report.failed, 0)
      assert.equal(fake.tenant.oathDevices.size, 0, 'housekeeping removed it')
      assert.ok((await t.services.audit.list({ action: 'entra.oath_abandoned_removed', subjectUserId: (await portalUser(t, erin)).id })).some((e) => JSON.parse(e.details).outcome === 'deleted'))
      assert.deepEqual(await cleanupAbandonedEntraOath(t.services), { deleted: 0, alreadyGone: 0, inUse: 0, failed: 0 }, 'nothing left to do')

      // Then a good attempt (signed in again, a new setup) works, and housekeeping never touches the activated token.
      const later = anonymous(t)
      await microsoftSignIn(t, fake, later, erin, { mfa: true })
      const fresh = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec((await later.get('/enroll/entra-app')).text)![1].replace(/ /g, '')
      const ok = await submitForm(later, '/enroll/entra-app', '/enroll/entra-app', { code: oathtool(fresh, t.clock.now()), name: 'Phone app' })
      assert.equal(ok.status, 303)
      t.clock.advance(60 * 60_000)
      await cleanupAbandonedEntraOath(t.services)
      assert.equal([...fake.tenant.oathDevices.values()].filter((d) => d.status === 'activated').length, 1)
    } finally {
      await close()
    }
  })

  test('with hardware OATH tokens turned off in the tenant\'s policy, the app page says so and makes no seed', async () => {
    const { t, fake, close } = await entraPortalApp({ ENTRA_HARDWARE_OATH: 'true' })
    try {
      fake.tenant.hardwareOathPolicy = { state: 'disabled' }
      const fay = fake.tenant.addUser({ displayName: 'Fay Entra', methods: ['fido2'] })
      await sync(t)
      const agent = anonymous(t)
      await microsoftSignIn(t, fake, agent, fay, { mfa: true })
      const page = await agent.get('/enroll/entra-app')
      assert.match(page.text, /Hardware OATH tokens are turned off in this tenant/)
      assert.doesNotMatch(page.text, /totp-key/)
      assert.equal(await sqlOn(t.services).value("SELECT count(*) FROM provider_enrollments WHERE user_id = ? AND kind = 'entra_oath'", (await portalUser(t, fay)).id), 0)
    } finally {
      await close()
    }
  })
})

describe('local password sign-in turned off', () => {
  test('PASSWORD_SIGNIN=false hides the password form, refuses POST /login plainly, and needs Microsoft sign-in configured', async () => {
    const { t, close } = await entraPortalApp({ PASSWORD_SIGNIN: 'false' })
    try {
      const user = await createTestUser(t.services)
      const agent = anonymous(t)
      const page = await agent.get('/login')
      assert.doesNotMatch(page.text, /action="\/login"/)
      assert.match(page.text, /Sign in with Microsoft/)
      // No password form: the page's token is in its meta tag (for the passkey script).
      const token = /<meta name="csrf-token" content="([^"]+)">/.exec(page.text)![1]
      const res = await agent.post('/login').type('form').send({ email: user.email, password: 'correct horse battery staple', _csrf: token })
      assert.equal(res.status, 403)
      assert.match(res.text, /Signing in with a password is turned off here/)
      assert.equal(sessionCookieOf(res) === undefined || (await agent.get('/')).status === 303, true, 'not signed in')
      assert.equal((await t.services.audit.list({ action: 'signin.success', subjectUserId: user.id })).length, 0)
    } finally {
      await close()
    }
    assert.throws(() => testConfig({ PASSWORD_SIGNIN: 'false' }), (err: ConfigError) => err.variable === 'PASSWORD_SIGNIN')
  })

  test('with hardware OATH off, the app page sends Entra users to Microsoft\'s security info page', async () => {
    const { t, fake, close } = await entraPortalApp()
    try {
      const mo = fake.tenant.addUser({ displayName: 'Mo' })
      await sync(t)
      const agent = anonymous(t)
      await microsoftSignIn(t, fake, agent, mo, { mfa: true })
      const page = await agent.get('/enroll/entra-app')
      assert.equal(page.status, 200)
      assert.match(page.text, /href="https:\/\/mysignins.microsoft.com\/security-info"/)
      assert.match(page.text, /notices the new app the next time it reads your account/)
      assert.doesNotMatch(page.text, /qr.png/)
    } finally {
      await close()
    }
  })
})

describe('methods held in Entra count on every add route', () => {
  let t: TestApp
  let fake: FakeEntra
  let close: () => Promise<void>
  before(async () => { ({ t, fake, close } = await entraPortalApp({ ENTRA_HARDWARE_OATH: 'true' })) })
  after(async () => { await close() })

  const phoneWrites = (userId: string) => fake.calls.filter((c) => c.path.startsWith(`/users/${userId}/authentication/phoneMethods`) && c.method !== 'GET')
  const smsTo = async (e164: string) => (await t.services.outbox.latest(1000)).filter((m) => m.channel === 'sms' && m.recipient === e164)

  /** Signed in with a portal-issued pass: the restricted enrollment session. */
  async function passSession (who: FakeUser): Promise<Agent> {
    const user = await portalUser(t, who)
    const { pass } = await t.services.passes.issue(user, { lifetimeMinutes: 120, oneTime: false }, { id: null, label: 'test' })
    const agent = anonymous(t)
    const page = await agent.get('/login/pass')
    const res = await agent.post('/login/pass').type('form').send({ email: user.email, pass, _csrf: csrfFrom(page.text) })
    assert.equal(res.status, 303, 'signed in with the pass')
    return agent
  }

  /** Asks for a code to `number`, then enters the code that was texted (when one was). */
  async function addPhone (agent: Agent, number: string, e164: string) {
    const begin = await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: number })
    const text = (await smsTo(e164))[0]?.bodyText
    const verify = text === undefined ? undefined : await submitForm(agent, '/enroll/phone', '/enroll/phone/verify', { code: /\b(\d{6})\b/.exec(text)![1] })
    return { begin, verify }
  }

  test('a password-only sign-in cannot add a phone to an account whose methods are in Entra, so the owner\'s Entra mobile number stays', async () => {
    const victim = fake.tenant.addUser({ displayName: 'Victor', methods: ['microsoftAuthenticator', { phone: '+1 4255550100' }] })
    await sync(t)
    assert.deepEqual([...(await portalUser(t, victim)).providerMethods].sort(), ['authenticator', 'phone'])
    const attacker = anonymous(t)
    await microsoftSignIn(t, fake, attacker, victim, { mfa: false })
    assert.equal((await attacker.get('/enroll/entra-app')).status, 403, 'the Entra page asks for a step-up')

    const page = await attacker.get('/enroll/phone')
    assert.equal(page.status, 403)
    assert.match(page.text, /first confirm it&#39;s you/)
    const { begin, verify } = await addPhone(attacker, '+1 202 555 0199', '+12025550199')
    assert.equal(begin.status, 403)
    assert.equal(verify, undefined, 'no code was texted to the attacker\'s number')
    assert.equal(fake.tenant.phone(victim, 'mobile')?.props.phoneNumber, '+1 4255550100')
    assert.deepEqual(phoneWrites(victim.id), [])
    assert.deepEqual(await t.services.methods.listFor((await portalUser(t, victim)).id), [])
  })

  test('the authenticator-app and passkey pages ask for a step-up when the account\'s only methods are in Entra; Microsoft\'s MFA is one', async () => {
    const owner = fake.tenant.addUser({ displayName: 'Olga', methods: ['fido2'] })
    await sync(t)
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, owner, { mfa: false })
    const totp = await agent.get('/enroll/totp')
    assert.equal(totp.status, 403)
    assert.doesNotMatch(totp.text, /totp-key/)
    assert.equal(await sqlOn(t.services).value("SELECT count(*) FROM pending_enrollments WHERE user_id = ? AND kind = 'totp'", (await portalUser(t, owner)).id), 0, 'no seed was made')
    assert.equal((await agent.get('/enroll/totp/qr.png')).status, 403, 'nor its image')
    const passkeyPage = await agent.get('/enroll/passkey')
    assert.match(passkeyPage.text, /first confirm it&#39;s you/)
    const options = await agent.post('/enroll/passkey/options').set('accept', 'application/json').set('x-csrf-token', await csrfFor(agent, '/')).send({})
    assert.equal(options.status, 403)
    assert.equal(options.body.error.code, 'step_up_required')

    const confirmed = anonymous(t)
    await microsoftSignIn(t, fake, confirmed, owner, { mfa: true })
    assert.equal((await confirmed.get('/enroll/totp')).status, 200)
  })

  test('in a pass session, a verified phone is created in Entra where there is none, but a different Entra mobile number is not replaced', async () => {
    const fresh = fake.tenant.addUser({ displayName: 'Nia' })
    const holder = fake.tenant.addUser({ displayName: 'Pat', methods: ['microsoftAuthenticator', { phone: '+1 4255550177' }] })
    await sync(t)

    const nia = await addPhone(await passSession(fresh), '+1 202 555 0171', '+12025550171')
    assert.equal(nia.verify?.status, 303)
    assert.equal(fake.tenant.phone(fresh, 'mobile')?.props.phoneNumber, '+1 2025550171', 'a new mobile method is an addition')

    const agent = await passSession(holder)
    const pat = await addPhone(agent, '+1 202 555 0172', '+12025550172')
    assert.equal(pat.verify?.status, 303)
    assert.match((await agent.get('/')).text, /Microsoft already has another mobile number for your account, so we did not change it/)
    assert.equal(fake.tenant.phone(holder, 'mobile')?.props.phoneNumber, '+1 4255550177', 'the number Entra holds stays')
    assert.deepEqual(phoneWrites(holder.id), [])
    const [refusal] = await t.services.audit.list({ action: 'entra.phone_push_refused', subjectUserId: (await portalUser(t, holder)).id })
    assert.equal((JSON.parse(refusal.details) as { reason: string }).reason, 'existing_number_needs_step_up')
  })

  test('a first phone added from the office network never replaces a mobile number Entra gained since the last sync', async () => {
    const stale = fake.tenant.addUser({ displayName: 'Quin' })
    await sync(t)
    fake.tenant.addPhone(stale, 'mobile', '+1 4255550188')
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, stale, { mfa: false })
    const { verify } = await addPhone(agent, '+1 202 555 0173', '+12025550173')
    assert.equal(verify?.status, 303, 'a first method from the office network is allowed')
    assert.equal(fake.tenant.phone(stale, 'mobile')?.props.phoneNumber, '+1 4255550188')
    assert.deepEqual(phoneWrites(stale.id), [])
  })
})

describe('phone pre-population never takes over an MFA phone', () => {
  const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
  let t: TestApp
  let fake: FakeEntra
  let close: () => Promise<void>
  let gail: FakeUser
  let gary: FakeUser
  let hal: FakeUser
  let ina: FakeUser
  before(async () => {
    ({ t, fake, close } = await entraPortalApp())
    // Gail and Gary are Global Administrators (Gail with Microsoft Authenticator and a mobile number); Hal has
    // another mobile number in Entra; Ina has none.
    gail = fake.tenant.addUser({ displayName: 'Gail Admin', methods: ['microsoftAuthenticator', { phone: '+1 4255550150' }] })
    gary = fake.tenant.addUser({ displayName: 'Gary Admin' })
    for (const admin of [gail, gary]) fake.tenant.assignRole(admin.id, GLOBAL_ADMIN)
    hal = fake.tenant.addUser({ displayName: 'Hal', methods: [{ phone: '+1 4255550160' }] })
    ina = fake.tenant.addUser({ displayName: 'Ina' })
    await sync(t)
  })
  after(async () => { await close() })

  const token = (scopes: string[], name: string) => automationServices(t.services).tokens.create({ name, scopes, expiresInDays: null }, { id: null, label: 'test' })
  const phoneWrites = (who: FakeUser) => fake.calls.filter((c) => c.path.startsWith(`/users/${who.id}/authentication/phoneMethods`) && c.method !== 'GET')
  const prefill = (secret: string, body: Record<string, unknown>) => anonymous(t).post('/api/v1/entra/phones/prepopulate').set('authorization', `Bearer ${secret}`).send(body)
  const lineOf = (body: { users: Array<{ externalId: string, action: string, applied: boolean }> }, who: FakeUser) => body.users.find((u) => u.externalId === who.id)

  test('a phones:write token cannot overwrite a Global Administrator\'s MFA phone: privileged users are skipped, another number is a conflict, a missing one is created, each audited', async () => {
    const feed = await token(['phones:write'], 'hr feed')
    for (const [who, number] of [[gail, '+1 202 555 0166'], [gary, '+1 202 555 0167'], [hal, '+1 202 555 0168'], [ina, '+1 202 555 0169']] as const) {
      const put = await anonymous(t).put(`/api/v1/users/${(await portalUser(t, who)).id}/phone`).set('authorization', `Bearer ${feed.secret}`).send({ phone: number })
      assert.equal(put.status, 200)
    }
    const res = await prefill(feed.secret, { dryRun: false })
    assert.equal(res.status, 200)
    assert.equal(fake.tenant.phone(gail, 'mobile')?.props.phoneNumber, '+1 4255550150', 'the administrator\'s MFA phone is untouched')
    assert.equal(fake.tenant.phone(gary, 'mobile'), undefined, 'no phone is planted on an administrator either')
    assert.equal(fake.tenant.phone(hal, 'mobile')?.props.phoneNumber, '+1 4255550160', 'another number is never replaced')
    assert.equal(fake.tenant.phone(ina, 'mobile')?.props.phoneNumber, '+1 2025550169')
    assert.deepEqual([gail, gary, hal, ina].map((who) => lineOf(res.body, who)?.action), ['skipped_privileged', 'skipped_privileged', 'conflict', 'create'])
    assert.deepEqual([...phoneWrites(gail), ...phoneWrites(gary), ...phoneWrites(hal)], [])
    assert.equal(fake.calls.filter((c) => c.path === `/users/${gail.id}/authentication/phoneMethods`).length, 0, 'a skipped administrator is not even read')
    assert.deepEqual(res.body.counts, { create: 1, unchanged: 0, conflict: 1, skipped_privileged: 2, invalid: 0, failed: 0 })

    const audited = async (who: FakeUser) => (await t.services.audit.list({ action: 'entra.phone_prefill', subjectUserId: (await portalUser(t, who)).id }))
      .map((row) => ({ actor: row.actorLabel, ...(JSON.parse(row.details) as { result: string, tokenId: string, previous: string | null }) }))
    assert.deepEqual((await audited(gail)).map((a) => [a.actor, a.result, a.tokenId]), [['api-token:hr feed', 'skipped_privileged', feed.token.id]])
    assert.deepEqual((await audited(gary)).map((a) => a.result), ['skipped_privileged'])
    assert.deepEqual((await audited(hal)).map((a) => [a.result, a.previous]), [['conflict', '•••• 0160']])
    assert.deepEqual((await audited(ina)).map((a) => a.result), ['created'])
  })

  test('only a token that also holds the admin-granted phones:write-privileged scope may include privileged users, and then it only creates', async () => {
    const feed = await token(['phones:write'], 'feed without privileged')
    const refused = await prefill(feed.secret, { dryRun: false, includePrivileged: true })
    assert.equal(refused.status, 403)
    assert.equal(refused.body.error.code, 'insufficient_scope')
    assert.match(refused.headers['www-authenticate'], /scope="phones:write-privileged"/)

    const admin = await token(['phones:write', 'phones:write-privileged'], 'admin prefill')
    const res = await prefill(admin.secret, { dryRun: false, includePrivileged: true })
    assert.equal(res.status, 200)
    assert.equal(lineOf(res.body, gary)?.action, 'create')
    assert.equal(fake.tenant.phone(gary, 'mobile')?.props.phoneNumber, '+1 2025550167', 'created where the administrator had none')
    assert.equal(lineOf(res.body, gail)?.action, 'conflict')
    assert.equal(fake.tenant.phone(gail, 'mobile')?.props.phoneNumber, '+1 4255550150', 'even this scope never replaces a number')
    const [summary] = (await t.services.audit.list({ action: 'entra.phones_prepopulated' })).filter((row) => row.actorLabel === 'api-token:admin prefill')
    assert.equal((JSON.parse(summary.details) as { includePrivileged: boolean }).includePrivileged, true)
  })

  test('the entra-phones command skips privileged users unless --include-privileged, which the audit log records', async () => {
    const env = { ...t.databaseEnv, PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string>, ENCRYPTION_KEY: t.config.encryptionKey.toString('base64') }
    const gina = fake.tenant.addUser({ displayName: 'Gina Admin', mobilePhone: '+1 425 555 0170' })
    fake.tenant.assignRole(gina.id, GLOBAL_ADMIN)
    await sync(t)
    const dry = await runCli(['entra-phones', '--dry-run', '--json'], { dataDir: t.dataDir, env })
    assert.equal(dry.code, 0, dry.stderr)
    assert.equal((JSON.parse(dry.stdout) as { users: Array<{ externalId: string, action: string }> }).users.find((u) => u.externalId === gina.id)?.action, 'skipped_privileged')
    const real = await runCli(['entra-phones', '--include-privileged'], { dataDir: t.dataDir, env })
    assert.equal(real.code, 0, real.stderr)
    assert.match(real.stdout, /privileged skipped/)
    assert.equal(fake.tenant.phone(gina, 'mobile')?.props.phoneNumber, '+1 4255550170')
    const [event] = await t.services.audit.list({ action: 'entra.phone_prefill', subjectUserId: (await portalUser(t, gina)).id })
    assert.deepEqual({ actor: event.actorLabel, ...JSON.parse(event.details) as Record<string, unknown> }, {
      actor: 'cli', via: 'cli', source: 'portal', includePrivileged: true, result: 'created', externalId: gina.id, phone: '•••• 0170', previous: null
    })
  })
})
