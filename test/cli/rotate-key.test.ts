import assert from 'node:assert/strict'
import { test } from 'node:test'
import { SqliteEntraPortalStore } from '../../server/db/entra-portal.ts'
import { SqliteProviderEnrollmentStore } from '../../server/db/provider-enrollments.ts'
import { keyId, Sealer } from '../../server/db/sealing.ts'
import { AWS_VIRTUAL_MFA } from '../../server/domain/virtual-mfa-enrollment.ts'
import { createServices, type Services } from '../../server/wiring.ts'
import { createTestUser, TEST_SECRETS, testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

const OLD_KEY = TEST_SECRETS.ENCRYPTION_KEY
const NEW_KEY = Buffer.alloc(32, 9).toString('base64')
const STRAY_KEY = Buffer.alloc(32, 5).toString('base64')
const idOf = (key: string): string => keyId(Buffer.from(key, 'base64'))

/** Opens the data directory under one key, runs `arrange`, and closes it again, as a stopped server would leave it. */
async function withKey<T> (dataDir: string, key: string, arrange: (services: Services) => Promise<T> | T): Promise<T> {
  const services = await createServices(testConfig({ ENCRYPTION_KEY: key }, dataDir))
  try {
    return await arrange(services)
  } finally {
    await services.close()
  }
}

function sealedValues (services: Services): string[] {
  return services.database.sqlite.prepare("SELECT secret_sealed FROM auth_methods WHERE kind = 'totp' ORDER BY rowid").pluck().all() as string[]
}

async function enrollTwo (services: Services): Promise<Array<{ userId: string, methodId: string, secret: string }>> {
  return Promise.all(['JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ'].map(async (secret) => {
    const user = await createTestUser(services)
    return { userId: user.id, methodId: (await services.methods.addTotp(user.id, 'App', secret, 0)).id, secret }
  }))
}

test('rotate-key re-seals every authenticator secret under the new key, audits it, and the old key is no longer needed', async (t) => {
  const dataDir = scratchDir(t)
  const enrolled = await withKey(dataDir, OLD_KEY, enrollTwo)

  const { code, stdout } = await runCli(['rotate-key'], { dataDir, env: { ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEYS_PREVIOUS: OLD_KEY } })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), `re-sealed 2 secrets under key ${idOf(NEW_KEY)}`)

  await withKey(dataDir, NEW_KEY, async (services) => {
    for (const value of sealedValues(services)) assert.match(value, new RegExp(`^v1\\.${idOf(NEW_KEY)}\\.`))
    for (const { userId, methodId, secret } of enrolled) assert.equal(await services.methods.totpSecret(userId, methodId), secret)
    const [event] = await services.audit.list({ action: 'encryption.key_rotated' })
    assert.equal(event.actorLabel, 'cli')
    assert.deepEqual(JSON.parse(event.details), { resealed: 2, keyId: idOf(NEW_KEY) })
  })

  const again = await runCli(['rotate-key'], { dataDir, env: { ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEYS_PREVIOUS: OLD_KEY } })
  assert.equal(again.code, 0)
  assert.equal(again.stdout.trim(), `re-sealed 0 secrets under key ${idOf(NEW_KEY)}`, 'running it twice is harmless')
})

test('rotate-key refuses and changes nothing when a secret is under a key that is neither current nor previous', async (t) => {
  const dataDir = scratchDir(t)
  // One secret under the previous key first, so a half-done run would have re-sealed it before failing.
  await withKey(dataDir, OLD_KEY, async (services) => { await services.methods.addTotp((await createTestUser(services)).id, 'App', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 0) })
  await withKey(dataDir, STRAY_KEY, async (services) => { await services.methods.addTotp((await createTestUser(services)).id, 'App', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 0) })
  const before = await withKey(dataDir, OLD_KEY, sealedValues)

  const { code, stdout, stderr } = await runCli(['rotate-key'], { dataDir, env: { ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEYS_PREVIOUS: OLD_KEY } })
  assert.equal(code, 1)
  assert.equal(stdout, '')
  assert.match(stderr, new RegExp(`^mfa-rollout: nothing was re-sealed: sealed with an unknown key \\(${idOf(STRAY_KEY)}\\); set ENCRYPTION_KEYS_PREVIOUS`))

  await withKey(dataDir, OLD_KEY, async (services) => {
    assert.deepEqual(sealedValues(services), before)
    assert.deepEqual(await services.audit.list({ action: 'encryption.key_rotated' }), [])
  })
})

