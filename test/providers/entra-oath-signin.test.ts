import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Secret } from 'otpauth'
import type { ProviderError } from '../../server/domain/provider.ts'
import { createPkce, validateNonce } from '../../server/providers/entra/oidc.ts'
import { entraFixture } from '../fakes/graph/harness.ts'
import type { FakeEntra } from '../fakes/graph/server.ts'

const EPOCH = 1_767_225_600 // 2026-01-01T00:00:00Z, mid-step for 30 s periods

function oathtool (secret: string, epoch: number): string {
  return execFileSync('/usr/bin/oathtool', ['--totp', '-b', secret, '-N', `@${epoch}`], { encoding: 'utf8' }).trim()
}

test('an authenticator app becomes an activated hardware OATH token with a code computed by oathtool', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_HARDWARE_OATH: 'true' }, fake: { now: () => new Date(EPOCH * 1000 + 10_000) } })
  try {
    const user = fake.tenant.addUser()
    const secret = new Secret({ size: 20 }).base32
    const { deviceId, methodId } = await provider.enrollOathToken(user.id, { secretKey: secret, code: oathtool(secret, EPOCH), displayName: 'Phone app' })
    const device = fake.tenant.oathDevices.get(deviceId)!
    assert.equal(device.status, 'activated')
    assert.equal(device.assignedTo, user.id)
    assert.ok(user.methods.some((m) => m.id === methodId))
    assert.deepEqual((await provider.registrationStatus({ userId: 'u', externalId: user.id, email: 'e', enrolled: true })).methods, ['totp'])
    assert.equal(fake.calls.filter((c) => c.path.includes('hardwareOath')).every((c) => c.version === 'beta'), true)
  } finally {
    await close()
  }
})

test('a wrong code leaves the token unactivated with a clear non-retryable error', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_HARDWARE_OATH: 'true' }, fake: { now: () => new Date(EPOCH * 1000) } })
  try {
    const user = fake.tenant.addUser()
    const secret = new Secret({ size: 20 }).base32
    const device = await provider.createOathToken({ secretKey: secret })
    const methodId = await provider.assignOathToken(user.id, device.id)
    // A code from ten minutes earlier is outside the ±1 step Entra tolerates.
    await assert.rejects(provider.activateOathToken(user.id, methodId, oathtool(secret, EPOCH - 600)), (err: ProviderError) => err.code === 'oath_code_rejected' && !err.retryable)
    assert.equal(fake.tenant.oathDevices.get(device.id)!.status, 'failedActivation')
  } finally {
    await close()
  }
})

test('hardware OATH calls are refused when the feature is off', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    await assert.rejects(provider.createOathToken({ secretKey: 'JBSWY3DPEHPK3PXP' }), (err: ProviderError) => err.code === 'hardware_oath_disabled')
    assert.equal(fake.calls.length, 0)
  } finally {
    await close()
  }
})

/** The browser's part: follow the authorize URL (mapped to the fake) and read code and state from the redirect. */
async function authorize (fake: FakeEntra, url: string): Promise<URL> {
  const response = await fetch(url.replace('https://login.microsoftonline.com', fake.url), { redirect: 'manual' })
  assert.equal(response.status, 302)
  return new URL(response.headers.get('location')!)
}

const REDIRECT = 'http://localhost:3000/auth/microsoft/callback'

test('Microsoft sign-in with PKCE yields the user\'s object id; without an authentication context it is one factor, whatever the user did at Microsoft', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_REDIRECT_URI: REDIRECT } })
  try {
    const user = fake.tenant.addUser()
    const pkce = createPkce()
    const state = randomBytes(16).toString('base64url')
    const nonce = randomBytes(16).toString('base64url')
    const url = new URL(await provider.authCodeUrl({ state, nonce, codeChallenge: pkce.challenge }))
    assert.equal(`${url.origin}${url.pathname}`, `https://login.microsoftonline.com/${fake.tenant.tenantId}/oauth2/v2.0/authorize`)
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
    assert.equal(url.searchParams.get('redirect_uri'), REDIRECT)

    // The user does MFA at Microsoft, but a v2.0 ID token carries no amr and nothing was asked to prove it.
    fake.identity.signInAs(user.id, { mfa: true })
    const callback = await authorize(fake, url.href)
    assert.equal(callback.searchParams.get('state'), state)
    const result = await provider.redeemCode({ code: callback.searchParams.get('code')!, codeVerifier: pkce.verifier, nonce })
    assert.equal(result.objectId, user.id)
    assert.equal(result.tenantId, fake.tenant.tenantId)
    assert.equal(result.username, user.userPrincipalName)
    assert.equal(result.claims.amr, undefined, 'v2.0 ID tokens have no amr')
    assert.equal(result.mfa, false, 'one factor: nothing in the token proves MFA')
  } finally {
    await close()
  }
})

