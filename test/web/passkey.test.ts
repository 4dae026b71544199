import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import type { User } from '../../server/domain/users.ts'
import { anonymous, createTestUser, csrfFor, sessionCookieOf, signIn, startTestApp, submitForm, totpCode, type Agent, type TestApp } from '../helpers/app.ts'
import { addSoftwarePasskey, pageToken, passkeySignIn, passkeyStepUp, postJson, SoftwareAuthenticator } from '../helpers/webauthn.ts'
import { sqlOn } from '../helpers/sql.ts'

// The ceremonies in a real browser are covered in test/browser/passkey.test.ts. Here: everything a client can
// get wrong, answered with a JSON error that says what happened, and nothing stored; and, with a software
// authenticator, what an assertion with or without user verification (PIN, biometric) is worth.

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

/** Shaped like a browser's response but signed by nothing: it passes the schema and fails verification. */
const FORGED_REGISTRATION = {
  id: 'AAAAAAAAAAAAAAAAAAAAAA',
  rawId: 'AAAAAAAAAAAAAAAAAAAAAA',
  type: 'public-key',
  response: { clientDataJSON: 'e30', attestationObject: 'oA' },
  clientExtensionResults: {}
}

const FORGED_ASSERTION = {
  id: 'AAAAAAAAAAAAAAAAAAAAAA',
  rawId: 'AAAAAAAAAAAAAAAAAAAAAA',
  type: 'public-key',
  response: { clientDataJSON: 'e30', authenticatorData: 'AAAA', signature: 'AAAA' },
  clientExtensionResults: {}
}

async function signedIn (testApp: TestApp = t): Promise<{ user: User, agent: Agent, token: string }> {
  const user = await createTestUser(testApp.services)
  const agent = await signIn(testApp, user.email)
  // From the sign-out form: pages that refuse enrollment carry no script, so no csrf-token meta.
  return { user, agent, token: await csrfFor(agent, '/') }
}

async function passkeysOf (user: User, testApp: TestApp = t) {
  return (await testApp.services.methods.listFor(user.id)).filter((m) => m.kind === 'passkey')
}

function assertJsonError (res: { status: number, body: { error?: { code?: string, message?: string } } }, status: number, code: string): void {
  assert.equal(res.status, status, JSON.stringify(res.body))
  assert.equal(res.body.error?.code, code)
  assert.ok((res.body.error?.message ?? '').length > 10, 'the error carries a message for people')
}

test('anonymous visitors are sent to sign in from the passkey page and get 401 from its JSON routes', async () => {
  const page = await anonymous(t).get('/enroll/passkey')
  assert.equal(page.status, 303)
  assert.equal(page.headers.location, '/login?next=%2Fenroll%2Fpasskey')

  const agent = anonymous(t)
  const token = await pageToken(agent, '/login')
  assertJsonError(await postJson(agent, '/enroll/passkey/options', token, {}), 401, 'unauthenticated')
  assertJsonError(await postJson(agent, '/enroll/passkey/verify', token, { challengeId: 'x', response: FORGED_REGISTRATION }), 401, 'unauthenticated')
})

test('the passkey page explains passkeys and offers an optional name and the create button', async () => {
  const { agent } = await signedIn()
  const page = await agent.get('/enroll/passkey')
  assert.equal(page.status, 200)
  assert.match(page.text, /<h1>Add a passkey or security key<\/h1>/)
  assert.match(page.text, /<label for="passkey-name">Name \(optional\)<\/label>/)
  assert.match(page.text, /<input id="passkey-name"[^>]*maxlength="60"/)
  assert.match(page.text, /data-passkey-action="register"/)
  assert.match(page.text, /<script type="module" src="\/static\/js\/passkey.js"><\/script>/)
})

test('the browser library and the page script are served from the portal itself as JavaScript', async () => {
  const agent = anonymous(t)
  for (const path of ['/static/js/passkey.js', '/static/vendor/simplewebauthn/index.js', '/static/vendor/simplewebauthn/methods/startRegistration.js']) {
    const res = await agent.get(path)
    assert.equal(res.status, 200, path)
    assert.match(res.headers['content-type'], /^(application|text)\/javascript/, path)
  }
  assert.match((await agent.get('/static/vendor/simplewebauthn/index.js')).text, /startRegistration/)
  assert.equal((await agent.get('/static/vendor/simplewebauthn/index.d.ts')).status, 404, 'only the modules, not the type declarations')
})

