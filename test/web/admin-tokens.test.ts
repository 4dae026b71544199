import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import request from 'supertest'
import { type Agent, createTestUser, csrfFor, signIn, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { DAY } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

async function adminApp (): Promise<{ t: TestApp, admin: Agent, adminId: string }> {
  t = await startTestApp()
  const user = await createTestUser(t.services, { role: 'admin' })
  return { t, admin: await signInStaff(t, user), adminId: user.id }
}

interface TokenRow { id: string, name: string, token_hash: string, scopes: string, created_by: string | null, created_at: number, expires_at: number | null, last_used_at: number | null, revoked_at: number | null }

async function tokenRows (t: TestApp): Promise<TokenRow[]> {
  return await sqlOn(t.services).all<TokenRow>('SELECT * FROM api_tokens ORDER BY created_at')
}

async function auditActions (t: TestApp): Promise<Array<{ action: string, actorId: string | null, details: Record<string, unknown> }>> {
  return (await sqlOn(t.services).all<{ action: string, actorId: string | null, details: string }>('SELECT action, actor_id AS actorId, details FROM audit_events ORDER BY id'))
    .map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> }))
    .filter((e) => e.action.startsWith('api_token.'))
}

/** The token on the "created" page. */
function tokenFrom (html: string): string {
  const match = /<code id="api-token"[^>]*>(mfr_[A-Za-z0-9_-]{43})<\/code>/.exec(html)
  if (match === null) throw new Error('no token on the page')
  return match[1]
}

async function createToken (admin: Agent, fields: Record<string, string | string[]>) {
  const csrf = await csrfFor(admin, '/admin/tokens/new')
  // Several ticked boxes are sent as repeated fields, as a browser does.
  const body = new URLSearchParams({ _csrf: csrf })
  for (const [name, value] of Object.entries(fields)) for (const v of [value].flat()) body.append(name, v)
  return admin.post('/admin/tokens').type('form').send(body.toString())
}

function callStatus (t: TestApp, userId: string, token: string) {
  return request(t.app.server).get(`/api/v1/users/${userId}/status`).set('authorization', `Bearer ${token}`)
}

test('an admin creates a token: it is shown once, only its keyed hash is stored, it works at once, and the creation is audited', async () => {
  const { t, admin, adminId } = await adminApp()
  const form = await admin.get('/admin/tokens/new')
  assert.equal(form.status, 200)
  assert.match(form.text, /id="expiresInDays"[^>]*value="90"/, 'tokens expire after 90 days unless the admin says otherwise')

  const res = await createToken(admin, { name: '  HR   feed ', scopes: ['phones:write', 'status:read'], expiresInDays: '30' })

  assert.equal(res.status, 200)
  assert.equal(res.headers['cache-control'], 'no-store')
  assert.match(res.text, /data-copy-from="api-token"/)
  assert.match(res.text, /src="\/static\/js\/copy.js"/)
  const token = tokenFrom(res.text)
  const [row] = await tokenRows(t)
  assert.equal(row.name, 'HR feed')
  assert.deepEqual(JSON.parse(row.scopes), ['phones:write', 'status:read'])
  assert.equal(row.created_by, adminId)
  assert.equal(row.expires_at, t.clock.now().getTime() + 30 * DAY)
  assert.equal(row.revoked_at, null)
  assert.equal(row.last_used_at, null)
  assert.notEqual(row.token_hash, token)
  assert.ok(!JSON.stringify(row).includes(token.slice(4)), 'no column holds the token or its random part')
  const wholeDatabase = JSON.stringify(await sqlOn(t.services).all('SELECT * FROM audit_events'))
  assert.ok(!wholeDatabase.includes(token.slice(4)), 'nor does the audit log')

  assert.equal((await callStatus(t, adminId, token)).status, 200)
  const list = await admin.get('/admin/tokens')
  assert.ok(!list.text.includes(token), 'the list never shows the token again')
  assert.deepEqual(await auditActions(t), [{ action: 'api_token.created', actorId: adminId, details: { tokenId: row.id, name: 'HR feed', scopes: ['phones:write', 'status:read'], expiresAt: new Date(row.expires_at!).toISOString() } }])
})

test('the form refuses a missing name, no scope, an unknown scope or a bad expiry, keeps what was typed, and creates nothing', async () => {
  const { t, admin } = await adminApp()

  const empty = await createToken(admin, { name: '', expiresInDays: '0' })
  const unknownScope = await createToken(admin, { name: 'Feed', scopes: ['phones:write', 'users:delete'], expiresInDays: '10' })
  const badExpiry = await createToken(admin, { name: 'Feed', scopes: 'status:read', expiresInDays: '1e3' })

  assert.equal(empty.status, 400)
  assert.match(empty.text, /<title>Error: /)
  assert.match(empty.text, /id="name-error"/)
  assert.match(empty.text, /id="scopes-error"/)
  assert.match(empty.text, /id="expiresInDays-error"/)
  assert.equal(unknownScope.status, 400)
  assert.match(unknownScope.text, /id="scopes-error"/)
  assert.match(unknownScope.text, /id="name"[^>]*value="Feed"/)
  assert.match(unknownScope.text, /id="scopes-phones-write"[^>]*checked/, 'ticked boxes stay ticked')
  assert.equal(badExpiry.status, 400)
  assert.match(badExpiry.text, /id="expiresInDays-error"/)
  assert.match(badExpiry.text, /id="expiresInDays"[^>]*value="1e3"/)
  assert.deepEqual(await tokenRows(t), [])
  assert.deepEqual(await auditActions(t), [])
})

