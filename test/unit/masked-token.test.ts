import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { MASKED_TOKEN_MAX_LENGTH, maskToken, prepareToken, unmaskToken } from '../../server/web/masked-token.ts'

test('a masked token unmasks to the token it was made from, whatever its base64url characters', () => {
  for (let i = 0; i < 500; i++) {
    const token = randomBytes(1 + (i % 190)).toString('base64url')
    const masked = maskToken(prepareToken(token))
    assert.equal(masked.length, 2 * token.length)
    assert.match(masked, /^[A-Za-z0-9_-]+$/)
    assert.equal(unmaskToken(masked), token)
  }
  const library = 'Zm9vYmFyYmF6cXV4_Zm9vYmFyYmF6cXV4-abcdEF12-0123456789abcdefghijABCDEFGHIJ_-xyz'
  assert.equal(unmaskToken(maskToken(prepareToken(library))), library)
})

test('no two maskings of a token are alike, and each character of it is hidden: every position takes every value', () => {
  const token = 'A'.repeat(96)
  const maskings = Array.from({ length: 4000 }, () => maskToken(prepareToken(token)))
  assert.equal(new Set(maskings).size, maskings.length)
  for (const position of [0, 47, 95]) {
    const seen = new Set(maskings.map((m) => m[96 + position]))
    assert.equal(seen.size, 64, `position ${position} of the masked half takes all 64 characters`)
  }
})

test('anything but a masked token unmasks to nothing', () => {
  const masked = maskToken(prepareToken('abc-DEF_123'))
  for (const input of [undefined, null, 42, {}, ['x'], '', 'A', masked.slice(1), `${masked.slice(0, -1)}.`, `é${masked.slice(1)}`,
    `${masked.slice(0, -1)}\u{1F600}`, 'A'.repeat(MASKED_TOKEN_MAX_LENGTH + 2)]) {
    assert.equal(unmaskToken(input), undefined, JSON.stringify(input)?.slice(0, 30))
  }
  assert.equal(unmaskToken('A'.repeat(MASKED_TOKEN_MAX_LENGTH)), 'A'.repeat(MASKED_TOKEN_MAX_LENGTH / 2))
})

test('a token that is not base64url, empty, or too long to mask is a programming error, never masked', () => {
  for (const token of ['', 'has space', 'dot.ted', 'ümlaut', 'A'.repeat(MASKED_TOKEN_MAX_LENGTH / 2 + 1)]) {
    assert.throws(() => prepareToken(token), /maskToken/)
  }
})