test('with ENTRA_AUTH_CONTEXT=c1 the sign-in asks for acrs c1 in the ID token; only a user who satisfied it (MFA) counts as two factors', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_REDIRECT_URI: REDIRECT, ENTRA_AUTH_CONTEXT: 'c1' } })
  try {
    const user = fake.tenant.addUser()
    const signIn = async (mfa: boolean): Promise<{ url: URL, mfa: boolean | null, acrs: unknown }> => {
      const pkce = createPkce()
      const url = new URL(await provider.authCodeUrl({ state: 's', nonce: 'n', codeChallenge: pkce.challenge }))
      fake.identity.signInAs(user.id, { mfa })
      const callback = await authorize(fake, url.href)
      const result = await provider.redeemCode({ code: callback.searchParams.get('code')!, codeVerifier: pkce.verifier, nonce: 'n' })
      return { url, mfa: result.mfa, acrs: result.claims.acrs }
    }
    const strong = await signIn(true)
    const claims = JSON.parse(strong.url.searchParams.get('claims') ?? '{}') as { id_token?: { acrs?: unknown } }
    assert.deepEqual(claims.id_token?.acrs, { essential: true, value: 'c1' }, 'the context is asked for where it is proven: the ID token')
    assert.deepEqual(strong.acrs, ['c1'])
    assert.equal(strong.mfa, true)

    const weak = await signIn(false)
    assert.equal(weak.acrs, undefined, 'Conditional Access binds c1 to MFA: not satisfied, not issued')
    assert.equal(weak.mfa, false)
  } finally {
    await close()
  }
})

test('a sign-in whose ID token carries another nonce is refused', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_REDIRECT_URI: REDIRECT } })
  try {
    const user = fake.tenant.addUser()
    const pkce = createPkce()
    fake.identity.signInAs(user.id, { mfa: true })
    const callback = await authorize(fake, await provider.authCodeUrl({ state: 's', nonce: 'nonce-of-this-attempt', codeChallenge: pkce.challenge }))
    await assert.rejects(provider.redeemCode({ code: callback.searchParams.get('code')!, codeVerifier: pkce.verifier, nonce: 'nonce-of-another-attempt' }),
      (err: ProviderError) => err.code === 'nonce_mismatch' && !err.retryable)
    assert.throws(() => { validateNonce({ nonce: 'a' }, 'b') }, (err: ProviderError) => err.code === 'nonce_mismatch')
    assert.throws(() => { validateNonce({}, 'b') }, (err: ProviderError) => err.code === 'nonce_mismatch')
    validateNonce({ nonce: 'same' }, 'same')
  } finally {
    await close()
  }
})

test('a code redeemed with the wrong PKCE verifier is refused', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_REDIRECT_URI: REDIRECT } })
  try {
    const user = fake.tenant.addUser()
    fake.identity.signInAs(user.id)
    const callback = await authorize(fake, await provider.authCodeUrl({ state: 's', nonce: 'n', codeChallenge: createPkce().challenge }))
    await assert.rejects(provider.redeemCode({ code: callback.searchParams.get('code')!, codeVerifier: createPkce().verifier, nonce: 'n' }),
      (err: ProviderError) => err.code === 'invalid_grant' && !err.retryable)
  } finally {
    await close()
  }
})

test('a wrong client secret is a non-retryable error that does not reveal the secret', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_CLIENT_SECRET: 'definitely-wrong-secret' } })
  try {
    const user = fake.tenant.addUser()
    await assert.rejects(provider.enforcementState({ userId: 'u', externalId: user.id, email: 'e', enrolled: false }), (err: ProviderError) => {
      assert.equal(err.code, 'entra_credentials_rejected')
      assert.equal(err.retryable, false)
      assert.match(err.message, /invalid_client \(AADSTS7000215\)/)
      assert.doesNotMatch(err.message, /definitely-wrong-secret/)
      return true
    })
    assert.equal(fake.calls.length, 0)
  } finally {
    await close()
  }
})
