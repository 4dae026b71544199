import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Signer } from '@fastify/cookie'
import { rememberingSigner } from '../../server/web/plugins/remembering-signer.ts'

const SECRET = 'a-session-secret-of-at-least-32-characters'

test('cookies signed with remembered answers are exactly what @fastify/cookie signs and accepts, in both directions', () => {
  const plain = new Signer(SECRET, 'sha256')
  const remembering = rememberingSigner(SECRET)
  for (const value of ['session-id-1', 'session-id-2', 'session-id-1']) {
    const signed = remembering.sign(value)
    assert.equal(signed, plain.sign(value))
    assert.deepEqual(plain.unsign(signed), { valid: true, renew: false, value })
    assert.deepEqual(remembering.unsign(plain.sign(value)), { valid: true, renew: false, value })
    assert.deepEqual(remembering.unsign(signed), { valid: true, renew: false, value })
  }
})

test('a forged or altered cookie is refused, even right after its genuine form was accepted', () => {
  const remembering = rememberingSigner(SECRET)
  const genuine = remembering.sign('session-id')
  assert.equal(remembering.unsign(genuine).valid, true)
  const refused = { valid: false, renew: false, value: null }
  assert.deepEqual(remembering.unsign(`${genuine}x`), refused)
  assert.deepEqual(remembering.unsign(genuine.replace('session-id', 'session-ie')), refused)
  assert.deepEqual(remembering.unsign(new Signer('another-secret-of-at-least-32-characters', 'sha256').sign('session-id')), refused)
  assert.deepEqual(remembering.unsign('session-id'), refused)
  // Asking again does not turn a refusal into an acceptance.
  assert.deepEqual(remembering.unsign(`${genuine}x`), refused)
})

test('past its capacity the signer forgets its oldest answers but still answers every cookie correctly', () => {
  const plain = new Signer(SECRET, 'sha256')
  const remembering = rememberingSigner(SECRET, 3)
  const values = Array.from({ length: 10 }, (_, i) => `session-${i}`)
  for (const value of values) remembering.sign(value)
  for (const value of values) {
    assert.deepEqual(remembering.unsign(plain.sign(value)), { valid: true, renew: false, value })
    assert.equal(remembering.unsign(`${plain.sign(value)}0`).valid, false)
  }
})
