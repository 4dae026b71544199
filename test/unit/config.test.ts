import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ConfigError, loadConfig } from '../../server/config.ts'
import { TEST_SECRETS, tempDir } from '../helpers/app.ts'

const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://mfa.example.org', ...TEST_SECRETS }

function refusal (env: Record<string, string>): ConfigError {
  try {
    loadConfig({ DATA_DIR: tempDir(), ...env })
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  assert.fail('expected a configuration error')
}

test('production refuses to start without each required secret, naming it', () => {
  for (const name of ['SESSION_SECRET', 'ENCRYPTION_KEY', 'PUBLIC_URL'] as const) {
    const env: Record<string, string> = { ...production }
    delete env[name]
    const error = refusal(env)
    assert.equal(error.variable, name)
    assert.match(error.message, new RegExp(`^${name}: `))
    assert.doesNotMatch(error.message, /\n/)
  }
})

test('malformed secrets and settings are refused with what was expected', () => {
  assert.equal(refusal({ ...production, SESSION_SECRET: 'short' }).variable, 'SESSION_SECRET')
  assert.equal(refusal({ ...production, ENCRYPTION_KEY: 'bm90IDMyIGJ5dGVz' }).variable, 'ENCRYPTION_KEY')
  assert.equal(refusal({ ...production, PUBLIC_URL: 'http://mfa.example.org' }).variable, 'PUBLIC_URL')
  assert.equal(refusal({ ...production, PUBLIC_URL: 'not a url' }).variable, 'PUBLIC_URL')
  assert.equal(refusal({ PORT: 'eighty' }).variable, 'PORT')
  assert.equal(refusal({ PROVIDERS: 'okta' }).variable, 'PROVIDERS')
  assert.equal(refusal({ TRUST_PROXY: 'everyone' }).variable, 'TRUST_PROXY')
  assert.equal(refusal({ PHONE_DEFAULT_REGION: 'XX' }).variable, 'PHONE_DEFAULT_REGION')
})

test('a production configuration loads frozen, with secure cookies and no sandbox', () => {
  const config = loadConfig({ DATA_DIR: tempDir(), ...production })
  assert.equal(config.production, true)
  assert.equal(config.sandbox, false)
  assert.equal(config.session.secureCookie, true)
  assert.equal(config.warnings.length, 0)
  assert.equal(Object.isFrozen(config), true)
  assert.equal(Object.isFrozen(config.session), true)
  assert.throws(() => { (config as { port: number }).port = 1 })
})

test('an encryption key is accepted as 64 hex characters or base64 of 32 bytes', () => {
  const hex = loadConfig({ DATA_DIR: tempDir(), ...production, ENCRYPTION_KEY: 'ab'.repeat(32) })
  assert.equal(hex.encryptionKey.length, 32)
  assert.match(hex.encryptionKeyId, /^[0-9a-f]{8}$/)
})

test('without secrets outside production, generated ones are kept in the data folder and reused, with one warning', () => {
  const dataDir = tempDir()
  const first = loadConfig({ DATA_DIR: dataDir })
  const second = loadConfig({ DATA_DIR: dataDir })
  assert.equal(first.sandbox, true)
  assert.equal(first.warnings.length, 1)
  assert.match(first.warnings[0], /SESSION_SECRET and ENCRYPTION_KEY were generated/)
  assert.ok(existsSync(path.join(dataDir, 'development-secrets.json')))
  assert.equal(first.sessionSecret, second.sessionSecret)
  assert.deepEqual(first.encryptionKey, second.encryptionKey)
  assert.equal(first.publicUrl.origin, 'http://localhost:3000')
  assert.equal(first.session.secureCookie, false)
})

test('configuring a cloud provider leaves sandbox mode', () => {
  const entra = { ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555', ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000', ENTRA_CLIENT_SECRET: 'not-a-real-secret' }
  const config = loadConfig({ DATA_DIR: tempDir(), ...TEST_SECRETS, PROVIDERS: 'entra', ...entra })
  assert.equal(config.sandbox, false)
  assert.equal(config.entra?.tenantId, entra.ENTRA_TENANT_ID)
})

test('a provider named in PROVIDERS without its settings stops start-up with one line naming the variable', () => {
  assert.throws(() => loadConfig({ DATA_DIR: tempDir(), ...TEST_SECRETS, PROVIDERS: 'entra' }), { message: 'ENTRA_TENANT_ID: required when PROVIDERS includes entra' })
})
