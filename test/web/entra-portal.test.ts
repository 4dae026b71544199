import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { ConfigError } from '../../server/config.ts'
import type { User } from '../../server/domain/users.ts'
import { automationServices } from '../../server/wiring-automation.ts'
import { prepopulateEntraPhones } from '../../server/wiring-entra.ts'
import { type Agent, anonymous, createTestUser, sessionCookieOf, signIn, signInStaff, startTestApp, submitForm, type TestApp, testConfig } from '../helpers/app.ts'
import { runCli } from '../helpers/cli.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra, type FakeEntra } from '../fakes/graph/server.ts'
import type { FakeUser } from '../fakes/graph/tenant.ts'

const REDIRECT = 'http://localhost:3000/login/microsoft/callback'
const START = new Date('2026-11-25T09:00:10Z')

/** A fake tenant and the portal connected to it as an operator would configure it; both on the test's clock. */
async function entraPortalApp (extra: Record<string, string> = {}): Promise<{ t: TestApp, fake: FakeEntra, close(): Promise<void> }> {
  let t: TestApp | undefined
  const fake = await startFakeEntra({ now: () => t?.clock.now() ?? START })
  t = await startTestApp({
    PROVIDERS: 'entra',
    ...fakeEnv(fake, { ENTRA_REDIRECT_URI: REDIRECT, ...extra }) as Record<string, string>,
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

function portalUser (t: TestApp, fakeUser: FakeUser): User {
  const id = t.services.database.sqlite.prepare("SELECT id FROM users WHERE provider = 'entra' AND external_id = ?").pluck().get(fakeUser.id) as string
  return t.services.users.findById(id)!
}

/**
 * The browser's part of "Sign in with Microsoft": start at the portal, let the fake authority sign `who` in, and
 * follow its redirect back to the callback. `tamper` changes the authorize request or the callback on the way.
 */
async function microsoftSignIn (t: TestApp, fake: FakeEntra, agent: Agent, who: FakeUser, options: { amr?: string[], authorize?: (url: URL) => void, callback?: (url: URL) => void } = {}) {
  fake.identity.signInAs(who.id, { amr: options.amr })
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

/** The signed-in part of the session the cookie names, as the server stored it. */
function sessionAuth (t: TestApp, cookie: string | undefined): { stepUpAt?: number, secondFactorPending?: boolean } | undefined {
  // The cookie holds "<sid>.<signature>", URL-encoded.
  const sid = decodeURIComponent(cookie?.split('=')[1] ?? '').split('.')[0]
  const data = t.services.database.sqlite.prepare('SELECT data FROM sessions WHERE sid = ?').pluck().get(sid) as string | undefined
  return data === undefined ? undefined : (JSON.parse(data) as { auth?: { stepUpAt?: number, secondFactorPending?: boolean } }).auth
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

  test('a synced user signs in by object id into a new session, and Microsoft\'s MFA counts as a fresh step-up', async () => {
    const agent = anonymous(t)
    const before = sessionCookieOf(await agent.get('/login'))
    const res = await microsoftSignIn(t, fake, agent, alice, { amr: ['pwd', 'mfa'] })
    assert.equal(res.status, 303)
    assert.equal(res.headers.location, '/')
    const cookie = sessionCookieOf(res)
    assert.ok(cookie !== undefined && cookie !== before, 'the session id is new after sign-in')
    assert.equal((await agent.get('/')).text.includes('Hello, Alice Entra'), true)
    assert.equal(sessionAuth(t, cookie)?.stepUpAt, t.clock.now().getTime(), 'stepped up at sign-in')
    // Alice already has a passkey at Microsoft, so adding an app needs a fresh step-up: Microsoft's MFA is one.
    const app = await agent.get('/enroll/entra-app')
    assert.equal(app.status, 200)
    assert.match(app.text, /<img src="\/enroll\/entra-app\/qr.png"/)
    const [audit] = t.services.audit.list({ action: 'signin.success', subjectUserId: portalUser(t, alice).id })
    assert.equal(JSON.parse(audit.details).method, 'microsoft')
  })

  test('without "mfa" in amr the user is signed in but not stepped up', async () => {
    const agent = anonymous(t)
    const res = await microsoftSignIn(t, fake, agent, bob, { amr: ['pwd'] })
    assert.equal(res.status, 303)
    assert.equal(sessionAuth(t, sessionCookieOf(res))?.stepUpAt, undefined)
    const app = await agent.get('/enroll/entra-app')
    assert.equal(app.status, 403)
    assert.match(app.text, /first confirm it&#39;s you|first confirm it's you/)
  })

  test('a callback whose state is wrong or missing is refused with a clear page, and nobody is signed in', async () => {
    for (const tamper of [(u: URL) => { u.searchParams.set('state', 'forged') }, (u: URL) => { u.searchParams.delete('state') }]) {
      const agent = anonymous(t)
      const res = await microsoftSignIn(t, fake, agent, alice, { amr: ['mfa'], callback: tamper })
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
    const res = await microsoftSignIn(t, fake, agent, alice, { amr: ['mfa'], authorize: (u) => { u.searchParams.set('nonce', 'injected-by-someone-else') } })
    assert.equal(res.status, 400)
    assert.match(res.text, /could not be accepted/)
    assert.equal((await agent.get('/')).status, 303)
    const failures = t.services.audit.list({ action: 'signin.failure' }).map((r) => JSON.parse(r.details) as { method?: string, reason?: string }).filter((d) => d.method === 'microsoft')
    assert.ok(failures.some((d) => d.reason === 'nonce_mismatch'), JSON.stringify(failures))
  })

  test('a Microsoft account the portal does not know, or has switched off, is refused with a plain message', async () => {
    const stranger = fake.tenant.addUser({ displayName: 'Not synced yet' })
    const res = await microsoftSignIn(t, fake, anonymous(t), stranger, { amr: ['mfa'] })
    assert.equal(res.status, 403)
    assert.match(res.text, /Your Microsoft account is not set up in this portal, or it is switched off. Contact your helpdesk./)

    const gone = fake.tenant.addUser({ displayName: 'Leaver' })
    await sync(t)
    t.services.database.sqlite.prepare('UPDATE users SET disabled = 1 WHERE external_id = ?').run(gone.id)
    assert.equal((await microsoftSignIn(t, fake, anonymous(t), gone, { amr: ['mfa'] })).status, 403)
  })

  test('an authenticator app proven with an oathtool code becomes an activated token in Entra; the seed is sealed while pending', async () => {
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, alice, { amr: ['mfa'] })
    const page = await agent.get('/enroll/entra-app')
    const secret = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(page.text)![1].replace(/ /g, '')
    const user = portalUser(t, alice)
    const pending = t.services.database.sqlite.prepare("SELECT secret_sealed AS sealed FROM provider_enrollments WHERE user_id = ? AND kind = 'entra_oath' AND completed_at IS NULL").get(user.id) as { sealed: string }
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
    assert.ok(portalUser(t, alice).providerMethods.includes('totp'))
    const done = t.services.database.sqlite.prepare("SELECT secret_sealed AS sealed, device_id AS deviceId FROM provider_enrollments WHERE user_id = ? AND kind = 'entra_oath'").get(user.id) as { sealed: string | null, deviceId: string }
    assert.deepEqual(done, { sealed: null, deviceId: device.id }, 'the seed is gone once Entra holds it')
  })

  test('"Check now" re-reads Entra after a passkey was registered on Microsoft\'s page', async () => {
    const carol = fake.tenant.addUser({ displayName: 'Carol Entra' })
    await sync(t)
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, carol, { amr: ['mfa'] })
    const guide = await agent.get('/enroll/entra-passkey')
    assert.match(guide.text, /href="https:\/\/mysignins.microsoft.com\/security-info"/)
    fake.tenant.addMethod(carol, 'fido2')
    const res = await submitForm(agent, '/enroll/entra-passkey', '/enroll/entra-passkey/check')
    assert.equal(res.status, 303)
    assert.deepEqual(portalUser(t, carol).providerMethods, ['passkey'])
    assert.match((await agent.get('/enroll/entra-passkey')).text, /Microsoft has a passkey for your account/)
  })

  test('the home page offers Entra\'s ways to add a method', async () => {
    const agent = anonymous(t)
    await microsoftSignIn(t, fake, agent, bob, { amr: ['mfa'] })
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
    await microsoftSignIn(t, fake, agent, who, { amr: ['mfa'] })
    await submitForm(agent, '/enroll/phone', '/enroll/phone', { phone: number })
    const text = t.services.outbox.latest(1000).filter((m) => m.channel === 'sms')[0].bodyText
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
    const user = portalUser(t, finn)
    assert.deepEqual(t.services.methods.listFor(user.id).map((m) => m.phone), ['+12025550145'], 'the portal method stays')
    assert.equal(fake.tenant.phone(finn, 'mobile'), undefined)
    const [failure] = t.services.audit.list({ action: 'entra.phone_push_failed', subjectUserId: user.id })
    const { reason } = JSON.parse(failure.details) as { reason?: string }
    assert.ok(typeof reason === 'string' && reason !== '')
  })

  test('pre-population: the dry run lists the changes and writes nothing; the real run writes each mobile method once', async () => {
    const g = fake.tenant.addUser({ displayName: 'Gil', mobilePhone: '+1 425 555 0101' })
    const h = fake.tenant.addUser({ displayName: 'Hana', mobilePhone: '+1 425 555 0102', methods: [{ phone: '+1 4255550199' }] })
    const i = fake.tenant.addUser({ displayName: 'Ivo', mobilePhone: '+1 425 555 0103', methods: [{ phone: '+1 4255550103' }] })
    const bad = fake.tenant.addUser({ displayName: 'Jo', mobilePhone: 'call reception' })
    await sync(t)
    const ours = new Set([g.id, h.id, i.id, bad.id])
    const writesBefore = fake.calls.filter((c) => c.method !== 'GET').length

    const dry = await prepopulateEntraPhones(t.services, { dryRun: true }, { id: null, label: 'test' })
    const planned = Object.fromEntries(dry!.users.filter((u) => ours.has(u.externalId)).map((u) => [u.externalId, u.action]))
    assert.deepEqual(planned, { [g.id]: 'create', [h.id]: 'update', [i.id]: 'unchanged' }, 'pinned numbers only: an unusable directory value was never pinned')
    assert.equal(fake.calls.filter((c) => c.method !== 'GET').length, writesBefore, 'a dry run writes nothing')

    const live = await prepopulateEntraPhones(t.services, { dryRun: true, fromDirectory: true }, { id: null, label: 'test' })
    assert.equal(live!.users.find((u) => u.externalId === bad.id)?.action, 'invalid', 'read live, the unusable value is reported, not pushed')

    const real = await prepopulateEntraPhones(t.services, { dryRun: false }, { id: null, label: 'test' })
    assert.equal(real!.counts.failed, 0)
    assert.equal(fake.tenant.phone(g, 'mobile')?.props.phoneNumber, '+1 4255550101')
    assert.equal(fake.tenant.phone(h, 'mobile')?.props.phoneNumber, '+1 4255550102')
    assert.equal(fake.calls.filter((c) => c.inBatch && c.method !== 'GET' && c.path.includes(`/users/${g.id}/`)).length, 1, 'one write for Gil')
    assert.equal(fake.calls.filter((c) => c.method !== 'GET' && c.path.includes(`/users/${i.id}/`)).length, 0, 'nothing for an unchanged number')
    assert.equal(t.services.audit.list({ action: 'entra.phones_prepopulated' }).length, 1)

    const again = await prepopulateEntraPhones(t.services, { dryRun: false }, { id: null, label: 'test' })
    assert.equal(again!.users.filter((u) => ours.has(u.externalId)).every((u) => u.action === 'unchanged'), true, 're-running changes nothing')
  })

  test('the API runs the same pre-population for an HR feed: dry run by default of the caller\'s choosing, a per-user report, phones:write needed', async () => {
    const k = fake.tenant.addUser({ displayName: 'Kai', mobilePhone: '+1 425 555 0111' })
    await sync(t)
    const token = automationServices(t.services).tokens.create({ name: 'hr feed', scopes: ['phones:write'], expiresInDays: null }, { id: null, label: 'test' }).secret
    const readOnly = automationServices(t.services).tokens.create({ name: 'reader', scopes: ['status:read'], expiresInDays: null }, { id: null, label: 'test' }).secret
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
    const res = await runCli(['entra-phones', '--dry-run', '--json'], { dataDir: t.dataDir, env: { PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string>, ENCRYPTION_KEY: t.config.encryptionKey.toString('base64') } })
    assert.equal(res.code, 0, res.stderr)
    const report = JSON.parse(res.stdout) as { dryRun: boolean, users: Array<{ email: string | null, action: string }> }
    assert.equal(report.dryRun, true)
    assert.ok(report.users.length > 0 && report.users.every((u) => u.email !== null && u.action === 'unchanged'))
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
    const user = portalUser(t, kim)
    const agent = await stepUpStaff()
    const res = await submitForm(agent, `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '120', oneTime: 'on', reason: 'new laptop, needs a passkey' })
    assert.equal(res.status, 200)
    assert.equal(res.headers['cache-control'], 'no-store')
    const shown = /<code id="pass-value">([^<]+)<\/code>/.exec(res.text)![1]
    assert.equal(kim.tap?.lifetimeInMinutes, 120)
    assert.equal(kim.tap?.isUsableOnce, true)
    assert.ok(shown.length >= 8)
    assert.match(res.text, /Microsoft Entra temporary access pass/)
    assert.equal(t.services.database.sqlite.prepare('SELECT count(*) FROM access_passes WHERE user_id = ?').pluck().get(user.id), 0, 'never stored')
    const [audit] = t.services.audit.list({ action: 'pass.issued', subjectUserId: user.id })
    assert.equal(JSON.parse(audit.details).provider, 'entra')
    assert.ok(!JSON.stringify(audit).includes(shown))
    assert.doesNotMatch((await agent.get(`/helpdesk/users/${user.id}`)).text, new RegExp(shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'never shown again')
    const mail = t.services.outbox.latest(1000).find((m) => m.channel === 'email' && m.recipient === user.email)
    assert.ok(mail !== undefined && !mail.bodyText.includes(shown), 'emailed, without the pass')
  })

  test('a lifetime outside the tenant\'s policy is refused with its bounds, and no pass is made', async () => {
    const lee = fake.tenant.addUser({ displayName: 'Lee Entra' })
    await sync(t)
    const user = portalUser(t, lee)
    const res = await submitForm(await stepUpStaff(), `/helpdesk/users/${user.id}`, `/helpdesk/users/${user.id}/pass`, { lifetimeMinutes: '600', reason: 'too long a pass' })
    assert.equal(res.status, 400)
    assert.match(res.text, /60 to 480 minutes/)
    assert.equal(lee.tap, null)
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
      assert.equal(t.services.audit.list({ action: 'signin.success', subjectUserId: user.id }).length, 0)
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
      await microsoftSignIn(t, fake, agent, mo, { amr: ['mfa'] })
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