test('registration options name this site and the user, and require a discoverable passkey', async () => {
  const { user, agent, token } = await signedIn()
  const res = await postJson(agent, '/enroll/passkey/options', token, {})
  assert.equal(res.status, 200)
  assert.match(res.body.challengeId, /^[0-9a-f-]{36}$/)
  assert.equal(res.body.options.rp.id, t.config.webauthn.rpId)
  assert.equal(res.body.options.user.name, user.email)
  assert.equal(res.body.options.authenticatorSelection.residentKey, 'required')
  assert.deepEqual(res.body.options.excludeCredentials, [])
})

test('malformed, mistyped, incomplete and oversized registration requests are refused with a JSON error and store nothing', async () => {
  const { user, agent, token } = await signedIn()
  const { body: { challengeId } } = await postJson(agent, '/enroll/passkey/options', token, {})

  const malformed = await agent.post('/enroll/passkey/verify').set('accept', 'application/json').set('x-csrf-token', token)
    .set('content-type', 'application/json').send('{"challengeId": ')
  assertJsonError(malformed, 400, 'malformed_json')

  const invalid: Array<[string, unknown]> = [
    ['no body fields', {}],
    ['no response', { challengeId }],
    ['no challenge', { response: FORGED_REGISTRATION }],
    ['response as a string', { challengeId, response: 'credential' }],
    ['response as an array', { challengeId, response: [FORGED_REGISTRATION] }],
    ['challenge as an object', { challengeId: { id: challengeId }, response: FORGED_REGISTRATION }],
    ['response without attestation', { challengeId, response: { ...FORGED_REGISTRATION, response: { clientDataJSON: 'e30' } } }],
    ['response of another credential type', { challengeId, response: { ...FORGED_REGISTRATION, type: 'password' } }],
    ['a name over 60 characters', { challengeId, response: FORGED_REGISTRATION, name: 'n'.repeat(61) }]
  ]
  for (const [label, body] of invalid) {
    const res = await postJson(agent, '/enroll/passkey/verify', token, body)
    assert.equal(res.status, 400, label)
    assert.equal(res.body.error.code, 'invalid_input', label)
    assert.match(res.body.error.message, /^Some of what you sent is not valid: /, label)
  }

  const oversized = await postJson(agent, '/enroll/passkey/verify', token, { challengeId, response: { ...FORGED_REGISTRATION, id: 'A'.repeat(70 * 1024) } })
  assertJsonError(oversized, 413, 'body_too_large')

  const asXml = await agent.post('/enroll/passkey/verify').set('accept', 'application/json').set('x-csrf-token', token)
    .set('content-type', 'application/xml').send('<credential/>')
  assertJsonError(asXml, 415, 'unsupported_media_type')
  const asText = await agent.post('/enroll/passkey/verify').set('accept', 'application/json').set('x-csrf-token', token)
    .set('content-type', 'text/plain').send('credential')
  assertJsonError(asText, 400, 'invalid_input')

  assert.deepEqual(await passkeysOf(user), [])
  // None of those reached the ceremony, so the challenge is still there to be used (once).
  assertJsonError(await postJson(agent, '/enroll/passkey/verify', token, { challengeId, response: FORGED_REGISTRATION }), 400, 'passkey_rejected')
})

test('a registration signed by nothing is refused, audited, stores nothing, and spends its challenge', async () => {
  const { user, agent, token } = await signedIn()
  const { body: { challengeId } } = await postJson(agent, '/enroll/passkey/options', token, {})

  const first = await postJson(agent, '/enroll/passkey/verify', token, { challengeId, response: FORGED_REGISTRATION })
  assertJsonError(first, 400, 'passkey_rejected')
  assert.equal(first.body.error.message, 'Your passkey could not be verified. Please try again.')
  assert.equal((await t.services.audit.list({ subjectUserId: user.id, action: 'passkey.registration_rejected' })).length, 1)

  const again = await postJson(agent, '/enroll/passkey/verify', token, { challengeId, response: FORGED_REGISTRATION })
  assertJsonError(again, 400, 'challenge_expired')
  assert.equal(again.body.error.message, 'This request has expired. Please try again.')
  assert.deepEqual(await passkeysOf(user), [])
})

