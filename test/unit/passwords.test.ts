import { test } from 'node:test'
import assert from 'node:assert/strict'
import { generatePassword, hashPassword, PASSWORD_PARAMS, verifyPassword } from '../../server/domain/passwords.ts'

test('passwords are hashed with scrypt at the OWASP cost, salted, and verify only with the right password', async () => {
  const hash = await hashPassword('correct horse battery staple')
  assert.match(hash, new RegExp(`^scrypt\\$${PASSWORD_PARAMS.N}\\$8\\$1\\$`))
  assert.notEqual(hash, await hashPassword('correct horse battery staple'), 'a fresh salt every time')
  assert.equal(await verifyPassword('correct horse battery staple', hash), true)
  assert.equal(await verifyPassword('correct horse battery stapler', hash), false)
})

test('an unknown account never verifies, and a malformed stored hash is a plain no', async () => {
  assert.equal(await verifyPassword('anything', undefined), false)
  assert.equal(await verifyPassword('anything', null), false)
  assert.equal(await verifyPassword('anything', 'md5$abc'), false)
})

test('a hash made at another cost still verifies under the cost stored with it', async () => {
  const cheap = await hashPassword('pw-at-a-lower-cost', { N: 2 ** 10, r: 8, p: 1 })
  assert.equal(await verifyPassword('pw-at-a-lower-cost', cheap), true)
})

test('generated passwords are 20 unambiguous characters', () => {
  const pw = generatePassword()
  assert.equal(pw.length, 20)
  assert.doesNotMatch(pw, /[0O1lI]/)
})
