import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { type Agent, anonymous, createTestUser, csrfFor, signIn, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import type { User } from '../../server/domain/users.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close() })

/** An admin, and a user first seen long ago under an armed campaign whose deadline passed yesterday: overdue. */
async function withOverdueUser (): Promise<{ t: TestApp, admin: Agent, adminUser: User, user: User }> {
  t = await startTestApp()
  const adminUser = await createTestUser(t.services, { role: 'admin' })
  const user = await createTestUser(t.services, { email: 'backup-job@test.example' })
  await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, user.id)
  const actor = { id: adminUser.id, label: adminUser.email }
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now(), { deadline: new Date(t.clock.now().getTime() - DAY) }), actor)
  await t.services.campaigns.arm(campaign.id, actor)
  return { t, admin: await signInStaff(t, adminUser), adminUser, user }
}

function validForm (fields: Record<string, string> = {}): Record<string, string> {
  return { email: 'Backup-Job@test.example', kind: 'service_account', reason: 'Nightly backup job', owner: 'Ops team', expiresAt: '2027-03-01', ...fields }
}

function activeRows (html: string): string[] {
  const table = /<table class="data-table" id="active-exemptions">[^]*?<\/table>/.exec(html)?.[0] ?? ''
  return [...table.matchAll(/<td class="wrap-anywhere">([^<]+)<\/td>/g)].map((m) => m[1])
}

test('an admin exempts a service account until a date: listed as in force, audited, and the user stops being due for enforcement', async () => {
  const { t, admin, adminUser, user } = await withOverdueUser()
  assert.equal((await t.services.engine.standing(user.id))?.state, 'overdue')
  const res = await submitForm(admin, '/admin/exemptions', '/admin/exemptions', validForm())
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, '/admin/exemptions')
  assert.equal((await t.services.engine.standing(user.id))?.state, 'exempt')
  assert.equal((await t.services.engine.plan()).some((item) => item.userId === user.id), false)
  const [event] = await t.services.audit.list({ action: 'exemption.added' })
  assert.equal(event.subjectUserId, user.id)
  assert.equal(event.actorId, adminUser.id)
  assert.deepEqual(JSON.parse(event.details), { kind: 'service_account', reason: 'Nightly backup job', owner: 'Ops team', expiresAt: '2027-03-01T00:00:00.000Z' })

  const page = await admin.get('/admin/exemptions')
  assert.match(page.text, /backup-job@test\.example is exempt from now on/)
  assert.deepEqual(activeRows(page.text), ['backup-job@test.example'])
  assert.match(page.text, new RegExp(`<time datetime="2026-11-25">25 November 2026</time><br><span class="wrap-anywhere">by ${adminUser.email}</span>`), 'who added it, and when')
  assert.match(page.text, /<time datetime="2027-03-01">01\/03\/2027, 00:00<\/time>/, 'the end with its time (the zone is named in the caption)')
  assert.match(page.text, /soonest to end first \(times in UTC\)/)
  assert.match(page.text, /<td>Service account \(a program, not a person\)<\/td>\s*<td>Nightly backup job<\/td>\s*<td>Ops team<\/td>\s*<td class="nowrap"><time datetime="2027-03-01">/)
})

test('a break-glass account needs no end date', async () => {
  const { t, admin, user } = await withOverdueUser()
  await t.services.methods.addPasskey(user.id, { name: 'Safe key', credentialId: 'cred-bg', publicKey: new Uint8Array([1]), counter: 0, transports: [], aaguid: '00000000-0000-0000-0000-000000000000', backedUp: false })
  const res = await submitForm(admin, '/admin/exemptions', '/admin/exemptions', validForm({ kind: 'break_glass', expiresAt: '' }))
  assert.equal(res.status, 303)
  assert.equal((await t.services.engine.standing(user.id))?.state, 'exempt')
  assert.match((await admin.get('/admin/exemptions')).text, /<td class="nowrap">Never<\/td>/)
})

// what was typed, the field, the message at it
const INVALID: Array<[string, Record<string, string>, string, RegExp]> = [
  ['no email', { email: ' ' }, 'email', /Enter the email address of the account to exempt\./],
  ['an email no user has', { email: 'nobody@test.example' }, 'email', /No user has this email address\./],
  ['no kind chosen', { kind: '' }, 'kind', /Choose what kind of account this is\./],
  ['a kind the form does not offer', { kind: 'robot' }, 'kind', /Choose what kind of account this is\./],
  ['no reason', { reason: 'x' }, 'reason', /Say why this account is exempt\./],
  ['no one responsible', { owner: '  ' }, 'owner', /Name the person responsible for this account\./],
  ['a service account without an end date', { expiresAt: '' }, 'expiresAt', /need an expiry date in the future/],
  ['an end date in the past', { expiresAt: '2026-11-01' }, 'expiresAt', /need an expiry date in the future/],
  ['an end date that is not a date', { expiresAt: '1 March' }, 'expiresAt', /Enter the end date as a date, such as 2027-01-31\./]
]

for (const [label, fields, field, message] of INVALID) {
  test(`adding an exemption with ${label} comes back (400) with the message at that field and changes nothing`, async () => {
    const { t, admin, user } = await withOverdueUser()
    const form = validForm(fields)
    if (form.kind === '') delete form.kind
    const res = await submitForm(admin, '/admin/exemptions', '/admin/exemptions', form)
    assert.equal(res.status, 400)
    assert.match(res.text, /<title>Error: Exemptions/)
    const error = new RegExp(`<p id="${field}-error" class="field-error">[^]*?</p>`).exec(res.text)
    assert.ok(error !== null, `an error next to ${field}`)
    assert.match(error[0], message)
    assert.match(res.text, new RegExp(`<li><a href="#${field === 'kind' ? 'kind-break_glass' : field}">`), 'the summary links to the field')
    if (field !== 'kind') assert.match(res.text, new RegExp(`id="${field}"[^>]*aria-invalid="true"`))
    assert.match(res.text, /id="reason"[^>]*value="[^"]*"/)
    assert.equal((await t.services.engine.standing(user.id))?.state, 'overdue')
    assert.equal((await t.services.audit.list({ action: 'exemption.added' })).length, 0)
    assert.deepEqual(await t.services.campaigns.exemptions('active'), [])
  })
}

