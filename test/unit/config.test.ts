import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { ConfigError, KNOWN_VARIABLES, loadConfig } from '../../server/config.ts'
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

test('TRUST_PROXY=true is refused: it would believe an address the client wrote itself', () => {
  const error = refusal({ TRUST_PROXY: 'true' })
  assert.equal(error.variable, 'TRUST_PROXY')
  assert.match(error.message, /list the proxy addresses or CIDRs .* or give the number of proxies/)
  assert.doesNotMatch(error.message, /\n/)
})

test('TRUST_PROXY takes a list of proxy addresses and CIDRs, or a hop count', () => {
  const load = (value: string) => loadConfig({ DATA_DIR: tempDir(), ...TEST_SECRETS, TRUST_PROXY: value }).trustProxy
  assert.deepEqual(load('10.20.0.5, 10.20.1.0/24,::1'), { proxies: ['10.20.0.5', '10.20.1.0/24', '::1'] })
  assert.deepEqual(load('2'), { hops: 2 })
  assert.equal(load('false'), false)
  assert.equal(load('0'), false)
  assert.equal(refusal({ TRUST_PROXY: '10.20.0.5,loopback' }).variable, 'TRUST_PROXY')
  assert.equal(refusal({ TRUST_PROXY: '300.1.1.1' }).variable, 'TRUST_PROXY')
  assert.equal(refusal({ TRUST_PROXY: '1.5' }).variable, 'TRUST_PROXY')
})

test('outside the sandbox there are no default trusted networks, whatever NODE_ENV says', () => {
  const entra = { PROVIDERS: 'entra', ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555', ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000', ENTRA_CLIENT_SECRET: 'not-a-real-secret' }
  for (const NODE_ENV of ['development', 'test']) {
    const config = loadConfig({ DATA_DIR: tempDir(), ...TEST_SECRETS, NODE_ENV, ...entra })
    assert.equal(config.sandbox, false)
    assert.deepEqual(config.trustedNetworks, [], NODE_ENV)
  }
  assert.deepEqual(loadConfig({ DATA_DIR: tempDir(), ...production }).trustedNetworks, [])
  assert.ok(loadConfig({ DATA_DIR: tempDir(), ...TEST_SECRETS }).trustedNetworks.includes('10.0.0.0/8'), 'the sandbox keeps its private ranges')
})

test('a trusted network that contains a configured proxy is warned about at start', () => {
  const warned = loadConfig({ DATA_DIR: tempDir(), ...production, TRUST_PROXY: '10.20.0.5', TRUSTED_NETWORKS: '192.168.0.0/16,10.0.0.0/8' })
  assert.equal(warned.warnings.length, 1)
  assert.match(warned.warnings[0], /TRUSTED_NETWORKS: 10\.0\.0\.0\/8 contains the proxy 10\.20\.0\.5/)
  const overlapping = loadConfig({ DATA_DIR: tempDir(), ...production, TRUST_PROXY: '10.20.0.0/24', TRUSTED_NETWORKS: '10.20.0.128/25' })
  assert.match(overlapping.warnings[0] ?? '', /10\.20\.0\.128\/25 contains the proxy 10\.20\.0\.0\/24/)
  const apart = loadConfig({ DATA_DIR: tempDir(), ...production, TRUST_PROXY: '10.20.0.5', TRUSTED_NETWORKS: '192.168.0.0/16' })
  assert.deepEqual(apart.warnings, [])
})

