import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret, TOTP } from 'otpauth'
import type { Role } from '../../server/domain/users.ts'
import { createTestUser, signIn, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { addSoftwarePasskey, passkeySignIn, passkeyStepUp, SoftwareAuthenticator } from '../helpers/webauthn.ts'

const SECRET = new Secret({ size: 20 }).base32

/** A staff (or ordinary) account holding a passkey and an authenticator app. */
async function withPasskey (t: TestApp, role: Role) {
  const user = await createTestUser(t.services, { role })
  await t.services.methods.addPasskey(user.id, { name: 'Desk key', credentialId: `cred-${user.id}`, publicKey: new Uint8Array([1]), counter: 0, transports: [], aaguid: '00000000-0000-0000-0000-000000000000', backedUp: false })
  const app = await t.services.methods.addTotp(user.id, 'Phone app', SECRET, 0)
  return { user, app }
}

test('helpdesk and admin accounts that hold a passkey must use it: a password alone or an app code does not open the console', async () => {
  const t = await startTestApp()
  try {
    for (const role of ['helpdesk', 'admin'] as const) {
      const { user, app } = await withPasskey(t, role)
      const agent = await signIn(t, user.email)
      const console = await agent.get(role === 'admin' ? '/admin' : '/helpdesk')
      assert.equal(console.status, 303)
      assert.match(console.headers.location, /^\/step-up/)
      const stepUp = await agent.get('/step-up?next=/helpdesk')
      assert.match(stepUp.text, /Use my passkey/)
      assert.match(stepUp.text, /administrator accounts that have a passkey use it to sign in/)
      assert.doesNotMatch(stepUp.text, /Phone app/, 'only the passkey is offered')
      const code = new TOTP({ secret: Secret.fromBase32(SECRET) }).generate({ timestamp: t.clock.now().getTime() })
      const refused = await submitForm(agent, '/step-up?next=/helpdesk', '/step-up/totp', { methodId: app.id, code, next: '/helpdesk' })
      assert.equal(refused.status, 403)
      assert.match(refused.text, /confirm it&#39;s them with the passkey/)
      assert.equal((await agent.get('/helpdesk')).status, 303, 'still not in')
    }
    // Ordinary users are not affected: their password sign-in (MFA not enforced) goes straight in.
    const { user } = await withPasskey(t, 'user')
    assert.equal((await (await signIn(t, user.email)).get('/')).status, 200)
  } finally {
    await t.close()
  }
})

test('with STAFF_PASSKEY_REQUIRED=false staff sign in like everyone else', async () => {
  const t = await startTestApp({ STAFF_PASSKEY_REQUIRED: 'false' })
  try {
    const { user } = await withPasskey(t, 'helpdesk')
    const agent = await signIn(t, user.email)
    assert.equal((await agent.get('/helpdesk')).status, 200)
  } finally {
    await t.close()
  }
})

test('a staff passkey that did not check the PIN or biometric opens nothing: not at sign-in, not as the step-up', async () => {
  const t = await startTestApp()
  try {
    const authenticator = new SoftwareAuthenticator({ userVerification: false })
    const admin = await createTestUser(t.services, { role: 'admin' })
    await addSoftwarePasskey(t, admin, authenticator)

    const { agent, res } = await passkeySignIn(t, authenticator, '/admin')
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.redirect, '/step-up?next=%2Fadmin')
    const console = await agent.get('/admin')
    assert.equal(console.status, 303)
    assert.match(console.headers.location, /^\/step-up/)

    const refused = await passkeyStepUp(t, agent, authenticator, '/admin')
    assert.equal(refused.res.status, 400)
    assert.equal(refused.res.body.error.code, 'user_verification_required')
    assert.equal((await agent.get('/admin')).status, 303, 'still not in')

    // The same key, once it checks the PIN, is what staff sign in with.
    authenticator.userVerification = true
    const confirmed = await passkeyStepUp(t, agent, authenticator, '/admin')
    assert.equal(confirmed.res.status, 200, JSON.stringify(confirmed.res.body))
    assert.equal((await agent.get('/admin')).status, 200)
    const verified = await passkeySignIn(t, authenticator, '/admin')
    assert.equal(verified.res.body.redirect, '/admin')
    assert.equal((await verified.agent.get('/admin')).status, 200)
  } finally {
    await t.close()
  }
})

test('after a password, a staff passkey step-up without user verification is refused', async () => {
  const t = await startTestApp()
  try {
    const authenticator = new SoftwareAuthenticator({ userVerification: false })
    const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
    await addSoftwarePasskey(t, helpdesk, authenticator)
    const agent = await signIn(t, helpdesk.email)
    const refused = await passkeyStepUp(t, agent, authenticator, '/helpdesk')
    assert.equal(refused.res.body.error?.code, 'user_verification_required')
    assert.equal((await agent.get('/helpdesk')).status, 303)
  } finally {
    await t.close()
  }
})
