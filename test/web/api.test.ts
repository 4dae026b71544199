import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import { Writable } from 'node:stream'
import pino from 'pino'
import request from 'supertest'
import type { ApiScope } from '../../server/domain/api-tokens.ts'
import { loggerOptions } from '../../server/logging.ts'
import { automationServices } from '../../server/wiring-automation.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, portalDatabase, signIn, startTestApp, tempDir, testConfig, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

const ALL_SCOPES: ApiScope[] = ['phones:write', 'status:read', 'compliance:read']
const MOBILE = '+4915112345678'
const OTHER_MOBILE = '+4915112345679'

async function apiApp (): Promise<TestApp> {
  t = await startTestApp()
  return t
}

async function issueToken (t: TestApp, scopes: ApiScope[] = ALL_SCOPES, options: { name?: string, expiresInDays?: number | null } = {}): Promise<{ id: string, secret: string }> {
  const { token, secret } = await automationServices(t.services).tokens.create(
    { name: options.name ?? `feed ${Math.random().toString(36).slice(2, 8)}`, scopes, expiresInDays: options.expiresInDays ?? null },
    { id: null, label: 'test' })
  return { id: token.id, secret }
}

function api (t: TestApp) {
  return request(t.app.server)
}

async function phoneOf (t: TestApp, userId: string): Promise<string | null> {
  return (await sqlOn(t.services).get<{ phone: string | null }>('SELECT phone FROM users WHERE id = ?', userId))!.phone
}

async function auditCount (t: TestApp): Promise<number> {
  return (await sqlOn(t.services).get<{ n: number }>('SELECT count(*) AS n FROM audit_events'))!.n
}

async function auditEvents (t: TestApp, action: string): Promise<Array<{ actorId: string | null, actorLabel: string, subjectUserId: string | null, details: Record<string, unknown> }>> {
  return (await sqlOn(t.services).all<{ actorId: string | null, actorLabel: string, subjectUserId: string | null, details: string }>('SELECT actor_id AS actorId, actor_label AS actorLabel, subject_user_id AS subjectUserId, details FROM audit_events WHERE action = ? ORDER BY id', action))
    .map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> }))
}

test('a phones:write token sets a user\'s directory phone, normalised to E.164, and the change is audited under the token\'s name', async () => {
  const t = await apiApp()
  const user = await createTestUser(t.services)
  const token = await issueToken(t, ['phones:write'], { name: 'HR feed' })

  const res = await api(t).put(`/api/v1/users/${user.id}/phone`).set('authorization', `Bearer ${token.secret}`).send({ phone: '+49 151 1234 5678' })

  assert.equal(res.status, 200)
  assert.deepEqual(res.body, { user: user.id, phone: MOBILE, result: 'updated' })
  assert.equal(await phoneOf(t, user.id), MOBILE)
  const [event] = await auditEvents(t, 'user.phone_set')
  assert.equal(event.actorLabel, 'api-token:HR feed')
  assert.equal(event.actorId, null)
  assert.equal(event.subjectUserId, user.id)
  assert.deepEqual(event.details, { source: 'api', tokenId: token.id, from: null, to: '•••• 5678' }, 'only the last digits go into the append-only log')
})

test('sending the same number again reports "unchanged" and records nothing', async () => {
  const t = await apiApp()
  const user = await createTestUser(t.services)
  const { secret } = await issueToken(t, ['phones:write'])
  await api(t).put(`/api/v1/users/${user.id}/phone`).set('authorization', `Bearer ${secret}`).send({ phone: MOBILE })
  const before = await auditCount(t)

  const again = await api(t).put(`/api/v1/users/${user.id}/phone`).set('authorization', `Bearer ${secret}`).send({ phone: '+49 (151) 1234-5678' })

  assert.equal(again.status, 200)
  assert.deepEqual(again.body, { user: user.id, phone: MOBILE, result: 'unchanged' })
  assert.equal(await auditCount(t), before)
})