test('rotate-key without the old key in ENCRYPTION_KEYS_PREVIOUS names the missing key and changes nothing', async (t) => {
  const dataDir = scratchDir(t)
  await withKey(dataDir, OLD_KEY, enrollTwo)
  const before = await withKey(dataDir, OLD_KEY, sealedValues)

  const { code, stderr } = await runCli(['rotate-key'], { dataDir, env: { ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEYS_PREVIOUS: undefined } })
  assert.equal(code, 1)
  assert.match(stderr, new RegExp(`unknown key \\(${idOf(OLD_KEY)}\\); set ENCRYPTION_KEYS_PREVIOUS`))
  await withKey(dataDir, OLD_KEY, (services) => { assert.deepEqual(sealedValues(services), before) })
})

test('an authenticator-app setup begun before a key rotation can still be finished afterwards', async (t) => {
  const dataDir = scratchDir(t)
  const { userId, secret } = await withKey(dataDir, OLD_KEY, async (services) => {
    const user = await createTestUser(services)
    const pending = await services.pending.startTotp(user.id, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', new Date(Date.now() + 15 * 60_000))
    return { userId: user.id, secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', pending }
  })
  const { code, stdout } = await runCli(['rotate-key'], { dataDir, env: { ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEYS_PREVIOUS: OLD_KEY } })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), `re-sealed 1 secret under key ${idOf(NEW_KEY)}`)
  await withKey(dataDir, NEW_KEY, async (services) => {
    assert.equal((await services.pending.findTotp(userId))?.secret, secret)
  })
})

test('setups in progress at a directory (AWS virtual MFA, Entra hardware OATH) can still be finished after a key rotation', async (t) => {
  const dataDir = scratchDir(t)
  const sealerFor = (key: string): Sealer => new Sealer(Buffer.from(key, 'base64'))
  const expiresAt = new Date(Date.now() + 15 * 60_000)
  const { aws, entra } = await withKey(dataDir, OLD_KEY, async (services) => {
    const aws = await createTestUser(services)
    const entra = await createTestUser(services)
    await new SqliteProviderEnrollmentStore(services.database.access, sealerFor(OLD_KEY), services.clock)
      .start({ userId: aws.id, provider: 'aws', kind: AWS_VIRTUAL_MFA, deviceId: 'arn:aws:iam::123456789012:mfa/grace', secret: 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', expiresAt })
    await new SqliteEntraPortalStore(services.database.access, sealerFor(OLD_KEY), services.clock).startOath(entra.id, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', expiresAt)
    return { aws: aws.id, entra: entra.id }
  })
  const { code, stdout } = await runCli(['rotate-key'], { dataDir, env: { ENCRYPTION_KEY: NEW_KEY, ENCRYPTION_KEYS_PREVIOUS: OLD_KEY } })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), `re-sealed 2 secrets under key ${idOf(NEW_KEY)}`)
  // Opened with the new key alone: the old one could now be dropped.
  await withKey(dataDir, NEW_KEY, async (services) => {
    const now = new Date()
    assert.equal((await new SqliteProviderEnrollmentStore(services.database.access, sealerFor(NEW_KEY), services.clock).findOpen(aws, AWS_VIRTUAL_MFA, now))?.secret, 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP')
    assert.equal((await new SqliteEntraPortalStore(services.database.access, sealerFor(NEW_KEY), services.clock).findOath(entra))?.secret, 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ')
  })
})
