import { test } from 'node:test'
import assert from 'node:assert/strict'
import { countingMethods, directoryName, isSecondFactor, protectionWords, protectsLabel, type MethodHoldings } from '../../server/domain/protection.ts'

/** [who, holdings, the kinds that count toward their enrollment] */
const CASES: Array<[string, MethodHoldings, string[]]> = [
  ['a local user: the portal\'s own methods are the truth', { provider: 'local', portalMethods: ['passkey', 'totp'], providerMethods: [] }, ['passkey', 'totp']],
  ['a local user with nothing', { provider: 'local', portalMethods: [], providerMethods: [] }, []],
  ['an Entra user with only a portal passkey: nothing protects the Microsoft sign-in', { provider: 'entra', portalMethods: ['passkey'], providerMethods: [] }, []],
  ['an Entra user with Microsoft Authenticator', { provider: 'entra', portalMethods: [], providerMethods: ['authenticator'] }, ['authenticator']],
  ['an Entra user with both: only what Entra holds counts', { provider: 'entra', portalMethods: ['passkey', 'phone'], providerMethods: ['totp'] }, ['totp']],
  ['an AWS user with only a portal passkey', { provider: 'aws', portalMethods: ['passkey'], providerMethods: [] }, []],
  ['an AWS user with a virtual MFA device', { provider: 'aws', portalMethods: ['totp'], providerMethods: ['totp'] }, ['totp']],
  ['an AWS user with a security key registered in the console', { provider: 'aws', portalMethods: [], providerMethods: ['passkey'] }, ['passkey']],
  ['kinds the directory reports twice count once, sorted', { provider: 'entra', portalMethods: [], providerMethods: ['phone', 'authenticator', 'phone'] }, ['authenticator', 'phone']]
]

for (const [who, holdings, expected] of CASES) {
  test(`counting methods: ${who}`, () => {
    assert.deepEqual(countingMethods(holdings), expected)
  })
}

test('pages say which methods protect what: "protects your Microsoft sign-in" versus "protects this portal only"', () => {
  assert.equal(protectsLabel('entra', 'directory'), 'protects your Microsoft sign-in')
  assert.equal(protectsLabel('aws', 'directory'), 'protects your AWS sign-in')
  assert.equal(protectsLabel('entra', 'portal'), 'protects this portal only')
  assert.equal(protectsLabel('aws', 'portal'), 'protects this portal only')
  assert.equal(protectsLabel('aws', 'directory', 'their'), 'protects their AWS sign-in', 'the helpdesk speaks of the person')
  assert.equal(protectsLabel('local', 'portal'), null, 'local users\' pages are unchanged')
  assert.equal(directoryName('local'), null)
})

test('the compliance export says in words whether the sign-in is protected at the directory', () => {
  assert.equal(protectionWords('entra', false), 'not protected at the directory')
  assert.equal(protectionWords('aws', true), 'protected at the directory')
  assert.equal(protectionWords('local', true), 'protected in the portal')
  assert.equal(protectionWords('local', false), 'not protected')
})

test('what a directory reports is shown as protecting the sign-in only when it is a second factor at all', () => {
  for (const kind of ['passkey', 'totp', 'phone', 'authenticator']) assert.equal(isSecondFactor(kind), true, kind)
  for (const kind of ['email', 'password', 'external']) assert.equal(isSecondFactor(kind), false, kind)
})