test('a user can be named by portal id, by "email:<address>" (any case) or by "external:<provider>:<id>"', async () => {
  const t = await apiApp()
  const byEmail = await createTestUser(t.services, { email: 'dana@test.example' })
  const byExternal = await createTestUser(t.services)
  await sqlOn(t.services).run("UPDATE users SET provider = 'aws', external_id = 'dana.ops' WHERE id = ?", byExternal.id)
  const { secret } = await issueToken(t, ['phones:write', 'status:read'])

  const one = await api(t).put('/api/v1/users/email:Dana@Test.Example/phone').set('authorization', `Bearer ${secret}`).send({ phone: MOBILE })
  const two = await api(t).put('/api/v1/users/external:aws:dana.ops/phone').set('authorization', `Bearer ${secret}`).send({ phone: OTHER_MOBILE })
  const wrongProvider = await api(t).put('/api/v1/users/external:entra:dana.ops/phone').set('authorization', `Bearer ${secret}`).send({ phone: MOBILE })
  const status = await api(t).get('/api/v1/users/external:aws:dana.ops/status').set('authorization', `Bearer ${secret}`)

  assert.equal(one.status, 200)
  assert.equal(await phoneOf(t, byEmail.id), MOBILE)
  assert.equal(two.status, 200)
  assert.equal(await phoneOf(t, byExternal.id), OTHER_MOBILE)
  assert.equal(wrongProvider.status, 404)
  assert.equal(wrongProvider.body.error.code, 'user_not_found')
  assert.equal(status.status, 200)
  assert.equal(status.body.id, byExternal.id)
  assert.equal(status.body.provider, 'aws')
})

test('a missing, malformed, unknown, expired or revoked token gets 401 invalid_token and changes nothing', async () => {
  const t = await apiApp()
  const user = await createTestUser(t.services)
  const expiring = await issueToken(t, ALL_SCOPES, { expiresInDays: 1 })
  const revoked = await issueToken(t)
  await automationServices(t.services).tokens.revoke(revoked.id, { id: null, label: 'test' })
  t.clock.advance(DAY + 1000)
  const before = await auditCount(t)

  const attempts: Array<[string, string | undefined]> = [
    ['no header', undefined],
    ['not a bearer', `Basic ${Buffer.from('a:b').toString('base64')}`],
    ['empty bearer', 'Bearer '],
    ['not our format', 'Bearer abc.def'],
    ['unknown token', `Bearer mfr_${'A'.repeat(43)}`],
    ['expired', `Bearer ${expiring.secret}`],
    ['revoked', `Bearer ${revoked.secret}`]
  ]
  for (const [label, header] of attempts) {
    const put = api(t).put(`/api/v1/users/${user.id}/phone`)
    if (header !== undefined) put.set('authorization', header)
    const res = await put.send({ phone: MOBILE })
    assert.equal(res.status, 401, label)
    assert.equal(res.body.error.code, 'invalid_token', label)
    assert.match(res.headers['www-authenticate'], /^Bearer .*error="invalid_token"/, label)
    const get = api(t).get(`/api/v1/users/${user.id}/status`)
    if (header !== undefined) get.set('authorization', header)
    assert.equal((await get).status, 401, label)
  }
  const expired = await api(t).get('/api/v1/compliance').set('authorization', `Bearer ${expiring.secret}`)
  assert.match(expired.body.error.message, /expired/)
  const wasRevoked = await api(t).get('/api/v1/compliance').set('authorization', `Bearer ${revoked.secret}`)
  assert.match(wasRevoked.body.error.message, /revoked/)

  assert.equal(await phoneOf(t, user.id), null)
  assert.equal(await auditCount(t), before)
})

test('a signed-in session cookie alone cannot call the API, not even an admin\'s', async () => {
  const t = await apiApp()
  const admin = await createTestUser(t.services, { role: 'admin' })
  const agent = await signIn(t, admin.email)

  const put = await agent.put(`/api/v1/users/${admin.id}/phone`).send({ phone: MOBILE })
  const bulk = await agent.post('/api/v1/phones/bulk').send({ items: [{ user: admin.id, phone: MOBILE }] })
  const status = await agent.get(`/api/v1/users/${admin.id}/status`)
  const compliance = await agent.get('/api/v1/compliance')

  for (const res of [put, bulk, status, compliance]) {
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_token')
  }
  assert.equal(await phoneOf(t, admin.id), null)
  assert.equal((await agent.get('/api/v1/me')).status, 200, 'the session still works where sessions belong')
})

