import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type AddressInfo } from 'node:net'
import { campaignInput } from '../helpers/campaigns.ts'
import { anonymous, createTestUser, signIn, startTestApp, submitForm, type Agent, type TestApp } from '../helpers/app.ts'

// Issue #16 items 8, 10 and 11 on the pages people use to sign in and set up their methods: German for those who ask
// for it (browser, saved choice, or the visitor's language link), and times in the reader's own zone, named.

/** A catalogue key that slipped through untranslated ("home.title", "enroll.back"). */
const RAW_KEY = /\b(?:common|home|login|enroll|methods|invite|pages|errors|preferences)\.[a-z][a-z0-9_]*\b/
/** A message that failed to format and shows its ICU source ("{count, plural, …}", "{name}"). */
const RAW_ICU = /\{[a-zA-Z]+(?:\}|, ?(?:select|plural|date|time|number))/

function assertGerman (html: string, phrase: RegExp, label: string): void {
  assert.match(html, /<html lang="de"/, `${label}: the page says it is German`)
  assert.match(html, phrase, `${label}: written in German`)
  assert.doesNotMatch(html, RAW_KEY, `${label}: no catalogue key shows instead of words`)
  assert.doesNotMatch(html, RAW_ICU, `${label}: no message shows its unformatted source`)
}

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

/** Signs a new user in; every later request of the agent says `Accept-Language: de`. */
async function germanUser (): Promise<{ agent: Agent, get: (path: string) => Promise<{ status: number, text: string }> }> {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  return { agent, get: async (path) => await agent.get(path).set('accept-language', 'de-DE,de;q=0.9,en;q=0.5') }
}

describe('a browser that asks for German', () => {
  test('gets the sign-in page in German', async () => {
    const page = await anonymous(t).get('/login').set('accept-language', 'de')
    assert.equal(page.status, 200)
    assertGerman(page.text, /Geschäftliche E-Mail-Adresse/, 'sign-in')
    assert.match(page.text, /Ich habe einen Zugangscode/)
    // What the passkey script says comes with the page, in German too.
    assert.match(page.text, /<script type="application\/json" id="passkey-messages">[^<]*Erneut anmelden/)
  })

  test('gets the home page in German', async () => {
    const { get } = await germanUser()
    const home = await get('/')
    assert.equal(home.status, 200)
    assertGerman(home.text, /Ihre Anmeldemethoden/, 'home')
    assert.match(home.text, /Methode hinzufügen/)
    assert.match(home.text, /Passkey oder Sicherheitsschlüssel/)
  })

  test('gets each enrollment page in German: passkey, authenticator app, phone', async () => {
    const { get } = await germanUser()
    const passkey = await get('/enroll/passkey')
    assert.equal(passkey.status, 200)
    assertGerman(passkey.text, /Passkey erstellen/, 'passkey')
    const app = await get('/enroll/totp')
    assert.equal(app.status, 200)
    assertGerman(app.text, /Einrichtung abschließen/, 'authenticator app')
    assert.match(app.text, /data-copied="Kopiert"/, 'the copy button speaks German too')
    const phone = await get('/enroll/phone')
    assert.equal(phone.status, 200)
    assertGerman(phone.text, /Code per SMS senden/, 'phone')
  })

  test('is told in German when a code is refused', async () => {
    const { agent, get } = await germanUser()
    const page = await get('/enroll/totp')
    const token = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]
    const refused = await agent.post('/enroll/totp').set('accept-language', 'de').type('form').send({ code: '000000', name: '', _csrf: token })
    assert.equal(refused.status, 400)
    assertGerman(refused.text, /Dieser Code ist nicht richtig/, 'refused code')
  })

  test('gets error pages in German', async () => {
    const page = await anonymous(t).get('/no-such-page').set('accept-language', 'de').set('accept', 'text/html')
    assert.equal(page.status, 404)
    assertGerman(page.text, /Seite nicht gefunden/, 'not found')
  })

  test('is told in German when the password does not match, and the way in with an access pass is German too', async () => {
    const visitor = anonymous(t)
    const form = await visitor.get('/login').set('accept-language', 'de')
    const token = /name="_csrf" value="([^"]+)"/.exec(form.text)![1]
    const refused = await visitor.post('/login').set('accept-language', 'de').type('form').send({ email: 'nobody@test.example', password: 'wrong', _csrf: token })
    assert.equal(refused.status, 401)
    assertGerman(refused.text, /Geschäftliche E-Mail-Adresse/, 'refused sign-in')
    const pass = await visitor.get('/login/pass').set('accept-language', 'de')
    assertGerman(pass.text, /Mit einem Zugangscode anmelden/, 'access pass sign-in')
  })
})