test('a token without an expiry never expires; one with an expiry is refused once it passes and listed as expired', async () => {
  const { t, admin, adminId } = await adminApp()
  const lasting = tokenFrom((await createToken(admin, { name: 'Forever', scopes: 'status:read', expiresInDays: '' })).text)
  const brief = tokenFrom((await createToken(admin, { name: 'Brief', scopes: 'status:read', expiresInDays: '1' })).text)
  assert.equal((await callStatus(t, adminId, brief)).status, 200)

  t.clock.advance(DAY)

  const refused = await callStatus(t, adminId, brief)
  assert.equal(refused.status, 401)
  assert.equal(refused.body.error.code, 'invalid_token')
  assert.equal((await callStatus(t, adminId, lasting)).status, 200)
  // A day later the admin's session has timed out: sign in again to look.
  const list = await (await signIn(t, (await t.services.users.findById(adminId))!.email)).get('/admin/tokens')
  assert.match(list.text, /Brief<\/td>[\s\S]*?<td>Expired<\/td>/)
  assert.match(list.text, /Forever<\/td>[\s\S]*?Never<\/td>\s*<td>Active<\/td>/)
})

test('the list shows each token\'s name, scopes, creation, last use, expiry and status', async () => {
  const { t, admin, adminId } = await adminApp()
  const token = tokenFrom((await createToken(admin, { name: 'Compliance bot', scopes: ['compliance:read', 'status:read'], expiresInDays: '7' })).text)
  t.clock.advance(60_000)
  await callStatus(t, adminId, token)

  const list = await admin.get('/admin/tokens')

  assert.equal(list.status, 200)
  const row = /<tr>\s*<td class="wrap-anywhere">Compliance bot<\/td>([\s\S]*?)<\/tr>/.exec(list.text)?.[1] ?? ''
  const cells = [...row.matchAll(/<td>([\s\S]*?)<\/td>/g)].map((m) => m[1].replace(/<[^>]+>/g, '').trim())
  // Dense table: short dates and times, the zone named once in the caption.
  assert.deepEqual(cells.slice(0, 5), ['status:read, compliance:read', '25/11/2026, 09:00', '25/11/2026, 09:01', '02/12/2026, 09:00', 'Active'])
  assert.match(list.text, /newest first \(times in UTC\)<\/caption>/)
  assert.match(row, /href="\/admin\/tokens\/[^"]+\/revoke"/)
})

test('revoking asks first, then the token is refused at once; the revocation is audited and cannot be repeated', async () => {
  const { t, admin, adminId } = await adminApp()
  const token = tokenFrom((await createToken(admin, { name: 'Old feed', scopes: 'status:read', expiresInDays: '' })).text)
  const [{ id }] = await tokenRows(t)

  const confirm = await admin.get(`/admin/tokens/${id}/revoke`)
  assert.equal(confirm.status, 200)
  assert.match(confirm.text, /Revoke &quot;Old feed&quot;\?|Revoke "Old feed"\?/)
  assert.equal((await tokenRows(t))[0].revoked_at, null, 'looking at the confirmation changes nothing')
  assert.equal((await callStatus(t, adminId, token)).status, 200)

  const res = await submitForm(admin, `/admin/tokens/${id}/revoke`, `/admin/tokens/${id}/revoke`)

  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/admin/tokens')
  assert.equal((await tokenRows(t))[0].revoked_at, t.clock.now().getTime())
  const refused = await callStatus(t, adminId, token)
  assert.equal(refused.status, 401)
  assert.equal(refused.body.error.code, 'invalid_token')
  assert.match((await admin.get('/admin/tokens')).text, /Revoked \(25\/11\/2026, 09:00\)/)
  assert.deepEqual((await auditActions(t)).map((e) => [e.action, e.actorId, e.details.tokenId]), [['api_token.created', adminId, id], ['api_token.revoked', adminId, id]])

  const again = await admin.get(`/admin/tokens/${id}/revoke`)
  assert.equal(again.status, 303, 'a revoked token has nothing left to confirm')
  assert.equal((await auditActions(t)).length, 2)
})

test('token pages are for admins only, and their forms need the CSRF token', async () => {
  const { t, admin } = await adminApp()
  const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
  const staff = await signIn(t, helpdesk.email)
  const anonymous = request.agent(t.app.server)

  assert.equal((await staff.get('/admin/tokens')).status, 403)
  assert.equal((await staff.get('/admin/tokens/new')).status, 403)
  const staffPost = await staff.post('/admin/tokens').type('form').send({ name: 'Mine', scopes: 'status:read', _csrf: await csrfFor(staff, '/') })
  assert.equal(staffPost.status, 403)
  assert.equal((await anonymous.get('/admin/tokens')).status, 303)
  const forged = await admin.post('/admin/tokens').type('form').send({ name: 'Forged', scopes: 'status:read', expiresInDays: '' })
  assert.equal(forged.status, 403)
  assert.deepEqual(await tokenRows(t), [])
})