test('each route needs its own scope: anything else is 403 insufficient_scope and changes nothing', async () => {
  const t = await apiApp()
  const user = await createTestUser(t.services)
  const before = await auditCount(t)
  const calls: Array<[ApiScope, (secret: string) => request.Test]> = [
    ['phones:write', (s) => api(t).put(`/api/v1/users/${user.id}/phone`).set('authorization', `Bearer ${s}`).send({ phone: MOBILE })],
    ['phones:write', (s) => api(t).post('/api/v1/phones/bulk').set('authorization', `Bearer ${s}`).send({ items: [{ user: user.id, phone: MOBILE }] })],
    ['status:read', (s) => api(t).get(`/api/v1/users/${user.id}/status`).set('authorization', `Bearer ${s}`)],
    ['compliance:read', (s) => api(t).get('/api/v1/compliance').set('authorization', `Bearer ${s}`)]
  ]
  const tokens = Object.fromEntries(await Promise.all(ALL_SCOPES.map(async (scope) => [scope, (await issueToken(t, [scope])).secret]))) as Record<ApiScope, string>
  const auditAfterIssuing = await auditCount(t)

  for (const [needed, call] of calls) {
    for (const scope of ALL_SCOPES.filter((s) => s !== needed)) {
      const res = await call(tokens[scope])
      assert.equal(res.status, 403, `${scope} on a ${needed} route`)
      assert.equal(res.body.error.code, 'insufficient_scope')
      assert.match(res.body.error.message, new RegExp(needed))
      assert.match(res.headers['www-authenticate'], /error="insufficient_scope"/)
    }
  }
  assert.equal(await phoneOf(t, user.id), null)
  assert.equal(await auditCount(t), auditAfterIssuing)
  assert.equal(auditAfterIssuing - before, 3, 'only the three token creations were recorded')

  for (const [needed, call] of calls) assert.equal((await call(tokens[needed])).status, 200, `${needed} on its own route`)
})

test('malformed requests get 4xx with a stable code and change nothing: bad JSON, wrong types, unknown fields, form posts, oversized bodies', async () => {
  const t = await apiApp()
  const user = await createTestUser(t.services)
  const { secret } = await issueToken(t)
  const auth = { authorization: `Bearer ${secret}` }
  const before = await auditCount(t)
  const put = () => api(t).put(`/api/v1/users/${user.id}/phone`).set(auth)
  const bulk = () => api(t).post('/api/v1/phones/bulk').set(auth)

  const cases: Array<[string, request.Test, number, string, string?]> = [
    ['bad JSON', put().set('content-type', 'application/json').send('{"phone": "+49'), 400, 'invalid_json'],
    ['empty JSON body', put().set('content-type', 'application/json').send(''), 400, 'invalid_json'],
    ['number instead of text', put().send({ phone: 4915112345678 }), 400, 'invalid_request', 'phone'],
    ['missing field', put().send({}), 400, 'invalid_request', 'phone'],
    ['unknown field', put().send({ phone: MOBILE, mobile: MOBILE }), 400, 'invalid_request', 'mobile'],
    ['array body', put().send([MOBILE]), 400, 'invalid_request', 'body'],
    ['form post', put().type('form').send({ phone: MOBILE }), 415, 'unsupported_media_type'],
    ['not a phone number', put().send({ phone: 'call me maybe' }), 400, 'invalid_phone'],
    ['too short to be a number', put().send({ phone: '+49 151' }), 400, 'invalid_phone'],
    ['over 64 KB', put().send({ phone: 'x'.repeat(70 * 1024) }), 413, 'payload_too_large'],
    ['bulk: one item of the wrong type refuses the whole request', bulk().send({ items: [{ user: user.id, phone: MOBILE }, { user: user.id, phone: null }] }), 400, 'invalid_request', 'items.1.phone'],
    ['bulk: unknown field in an item', bulk().send({ items: [{ user: user.id, phone: MOBILE, name: 'x' }] }), 400, 'invalid_request', 'items.0.name'],
    ['bulk: no items', bulk().send({ items: [] }), 400, 'invalid_request', 'items'],
    ['bulk: over 1000 items', bulk().send({ items: Array.from({ length: 1001 }, () => ({ user: user.id, phone: MOBILE })) }), 400, 'invalid_request', 'items'],
    ['bulk: over 1 MB', bulk().send({ items: [{ user: user.id, phone: MOBILE }], padding: 'x'.repeat(1024 * 1024) }), 413, 'payload_too_large'],
    ['query: limit not a number', api(t).get('/api/v1/compliance?limit=ten').set(auth), 400, 'invalid_request', 'limit'],
    ['query: limit over 500', api(t).get('/api/v1/compliance?limit=501').set(auth), 400, 'invalid_request', 'limit'],
    ['query: unknown parameter', api(t).get('/api/v1/compliance?offset=5').set(auth), 400, 'invalid_request', 'offset']
  ]
  for (const [label, call, status, code, field] of cases) {
    const res = await call
    assert.equal(res.status, status, label)
    assert.equal(res.body.error.code, code, label)
    assert.equal(typeof res.body.error.message, 'string', label)
    if (field !== undefined) assert.equal(res.body.error.field, field, label)
  }
  assert.equal(await phoneOf(t, user.id), null)
  assert.equal(await auditCount(t), before)
})

