import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Secret, TOTP } from 'otpauth'
import { buildApp } from '../../server/app.ts'
import { createServices } from '../../server/wiring.ts'
import type { User } from '../../server/domain/users.ts'
import {
  anonymous, createTestUser, csrfFor, csrfFrom, FakeClock, signIn, startTestApp, TEST_SECRETS, tempDir, testConfig,
  type Agent, type TestApp
} from '../helpers/app.ts'
import { runCli } from '../helpers/cli.ts'
import { sqlOn, type SqlParam } from '../helpers/sql.ts'

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

const NEW_KEY = Buffer.alloc(32, 9).toString('base64')
// A fixed enrolled secret for tests that arrange an existing app directly.
const KNOWN_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

/** What Debian's oathtool says the code is at `at` (the same instant the app's clock reads). */
function oathtool (key: string, at: Date): string {
  return execFileSync('oathtool', ['--totp', '-b', key, '-N', `@${Math.floor(at.getTime() / 1000)}`], { encoding: 'utf8' }).trim()
}

/** The manual-entry key shown on the setup page, without the spaces it is grouped with. */
function keyOnPage (html: string): string {
  const match = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(html)
  if (match === null) throw new Error('no key on the page')
  return match[1].replace(/ /g, '')
}

function decodeQr (png: Buffer): string {
  const dir = tempDir('mfa-qr-')
  try {
    writeFileSync(path.join(dir, 'qr.png'), png)
    // zbarimg prints a harmless D-Bus complaint on stderr; only stdout matters.
    return execFileSync('zbarimg', ['-q', '--raw', path.join(dir, 'qr.png')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function count (app: TestApp, table: string, where: string, ...params: SqlParam[]): Promise<number> {
  return (await sqlOn(app.services).get<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, ...params))!.n
}

async function signedIn (app: TestApp = t): Promise<{ user: User, agent: Agent }> {
  const user = await createTestUser(app.services)
  return { user, agent: await signIn(app, user.email) }
}

/** Opens the setup page and returns the key shown and the page's CSRF token. */
async function openSetup (agent: Agent): Promise<{ key: string, token: string, html: string }> {
  const page = await agent.get('/enroll/totp')
  assert.equal(page.status, 200, page.text)
  return { key: keyOnPage(page.text), token: csrfFrom(page.text), html: page.text }
}

async function finish (agent: Agent, token: string, fields: Record<string, unknown>) {
  return agent.post('/enroll/totp').type('form').send({ _csrf: token, ...fields })
}

async function stepUp (app: TestApp, agent: Agent, user: User, code: string, next = '/') {
  const method = (await app.services.methods.listFor(user.id)).find((m) => m.kind === 'totp')!
  const token = await csrfFor(agent, '/step-up')
  return agent.post('/step-up/totp').type('form').send({ _csrf: token, methodId: method.id, code, next })
}

test('the served QR image decodes to exactly the otpauth URI of the key shown on the page', async () => {
  const { user, agent } = await signedIn()
  const { key, html } = await openSetup(agent)
  assert.match(html, /<img src="\/enroll\/totp\/qr\.png" alt="QR code for your authenticator app"/)
  assert.match(html, /<script type="module" src="\/static\/js\/copy\.js"><\/script>/)

  const qr = await agent.get('/enroll/totp/qr.png').buffer(true)
  assert.equal(qr.status, 200)
  assert.equal(qr.headers['content-type'], 'image/png')
  assert.equal(qr.headers['cache-control'], 'no-store')

  const issuer = t.config.totpIssuer
  assert.equal(issuer, 'MFA enrollment', 'the issuer defaults to the organisation name')
  const expected = `otpauth://totp/${encodeURIComponent(issuer)}:${encodeURIComponent(user.email)}` +
    `?issuer=${encodeURIComponent(issuer)}&secret=${key}&algorithm=SHA1&digits=6&period=30`
  const fromLibrary = new TOTP({ issuer, label: user.email, algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(key) }).toString()
  assert.equal(fromLibrary, expected, 'our expectation matches the URI format otpauth writes')
  assert.equal(decodeQr(qr.body as Buffer), expected)
})

test('the setup page is never cached and shows the key in groups of four with a copy button', async () => {
  const { agent } = await signedIn()
  const page = await agent.get('/enroll/totp')
  assert.equal(page.headers['cache-control'], 'no-store')
  assert.match(page.text, /<code id="totp-key">([A-Z2-7]{4} ){7}[A-Z2-7]{4}<\/code>/)
  // What the script says after copying comes with the button, in the page's language.
  assert.match(page.text, /<button type="button" class="button" data-copy-from="totp-key" data-copied="Copied" data-copy-failed="Could not copy\. Select the key and copy it yourself\." hidden>Copy key<\/button>/)
  assert.match(page.text, /inputmode="numeric" autocomplete="one-time-code"/)
  assert.match(page.text, /action="\/enroll\/totp\/restart"/)
  assert.match(page.text, /Start again with a new code/)

  const script = await agent.get('/static/js/copy.js')
  assert.equal(script.status, 200)
  assert.match(script.text, /navigator\.clipboard\.writeText/)

  const again = await agent.get('/enroll/totp')
  assert.equal(keyOnPage(again.text), keyOnPage(page.text), 'reloading shows the same pending setup')
})

test('a code from oathtool is accepted: the app appears on the home page, is audited and the user gets an email', async () => {
  const { user, agent } = await signedIn()
  const { key, token } = await openSetup(agent)

  const res = await finish(agent, token, { code: oathtool(key, t.clock.now()), name: 'Work phone' })
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/')

  const home = await agent.get('/')
  assert.match(home.text, /Your authenticator app is set up/)
  assert.match(home.text, /Work phone/)
  const methods = await t.services.methods.listFor(user.id)
  assert.deepEqual(methods.map((m) => [m.kind, m.name]), [['totp', 'Work phone']])
  const [added] = await t.services.audit.list({ subjectUserId: user.id, action: 'method.added' })
  assert.equal(JSON.parse(added.details).methodId, methods[0].id)
  assert.ok((await t.services.outbox.latest()).some((m) => m.channel === 'email' && m.recipient === user.email), 'an email went to the user')
  assert.equal(await count(t, 'pending_enrollments', 'user_id = ?', user.id), 0, 'the pending setup is used up')
})

test('the name is optional and defaults to "Authenticator app"', async () => {
  const { user, agent } = await signedIn()
  const { key, token } = await openSetup(agent)
  assert.equal((await finish(agent, token, { code: oathtool(key, t.clock.now()) })).status, 303)
  assert.equal((await t.services.methods.listFor(user.id))[0].name, 'Authenticator app')
})

test('the enrolling code cannot be used again for step-up, but the next code from the app works', async () => {
  const { user, agent } = await signedIn()
  const { key, token } = await openSetup(agent)
  const now = t.clock.now()
  const code = oathtool(key, now)
  assert.equal((await finish(agent, token, { code })).status, 303)

  const replay = await stepUp(t, agent, user, code)
  assert.equal(replay.status, 400)
  assert.match(replay.text, /already used/)

  const next = await stepUp(t, agent, user, oathtool(key, new Date(now.getTime() + 30_000)))
  assert.equal(next.status, 303)
})

test('five wrong codes lock code entry with the time shown, the right code is refused while locked, and it unlocks after 15 minutes', async () => {
  const { user, agent } = await signedIn()
  const { key, token } = await openSetup(agent)
  const lockedAt = t.clock.now()
  const until = new Date(lockedAt.getTime() + 15 * 60_000).toISOString().slice(11, 16)
  for (let i = 1; i <= 4; i++) {
    const res = await finish(agent, token, { code: '000000', name: 'Kept name' })
    assert.equal(res.status, 400, `attempt ${i}`)
    assert.match(res.text, /That code is not right/)
    assert.match(res.text, /value="Kept name"/, 'the typed name is kept')
    assert.equal(keyOnPage(res.text), key, 'the same QR code is shown again')
  }
  const fifth = await finish(agent, token, { code: '000000' })
  assert.equal(fifth.status, 429)
  assert.match(fifth.text, new RegExp(`code entry is paused for 15 minutes, until ${until} \\(UTC\\)`))

  const right = await finish(agent, token, { code: oathtool(key, t.clock.now()) })
  assert.equal(right.status, 429, 'even the right code is refused while locked')
  assert.match(right.text, /Too many failed attempts/)
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'totp.lockout' })).length, 1)

  t.clock.advance(14 * 60_000)
  assert.equal((await finish(agent, token, { code: oathtool(key, t.clock.now()) })).status, 429, 'still locked after 14 minutes')
  assert.equal(await t.services.methods.countFor(user.id), 0)

  // The setup lives as long as the lock, so after it the page hands out a fresh key.
  t.clock.advance(60_000)
  const fresh = await openSetup(agent)
  assert.equal((await finish(agent, fresh.token, { code: oathtool(fresh.key, t.clock.now()) })).status, 303)
  assert.equal(await t.services.methods.countFor(user.id), 1)
})