test('every mistake is shown at once, in form order, with what was typed kept', async () => {
  const { admin } = await withOverdueUser()
  const res = await submitForm(admin, '/admin/exemptions', '/admin/exemptions', validForm({ email: 'nobody@test.example', reason: '', owner: '', expiresAt: 'soon' }))
  assert.equal(res.status, 400)
  assert.deepEqual([...res.text.matchAll(/<li><a href="#([A-Za-z_-]+)">/g)].map((m) => m[1]), ['email', 'reason', 'owner', 'expiresAt'])
  assert.match(res.text, /id="email"[^>]*value="nobody@test\.example"/)
  assert.match(res.text, /id="expiresAt"[^>]*value="soon"/)
  assert.match(res.text, /id="kind-service_account"[^>]*checked/)
})

test('revoking an exemption ends it at once: audited, listed as ended, and the user is due for enforcement again', async () => {
  const { t, admin, adminUser, user } = await withOverdueUser()
  await submitForm(admin, '/admin/exemptions', '/admin/exemptions', validForm())
  const [exemption] = await t.services.campaigns.exemptions('active')
  const page = await admin.get('/admin/exemptions')
  assert.match(page.text, new RegExp(`action="/admin/exemptions/${exemption.id}/revoke"`))
  const res = await submitForm(admin, '/admin/exemptions', `/admin/exemptions/${exemption.id}/revoke`)
  assert.equal(res.status, 303)
  assert.equal((await t.services.engine.standing(user.id))?.state, 'overdue')
  assert.equal((await t.services.engine.plan()).find((item) => item.userId === user.id)?.action, 'enforce')
  const [event] = await t.services.audit.list({ action: 'exemption.revoked' })
  assert.equal(event.subjectUserId, user.id)
  assert.equal(event.actorId, adminUser.id)
  assert.equal(JSON.parse(event.details).exemptionId, exemption.id)

  const after = await admin.get('/admin/exemptions')
  assert.match(after.text, /Revoked\. Their campaign deadline applies again/)
  assert.deepEqual(activeRows(after.text), [])
  assert.match(after.text, /<table class="data-table" id="ended-exemptions">[^]*backup-job@test\.example[^]*<time datetime="2026-11-25">Revoked 25 November 2026<\/time>/)

  const again = await submitForm(admin, '/admin/exemptions', `/admin/exemptions/${exemption.id}/revoke`)
  assert.equal(again.status, 303)
  assert.match((await admin.get('/admin/exemptions')).text, /This exemption has already ended or does not exist\./)
  assert.equal((await t.services.audit.list({ action: 'exemption.revoked' })).length, 1, 'revoking twice records once')
})

test('an exemption past its end date is listed as expired and can no longer be revoked', async () => {
  const { t, admin, adminUser } = await withOverdueUser()
  await submitForm(admin, '/admin/exemptions', '/admin/exemptions', validForm({ expiresAt: '2026-11-27' }))
  const [exemption] = await t.services.campaigns.exemptions('active')
  t.clock.advance(3 * DAY)
  // Three days on, the earlier session has timed out.
  const page = await (await signIn(t, adminUser.email)).get('/admin/exemptions')
  assert.deepEqual(activeRows(page.text), [])
  assert.match(page.text, /id="ended-exemptions">[^]*backup-job@test\.example[^]*<time datetime="2026-11-27">Expired 27 November 2026<\/time>/)
  await assert.rejects(async () => await t.services.campaigns.revokeExemption(exemption.id, { id: null, label: 'test' }), /already ended/)
  assert.equal((await t.services.audit.list({ action: 'exemption.revoked' })).length, 0)
})

test('only admins reach exemptions, and forged forms change nothing', async () => {
  const { t, admin, user } = await withOverdueUser()
  await t.services.campaigns.exempt(user.id, { kind: 'other', reason: 'On leave', owner: 'HR', expiresAt: new Date(t.clock.now().getTime() + 10 * DAY) }, { id: null, label: 'test' })
  const [exemption] = await t.services.campaigns.exemptions('active')
  const helpdesk = await signIn(t, (await createTestUser(t.services, { role: 'helpdesk' })).email)
  assert.equal((await helpdesk.get('/admin/exemptions')).status, 403)
  assert.equal((await submitForm(helpdesk, '/', '/admin/exemptions', validForm())).status, 403)
  assert.equal((await submitForm(helpdesk, '/', `/admin/exemptions/${exemption.id}/revoke`)).status, 403)
  assert.equal((await anonymous(t).get('/admin/exemptions')).status, 303)
  await csrfFor(admin, '/admin/exemptions')
  assert.equal((await admin.post(`/admin/exemptions/${exemption.id}/revoke`).type('form').send({ _csrf: 'forged' })).status, 403)
  assert.equal((await admin.post('/admin/exemptions').type('form').send({ ...validForm(), _csrf: 'forged' })).status, 403)
  assert.equal((await t.services.campaigns.exemptions('active')).length, 1)
  assert.equal((await t.services.audit.list({ action: 'exemption.revoked' })).length, 0)
})
