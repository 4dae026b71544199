import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { anonymous, createTestUser, csrfFor, sessionCookieOf, signIn, startTestApp, submitForm, totpCode, TEST_PASSWORD, type Agent, type TestApp } from '../helpers/app.ts'
import { addSoftwarePasskey, passkeySignIn, passkeyStepUp, SoftwareAuthenticator } from '../helpers/webauthn.ts'
import type { User } from '../../server/domain/users.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra, type FakeEntra } from '../fakes/graph/server.ts'
import { sqlOn } from '../helpers/sql.ts'

// Where sign-in and step-up send people next (`next`) is always a path on this portal: never another site, and
// never a value that a Location header cannot carry (which used to fail with a 500 after the session was made).

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

/** Values that lead off the portal once a browser has read them (tabs and newlines are dropped, "\" is "/"). */
const OFF_SITE = ['/\t/evil.example', '/\n/evil.example', '/\\evil.example', '//evil.example', '/.//evil.example', '/x/..//evil.example', 'https://evil.example/', ' //evil.example']
/** Values no header can carry, or that hide what they are (CR/LF, NUL, right-to-left override, emoji, accents). */
const UNSENDABLE = ['/\r\nSet-Cookie: planted=1', '/ok\u0000', '/\u202egro.elpmaxe', '/\u200fadmin', '/\u{1F600}', '/caf\u00e9']

async function postLogin (email: string, next: string) {
  const agent = anonymous(t)
  const token = await csrfFor(agent, '/login')
  const res = await agent.post('/login').type('form').send({ email, password: TEST_PASSWORD, next, _csrf: token })
  return { agent, res }
}

test('after signing in with a password, a next that leads off the portal lands on the home page instead', async () => {
  const user = await createTestUser(t.services)
  for (const next of OFF_SITE) {
    const { res } = await postLogin(user.email, next)
    assert.equal(res.status, 303, JSON.stringify(next))
    assert.equal(res.headers.location, '/', JSON.stringify(next))
  }
})

test('a next with characters a header cannot carry still signs the user in, lands on the home page, and keeps the session', async () => {
  const user = await createTestUser(t.services)
  for (const next of UNSENDABLE) {
    const { agent, res } = await postLogin(user.email, next)
    assert.equal(res.status, 303, JSON.stringify(next))
    assert.equal(res.headers.location, '/', JSON.stringify(next))
    assert.ok(sessionCookieOf(res) !== undefined, `the sign-in cookie is sent for ${JSON.stringify(next)}`)
    assert.equal((await agent.get('/')).status, 200, `signed in for ${JSON.stringify(next)}`)
    assert.doesNotMatch(JSON.stringify(res.headers), /planted/)
  }
  // Each audited sign-in is one that stuck: as many sessions as "signin.success" entries.
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'signin.success' })).length, UNSENDABLE.length)
  assert.equal(await sqlOn(t.services).value('SELECT count(*) FROM sessions WHERE user_id = ?', user.id), UNSENDABLE.length)
})

test('a signed-in visitor opening the sign-in page with a next that leads off the portal goes home', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  for (const query of ['/%09/evil.example', '/%0A/evil.example', '%2F%2Fevil.example', '/.//evil.example', '%F0%9F%98%80', '/%0D%0ASet-Cookie:%20planted=1']) {
    const res = await agent.get(`/login?next=${query}`)
    assert.equal(res.status, 303, query)
    assert.equal(res.headers.location, '/', query)
  }
  // A path on the portal, with its query, is kept (percent-encoded as it was sent).
  const kept = await agent.get(`/login?next=${encodeURIComponent('/helpdesk?q=ada lovelace')}`)
  assert.equal(kept.headers.location, '/helpdesk?q=ada%20lovelace')
})

test('the sign-in page never writes a next that leads off the portal into its form or passkey button', async () => {
  const page = await anonymous(t).get('/login?next=/%09/evil.example')
  assert.equal(page.status, 200)
  assert.match(page.text, /<input type="hidden" name="next" value="\/">/)
  assert.match(page.text, /data-passkey-action="sign-in" data-next="\/"/)
})

test('after a step-up, a next that leads off the portal or cannot be sent lands on the home page', async () => {
  const user = await createTestUser(t.services)
  const secret = new Secret({ size: 20 }).base32
  const app = await t.services.methods.addTotp(user.id, 'Phone app', secret, 0)
  const agent = await signIn(t, user.email)
  const page = await agent.get('/step-up?next=/%09/evil.example')
  assert.match(page.text, /<input type="hidden" name="next" value="\/">/)
  let at = t.clock.now().getTime()
  for (const next of ['/\t/evil.example', '/\r\nSet-Cookie: planted=1']) {
    const res = await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.id, code: totpCode(secret, at), next })
    assert.equal(res.status, 303, JSON.stringify(next))
    assert.equal(res.headers.location, '/', JSON.stringify(next))
    at += 30_000
    t.clock.advance(30_000)
  }
})

test('after a passkey sign-in, the page is told to go home when next leads off the portal', async () => {
  const authenticator = new SoftwareAuthenticator()
  const user = await createTestUser(t.services)
  await addSoftwarePasskey(t, user, authenticator)
  for (const next of ['/\t/evil.example', '/\u{1F600}', '/.//evil.example']) {
    const { res } = await passkeySignIn(t, authenticator, next)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.redirect, '/', JSON.stringify(next))
  }
})

