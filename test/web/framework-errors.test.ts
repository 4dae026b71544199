import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type AddressInfo } from 'node:net'
import request from 'supertest'
import { automationServices } from '../../server/wiring-automation.ts'
import { createTestUser, signIn, signInStaff, startTestApp, type TestApp } from '../helpers/app.ts'

// Errors the framework or Node's HTTP parser raises before any route runs (an address that cannot be decoded, an id
// longer than the router's limit, headers too large, a request that is not HTTP) are answered like every other
// error: a page for browsers, the documented {error:{code,message}} for /api/v1, and never the input sent back.

let t: TestApp
let port: number
before(async () => {
  t = await startTestApp()
  await t.app.listen({ port: 0, host: '127.0.0.1' })
  port = (t.app.server.address() as AddressInfo).port
})
after(async () => { await t.close() })

function client () {
  return request(t.app.server)
}

async function bearerToken (): Promise<string> {
  const { secret } = await automationServices(t.services).tokens.create({ name: `probe ${Math.random()}`, scopes: ['phones:write', 'status:read', 'compliance:read'], expiresInDays: null }, { id: null, label: 'test' })
  return `Bearer ${secret}`
}

/** The app's error page: its layout, its security headers, and the heading for the status. */
function assertErrorPage (res: request.Response, status: number, heading: RegExp, label: string): void {
  assert.equal(res.status, status, label)
  assert.match(res.headers['content-type'] ?? '', /^text\/html/, label)
  assert.match(res.text, /<h1>[^<]*<\/h1>/, label)
  assert.match(res.text, heading, label)
  assert.match(res.headers['content-security-policy'] ?? '', /default-src 'self'/, `${label}: the page has the portal's security headers`)
  assert.doesNotMatch(res.text, /FST_|statusCode/, label)
}

/** The documented API error: {error:{code,message}}, with `field` only for invalid_request. */
function assertApiError (res: request.Response, status: number, code: string, label: string): void {
  assert.equal(res.status, status, label)
  assert.match(res.headers['content-type'] ?? '', /^application\/json/, label)
  assert.deepEqual(Object.keys(res.body), ['error'], label)
  assert.deepEqual(Object.keys(res.body.error).sort(), code === 'invalid_request' ? ['code', 'field', 'message'] : ['code', 'message'], label)
  assert.equal(res.body.error.code, code, label)
}

/** Sends raw bytes (what no HTTP client library would send) and returns the raw answer. */
async function raw (data: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', () => socket.end(data))
    socket.on('data', (chunk) => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
  })
}

test('an address that cannot be decoded gets the portal\'s "not valid" page, without the address in it', async () => {
  for (const path of ['/invite/x%ED%A0%80y', '/invite/%E0%A4%A', '/login%FF', '/static/%FF']) {
    const res = await client().get(path).set('accept', 'text/html')
    assertErrorPage(res, 400, /That address is not valid/, path)
    assert.ok(!res.text.includes(path.split('/').pop()!), `${path} is not echoed`)
  }
  // A guarded page asks who you are first, as for any address under it; then the address is refused.
  const guarded = '/helpdesk/users/%ED%A0%80'
  const anonymous = await client().get(guarded)
  assert.equal(anonymous.status, 303)
  assert.match(anonymous.headers.location, /^\/login\?next=/)
  const staff = await signInStaff(t, await createTestUser(t.services, { role: 'helpdesk' }))
  assertErrorPage(await staff.get(guarded), 400, /That address is not valid/, 'helpdesk')
})

test('under /api/v1 an address that cannot be decoded is a documented JSON error, and a caller without a credential is told that first', async () => {
  for (const path of ['/api/v1/users/x%ED%A0%80y/status', '/api/v1/users/%FF/phone', '/api/v1/nope%FF']) {
    const anonymous = await client().get(path)
    assertApiError(anonymous, 401, 'invalid_token', path)
    const res = await client().get(path).set('authorization', await bearerToken())
    assertApiError(res, 400, 'bad_url', path)
    assert.ok(!res.text.includes('%FF') && !res.text.includes('%ED'), `${path} is not echoed`)
  }
})

test('an id longer than the router\'s default limit reaches the route and gets its error page, not a raw 414', async () => {
  const long = 'a'.repeat(150)
  const invite = await client().get(`/invite/${long}`).set('accept', 'text/html')
  assertErrorPage(invite, 404, /Page not found/, 'an unknown invitation of 150 characters')
  const tooLong = await client().get(`/invite/${'a'.repeat(5000)}`).set('accept', 'text/html')
  assertErrorPage(tooLong, 400, /That request could not be used/, 'an invitation of 5000 characters')
  assert.ok(!tooLong.text.includes('a'.repeat(50)), 'the id is not echoed')
  // A guarded page still asks who you are before it looks at the id.
  const guarded = await client().get(`/helpdesk/users/${'b'.repeat(3000)}`)
  assert.equal(guarded.status, 303)
  assert.match(guarded.headers.location, /^\/login\?next=/)
})

