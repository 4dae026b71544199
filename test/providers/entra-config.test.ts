import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { ConfigError } from '../../server/config.ts'
import { DEFAULT_PRIVILEGED_ROLES, loadEntraConfig } from '../../server/providers/entra/config.ts'

const BASE = { ENTRA_TENANT_ID: '72f988bf-86f1-41af-91ab-2d7cd011db47', ENTRA_CLIENT_ID: '11111111-2222-4333-8444-555555555555', ENTRA_CLIENT_SECRET: 's3cret-value' }

function refusal (env: Record<string, string>): ConfigError {
  try {
    loadEntraConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  assert.fail('expected a configuration error')
}

test('without ENTRA_TENANT_ID the Entra provider is simply not configured', () => {
  assert.equal(loadEntraConfig({}), undefined)
})

test('a minimal configuration loads frozen, with the public cloud, per-user enforcement and the administrator roles', () => {
  const config = loadEntraConfig(BASE)!
  assert.equal(config.authorityUrl, 'https://login.microsoftonline.com')
  assert.equal(config.graphUrl, 'https://graph.microsoft.com')
  assert.deepEqual(config.enforcement, { mode: 'per-user' })
  assert.deepEqual(config.privilegedRoles, DEFAULT_PRIVILEGED_ROLES)
  assert.equal(config.phoneSource, 'mobilePhone')
  assert.equal(config.hardwareOath, false)
  assert.equal(config.concurrency, 4)
  assert.equal(config.signIn, undefined)
  assert.equal(Object.isFrozen(config), true)
  assert.equal(Object.isFrozen(config.credential), true)
  assert.throws(() => { (config as { concurrency: number }).concurrency = 9 })
})

test('each bad or missing companion variable is refused in one line naming it, never echoing the secret', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ ...BASE, ENTRA_TENANT_ID: 'common' }, 'ENTRA_TENANT_ID'],
    [{ ...BASE, ENTRA_CLIENT_ID: '' }, 'ENTRA_CLIENT_ID'],
    [{ ...BASE, ENTRA_CLIENT_ID: 'my-app' }, 'ENTRA_CLIENT_ID'],
    [{ ...BASE, ENTRA_CLIENT_SECRET: '' }, 'ENTRA_CLIENT_SECRET'],
    [{ ...BASE, ENTRA_CERTIFICATE_THUMBPRINT: 'ab'.repeat(20) }, 'ENTRA_CLIENT_SECRET'],
    [{ ...BASE, ENTRA_CLIENT_SECRET: '', ENTRA_CERTIFICATE_THUMBPRINT: 'xyz', ENTRA_CERTIFICATE_KEY_FILE: '/nonexistent' }, 'ENTRA_CERTIFICATE_THUMBPRINT'],
    [{ ...BASE, ENTRA_CLIENT_SECRET: '', ENTRA_CERTIFICATE_THUMBPRINT: 'ab'.repeat(20) }, 'ENTRA_CERTIFICATE_KEY_FILE'],
    [{ ...BASE, ENTRA_CLIENT_SECRET: '', ENTRA_CERTIFICATE_THUMBPRINT: 'ab'.repeat(20), ENTRA_CERTIFICATE_KEY_FILE: '/nonexistent/key.pem' }, 'ENTRA_CERTIFICATE_KEY_FILE'],
    [{ ...BASE, ENTRA_GRAPH_URL: 'http://graph.example.org' }, 'ENTRA_GRAPH_URL'],
    [{ ...BASE, ENTRA_AUTHORITY_URL: 'https://login.example.org/tenant' }, 'ENTRA_AUTHORITY_URL'],
    [{ ...BASE, ENTRA_PRIVILEGED_ROLES: 'Global Administrator' }, 'ENTRA_PRIVILEGED_ROLES'],
    [{ ...BASE, ENTRA_PHONE_ATTRIBUTE: 'extensionAttribute16' }, 'ENTRA_PHONE_ATTRIBUTE'],
    [{ ...BASE, ENTRA_ENFORCEMENT: 'conditional' }, 'ENTRA_ENFORCEMENT'],
    [{ ...BASE, ENTRA_ENFORCEMENT: 'group' }, 'ENTRA_ENFORCEMENT_GROUP_ID'],
    [{ ...BASE, ENTRA_HARDWARE_OATH: 'yes' }, 'ENTRA_HARDWARE_OATH'],
    [{ ...BASE, ENTRA_CONCURRENCY: '0' }, 'ENTRA_CONCURRENCY'],
    [{ ...BASE, ENTRA_SYNC_GROUP_IDS: 'finance' }, 'ENTRA_SYNC_GROUP_IDS'],
    [{ ...BASE, ENTRA_REDIRECT_URI: 'http://mfa.example.org/callback' }, 'ENTRA_REDIRECT_URI'],
    [{ ...BASE, ENTRA_REDIRECT_URI: 'https://mfa.example.org/callback', ENTRA_AUTH_CONTEXT: 'mfa' }, 'ENTRA_AUTH_CONTEXT'],
    [{ ...BASE, ENTRA_REDIRECT_URI: 'https://mfa.example.org/callback', ENTRA_AUTH_CONTEXT: 'c100' }, 'ENTRA_AUTH_CONTEXT'],
    [{ ...BASE, ENTRA_AUTH_CONTEXT: 'c1' }, 'ENTRA_AUTH_CONTEXT']
  ]
  for (const [env, variable] of cases) {
    const error = refusal(env)
    assert.equal(error.variable, variable, JSON.stringify(env))
    assert.match(error.message, new RegExp(`^${variable}: `))
    assert.doesNotMatch(error.message, /\n|s3cret-value/)
  }
})