test('an unknown user is 404 user_not_found, whatever the id looks like', async () => {
  const t = await apiApp()
  const { secret } = await issueToken(t)
  const before = await auditCount(t)
  for (const id of ['no-such-user', 'email:nobody@test.example', 'external:aws:nobody', '..%2Fadmin', '%00']) {
    const put = await api(t).put(`/api/v1/users/${id}/phone`).set('authorization', `Bearer ${secret}`).send({ phone: MOBILE })
    assert.equal(put.status, 404, id)
    assert.equal(put.body.error.code, 'user_not_found', id)
    const status = await api(t).get(`/api/v1/users/${id}/status`).set('authorization', `Bearer ${secret}`)
    assert.equal(status.status, 404, id)
    assert.equal(status.body.error.code, 'user_not_found', id)
  }
  assert.equal(await auditCount(t), before)
})

test('the bulk endpoint applies every valid row and reports each row: updated, unchanged, or an error with its code', async () => {
  const t = await apiApp()
  const [ana, ben, cy] = [await createTestUser(t.services, { email: 'ana@test.example' }), await createTestUser(t.services), await createTestUser(t.services)]
  const { secret, id: tokenId } = await issueToken(t, ['phones:write'], { name: 'HR nightly' })
  await api(t).put(`/api/v1/users/${ben.id}/phone`).set('authorization', `Bearer ${secret}`).send({ phone: OTHER_MOBILE })
  const before = await auditCount(t)

  const res = await api(t).post('/api/v1/phones/bulk').set('authorization', `Bearer ${secret}`).send({
    items: [
      { user: 'email:ana@test.example', phone: '+49 151 12345678' },
      { user: ben.id, phone: OTHER_MOBILE },
      { user: 'nobody', phone: MOBILE },
      { user: cy.id, phone: '12' },
      { user: ana.id, phone: OTHER_MOBILE }
    ]
  })

  assert.equal(res.status, 200)
  assert.equal(res.body.updated, 1)
  assert.equal(res.body.unchanged, 1)
  assert.equal(res.body.errors, 3)
  assert.deepEqual(res.body.results.map((r: { index: number, result: string, error?: { code: string } }) => [r.index, r.result, r.error?.code]), [
    [0, 'updated', undefined],
    [1, 'unchanged', undefined],
    [2, 'error', 'user_not_found'],
    [3, 'error', 'invalid_phone'],
    [4, 'error', 'duplicate_user']
  ])
  assert.equal(res.body.results[0].phone, MOBILE)
  assert.equal(res.body.results[0].user, 'email:ana@test.example', 'each row names the user as it was sent')
  assert.equal(await phoneOf(t, ana.id), MOBILE, 'the first row for a user wins; the duplicate is refused, not applied')
  assert.equal(await phoneOf(t, ben.id), OTHER_MOBILE)
  assert.equal(await phoneOf(t, cy.id), null)
  assert.equal(await auditCount(t) - before, 2, 'one event for the change, one for the batch')
  const [changed] = (await auditEvents(t, 'user.phone_set')).filter((e) => e.subjectUserId === ana.id)
  assert.equal(changed.actorLabel, 'api-token:HR nightly')
  assert.deepEqual((await auditEvents(t, 'phones.bulk_applied'))[0].details, { source: 'api', tokenId, rows: 5, updated: 1, unchanged: 1, errors: 3 })
})