test('under /api/v1 a long id is checked for a token first, then against the documented schema', async () => {
  const user = await createTestUser(t.services, { email: `${'l'.repeat(120)}@test.example` })
  const long = `email:${user.email}`
  const anonymous = await client().get(`/api/v1/users/${long}/status`)
  assertApiError(anonymous, 401, 'invalid_token', 'no token')
  const found = await client().get(`/api/v1/users/${long}/status`).set('authorization', await bearerToken())
  assert.equal(found.status, 200, 'an "email:" id of 140 characters is within the documented 400')
  assert.equal(found.body.id, user.id)
  const tooLong = await client().get(`/api/v1/users/${'c'.repeat(2000)}/status`).set('authorization', await bearerToken())
  assertApiError(tooLong, 400, 'invalid_request', 'an id of 2000 characters')
  assert.equal(tooLong.body.error.field, 'id')
  assert.ok(!tooLong.text.includes('c'.repeat(50)), 'the id is not echoed')
})

test('under /api/v1 an address that names no route asks for a credential first, then answers 404 in the documented shape', async () => {
  assertApiError(await client().get('/api/v1/nothing-here'), 401, 'invalid_token', 'no token')
  assertApiError(await client().get('/api/v1/nothing-here').set('authorization', 'Bearer mfr_unknown'), 401, 'invalid_token', 'an unknown token')
  assertApiError(await client().get('/api/v1/nothing-here').set('authorization', await bearerToken()), 404, 'not_found', 'a valid token')
  // A signed-in session is a credential here too (GET /api/v1/me answers to it).
  const user = await createTestUser(t.services)
  const session = await signIn(t, user.email)
  assertApiError(await session.get('/api/v1/nothing-here'), 404, 'not_found', 'a session')
  assertApiError(await session.get('/api/v1/nothing%FF'), 400, 'bad_url', 'a session, an address that does not decode')
  assert.equal((await client().get('/api/v1/openapi.json')).status, 200, 'the OpenAPI document stays public')
})

test('a body too large, of an unsupported type or not valid JSON gets the error page or the documented JSON', async () => {
  assertErrorPage(await client().post('/login').type('form').send(`email=${'x'.repeat(70 * 1024)}`), 413, /That was too large/, 'a form over 64 KB')
  assertErrorPage(await client().post('/login').set('content-type', 'application/xml').send('<login/>'), 415, /That request could not be used/, 'XML')
  const json = await client().post('/login').set('content-type', 'application/json').send('{"email": ')
  assertApiError(json, 400, 'malformed_json', 'a script that sent broken JSON reads JSON back')
  const auth = await bearerToken()
  assertApiError(await client().put('/api/v1/users/x/phone').set('authorization', auth).send({ phone: 'x'.repeat(70 * 1024) }), 413, 'payload_too_large', 'API: over 64 KB')
  assertApiError(await client().put('/api/v1/users/x/phone').set('authorization', auth).set('content-type', 'application/xml').send('<phone/>'), 415, 'unsupported_media_type', 'API: XML')
  assertApiError(await client().put('/api/v1/users/x/phone').set('authorization', auth).set('content-type', 'application/json').send('{"phone": '), 400, 'invalid_json', 'API: broken JSON')
})

test('headers too large for the server get a short page, or the documented JSON under /api/v1, never the headers back', async () => {
  const big = 'h'.repeat(20_000)
  const page = await raw(`GET /login HTTP/1.1\r\nHost: localhost\r\nX-Big: ${big}\r\n\r\n`)
  assert.match(page, /^HTTP\/1\.1 431 /)
  assert.match(page, /content-type: text\/html; charset=utf-8/i)
  assert.match(page, /content-security-policy: default-src 'none'/i)
  assert.match(page, /<h1>That request was too large<\/h1>/)
  assert.ok(!page.includes('hhhhhhhhhh'), 'the header is not echoed')
  const api = await raw(`GET /api/v1/compliance HTTP/1.1\r\nHost: localhost\r\nX-Big: ${big}\r\n\r\n`)
  assert.match(api, /^HTTP\/1\.1 431 /)
  assert.match(api, /content-type: application\/json; charset=utf-8/i)
  const body = JSON.parse(api.slice(api.indexOf('\r\n\r\n') + 4)) as { error: { code: string, message: string } }
  assert.equal(body.error.code, 'headers_too_large')
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message'])
})

test('a request that is not valid HTTP gets a short 400 page or JSON error, never the request back', async () => {
  const page = await raw('GET /login HTTP/1.1\r\nHost: localhost\r\nBad Header<script>: x\r\n\r\n')
  assert.match(page, /^HTTP\/1\.1 400 /)
  assert.match(page, /<h1>That request could not be used<\/h1>/)
  assert.ok(!page.includes('<script>'), 'the request is not echoed')
  const api = await raw('PUT /api/v1/users/x/phone HTTP/1.1\r\nHost: localhost\r\nContent-Length: nope\r\n\r\n')
  assert.match(api, /^HTTP\/1\.1 400 /)
  assert.equal((JSON.parse(api.slice(api.indexOf('\r\n\r\n') + 4)) as { error: { code: string } }).error.code, 'bad_request')
})

test('a request for an address that is not a path on this server gets a short 400 page, without the address', async () => {
  const answer = await raw('GET ftp://elsewhere.example/<b>x</b> HTTP/1.1\r\nHost: localhost\r\n\r\n')
  assert.match(answer, /^HTTP\/1\.1 400 /)
  assert.match(answer, /content-type: text\/html; charset=utf-8/i)
  assert.match(answer, /That address is not valid/)
  assert.ok(!answer.includes('elsewhere') && !answer.includes('<b>'), 'the address is not echoed')
})
