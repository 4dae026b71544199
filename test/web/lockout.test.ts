import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import request from 'supertest'
import { anonymous, createTestUser, csrfFor, csrfFrom, signIn, startTestApp, submitForm, TEST_PASSWORD, type Agent, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

/** One sign-in attempt from `browser`, keeping whatever cookies it holds (a device cookie among them). */
async function tryPassword (browser: Agent, email: string, password: string) {
  const token = await csrfFor(browser, '/login')
  return browser.post('/login').type('form').send({ email, password, _csrf: token })
}

async function attempt (email: string, password: string, ip?: string) {
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login')
  const req = agent.post('/login').type('form')
  if (ip !== undefined) req.set('x-forwarded-for', ip)
  return req.send({ email, password, _csrf: token })
}

test('the sixth wrong password in a minute gets the lockout message even with the right password, and is audited', async () => {
  const user = await createTestUser(t.services)
  for (let i = 1; i <= 4; i++) {
    const res = await attempt(user.email, `wrong-${i}`)
    assert.equal(res.status, 401, `attempt ${i}`)
  }
  const fifth = await attempt(user.email, 'wrong-5')
  assert.equal(fifth.status, 429)
  const sixth = await attempt(user.email, TEST_PASSWORD)
  assert.equal(sixth.status, 429)
  assert.match(sixth.text, /Too many failed attempts\. For your security, sign-in is paused for 15 minutes/)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) AS n FROM sessions WHERE user_id = ?', user.id), 0)

  const lockouts = await t.services.audit.list({ subjectUserId: user.id, action: 'signin.lockout' })
  assert.equal(lockouts.length, 1)
  assert.equal(JSON.parse(lockouts[0].details).scope, 'account')
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'signin.refused_locked' })).length, 1)

  t.clock.advance(15 * 60_000)
  const later = await attempt(user.email, TEST_PASSWORD)
  assert.equal(later.status, 303, 'the lock lifts after 15 minutes')
})

test('a success resets the account count, so occasional typos never lock anyone out', async () => {
  const user = await createTestUser(t.services)
  // One browser, as a person types: after its first success it is a known device with a count of its own.
  const browser = anonymous(t)
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 4; i++) assert.equal((await tryPassword(browser, user.email, 'typo')).status, 401)
    assert.equal((await tryPassword(browser, user.email, TEST_PASSWORD)).status, 303)
    await submitForm(browser, '/', '/logout')
  }
})

test('one address trying many accounts is locked per address, without locking those accounts for others', async () => {
  const t2 = await startTestApp({ TRUST_PROXY: '127.0.0.1,::1', SIGNIN_MAX_FAILURES_PER_IP: '3' })
  try {
    const attempt2 = async (email: string, password: string, ip: string) => {
      const agent = anonymous(t2)
      const token = await csrfFor(agent, '/login')
      return agent.post('/login').type('form').set('x-forwarded-for', ip).send({ email, password, _csrf: token })
    }
    const victim = await createTestUser(t2.services)
    for (const n of [1, 2]) assert.equal((await attempt2(`guess${n}@test.example`, 'x', '203.0.113.9')).status, 401)
    assert.equal((await attempt2('guess3@test.example', 'x', '203.0.113.9')).status, 429)
    assert.equal((await attempt2(victim.email, TEST_PASSWORD, '203.0.113.9')).status, 429, 'the attacking address stays locked')
    assert.equal((await attempt2(victim.email, TEST_PASSWORD, '198.51.100.7')).status, 303, 'the account itself is fine elsewhere')
    const lockout = (await t2.services.audit.list({ action: 'signin.lockout' }))[0]
    assert.equal(JSON.parse(lockout.details).scope, 'ip')
    assert.equal(lockout.ip, '203.0.113.9')
  } finally {
    await t2.close()
  }
})

test('a forged left-most X-Forwarded-For entry does not evade the per-address lockout', async () => {
  const t2 = await startTestApp({ TRUST_PROXY: '127.0.0.1,::1', SIGNIN_MAX_FAILURES_PER_IP: '3' })
  try {
    const attempt2 = async (email: string, forwardedFor: string) => {
      const agent = anonymous(t2)
      const token = await csrfFor(agent, '/login')
      return agent.post('/login').type('form').set('x-forwarded-for', forwardedFor).send({ email, password: 'guess', _csrf: token })
    }
    const statuses = []
    for (let n = 1; n <= 5; n++) statuses.push((await attempt2(`spray${n}@test.example`, `198.18.0.${n}, 203.0.113.9`)).status)
    assert.deepEqual(statuses, [401, 401, 429, 429, 429])
    const lockout = await t2.services.audit.list({ action: 'signin.lockout' })
    assert.equal(lockout.length, 1)
    assert.equal(JSON.parse(lockout[0].details).scope, 'ip')
    assert.equal(lockout[0].ip, '203.0.113.9')
  } finally {
    await t2.close()
  }
})