test('an unknown, expired, or other user\'s registration challenge is refused as expired', async () => {
  const { user, agent, token } = await signedIn()
  const other = await signedIn()

  assertJsonError(await postJson(agent, '/enroll/passkey/verify', token, { challengeId: '00000000-0000-4000-8000-000000000000', response: FORGED_REGISTRATION }), 400, 'challenge_expired')

  const { body: expiring } = await postJson(agent, '/enroll/passkey/options', token, {})
  t.clock.advance(5 * 60_000 + 1)
  assertJsonError(await postJson(agent, '/enroll/passkey/verify', token, { challengeId: expiring.challengeId, response: FORGED_REGISTRATION }), 400, 'challenge_expired')

  const { body: othersOptions } = await postJson(other.agent, '/enroll/passkey/options', other.token, {})
  assertJsonError(await postJson(agent, '/enroll/passkey/verify', token, { challengeId: othersOptions.challengeId, response: FORGED_REGISTRATION }), 400, 'challenge_expired')
  // The other user's challenge was not spent by the attempt.
  assertJsonError(await postJson(other.agent, '/enroll/passkey/verify', other.token, { challengeId: othersOptions.challengeId, response: FORGED_REGISTRATION }), 400, 'passkey_rejected')

  // A sign-in challenge is not a registration challenge.
  const { body: signInOptions } = await postJson(agent, '/login/passkey/options', token, {})
  assertJsonError(await postJson(agent, '/enroll/passkey/verify', token, { challengeId: signInOptions.challengeId, response: FORGED_REGISTRATION }), 400, 'challenge_expired')

  assert.deepEqual(await passkeysOf(user), [])
  assert.deepEqual(await passkeysOf(other.user), [])
})

test('passkey requests without the page\'s CSRF token are refused', async () => {
  const { agent } = await signedIn()
  const res = await agent.post('/enroll/passkey/options').set('accept', 'application/json').send({})
  assertJsonError(res, 403, 'csrf_invalid')
  const signInAgent = anonymous(t)
  await signInAgent.get('/login')
  assertJsonError(await signInAgent.post('/login/passkey/options').set('accept', 'application/json').send({}), 403, 'csrf_invalid')
})