test('a certificate, a group, an extension attribute, an emulator on loopback and sign-in are all accepted', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'entra-config-'))
  const keyFile = path.join(dir, 'key.pem')
  writeFileSync(keyFile, '-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n')
  const config = loadEntraConfig({
    ...BASE,
    ENTRA_CLIENT_SECRET: '',
    ENTRA_CERTIFICATE_THUMBPRINT: 'AB:'.repeat(31) + 'AB',
    ENTRA_CERTIFICATE_KEY_FILE: keyFile,
    ENTRA_GRAPH_URL: 'http://127.0.0.1:4010',
    ENTRA_AUTHORITY_URL: 'http://localhost:4011/',
    ENTRA_ENFORCEMENT: 'group',
    ENTRA_ENFORCEMENT_GROUP_ID: '0f0f0f0f-1111-4222-8333-444444444444',
    ENTRA_PHONE_ATTRIBUTE: 'extensionAttribute15',
    ENTRA_PRIVILEGED_ROLES: '62E90394-69F5-4237-9190-012177145E10',
    ENTRA_SYNC_GROUP_IDS: '0f0f0f0f-1111-4222-8333-444444444444, 1f0f0f0f-1111-4222-8333-444444444444',
    ENTRA_REDIRECT_URI: 'https://mfa.example.org/auth/microsoft/callback'
  })!
  assert.deepEqual(config.credential, { kind: 'certificate', thumbprint: 'ab'.repeat(32), privateKeyFile: keyFile })
  assert.equal(config.graphUrl, 'http://127.0.0.1:4010')
  assert.equal(config.authorityUrl, 'http://localhost:4011')
  assert.deepEqual(config.enforcement, { mode: 'group', groupId: '0f0f0f0f-1111-4222-8333-444444444444' })
  assert.equal(config.phoneSource, 'extensionAttribute15')
  assert.deepEqual(config.privilegedRoles, ['62e90394-69f5-4237-9190-012177145e10'])
  assert.equal(config.syncGroupIds.length, 2)
  assert.deepEqual(config.signIn, { redirectUri: 'https://mfa.example.org/auth/microsoft/callback', scopes: ['openid', 'profile', 'email'], authContext: null })
})

test('ENTRA_AUTH_CONTEXT names the Conditional Access authentication context that proves MFA at Microsoft sign-in', () => {
  const config = loadEntraConfig({ ...BASE, ENTRA_REDIRECT_URI: 'https://mfa.example.org/login/microsoft/callback', ENTRA_AUTH_CONTEXT: 'C7' })!
  assert.equal(config.signIn?.authContext, 'c7')
})