function audited (app: TestApp, userId: string, action: string) {
  return app.services.audit.list({ subjectUserId: userId, action })
}

test('many guesses at the same moment are checked at most five times, and the right password among them cannot slip in after the limit', async () => {
  const app = await startTestApp()
  try {
    const user = await createTestUser(app.services)
    // Each guess from its own fresh browser; tokens first, so that the 21 sign-ins leave together.
    const guesses = await Promise.all(Array.from({ length: 21 }, async (_, i) => {
      const browser = anonymous(app)
      return { browser, token: await csrfFor(browser, '/login'), password: i === 13 ? TEST_PASSWORD : `wrong-${i}` }
    }))
    const answers = await Promise.all(guesses.map(({ browser, token, password }) =>
      browser.post('/login').type('form').send({ email: user.email, password, _csrf: token })))

    const failures = (await audited(app, user.id, 'signin.failure')).length
    const successes = (await audited(app, user.id, 'signin.success')).length
    const refused = (await audited(app, user.id, 'signin.refused_locked')).length
    assert.ok(failures <= 5, `${failures} wrong passwords were checked`)
    assert.ok(failures + successes <= 6)
    assert.equal(failures + successes + refused, 21, 'every guess was either checked or refused unchecked')
    assert.ok(refused >= 15)
    assert.deepEqual(answers.map((a) => a.status).filter((s) => s !== 401 && s !== 429 && s !== 303), [])
    assert.equal(answers.filter((a) => a.status === 303).length, successes)
    assert.equal((await audited(app, user.id, 'signin.lockout')).length, failures === 5 ? 1 : 0)
  } finally {
    await app.close()
  }
})

/** The owner's browser: it signed in once (receiving its device cookie), then signed out. */
async function ownersBrowser (app: TestApp, email: string): Promise<Agent> {
  const browser = await signIn(app, email)
  assert.equal((await submitForm(browser, '/', '/logout')).status, 303)
  return browser
}

/** Five wrong passwords from five fresh browsers elsewhere: the account is locked for unrecognised browsers. */
async function lockFromElsewhere (app: TestApp, email: string): Promise<void> {
  for (let i = 1; i <= 5; i++) {
    const res = await tryPassword(anonymous(app), email, `attacker-${i}`)
    assert.equal(res.status, i < 5 ? 401 : 429, `attacker guess ${i}`)
  }
}

test('a successful sign-in leaves a signed device cookie that names the account only by a keyed hash', async () => {
  const app = await startTestApp({ PUBLIC_URL: 'https://mfa.test.example' })
  try {
    const user = await createTestUser(app.services)
    // Over https the CSRF cookie is Secure, which the test client keeps to itself over http: send it by hand.
    const page = await request(app.app.server).get('/login')
    const csrfCookie = ((page.headers['set-cookie'] as unknown as string[]) ?? []).map((c) => c.split(';')[0])
    const res = await request(app.app.server).post('/login').type('form').set('cookie', csrfCookie.join('; '))
      .send({ email: user.email, password: TEST_PASSWORD, _csrf: csrfFrom(page.text) })
    assert.equal(res.status, 303)
    const device = ((res.headers['set-cookie'] as unknown as string[]) ?? []).find((c) => c.startsWith('mfa_device_'))
    assert.ok(device !== undefined, 'a device cookie is set')
    assert.match(device, /; HttpOnly/)
    assert.match(device, /; SameSite=Lax/)
    assert.match(device, /; Secure/)
    assert.match(device, /; Max-Age=\d{7,}/, 'it is kept for months')
    const local = user.email.split('@')[0]
    assert.ok(!decodeURIComponent(device).includes(local), 'no email address in the cookie')
  } finally {
    await app.close()
  }
})