test('the bulk endpoint takes 1000 rows in one request, more than the 64 KB other routes accept', async () => {
  const t = await apiApp()
  const users: Array<{ id: string }> = []
  for (let i = 0; i < 3; i++) users.push(await createTestUser(t.services))
  const { secret } = await issueToken(t, ['phones:write'])
  const items = Array.from({ length: 1000 }, (_, i) => i < 3
    ? { user: users[i].id, phone: `+49151123456${70 + i}` }
    : { user: `email:someone-who-is-not-here-${i}@test.example`, phone: MOBILE })
  assert.ok(JSON.stringify({ items }).length > 64 * 1024)

  const res = await api(t).post('/api/v1/phones/bulk').set('authorization', `Bearer ${secret}`).send({ items })

  assert.equal(res.status, 200)
  assert.equal(res.body.results.length, 1000)
  assert.equal(res.body.updated, 3)
  assert.equal(res.body.errors, 997)
  assert.deepEqual(await Promise.all(users.map(async (u) => await phoneOf(t, u.id))), ['+4915112345670', '+4915112345671', '+4915112345672'])
})

test('status says state, deadline, days left, soft block, enrollment, method kinds, provider and enforcement, and nothing more', async () => {
  const t = await apiApp()
  const now = t.clock.now().getTime()
  const user = await createTestUser(t.services)
  await sqlOn(t.services).run(`UPDATE users SET phone = ?, provider_methods = '["hardware_totp"]' WHERE id = ?`, MOBILE, user.id)
  await t.services.methods.addPhone(user.id, 'Mobile', MOBILE)
  // Created after the campaign started: the new-user window (14 days) beats the campaign's 10.
  await t.services.campaigns.create(campaignInput(now, { deadline: new Date(now + 10 * DAY), newUserWindowDays: 14, softBlockDays: 20 }), { id: null, label: 'test' })
  const waiting = await createTestUser(t.services)
  await t.services.engine.refreshUser(waiting.id)
  const { secret } = await issueToken(t, ['status:read'])

  const res = await api(t).get(`/api/v1/users/${user.id}/status`).set('authorization', `Bearer ${secret}`)
  const blocked = await api(t).get(`/api/v1/users/${waiting.id}/status`).set('authorization', `Bearer ${secret}`)

  assert.equal(res.status, 200)
  assert.deepEqual(res.body, {
    id: user.id,
    provider: 'local',
    state: 'enrolled',
    deadline: new Date(now + 14 * DAY).toISOString(),
    daysLeft: 14,
    softBlocked: false,
    enrolled: true,
    methods: ['hardware_totp', 'phone'],
    enforcedAt: null
  })
  assert.deepEqual([blocked.body.state, blocked.body.enrolled, blocked.body.softBlocked, blocked.body.methods], ['pending', false, true, []],
    'inside the soft-block stage without a qualifying method')
})