test('once a user has a method, adding a passkey first asks them to confirm it\'s them', async () => {
  const { user, agent, token } = await signedIn()
  await t.services.methods.addPhone(user.id, 'My phone', '+447700900123')

  const page = await agent.get('/enroll/passkey')
  assert.equal(page.status, 200)
  assert.match(page.text, /first confirm it&#39;s you with a method you already have/)
  assert.match(page.text, /href="\/step-up\?next=%2Fenroll%2Fpasskey"/)
  assert.doesNotMatch(page.text, /data-passkey-action="register"/)

  assertJsonError(await postJson(agent, '/enroll/passkey/options', token, {}), 403, 'step_up_required')
})

test('sign-in options are open to anyone and name no account', async () => {
  const agent = anonymous(t)
  const token = await pageToken(agent, '/login')
  const res = await postJson(agent, '/login/passkey/options', token, {})
  assert.equal(res.status, 200)
  assert.equal(res.body.options.rpId, t.config.webauthn.rpId)
  assert.deepEqual(res.body.options.allowCredentials, [])
})

test('the sign-in page offers a passkey button that keeps where the user was going', async () => {
  const page = await anonymous(t).get('/login?next=%2Fenroll%2Fpasskey')
  assert.match(page.text, /<button type="button" class="button" data-passkey-action="sign-in" data-next="\/enroll\/passkey">Sign in with a passkey<\/button>/)
  assert.match(page.text, /<script type="module" src="\/static\/js\/passkey.js"><\/script>/)
})

test('a passkey sign-in with an unknown credential is refused with a generic message, audited, and signs nobody in', async () => {
  const agent = anonymous(t)
  const token = await pageToken(agent, '/login')
  const { body: { challengeId } } = await postJson(agent, '/login/passkey/options', token, {})
  const before = (await t.services.audit.list({ action: 'passkey.assertion_rejected' })).length

  const res = await postJson(agent, '/login/passkey/verify', token, { challengeId, response: FORGED_ASSERTION, next: '/' })
  assertJsonError(res, 400, 'passkey_rejected')
  assert.equal(res.body.error.message, 'That passkey could not be used to sign in here.')
  assert.equal((await t.services.audit.list({ action: 'passkey.assertion_rejected' })).length, before + 1)
  assert.equal((await agent.get('/')).status, 303, 'still signed out')

  assertJsonError(await postJson(agent, '/login/passkey/verify', token, { challengeId, response: FORGED_ASSERTION }), 400, 'challenge_expired')
})

test('bad passkey sign-in requests are refused with a JSON error and sign nobody in', async () => {
  const agent = anonymous(t)
  const token = await pageToken(agent, '/login')
  const { body: { challengeId } } = await postJson(agent, '/login/passkey/options', token, {})

  const malformed = await agent.post('/login/passkey/verify').set('accept', 'application/json').set('x-csrf-token', token)
    .set('content-type', 'application/json').send('not json')
  assertJsonError(malformed, 400, 'malformed_json')
  for (const body of [{}, { challengeId }, { challengeId, response: 42 }, { challengeId, response: { ...FORGED_ASSERTION, response: {} } }, { challengeId, response: FORGED_ASSERTION, next: { to: '/' } }]) {
    assertJsonError(await postJson(agent, '/login/passkey/verify', token, body), 400, 'invalid_input')
  }
  assertJsonError(await postJson(agent, '/login/passkey/verify', token, { challengeId, response: { ...FORGED_ASSERTION, id: 'A'.repeat(70 * 1024) } }), 413, 'body_too_large')
  assertJsonError(await postJson(agent, '/login/passkey/verify', token, { challengeId: 'no-such-challenge', response: FORGED_ASSERTION }), 400, 'challenge_expired')

  // A registration challenge is not a sign-in challenge.
  const { agent: member, token: memberToken } = await signedIn()
  const { body: registration } = await postJson(member, '/enroll/passkey/options', memberToken, {})
  assertJsonError(await postJson(agent, '/login/passkey/verify', token, { challengeId: registration.challengeId, response: FORGED_ASSERTION }), 400, 'challenge_expired')

  assert.equal((await agent.get('/')).status, 303, 'still signed out')
})

test('passkey sign-in is rate-limited per address like the password form', async () => {
  const limited = await startTestApp()
  try {
    const agent = anonymous(limited)
    const token = await pageToken(agent, '/login')
    for (let i = 0; i < 30; i++) assert.equal((await postJson(agent, '/login/passkey/options', token, {})).status, 200)
    assertJsonError(await postJson(agent, '/login/passkey/options', token, {}), 429, 'rate_limited')
  } finally {
    await limited.close()
  }
})

test('a first passkey from outside the trusted networks is refused with the reason, unless the user signed in with an access pass', async () => {
  const office = await startTestApp({ TRUSTED_NETWORKS: '203.0.113.0/24' })
  try {
    const { user, agent, token } = await signedIn(office)
    const page = await agent.get('/enroll/passkey')
    assert.equal(page.status, 200)
    assert.match(page.text, /your first sign-in method can only be set up from your organisation&#39;s network/)
    assert.doesNotMatch(page.text, /data-passkey-action="register"/)
    const refused = await postJson(agent, '/enroll/passkey/options', token, {})
    assertJsonError(refused, 403, 'untrusted_network')
    assert.match(refused.body.error.message, /ask the helpdesk for a pass/)
    assert.deepEqual(await passkeysOf(user, office), [])

    const helpdesk = await createTestUser(office.services, { role: 'helpdesk' })
    const { pass } = await office.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: false }, { id: helpdesk.id, label: helpdesk.email })
    const passAgent = anonymous(office)
    const form = await passAgent.get('/login/pass')
    const csrf = /name="_csrf" value="([^"]+)"/.exec(form.text)![1]
    assert.equal((await passAgent.post('/login/pass').type('form').send({ email: user.email, pass, _csrf: csrf })).status, 303)
    const passToken = await pageToken(passAgent, '/enroll/passkey')
    assert.match((await passAgent.get('/enroll/passkey')).text, /data-passkey-action="register"/)
    assert.equal((await postJson(passAgent, '/enroll/passkey/options', passToken, {})).status, 200)
  } finally {
    await office.close()
  }
})

/** The signed-in part of the session a cookie names, as the server stored it. */
async function sessionAuth (cookie: string | undefined, testApp: TestApp = t): Promise<{ stepUpAt?: number, secondFactorPending?: boolean } | undefined> {
  const sid = decodeURIComponent(cookie?.split('=')[1] ?? '').split('.')[0]
  const data = (await sqlOn(testApp.services).value('SELECT data FROM sessions WHERE sid = ?', sid)) as string | undefined
  return data === undefined ? undefined : (JSON.parse(data) as { auth?: { stepUpAt?: number, secondFactorPending?: boolean } }).auth
}

test('passkey registration, sign-in and step-up ask the authenticator to check the user\'s PIN or biometric', async () => {
  const { agent: member, token } = await signedIn()
  assert.equal((await postJson(member, '/enroll/passkey/options', token, {})).body.options.authenticatorSelection.userVerification, 'required')
  const authenticator = new SoftwareAuthenticator()
  const user = await createTestUser(t.services)
  await addSoftwarePasskey(t, user, authenticator)
  const { agent, options } = await passkeySignIn(t, authenticator)
  assert.equal(options.userVerification, 'required')
  const { options: stepUpOptions } = await passkeyStepUp(t, agent, authenticator)
  assert.equal(stepUpOptions.userVerification, 'required')
})