test('an attacker elsewhere cannot lock the owner out: the owner\'s browser still signs in with the right password', async () => {
  const app = await startTestApp()
  try {
    const owner = await createTestUser(app.services)
    const browser = await ownersBrowser(app, owner.email)
    await lockFromElsewhere(app, owner.email)
    assert.equal((await tryPassword(anonymous(app), owner.email, TEST_PASSWORD)).status, 429, 'unrecognised browsers stay locked out')

    const res = await tryPassword(browser, owner.email, TEST_PASSWORD)
    assert.equal(res.status, 303, 'the owner\'s own browser gets in')
    const lockout = await audited(app, owner.id, 'signin.lockout')
    assert.equal(lockout.length, 1)
    assert.equal(JSON.parse(lockout[0].details).scope, 'account')
    assert.equal((await audited(app, owner.id, 'signin.success')).length, 2)
  } finally {
    await app.close()
  }
})

test('the owner\'s browser gets a lockout of its own after too many wrong passwords from it', async () => {
  const app = await startTestApp()
  try {
    const owner = await createTestUser(app.services)
    const browser = await ownersBrowser(app, owner.email)
    for (let i = 1; i <= 4; i++) assert.equal((await tryPassword(browser, owner.email, `typo-${i}`)).status, 401)
    assert.equal((await tryPassword(browser, owner.email, 'typo-5')).status, 429)
    const locked = await tryPassword(browser, owner.email, TEST_PASSWORD)
    assert.equal(locked.status, 429)
    assert.match(locked.text, /sign-in is paused for 15 minutes/)
    const lockout = await audited(app, owner.id, 'signin.lockout')
    assert.equal(lockout.length, 1)
    assert.equal(JSON.parse(lockout[0].details).scope, 'device')
    assert.equal(JSON.parse((await audited(app, owner.id, 'signin.refused_locked'))[0].details).scope, 'device')

    app.clock.advance(15 * 60_000)
    assert.equal((await tryPassword(browser, owner.email, TEST_PASSWORD)).status, 303, 'the device lock lifts after 15 minutes')
  } finally {
    await app.close()
  }
})

test('the per-address lockout does not hit a browser with a valid device cookie', async () => {
  const app = await startTestApp({ SIGNIN_MAX_FAILURES_PER_IP: '3' })
  try {
    const owner = await createTestUser(app.services)
    const browser = await ownersBrowser(app, owner.email)
    // Someone on the same address sprays other accounts until the address is locked.
    for (let n = 1; n <= 3; n++) assert.equal((await tryPassword(anonymous(app), `spray${n}@test.example`, 'x')).status, n < 3 ? 401 : 429)
    assert.equal((await tryPassword(anonymous(app), owner.email, TEST_PASSWORD)).status, 429, 'unrecognised browsers at the address are refused')
    assert.equal((await tryPassword(browser, owner.email, TEST_PASSWORD)).status, 303)
  } finally {
    await app.close()
  }
})

test('a tampered device cookie, or one from another account, counts as an unrecognised browser', async () => {
  const app = await startTestApp()
  try {
    const owner = await createTestUser(app.services)
    const other = await createTestUser(app.services)
    const ownerCookie = deviceCookieOf(await ownersBrowser(app, owner.email))
    const otherCookie = deviceCookieOf(await ownersBrowser(app, other.email))
    await lockFromElsewhere(app, owner.email)

    const [name, value] = ownerCookie.split('=')
    const tampered = anonymous(app)
    plant(tampered, `${name}=${value.replace(/^(.{50})(.)/, (_, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'))}`)
    const foreign = anonymous(app)
    plant(foreign, `${name}=${otherCookie.split('=').slice(1).join('=')}`)
    for (const browser of [tampered, foreign]) {
      assert.equal((await tryPassword(browser, owner.email, TEST_PASSWORD)).status, 429)
    }
    const refusals = (await audited(app, owner.id, 'signin.refused_locked')).map((r) => JSON.parse(r.details).scope)
    assert.deepEqual(refusals, ['account', 'account'])
  } finally {
    await app.close()
  }
})

/** The `name=value` of the device cookie a browser holds. */
function deviceCookieOf (browser: Agent): string {
  const jar = (browser as unknown as { jar: { getCookies (info: unknown): { toValueString (): string } } }).jar
  const pairs = jar.getCookies({ domain: '127.0.0.1', path: '/login', secure: false, script: false }).toValueString().split('; ')
  const device = pairs.find((pair) => pair.startsWith('mfa_device_'))
  assert.ok(device !== undefined, 'the browser holds a device cookie')
  return device
}

/** Puts a cookie in a browser's jar, as a script or a hand-edited cookie store would. */
function plant (browser: Agent, pair: string): void {
  const jar = (browser as unknown as { jar: { setCookie (cookie: string, domain: string, path: string): void } }).jar
  jar.setCookie(`${pair}; Path=/`, '127.0.0.1', '/')
}