// Each case signs in afresh (a step-up that finishes a sign-in), so these have their own app and sign-in rate limit.
describe('a step-up with a next no header can carry', () => {
  let st: TestApp
  before(async () => { st = await startTestApp() })
  after(async () => { await st.close() })

  /** A user whose MFA is enforced: a password sign-in owes a step-up before anything else opens. */
  async function enforcedUser (): Promise<User> {
    const user = await createTestUser(st.services)
    await sqlOn(st.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', st.clock.now().getTime(), user.id)
    return user
  }

  /** The step-up finished signing in: a new session id was sent, and the portal is open to it. */
  async function assertSteppedUp (agent: Agent, res: { status: number, headers: Record<string, unknown> }, signedInCookie: string, label: string): Promise<void> {
    const cookie = sessionCookieOf(res)
    assert.ok(cookie !== undefined && cookie !== signedInCookie, `${label}: a new session id after the step-up`)
    const home = await agent.get('/')
    assert.equal(home.status, 200, `${label}: signed in, the second factor counted`)
    assert.match(home.text, /you are confirmed for the next few minutes/, label)
  }

  test('an authenticator-app step-up with a next no header can carry counts once: home page, new session, code used up', async () => {
    for (const next of UNSENDABLE) {
      const label = JSON.stringify(next)
      const user = await enforcedUser()
      const secret = new Secret({ size: 20 }).base32
      const app = await st.services.methods.addTotp(user.id, 'Phone app', secret, 0)
      const agent = await signIn(st, user.email)
      const code = totpCode(secret, st.clock.now().getTime())
      const res = await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.id, code, next })
      assert.equal(res.status, 303, label)
      assert.equal(res.headers.location, '/', label)
      assert.doesNotMatch(JSON.stringify(res.headers), /planted/, label)
      await assertSteppedUp(agent, res, agent.sessionCookie, label)
      const replay = await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.id, code, next: '/' })
      assert.equal(replay.status, 400, `${label}: the code works once`)
      assert.match(replay.text, /That code was already used/, label)
    }
  })

  test('a text-message step-up with a next no header can carry counts once: home page, new session, code used up', async () => {
    let line = 100
    for (const next of UNSENDABLE) {
      const label = JSON.stringify(next)
      const user = await enforcedUser()
      const phone = `+1415555${String(line++).padStart(4, '0')}`
      const method = await st.services.methods.addPhone(user.id, 'Work phone', phone)
      const agent = await signIn(st, user.email)
      const sent = await submitForm(agent, '/step-up', '/step-up/phone/send', { methodId: method.id, next })
      assert.equal(sent.status, 303, label)
      assert.equal(sent.headers.location, '/step-up?next=%2F', label)
      const text = (await st.services.outbox.latest(1000)).find((m) => m.channel === 'sms' && m.recipient === phone)?.bodyText ?? ''
      const code = /\b(\d{6})\b/.exec(text)?.[1] ?? ''
      const res = await submitForm(agent, '/step-up', '/step-up/phone', { code, next })
      assert.equal(res.status, 303, label)
      assert.equal(res.headers.location, '/', label)
      await assertSteppedUp(agent, res, agent.sessionCookie, label)
      const replay = await submitForm(agent, '/step-up', '/step-up/phone', { code, next: '/' })
      assert.equal(replay.status, 400, `${label}: the code works once`)
    }
  })

  test('a passkey step-up with a next no header can carry counts once and tells the page to go home', async () => {
    for (const next of UNSENDABLE) {
      const label = JSON.stringify(next)
      const user = await enforcedUser()
      const authenticator = new SoftwareAuthenticator()
      await addSoftwarePasskey(st, user, authenticator)
      const agent = await signIn(st, user.email)
      const { res } = await passkeyStepUp(st, agent, authenticator, next)
      assert.equal(res.status, 200, `${label}: ${JSON.stringify(res.body)}`)
      assert.equal(res.body.redirect, '/', label)
      await assertSteppedUp(agent, res, agent.sessionCookie, label)
    }
  })
})

describe('Sign in with Microsoft', () => {
  const REDIRECT = 'http://localhost:3000/login/microsoft/callback'
  let entra: TestApp
  let fake: FakeEntra

  before(async () => {
    fake = await startFakeEntra({ now: () => entra?.clock.now() ?? new Date('2026-11-25T09:00:10Z') })
    entra = await startTestApp({ PROVIDERS: 'entra', ...fakeEnv(fake, { ENTRA_REDIRECT_URI: REDIRECT, ENTRA_AUTH_CONTEXT: 'c1' }) as Record<string, string>, TRUSTED_NETWORKS: '127.0.0.0/8,::1/128' })
    entra.clock.set('2026-11-25T09:00:10Z')
  })
  after(async () => {
    await entra.close()
    await fake.close()
  })

  test('the way back from Microsoft never leads off the portal', async () => {
    const who = fake.tenant.addUser({ displayName: 'Nina Next', methods: ['fido2'] })
    await entra.services.directorySync.sync(entra.services.providers.entra)
    fake.identity.signInAs(who.id, { mfa: true })
    const agent = anonymous(entra)
    const start = await agent.get('/login/microsoft?next=/%09/evil.example')
    assert.equal(start.status, 303)
    const answer = await fetch(start.headers.location, { redirect: 'manual' })
    const callback = new URL(answer.headers.get('location')!)
    const res = await agent.get(callback.pathname + callback.search)
    assert.equal(res.status, 303)
    assert.equal(res.headers.location, '/')
    // Signed in now: the start page sends a visitor with a session straight to next, which is checked too.
    const again = await agent.get('/login/microsoft?next=/.//evil.example')
    assert.equal(again.status, 303)
    assert.equal(again.headers.location, '/')
  })
})