test('answers given before a request reaches the portal follow Accept-Language too, and their JSON stays English', async () => {
  const t2 = await startTestApp()
  try {
    await t2.app.listen({ port: 0, host: '127.0.0.1' })
    const port = (t2.app.server.address() as AddressInfo).port
    const raw = async (data: string): Promise<string> => await new Promise((resolve, reject) => {
      const chunks: Buffer[] = []
      const socket = connect(port, '127.0.0.1', () => socket.end(data))
      socket.on('data', (chunk) => chunks.push(chunk))
      socket.on('error', reject)
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')))
    })
    const big = 'x'.repeat(20_000)
    // Headers over the limit: Node refuses them before Fastify sees a request.
    const german = await raw(`GET /login HTTP/1.1\r\nHost: localhost\r\nAccept-Language: de\r\nX-Big: ${big}\r\n\r\n`)
    assert.match(german, /^HTTP\/1\.1 431/)
    assert.match(german, /<html lang="de">/)
    assert.match(german, /Diese Anfrage war zu groß/)
    const english = await raw(`GET /login HTTP/1.1\r\nHost: localhost\r\nX-Big: ${big}\r\n\r\n`)
    assert.match(english, /<html lang="en">/)
    assert.match(english, /That request was too large/)
    const api = await raw(`GET /api/v1/compliance HTTP/1.1\r\nHost: localhost\r\nAccept-Language: de\r\nX-Big: ${big}\r\n\r\n`)
    assert.match(api, /"message":"Your browser sent more header data/)
  } finally {
    await t2.close()
  }
})

test('a user who saved German reads German even when the browser asks for English', async () => {
  const user = await createTestUser(t.services)
  await t.services.users.setPreferences(user.id, { locale: 'de' })
  const agent = await signIn(t, user.email)
  const home = await agent.get('/').set('accept-language', 'en')
  assertGerman(home.text, /Ihre Anmeldemethoden/, 'saved German over Accept-Language: en')
})

test('choosing German in the preferences switches the portal, and it sticks on the next pages', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  assert.match((await agent.get('/')).text, /<html lang="en"/)
  const saved = await submitForm(agent, '/preferences', '/preferences', { locale: 'de', timeZone: '' })
  assert.equal(saved.status, 303)
  assert.equal((await t.services.users.findById(user.id))?.locale, 'de')
  assertGerman((await agent.get('/')).text, /Ihre Anmeldemethoden/, 'home after choosing German')
  assertGerman((await agent.get('/enroll/phone')).text, /Telefon hinzufügen/, 'another page after choosing German')
})

test('a visitor who picks Deutsch in the footer gets the sign-in page in German', async () => {
  const visitor = anonymous(t)
  const chosen = await visitor.get('/language/de?next=/login')
  assert.equal(chosen.status, 303)
  assert.equal(chosen.headers.location, '/login')
  assert.ok(((chosen.headers['set-cookie'] as unknown as string[] | undefined) ?? []).some((c) => c.startsWith('mfa_lang=de')), 'the choice is remembered')
  assertGerman((await visitor.get('/login')).text, /Mit einem Passkey anmelden/, 'sign-in after choosing Deutsch')
})

test('a language or time zone the portal does not know is refused with 400, and nothing is saved', async () => {
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  for (const fields of [{ locale: 'xx', timeZone: '' }, { locale: 'de', timeZone: 'Mars/Olympus' }, { locale: '<script>', timeZone: 'Europe/Berlin' }]) {
    const res = await submitForm(agent, '/preferences', '/preferences', fields)
    assert.equal(res.status, 400, JSON.stringify(fields))
    const stored = await t.services.users.findById(user.id)
    assert.equal(stored?.locale ?? null, null, `${JSON.stringify(fields)}: no language saved`)
    assert.equal(stored?.timeZone ?? null, null, `${JSON.stringify(fields)}: no time zone saved`)
  }
})

test('the home page shows the deadline in the user\'s saved zone, with the zone named', async () => {
  const t2 = await startTestApp()
  try {
    const now = t2.clock.now().getTime()
    // 23:07 UTC on 3 December is already 00:07 on 4 December in Berlin.
    await t2.services.campaigns.create(campaignInput(now, { deadline: new Date('2026-12-03T23:07:00Z'), newUserWindowDays: 0 }), { id: null, label: 'test' })
    const user = await createTestUser(t2.services)
    await t2.services.users.setPreferences(user.id, { timeZone: 'Europe/Berlin' })
    await t2.services.engine.refreshUser(user.id)
    const home = await (await signIn(t2, user.email)).get('/')
    assert.match(home.text, /Your organisation's deadline: <strong>4 December 2026 at 00:07 \(Berlin\)<\/strong>/)
    assert.doesNotMatch(home.text, /23:07/, 'no time in UTC')

    await t2.services.users.setPreferences(user.id, { locale: 'de' })
    const german = await (await signIn(t2, user.email)).get('/')
    assert.match(german.text, /Die Frist Ihrer Organisation: <strong>4\. Dezember 2026 um 00:07 \(Berlin\)<\/strong>/)
  } finally {
    await t2.close()
  }
})
