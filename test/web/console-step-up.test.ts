import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { buildApp } from '../../server/app.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, csrfFor, FakeClock, hiddenFields, readable, signIn, startTestApp, stepUp, submitForm, testConfig, type TestApp } from '../helpers/app.ts'
import { campaignInput } from '../helpers/campaigns.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

const HELD = `/step-up?next=${encodeURIComponent('/step-up/continue')}`

/** An admin signed in with a password only: console pages open, console actions need a step-up first. */
async function adminApp () {
  t = await startTestApp()
  const user = await createTestUser(t.services, { role: 'admin', email: 'admin@test.example' })
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now()), { id: null, label: 'test' })
  return { t, user, admin: await signIn(t, user.email), campaign }
}

async function auditCount (t: TestApp, action: string): Promise<number> {
  return (await t.services.audit.list({ action })).length
}

test('arming a campaign without a fresh step-up changes nothing; after confirming, the held action is offered once with one button and arms it', async () => {
  const { t, user, admin, campaign } = await adminApp()
  const page = `/admin/campaigns/${campaign.id}`
  const csrf = await csrfFor(admin, page)
  const held = await admin.post(`${page}/arm`).set({ host: 'portal.test', referer: `http://portal.test${page}` }).type('form').send({ _csrf: csrf })
  assert.equal(held.status, 303)
  assert.equal(held.headers.location, HELD)
  assert.equal((await t.services.campaigns.find(campaign.id))?.armedAt, null, 'not armed')
  assert.equal(await auditCount(t, 'campaign.armed'), 0)
  // This admin has no method yet: the page says to set one up first, and that the action waits.
  assert.match(readable((await admin.get(HELD)).text), /Nothing has changed yet\. .*can send what you entered \(“Arm the campaign”\), which is kept/)

  await stepUp(t, admin, user)
  const offer = await admin.get('/step-up/continue')
  assert.equal(offer.status, 200)
  assert.equal(offer.headers['cache-control'], 'no-store')
  assert.match(offer.text, /<h1>Arm the campaign<\/h1>/)
  assert.match(offer.text, new RegExp(`<a href="${page}">Cancel</a>`), 'Cancel goes back to the campaign page')
  assert.equal((await t.services.campaigns.find(campaign.id))?.armedAt, null, 'showing the offer changes nothing')

  const sent = await admin.post(`${page}/arm`).type('form').send(hiddenFields(offer.text, `${page}/arm`))
  assert.equal(sent.status, 303)
  assert.equal(sent.headers.location, page)
  assert.ok((await t.services.campaigns.find(campaign.id))?.armedAt instanceof Date, 'armed')
  assert.equal(await auditCount(t, 'campaign.armed'), 1)
  // Sent once: nothing is waiting any more.
  const again = await admin.get('/step-up/continue')
  assert.equal(again.status, 303)
  assert.equal(again.headers.location, '/')
})

test('a held form keeps everything entered, every ticked box included, and the offer sends it as it was', async () => {
  const { t, user, admin } = await adminApp()
  const csrf = await csrfFor(admin, '/admin/tokens/new')
  const body = new URLSearchParams({ _csrf: csrf, name: 'HR feed <nightly>', expiresInDays: '30' })
  body.append('scopes', 'phones:write')
  body.append('scopes', 'status:read')
  const held = await admin.post('/admin/tokens').type('form').send(body.toString())
  assert.equal(held.headers.location, HELD)
  assert.equal(await sqlOn(t.services).value('SELECT COUNT(*) FROM api_tokens'), 0, 'no token yet')

  await stepUp(t, admin, user)
  const offer = await admin.get('/step-up/continue')
  assert.match(offer.text, /<h1>Create the API token<\/h1>/)
  assert.match(offer.text, /<dt>Name<\/dt><dd>HR feed &lt;nightly&gt;<\/dd>/, 'what will be sent is shown by its label, escaped')
  assert.doesNotMatch(offer.text, /<dt>_csrf<\/dt>/, 'the spent CSRF token is not carried over')
  const fields = hiddenFields(offer.text, '/admin/tokens')
  assert.deepEqual({ ...fields, _csrf: 'x' }, { _csrf: 'x', name: 'HR feed <nightly>', expiresInDays: '30', scopes: ['phones:write', 'status:read'] })
  const sent = await admin.post('/admin/tokens').type('form').send(new URLSearchParams(Object.entries(fields).flatMap(([k, v]) => [v].flat().map((x) => [k, x]))).toString())
  assert.equal(sent.status, 200)
  const row = (await sqlOn(t.services).get('SELECT name, scopes FROM api_tokens')) as { name: string, scopes: string }
  assert.equal(row.name, 'HR feed <nightly>')
  assert.deepEqual(JSON.parse(row.scopes).sort(), ['phones:write', 'status:read'])
})

