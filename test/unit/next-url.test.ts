import { test } from 'node:test'
import assert from 'node:assert/strict'
import { safeNext } from '../../server/web/next-url.ts'

test('paths on the portal are kept, with their query and fragment, re-encoded as a browser would send them', () => {
  const kept: Array<[string, string]> = [
    ['/', '/'],
    ['/helpdesk', '/helpdesk'],
    ['/helpdesk?q=ada%20lovelace', '/helpdesk?q=ada%20lovelace'],
    ['/helpdesk?q=ada lovelace', '/helpdesk?q=ada%20lovelace'],
    ['/enroll/passkey#name', '/enroll/passkey#name'],
    ['/admin/../helpdesk', '/helpdesk'],
    ['/step-up?next=%2F%2Fevil.example', '/step-up?next=%2F%2Fevil.example'],
    ['helpdesk', '/helpdesk']
  ]
  for (const [next, expected] of kept) assert.equal(safeNext(next), expected, JSON.stringify(next))
})

test('anything that leads off the portal, once a browser has read it, becomes "/"', () => {
  for (const next of [
    '//evil.example', '/\\evil.example', '\\\\evil.example', '/\t/evil.example', '/\n/evil.example', '/\r/evil.example',
    '/.//evil.example', '/x/..//evil.example', ' //evil.example', 'https://evil.example/',
    'javascript:alert(1)', 'data:text/html,hi', 'HTTPS://evil.example', '///evil.example'
  ]) {
    assert.equal(safeNext(next), '/', JSON.stringify(next))
  }
})

test('control characters and anything a header cannot carry become "/" rather than reaching a Location header', () => {
  for (const next of ['/\r\nSet-Cookie: x=1', '/a\u0000', '/a\u007f', '/\u202egro.elpmaxe', '/\u200e', '/\u{1F600}', '/caf\u00e9', '/\u2028']) {
    assert.equal(safeNext(next), '/', JSON.stringify(next))
  }
  assert.equal(safeNext(undefined), '/')
  assert.equal(safeNext(''), '/')
})
