import { test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { keyId, Sealer } from '../../server/db/sealing.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, testConfig } from '../helpers/app.ts'

const CURRENT = Buffer.alloc(32, 1)
const PREVIOUS = Buffer.alloc(32, 2)
const STRANGER = Buffer.alloc(32, 3)
const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

test('a sealed secret opens only where it was sealed for', () => {
  const sealer = new Sealer(CURRENT)
  const sealed = sealer.seal(SECRET, 'totp:row-a')
  assert.match(sealed, new RegExp(`^v1\\.${keyId(CURRENT)}\\.`))
  assert.ok(!sealed.includes(SECRET))
  assert.equal(sealer.open(sealed, 'totp:row-a'), SECRET)
  assert.throws(() => sealer.open(sealed, 'totp:row-b'), /unable to authenticate/)
})

test('sealing the same secret twice gives different values (a fresh IV each time)', () => {
  const sealer = new Sealer(CURRENT)
  assert.notEqual(sealer.seal(SECRET, 'totp:row-a'), sealer.seal(SECRET, 'totp:row-a'))
})

test('an altered sealed value does not open', () => {
  const sealer = new Sealer(CURRENT)
  const [version, id, iv, ciphertext, tag] = sealer.seal(SECRET, 'totp:row-a').split('.')
  const flipped = Buffer.from(ciphertext, 'base64url')
  flipped[0] ^= 1
  assert.throws(() => sealer.open([version, id, iv, flipped.toString('base64url'), tag].join('.'), 'totp:row-a'))
})

test('a value sealed under a previous key still opens, is not current, and one under an unknown key is refused by id', () => {
  const old = new Sealer(PREVIOUS).seal(SECRET, 'totp:row-a')
  const rotated = new Sealer(CURRENT, [PREVIOUS])
  assert.equal(rotated.open(old, 'totp:row-a'), SECRET)
  assert.equal(rotated.isCurrent(old), false)
  assert.equal(rotated.isCurrent(rotated.seal(SECRET, 'totp:row-a')), true)
  const stray = new Sealer(STRANGER).seal(SECRET, 'totp:row-a')
  assert.throws(() => rotated.open(stray, 'totp:row-a'), new RegExp(`unknown key \\(${keyId(STRANGER)}\\)`))
})

test('a sealed authenticator secret copied onto another user\'s row cannot be opened there', async (t) => {
  const config = testConfig()
  const services = await createServices(config)
  t.after(async () => { await services.close(); rmSync(config.dataDir, { recursive: true, force: true }) })
  const victim = await services.methods.addTotp((await createTestUser(services)).id, 'Victim app', SECRET, 0)
  const attacker = await createTestUser(services)
  const target = await services.methods.addTotp(attacker.id, 'Attacker app', 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ', 0)

  const sqlite = services.database.sqlite
  const sealed = sqlite.prepare('SELECT secret_sealed FROM auth_methods WHERE id = ?').pluck().get(victim.id)
  sqlite.prepare('UPDATE auth_methods SET secret_sealed = ? WHERE id = ?').run(sealed, target.id)

  await assert.rejects(async () => await services.methods.totpSecret(attacker.id, target.id), /unable to authenticate/)
  assert.equal(await services.methods.totpSecret(victim.userId, victim.id), SECRET)
})