test('a step-up lasts STEP_UP_MINUTES: after that the next admin action is held again and changes nothing', async () => {
  const { t, user, admin } = await adminApp()
  await stepUp(t, admin, user)
  const fields = { email: 'nobody@test.example', kind: 'other', reason: 'lab', owner: 'IT', expiresAt: '2027-01-31' }
  const through = await submitForm(admin, '/admin/exemptions', '/admin/exemptions', fields)
  assert.equal(through.status, 400, 'a fresh step-up lets the form through (to its own validation)')
  t.clock.advance(t.config.stepUpMs + 1000)
  const target = await createTestUser(t.services, { email: 'lab@test.example' })
  const held = await submitForm(admin, '/admin/exemptions', '/admin/exemptions', { ...fields, email: target.email })
  assert.equal(held.headers.location, HELD)
  assert.equal(await sqlOn(t.services).value('SELECT COUNT(*) FROM exemptions'), 0)
  assert.equal(await auditCount(t, 'exemption.added'), 0)
})

test('a script calling a console action without a step-up gets 403 step_up_required and nothing is held', async () => {
  const { t, admin, campaign } = await adminApp()
  const csrf = await csrfFor(admin, '/admin')
  const res = await admin.post(`/admin/campaigns/${campaign.id}/disarm`).set({ accept: 'application/json', 'x-csrf-token': csrf }).send({})
  assert.equal(res.status, 403)
  assert.equal(res.body.error.code, 'step_up_required')
  assert.equal((await admin.get('/step-up/continue')).headers.location, '/', 'nothing waiting')
  assert.equal(await auditCount(t, 'campaign.disarmed'), 0)
})

test('a forged action is refused before it could be held, and a held action is dropped after 30 minutes', async () => {
  const { t, user, admin, campaign } = await adminApp()
  const forged = await admin.post(`/admin/campaigns/${campaign.id}/arm`).type('form').send({ _csrf: 'forged' })
  assert.equal(forged.status, 403)
  await stepUp(t, admin, user)
  assert.equal((await admin.get('/step-up/continue')).headers.location, '/', 'a forged request is never offered')

  t.clock.advance(t.config.stepUpMs + 1000)
  const held = await submitForm(admin, `/admin/campaigns/${campaign.id}`, `/admin/campaigns/${campaign.id}/arm`)
  assert.equal(held.headers.location, HELD)
  t.clock.advance(20 * 60_000)
  await admin.get('/admin') // still active, so the session stays open
  t.clock.advance(11 * 60_000)
  t.clock.advance(30_000)
  await stepUp(t, admin, user)
  const stale = await admin.get('/step-up/continue')
  assert.equal(stale.headers.location, '/')
  assert.match((await admin.get('/')).text, /There is nothing waiting to be sent\./)
  assert.equal((await t.services.campaigns.find(campaign.id))?.armedAt, null)
})

test('ordinary users posting to a console are refused (403), not asked to step up', async () => {
  const { t, campaign } = await adminApp()
  const person = await signIn(t, (await createTestUser(t.services)).email)
  const res = await submitForm(person, '/', `/admin/campaigns/${campaign.id}/arm`)
  assert.equal(res.status, 403)
  assert.equal((await person.get('/step-up/continue')).headers.location, '/')
})

test('a console route that changes something without saying it needs a step-up stops the server at start', async () => {
  const services = await createServices(testConfig(), { clock: new FakeClock() })
  const app = await buildApp(services, { logger: false })
  try {
    assert.throws(() => app.post('/admin/unguarded', async () => 'ok'), /POST \/admin\/unguarded: console actions need config\.stepUp/)
    assert.throws(() => app.put('/helpdesk/unguarded', async () => 'ok'), /PUT \/helpdesk\/unguarded: console actions need config\.stepUp/)
    assert.doesNotThrow(() => app.post('/admin/guarded', { config: { stepUp: 'Do the thing' } }, async () => 'ok'))
    assert.doesNotThrow(() => app.post('/elsewhere', async () => 'ok'), 'routes outside the consoles are not concerned')
  } finally {
    await app.close()
    await services.close()
  }
})