test('a token reaches only what its scope allows: status shows no phone, email or role, and writing a phone reveals nothing else', async () => {
  const t = await apiApp()
  const admin = await createTestUser(t.services, { role: 'admin', email: 'boss@test.example' })
  const reader = await issueToken(t, ['status:read'])
  const writer = await issueToken(t, ['phones:write'])

  const status = await api(t).get(`/api/v1/users/${admin.id}/status`).set('authorization', `Bearer ${reader.secret}`)
  const written = await api(t).put('/api/v1/users/email:boss@test.example/phone').set('authorization', `Bearer ${writer.secret}`).send({ phone: MOBILE })
  const statusWithWriter = await api(t).get('/api/v1/users/email:boss@test.example/status').set('authorization', `Bearer ${writer.secret}`)
  const adminPage = await api(t).get('/admin/tokens').set('authorization', `Bearer ${writer.secret}`)

  assert.equal(status.status, 200)
  const text = JSON.stringify(status.body)
  for (const secretish of ['boss@test.example', 'admin', 'password', 'phone"']) assert.ok(!text.includes(secretish), `status must not carry ${secretish}`)
  assert.deepEqual(Object.keys(written.body).sort(), ['phone', 'result', 'user'])
  assert.equal(written.body.user, 'email:boss@test.example', 'the portal id is not revealed to a write-only token')
  assert.equal(statusWithWriter.status, 403)
  assert.equal(adminPage.status, 303, 'a bearer token is no key to the admin pages')
})

test('compliance pages are keyset pages by user id: following "next" returns every user once', async () => {
  const t = await apiApp()
  for (let i = 0; i < 5; i++) await createTestUser(t.services)
  const { secret } = await issueToken(t, ['compliance:read'])
  const ids = await sqlOn(t.services).values<string>('SELECT id FROM users ORDER BY id')

  const seen: string[] = []
  let cursor: string | null = null
  let pages = 0
  do {
    const res: request.Response = await api(t).get('/api/v1/compliance').query(cursor === null ? { limit: 2 } : { limit: 2, cursor }).set('authorization', `Bearer ${secret}`)
    assert.equal(res.status, 200)
    assert.ok(res.body.rows.length <= 2)
    seen.push(...res.body.rows.map((r: { userId: string }) => r.userId))
    cursor = res.body.next
    pages++
  } while (cursor !== null)

  assert.deepEqual(seen, ids)
  assert.equal(pages, 3)
  const whole = await api(t).get('/api/v1/compliance').set('authorization', `Bearer ${secret}`)
  assert.equal(whole.body.rows.length, 5)
  assert.equal(whole.body.next, null)
  assert.deepEqual(Object.keys(whole.body.rows[0]).sort(), ['consolePassword', 'deadline', 'disabled', 'email', 'enforcedAt', 'enrolled', 'externalId', 'hasRecoveryCodes',
    'meetsPolicy', 'methods', 'methodsHeld', 'methodsRequired', 'portalMethods', 'privileged', 'provider', 'providerMethods', 'state', 'userId', 'weak'])
})

test('a token\'s last use is recorded, at most once a minute', async () => {
  const t = await apiApp()
  const user = await createTestUser(t.services)
  const { id, secret } = await issueToken(t, ['status:read'])
  const lastUsed = async () => (await sqlOn(t.services).value('SELECT last_used_at FROM api_tokens WHERE id = ?', id)) as number | null
  const call = () => api(t).get(`/api/v1/users/${user.id}/status`).set('authorization', `Bearer ${secret}`)
  assert.equal(await lastUsed(), null)

  await call()
  const first = t.clock.now().getTime()
  assert.equal(await lastUsed(), first)
  t.clock.advance(30_000)
  await call()
  assert.equal(await lastUsed(), first, 'not rewritten within the minute')
  t.clock.advance(30_000)
  await call()
  assert.equal(await lastUsed(), first + 60_000)
})