test('the database never holds a plain secret: pending and enrolled secrets are sealed under the current key', async () => {
  const enrolled = await signedIn()
  const setup = await openSetup(enrolled.agent)
  const sealedPending = (await sqlOn(t.services).value('SELECT secret_sealed FROM pending_enrollments WHERE user_id = ?', enrolled.user.id)) as string
  assert.match(sealedPending, new RegExp(`^v1\\.${t.config.encryptionKeyId}\\.`))
  assert.equal((await finish(enrolled.agent, setup.token, { code: oathtool(setup.key, t.clock.now()) })).status, 303)

  const waiting = await signedIn()
  const pendingKey = (await openSetup(waiting.agent)).key

  const rows = [
    ...await sqlOn(t.services).all('SELECT * FROM auth_methods'),
    ...await sqlOn(t.services).all('SELECT * FROM pending_enrollments')
  ] as Array<Record<string, unknown>>
  const sealed = rows.map((row) => row.secret_sealed).filter((value) => value !== null) as string[]
  assert.ok(sealed.length >= 2)
  for (const value of sealed) assert.match(value, new RegExp(`^v1\\.${t.config.encryptionKeyId}\\.`))
  for (const secret of [setup.key, pendingKey]) {
    for (const row of rows) assert.ok(!JSON.stringify(row).includes(secret), 'no row holds the secret in clear')
    // The database file and its write-ahead log, byte for byte (on PostgreSQL the server's files are out of reach: the rows are all there is to read).
    if (t.config.databaseUrl !== undefined) continue
    for (const file of readdirSync(t.dataDir).filter((name) => name.startsWith(path.basename(t.config.databaseFile)))) {
      assert.equal(readFileSync(path.join(t.dataDir, file)).includes(secret), false, `${file} does not contain the secret`)
    }
  }
})