test('a passkey sign-in with user verification signs in and counts as confirming it\'s them', async () => {
  const authenticator = new SoftwareAuthenticator()
  const user = await createTestUser(t.services)
  await addSoftwarePasskey(t, user, authenticator)
  const { agent, res } = await passkeySignIn(t, authenticator, '/enroll/passkey')
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.redirect, '/enroll/passkey')
  assert.equal((await sessionAuth(sessionCookieOf(res)))?.stepUpAt, t.clock.now().getTime())
  const token = await pageToken(agent, '/enroll/passkey')
  assert.equal((await postJson(agent, '/enroll/passkey/options', token, {})).status, 200, 'adding a method needs no further step')
})

test('a passkey sign-in without user verification counts as a password only: it is no step-up', async () => {
  const authenticator = new SoftwareAuthenticator({ userVerification: false })
  const user = await createTestUser(t.services)
  await addSoftwarePasskey(t, user, authenticator)
  const { agent, res } = await passkeySignIn(t, authenticator, '/enroll/passkey')
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal((await agent.get('/')).status, 200, 'signed in: MFA is not enforced for this user')
  assert.equal((await sessionAuth(sessionCookieOf(res)))?.stepUpAt, undefined)
  const token = await pageToken(agent, '/step-up?next=/')
  assertJsonError(await postJson(agent, '/enroll/passkey/options', token, {}), 403, 'step_up_required')
  const [signInAudit] = await t.services.audit.list({ subjectUserId: user.id, action: 'signin.success' })
  assert.equal(JSON.parse(signInAudit.details).userVerified, false)
})

test('once MFA is enforced, a passkey sign-in without user verification still asks for the second factor', async () => {
  const authenticator = new SoftwareAuthenticator({ userVerification: false })
  const user = await createTestUser(t.services)
  await addSoftwarePasskey(t, user, authenticator)
  const secret = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
  const app = await t.services.methods.addTotp(user.id, 'Phone app', secret, 0)
  await sqlOn(t.services).run('UPDATE users SET enforced_at = ? WHERE id = ?', t.clock.now().getTime(), user.id)

  const { agent, res } = await passkeySignIn(t, authenticator, '/enroll/passkey')
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.equal(res.body.redirect, '/step-up?next=%2Fenroll%2Fpasskey')
  const home = await agent.get('/')
  assert.equal(home.status, 303)
  assert.match(home.headers.location, /^\/step-up\?next=/)
  // The same passkey cannot be the second factor without user verification either.
  assertJsonError((await passkeyStepUp(t, agent, authenticator, '/enroll/passkey')).res, 400, 'user_verification_required')
  assert.equal((await agent.get('/')).status, 303, 'still owes the second factor')

  const done = await submitForm(agent, '/step-up?next=/', '/step-up/totp', { methodId: app.id, code: totpCode(secret, t.clock.now().getTime()), next: '/' })
  assert.equal(done.status, 303)
  assert.equal((await agent.get('/')).status, 200)
})

test('a passkey step-up without user verification is refused in plain words and confirms nothing; with it, it confirms', async () => {
  const authenticator = new SoftwareAuthenticator({ userVerification: false })
  const user = await createTestUser(t.services)
  await addSoftwarePasskey(t, user, authenticator)
  const agent = await signIn(t, user.email)

  const { res } = await passkeyStepUp(t, agent, authenticator, '/enroll/passkey')
  assertJsonError(res, 400, 'user_verification_required')
  assert.match(res.body.error.message, /PIN/)
  const token = await pageToken(agent, '/step-up?next=/')
  assertJsonError(await postJson(agent, '/enroll/passkey/options', token, {}), 403, 'step_up_required')
  const [rejected] = await t.services.audit.list({ subjectUserId: user.id, action: 'passkey.assertion_rejected' })
  assert.equal(JSON.parse(rejected.details).reason, 'user_not_verified')

  authenticator.userVerification = true
  const confirmed = await passkeyStepUp(t, agent, authenticator, '/enroll/passkey')
  assert.equal(confirmed.res.status, 200, JSON.stringify(confirmed.res.body))
  assert.equal(confirmed.res.body.redirect, '/enroll/passkey')
  assert.equal((await postJson(agent, '/enroll/passkey/options', await pageToken(agent, '/enroll/passkey'), {})).status, 200)
})