test('the OpenAPI document is public JSON that lists every route with its schemas, the bearer scheme and the error envelope', async () => {
  const t = await apiApp()

  const res = await api(t).get('/api/v1/openapi.json')

  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'], /^application\/json/)
  const doc = JSON.parse(res.text) as {
    openapi: string
    paths: Record<string, Record<string, { parameters: Array<{ name: string, in: string }>, requestBody?: { content: Record<string, { schema: { additionalProperties?: boolean } }> }, responses: Record<string, { content: Record<string, { schema: Record<string, unknown> }> }>, security?: unknown[], 'x-required-scope'?: string }>>
    components: { securitySchemes: Record<string, { type: string, scheme: string, description: string }>, schemas: Record<string, { properties: Record<string, unknown> }> }
    security: unknown[]
  }
  assert.equal(doc.openapi, '3.1.0')
  assert.deepEqual(Object.fromEntries(Object.entries(doc.paths).map(([path, ops]) => [path, Object.keys(ops)])), {
    '/api/v1/users/{id}/phone': ['put'],
    '/api/v1/phones/bulk': ['post'],
    '/api/v1/users/{id}/status': ['get'],
    '/api/v1/compliance': ['get'],
    '/api/v1/entra/phones/prepopulate': ['post'],
    '/api/v1/openapi.json': ['get']
  })
  assert.deepEqual(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', description: doc.components.securitySchemes.bearerAuth.description })
  assert.deepEqual(doc.security, [{ bearerAuth: [] }])
  assert.ok('error' in doc.components.schemas.Error.properties)
  const put = doc.paths['/api/v1/users/{id}/phone'].put
  assert.equal(put['x-required-scope'], 'phones:write')
  assert.deepEqual(put.parameters.map((p) => [p.name, p.in]), [['id', 'path']])
  assert.equal(put.requestBody?.content['application/json'].schema.additionalProperties, false)
  assert.deepEqual(Object.keys(put.responses).sort(), ['200', '400', '401', '403', '404', '413', '415'])
  assert.deepEqual(put.responses['401'].content['application/json'].schema, { $ref: '#/components/schemas/Error' })
  assert.deepEqual(doc.paths['/api/v1/compliance'].get.parameters.map((p) => [p.name, p.in]), [['cursor', 'query'], ['limit', 'query']])
  assert.deepEqual(doc.paths['/api/v1/openapi.json'].get.security, [], 'the document itself needs no token')
  assert.ok(!res.text.includes('"[Kind]"') && !res.text.includes('Symbol('))
})

test('the logger never writes a bearer token or a session cookie', () => {
  const lines: string[] = []
  const sink = new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } })
  const log = pino(loggerOptions({ logLevel: 'info' } as Parameters<typeof loggerOptions>[0]), sink)
  const token = `mfr_${'Z'.repeat(43)}`

  log.info({ req: { method: 'PUT', url: '/api/v1/users/x/phone', headers: { authorization: `Bearer ${token}`, cookie: 'mfa_session=abc' } } }, 'request')
  log.info({ headers: { authorization: `Bearer ${token}` } }, 'outgoing')

  assert.equal(lines.length, 2)
  for (const line of lines) {
    assert.ok(!line.includes(token), line)
    assert.ok(!line.includes('mfa_session=abc'), line)
  }
  assert.match(lines[0], /"url":"\/api\/v1\/users\/x\/phone"/, 'a request is logged by method and address, without its headers')
  assert.match(lines[1], /\[redacted\]/)
})

test('tokens keep working after the encryption key is rotated, and are re-keyed on first use so the old key can go', async () => {
  const dir = tempDir()
  const database = await portalDatabase()
  const oldKey = Buffer.alloc(32, 1).toString('base64')
  const newKey = Buffer.alloc(32, 2).toString('base64')
  const before = await createServices(testConfig({ ...database.env, ENCRYPTION_KEY: oldKey }, dir))
  const { token, secret } = await automationServices(before).tokens.create({ name: 'Feed', scopes: ['status:read'], expiresInDays: null }, { id: null, label: 'test' })
  const hashOf = async (services: typeof before) => await sqlOn(services).value('SELECT token_hash FROM api_tokens WHERE id = ?', token.id)
  const oldHash = await hashOf(before)
  await before.close()
  try {
    const rotated = await createServices(testConfig({ ...database.env, ENCRYPTION_KEY: newKey, ENCRYPTION_KEYS_PREVIOUS: oldKey }, dir))
    assert.equal((await automationServices(rotated).tokens.authenticate(secret)).tokenId, token.id)
    assert.notEqual(await hashOf(rotated), oldHash)
    await rotated.close()
    const oldKeyDropped = await createServices(testConfig({ ...database.env, ENCRYPTION_KEY: newKey }, dir))
    assert.equal((await automationServices(oldKeyDropped).tokens.authenticate(secret)).tokenId, token.id)
    await oldKeyDropped.close()
  } finally {
    await database.release()
    rmSync(dir, { recursive: true, force: true })
  }
})
