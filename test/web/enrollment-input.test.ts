import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { anonymous, createTestUser, csrfFor, signIn, startTestApp, type Agent, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
let agent: Agent
let token: string
let ownMethod: string
let foreignMethod: string
let auditCount: () => Promise<number>
let methodRows: () => Promise<unknown[]>

before(async () => {
  t = await startTestApp()
  const user = await createTestUser(t.services)
  const other = await createTestUser(t.services)
  ownMethod = (await t.services.methods.addTotp(user.id, 'Mine', new Secret({ size: 20 }).base32, 0)).id
  foreignMethod = (await t.services.methods.addTotp(other.id, 'Theirs', new Secret({ size: 20 }).base32, 0)).id
  agent = await signIn(t, user.email)
  token = await csrfFor(agent, '/')
  const db = sqlOn(t.services)
  auditCount = async () => (await db.get<{ n: number }>('SELECT count(*) AS n FROM audit_events'))!.n
  methodRows = async () => await db.all('SELECT id, user_id, name, last_used_step FROM auth_methods ORDER BY id')
})
after(async () => { await t.close() })

const WELL_FORMED_ASSERTION = {
  id: 'AAAA', rawId: 'AAAA', type: 'public-key', clientExtensionResults: {},
  response: { clientDataJSON: 'e30', authenticatorData: 'AAAA', signature: 'AAAA' }
}

// Each: a request that must be refused with a 4xx and a clear message, changing nothing.
const CASES: Array<[string, () => Promise<{ status: number, text: string }>, number, RegExp]> = [
  ['rename with no name', () => agent.post(`/methods/${ownMethod}/rename`).type('form').send({ _csrf: token }), 400, /not valid/],
  ['rename with a name of the wrong type (JSON)', () => agent.post(`/methods/${ownMethod}/rename`).set('x-csrf-token', token).send({ name: { evil: true } }), 400, /not valid/],
  ['rename with malformed JSON', () => agent.post(`/methods/${ownMethod}/rename`).set('x-csrf-token', token).set('content-type', 'application/json').send('{"name": '), 400, /not valid JSON/],
  ['rename with an oversized body', () => agent.post(`/methods/${ownMethod}/rename`).type('form').send({ name: 'x'.repeat(70_000), _csrf: token }), 413, /larger than this page accepts/],
  ['rename of an unknown method id', () => agent.post('/methods/00000000-0000-0000-0000-000000000000/rename').type('form').send({ name: 'x', _csrf: token }), 404, /does not exist/],
  ['rename of another user\'s method id', () => agent.post(`/methods/${foreignMethod}/rename`).type('form').send({ name: 'x', _csrf: token }), 404, /does not exist/],
  ['remove of another user\'s method id', () => agent.post(`/methods/${foreignMethod}/remove`).type('form').send({ _csrf: token }), 404, /does not exist/],
  ['step-up with another user\'s authenticator app', () => agent.post('/step-up/totp').type('form').send({ methodId: foreignMethod, code: '123456', _csrf: token }), 404, /does not exist/],
  ['step-up with a missing code', () => agent.post('/step-up/totp').type('form').send({ methodId: ownMethod, _csrf: token }), 400, /not valid/],
  ['step-up with letters for a code', () => agent.post('/step-up/totp').type('form').send({ methodId: ownMethod, code: 'abcdef', _csrf: token }), 400, /not right/],
  ['step-up by text to a method that is not a phone', () => agent.post('/step-up/phone/send').type('form').send({ methodId: ownMethod, _csrf: token }), 404, /does not exist/],
  ['step-up phone code with nothing sent', () => agent.post('/step-up/phone').type('form').send({ code: '123456', _csrf: token }), 400, /no code waiting/],
  ['passkey step-up with an unknown challenge', () => agent.post('/step-up/passkey/verify').set('x-csrf-token', token).send({ challengeId: 'nope', response: WELL_FORMED_ASSERTION }), 400, /expired/],
  ['passkey step-up with a malformed assertion', () => agent.post('/step-up/passkey/verify').set('x-csrf-token', token).send({ challengeId: 'nope', response: { id: 'x' } }), 400, /not valid/],
  ['passkey step-up with a response of the wrong type', () => agent.post('/step-up/passkey/verify').set('x-csrf-token', token).send({ challengeId: 'nope', response: 'string' }), 400, /not valid/],
  ['"wasn\'t me" with a made-up token', () => agent.get('/methods/not-me?token=made-up'), 404, /not valid for your account/],
  ['"wasn\'t me" with no token', () => agent.get('/methods/not-me'), 400, /not valid/],
  ['pass sign-in with an oversized pass', async () => {
    const visitor = anonymous(t)
    const csrf = await csrfFor(visitor, '/login/pass')
    return visitor.post('/login/pass').type('form').send({ email: 'a@b.example', pass: 'x'.repeat(100), _csrf: csrf })
  }, 400, /not valid/]
]

for (const [name, send, status, message] of CASES) {
  test(`bad input is refused with a clear message and changes nothing: ${name}`, async () => {
    const beforeRows = JSON.stringify(await methodRows())
    const beforeAudit = await auditCount()
    const res = await send()
    assert.equal(res.status, status, res.text.slice(0, 300))
    assert.match(res.text, message)
    assert.doesNotMatch(res.text, /Something went wrong on our side/)
    assert.equal(JSON.stringify(await methodRows()), beforeRows)
    // Wrong codes are recorded (that is how lockouts count); nothing else writes to the audit log.
    if (!/letters for a code/.test(name)) assert.equal(await auditCount(), beforeAudit)
  })
}