test('a second method needs a step-up with the first: the page links to it and finishing is refused until then', async () => {
  const { user, agent } = await signedIn()
  const step = Math.floor(t.clock.now().getTime() / 30_000)
  await t.services.methods.addTotp(user.id, 'First app', KNOWN_SECRET, step - 2)
  t.clock.advance(1_000)

  const page = await agent.get('/enroll/totp')
  assert.equal(page.status, 403)
  assert.match(page.text, /first confirm it(&#39;|')s you with a method you already have/)
  assert.match(page.text, /href="\/step-up\?next=\/enroll\/totp"/)
  assert.doesNotMatch(page.text, /qr\.png/)
  assert.equal(await count(t, 'pending_enrollments', 'user_id = ?', user.id), 0, 'no secret was generated')

  const refused = await finish(agent, await csrfFor(agent, '/'), { code: '123456' })
  assert.equal(refused.status, 403)
  assert.match(refused.text, /href="\/step-up\?next=\/enroll\/totp"/)
  const homeToken = await csrfFor(agent, '/')
  const restart = await agent.post('/enroll/totp/restart').type('form').send({ _csrf: homeToken })
  assert.equal(restart.status, 403)

  const confirmed = await stepUp(t, agent, user, oathtool(KNOWN_SECRET, t.clock.now()), '/enroll/totp')
  assert.equal(confirmed.status, 303)
  assert.equal(confirmed.headers.location, '/enroll/totp')
  const { key, token } = await openSetup(agent)
  assert.equal((await finish(agent, token, { code: oathtool(key, t.clock.now()), name: 'Second app' })).status, 303)
  assert.deepEqual((await t.services.methods.listFor(user.id)).map((m) => m.name), ['First app', 'Second app'])
})

test('starting again replaces the pending key with a new one', async () => {
  const { user, agent } = await signedIn()
  const first = await openSetup(agent)
  const res = await agent.post('/enroll/totp/restart').type('form').send({ _csrf: first.token })
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/enroll/totp')
  const second = await openSetup(agent)
  assert.notEqual(second.key, first.key)
  assert.match(second.html, /Here is a new QR code/)
  assert.equal(await count(t, 'pending_enrollments', 'user_id = ?', user.id), 1)

  const stale = await finish(agent, second.token, { code: oathtool(first.key, t.clock.now()) })
  assert.equal(stale.status, 400, 'a code from the replaced key no longer works')
  assert.equal((await finish(agent, second.token, { code: oathtool(second.key, t.clock.now()) })).status, 303)
})

test('bad input on every route gets a clear 4xx, never a 5xx, and stores no method', async () => {
  const { user, agent } = await signedIn()
  const homeToken = await csrfFor(agent, '/')

  const noSetup = await finish(agent, homeToken, { code: '123456' })
  assert.equal(noSetup.status, 400)
  assert.match(noSetup.text, /Start again to get a new QR code/)
  assert.match(noSetup.text, /Start again with a new code/)
  const noQr = await agent.get('/enroll/totp/qr.png')
  assert.equal(noQr.status, 404)
  assert.match(noQr.text, /no authenticator-app setup in progress/)
  const noQrJson = await agent.get('/enroll/totp/qr.png').set('accept', 'application/json')
  assert.equal(noQrJson.status, 404)
  assert.equal(noQrJson.body.error.code, 'no_pending_setup')

  const { key, token } = await openSetup(agent)
  const pendingId = await sqlOn(t.services).value('SELECT id FROM pending_enrollments WHERE user_id = ?', user.id)
  const forms: Array<[string, Record<string, unknown>, number, RegExp]> = [
    ['missing code', {}, 400, /Some of what you sent is not valid: body must have required property &#39;code&#39;/],
    ['oversized code', { code: '1'.repeat(21) }, 400, /must NOT have more than 20 characters/],
    ['non-digit code', { code: 'abcdef' }, 400, /That code is not right/],
    ['oversized name', { code: '123456', name: 'n'.repeat(201) }, 400, /must NOT have more than 200 characters/],
    ['name over 60 characters', { code: oathtool(key, t.clock.now()), name: 'n'.repeat(61) }, 400, /Give the app a name of up to 60 characters/],
  ]
  for (const [what, fields, status, message] of forms) {
    const res = await finish(agent, token, fields)
    assert.equal(res.status, status, what)
    assert.match(res.text, message, what)
  }
  const json: Array<[string, unknown]> = [
    ['code as an object', { code: { digits: '123456' } }],
    ['code as a nested list', { code: [['123456']] }],
    ['name as an object', { code: '123456', name: { first: 'x' } }],
    ['body as a list', ['123456']]
  ]
  for (const [what, body] of json) {
    const res = await agent.post('/enroll/totp').set('accept', 'application/json').set('x-csrf-token', token).send(body as object)
    assert.equal(res.status, 400, what)
    assert.equal(res.body.error.code, 'invalid_input', what)
  }
  // A CSRF field that is not a token is refused as forged (the CSRF check comes before the body's schema).
  const restartWrongType = await agent.post('/enroll/totp/restart').set('accept', 'application/json').set('x-csrf-token', token).send({ _csrf: { x: 1 } })
  assert.equal(restartWrongType.status, 403)

  assert.equal(await t.services.methods.countFor(user.id), 0)
  assert.equal(await sqlOn(t.services).value('SELECT id FROM pending_enrollments WHERE user_id = ?', user.id), pendingId, 'the pending setup is untouched')
})

test('an expired setup (after 15 minutes) is refused with a way to start again', async () => {
  const { user, agent } = await signedIn()
  const { key, token } = await openSetup(agent)
  t.clock.advance(16 * 60_000)
  const res = await finish(agent, token, { code: oathtool(key, t.clock.now()) })
  assert.equal(res.status, 400)
  assert.match(res.text, /This setup has expired/)
  assert.match(res.text, /Start again with a new code/)
  assert.equal((await agent.get('/enroll/totp/qr.png')).status, 404)
  assert.equal(await t.services.methods.countFor(user.id), 0)
  assert.notEqual((await openSetup(agent)).key, key, 'the page starts a fresh setup')
})

test('anonymous visitors are sent to sign in on every route', async () => {
  const agent = anonymous(t)
  for (const url of ['/enroll/totp', '/enroll/totp/qr.png']) {
    const res = await agent.get(url)
    assert.equal(res.status, 303, url)
    assert.equal(res.headers.location, `/login?next=${encodeURIComponent(url)}`)
  }
  const token = await csrfFor(agent, '/login')
  for (const url of ['/enroll/totp', '/enroll/totp/restart']) {
    const res = await agent.post(url).type('form').send({ _csrf: token, code: '123456' })
    assert.equal(res.status, 303, url)
    assert.equal(res.headers.location, '/login')
  }
})

test('a first method is refused from an untrusted address with an explanation, and allowed in a pass session', async () => {
  const office = await startTestApp({ TRUSTED_NETWORKS: '203.0.113.0/24' })
  try {
    const { user, agent } = await signedIn(office)
    const page = await agent.get('/enroll/totp')
    assert.equal(page.status, 403)
    assert.match(page.text, /can only be set up from your organisation(&#39;|')s network/)
    assert.doesNotMatch(page.text, /qr\.png/)
    assert.equal((await agent.get('/enroll/totp/qr.png')).status, 403, 'the image asks the page\'s question first')
    const token = await csrfFor(agent, '/')
    assert.equal((await agent.post('/enroll/totp/restart').type('form').send({ _csrf: token })).status, 403)
    assert.equal((await finish(agent, token, { code: '123456' })).status, 403)
    assert.equal(await count(office, 'pending_enrollments', 'user_id = ?', user.id), 0)

    const { pass } = await office.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: true }, { id: 'helpdesk-id', label: 'test' })
    const withPass = anonymous(office)
    const loginToken = await csrfFor(withPass, '/login/pass')
    const login = await withPass.post('/login/pass').type('form').send({ email: user.email, pass, _csrf: loginToken })
    assert.equal(login.status, 303, login.text)
    const { key, token: passToken } = await openSetup(withPass)
    assert.equal((await finish(withPass, passToken, { code: oathtool(key, office.clock.now()) })).status, 303)
    assert.equal(await office.services.methods.countFor(user.id), 1)
    const [added] = await office.services.audit.list({ subjectUserId: user.id, action: 'method.added' })
    assert.equal(JSON.parse(added.details).passSession, true)
  } finally {
    await office.close()
  }
})

test('after rotate-key the app runs on the new key alone: rows name the new key and codes still verify', async () => {
  const original = await startTestApp()
  const { user, agent } = await signedIn(original)
  const { key, token } = await openSetup(agent)
  assert.equal((await finish(agent, token, { code: oathtool(key, original.clock.now()) })).status, 303)

  const rotated = await runCli(['rotate-key'], { dataDir: original.dataDir, env: { ...original.databaseEnv, ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEYS_PREVIOUS: TEST_SECRETS.ENCRYPTION_KEY } })
  const config = testConfig({ ...original.databaseEnv, ENCRYPTION_KEY: NEW_KEY }, original.dataDir)
  assert.equal(rotated.code, 0, rotated.stderr)
  assert.equal(rotated.stdout.trim(), `re-sealed 1 secret under key ${config.encryptionKeyId}`)

  const clock = new FakeClock(new Date(original.clock.now().getTime() + 30_000))
  const services = await createServices(config, { clock })
  const app = await buildApp(services, { logger: false })
  const restarted = { app, services, config, clock, dataDir: original.dataDir, databaseEnv: original.databaseEnv, close: async () => { await app.close(); await services.close() } }
  try {
    await app.ready()
    const sealed = (await sqlOn(services).value('SELECT secret_sealed FROM auth_methods WHERE user_id = ?', user.id)) as string
    assert.match(sealed, new RegExp(`^v1\\.${config.encryptionKeyId}\\.`))
    assert.notEqual(config.encryptionKeyId, original.config.encryptionKeyId)

    const again = await signIn(restarted, user.email)
    const res = await stepUp(restarted, again, user, oathtool(key, clock.now()))
    assert.equal(res.status, 303, res.text)
  } finally {
    await restarted.close()
    await original.close()
  }
})

test('the QR image of a pending setup is refused once the step-up that opened it has lapsed, as the page is', async () => {
  const { user, agent } = await signedIn()
  await t.services.methods.addTotp(user.id, 'First app', KNOWN_SECRET, Math.floor(t.clock.now().getTime() / 30_000) - 2)
  assert.equal((await stepUp(t, agent, user, oathtool(KNOWN_SECRET, t.clock.now()), '/enroll/totp')).status, 303)
  await openSetup(agent)
  assert.equal((await agent.get('/enroll/totp/qr.png')).status, 200)

  t.clock.advance(11 * 60_000)
  assert.equal((await agent.get('/enroll/totp')).status, 403, 'the page asks for a new step-up')
  const qr = await agent.get('/enroll/totp/qr.png')
  assert.equal(qr.status, 403)
  assert.notEqual(qr.headers['content-type'], 'image/png', 'the pending seed is not drawn')
  assert.equal(await count(t, 'pending_enrollments', 'user_id = ?', user.id), 1, 'the setup waits for the user to confirm it\'s them again')
})