test('a misspelt setting is named in one start-up warning instead of being silently ignored', () => {
  const config = loadConfig({
    DATA_DIR: tempDir(), ...production, ENTRA_TENNANT_ID: 'contoso.onmicrosoft.com', SMS_PROVDER: 'twilio', TRUSTED_NETWORK: '10.0.0.0/8',
    AWS_IAM_POLICYNAME: 'x',
    // Not the portal's: the platform's, the shell's, the AWS SDK's own. Never warned about.
    PATH: '/usr/bin', HOME: '/root', NODE_OPTIONS: '--max-old-space-size=512', npm_config_cache: '/tmp', AWS_REGION: 'eu-west-1', AWS_PROFILE: 'ops', REDIS_URL: 'redis://cache'
  })
  const unknown = config.warnings.filter((w) => /not settings this portal reads/.test(w))
  assert.equal(unknown.length, 1)
  assert.match(unknown[0], /^unknown environment variables ignored \(not settings this portal reads; check the spelling\): AWS_IAM_POLICYNAME, ENTRA_TENNANT_ID, SMS_PROVDER, TRUSTED_NETWORK$/)
  assert.deepEqual(loadConfig({ DATA_DIR: tempDir(), ...production, PATH: '/usr/bin' }).warnings, [], 'a clean environment gives no warning')
})

test('a setting that was removed is named with what replaced it', () => {
  const config = loadConfig({ DATA_DIR: tempDir(), ...production, AWS_IAM_PRIVILEGED_NEED_FIDO: 'false' })
  assert.equal(config.warnings.length, 1)
  assert.match(config.warnings[0], /^AWS_IAM_PRIVILEGED_NEED_FIDO is no longer read: .*campaign/)
})

test('every variable the portal reads, with every provider configured, is in the list of known variables', () => {
  const read = new Set<string>()
  const env = new Proxy<Record<string, string | undefined>>({
    DATA_DIR: tempDir(), ...production, PROVIDERS: 'entra,aws', SMS_PROVIDER: 'twilio', TWILIO_ACCOUNT_SID: 'AC1', TWILIO_AUTH_TOKEN: 't', TWILIO_FROM: '+15550100',
    ENTRA_TENANT_ID: '11111111-2222-3333-4444-555555555555', ENTRA_CLIENT_ID: '66666666-7777-8888-9999-000000000000', ENTRA_CLIENT_SECRET: 'not-a-real-secret',
    ENTRA_ENFORCEMENT: 'group', ENTRA_ENFORCEMENT_GROUP_ID: '66666666-7777-8888-9999-000000000001', ENTRA_REDIRECT_URI: 'https://mfa.example.org/auth/microsoft/callback',
    AWS_IAM_ENFORCEMENT: 'group', AWS_IAM_ENFORCEMENT_GROUP: 'RequireMFA', AWS_IAM_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE', AWS_IAM_SECRET_ACCESS_KEY: 'x'
  }, {
    get: (target, name) => {
      if (typeof name === 'string') read.add(name)
      return target[name as string]
    }
  })
  loadConfig(env)
  const unknown = [...read].filter((name) => !KNOWN_VARIABLES.has(name))
  assert.deepEqual(unknown, [])
  for (const name of ['ENTRA_TENANT_ID', 'ENTRA_SIGNIN_SCOPES', 'AWS_IAM_TIMEOUT_SECONDS', 'TWILIO_BASE_URL', 'SMS_MAX_PER_HOUR']) assert.ok(KNOWN_VARIABLES.has(name), name)
})

test('DATABASE_URL chooses PostgreSQL: a URL that is not postgres://, or names no database, stops the start naming the variable', () => {
  const base = { DATA_DIR: tempDir(), ...production }
  assert.equal(loadConfig({ ...base, DATABASE_URL: 'postgres://portal:secret@db.example.org:5432/mfa' }).databaseUrl, 'postgres://portal:secret@db.example.org:5432/mfa')
  assert.equal(loadConfig(base).databaseUrl, undefined, 'unset: the SQLite file')
  for (const [value, message] of [['mysql://db/mfa', /expected a postgres:\/\/ URL/], ['postgres://db.example.org', /name the database/], ['not a url', /expected a PostgreSQL URL/]] as const) {
    assert.throws(() => loadConfig({ ...base, DATABASE_URL: value }), (err: ConfigError) => err.variable === 'DATABASE_URL' && message.test(err.message) && !err.message.includes('secret'))
  }
})
