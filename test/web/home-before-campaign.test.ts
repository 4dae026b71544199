import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { Secret } from 'otpauth'
import { createTestUser, signIn, startTestApp, type TestApp } from '../helpers/app.ts'
import { campaignInput } from '../helpers/campaigns.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

const SYSTEM = { id: null, label: 'test' }
const NO_DEADLINE = /Your organisation has not set a deadline for your account yet, so multi-factor sign-in is not mandatory for you yet\./

/** The text of the page's main part, without markup. */
function mainText (html: string): string {
  const main = html.split('<main')[1]?.split('</main>')[0] ?? ''
  return main.replace(/<[^>]+>/g, ' ').replace(/&#39;/g, '\'').replace(/\s+/g, ' ')
}

/** The add options as shown, in order: label, and whether it is marked as counting, and in which list. */
function addOptions (html: string): Array<{ href: string, counts: boolean, apart: boolean }> {
  const section = html.split('id="add-method"')[1] ?? ''
  const apartFrom = section.indexOf('id="also-possible"')
  return [...section.matchAll(/<a class="card add-method" href="([^"]+)">(.*?)<\/a>/g)].map((m) => ({
    href: m[1],
    counts: m[2].includes('Counts for your account'),
    apart: apartFrom >= 0 && (m.index ?? 0) > apartFrom
  }))
}

test('before any campaign, the home page says no deadline is set yet, so nothing is mandatory yet, and what setting up a method now does', async () => {
  t = await startTestApp()
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  const page = await agent.get('/')
  assert.equal(page.status, 200)
  assert.match(mainText(page.text), NO_DEADLINE)
  assert.match(mainText(page.text), /When a deadline is set, you will see it here\. Setting up a method now protects your sign-in from today/)
  assert.doesNotMatch(page.text, /id="add-to-calendar"/, 'no deadline to put in a calendar')

  await t.services.methods.addTotp(user.id, 'App', new Secret({ size: 20 }).base32, 0)
  const ready = mainText((await agent.get('/')).text)
  assert.match(ready, NO_DEADLINE)
  assert.match(ready, /what you have set up already counts/)

  const german = mainText((await agent.get('/').set('accept-language', 'de')).text)
  assert.match(german, /Ihre Organisation hat für Ihr Konto noch keine Frist festgelegt/)
})

test('when a campaign targets the person, its deadline is shown instead of "no deadline yet"', async () => {
  t = await startTestApp()
  const user = await createTestUser(t.services)
  await t.services.campaigns.create(campaignInput(t.clock.now()), SYSTEM)
  await t.services.engine.refreshUser(user.id)
  const text = mainText((await (await signIn(t, user.email)).get('/')).text)
  assert.doesNotMatch(text, NO_DEADLINE)
  assert.match(text, /deadline/i)
})

test('when campaigns exist but none targets the person, the page still says truthfully that no deadline is set for them', async () => {
  t = await startTestApp()
  const user = await createTestUser(t.services)
  await t.services.campaigns.create(campaignInput(t.clock.now(), { targetKind: 'privileged' }), SYSTEM)
  await t.services.engine.refreshUser(user.id)
  assert.match(mainText((await (await signIn(t, user.email)).get('/')).text), NO_DEADLINE)
})

test('a privileged account is told only a passkey counts for it: the passkey comes first and is marked, app and phone are apart and say they do not count', async () => {
  t = await startTestApp()
  const admin = await createTestUser(t.services, { role: 'admin', privileged: true })
  const page = await (await signIn(t, admin.email)).get('/')
  const text = mainText(page.text)
  assert.match(text, /Your account is an administrator or other privileged account: only a passkey or security key counts for it\./)
  assert.match(text, /Also possible, but does not count for privileged accounts/)
  assert.deepEqual(addOptions(page.text), [
    { href: '/enroll/passkey', counts: true, apart: false },
    { href: '/enroll/totp', counts: false, apart: true },
    { href: '/enroll/phone', counts: false, apart: true }
  ])
})

test('a privileged account under a campaign where any method counts, and an ordinary account, get every option alike, unmarked', async () => {
  t = await startTestApp()
  const admin = await createTestUser(t.services, { role: 'admin', privileged: true })
  const person = await createTestUser(t.services)
  await t.services.campaigns.create(campaignInput(t.clock.now(), { privilegedMethods: 'any' }), SYSTEM)
  await t.services.engine.refreshUser(admin.id)
  await t.services.engine.refreshUser(person.id)
  for (const user of [admin, person]) {
    const page = await (await signIn(t, user.email)).get('/')
    assert.deepEqual(addOptions(page.text).map((o) => [o.href, o.counts, o.apart]), [['/enroll/passkey', false, false], ['/enroll/totp', false, false], ['/enroll/phone', false, false]], user.email)
    assert.doesNotMatch(page.text, /id="also-possible"/)
  }
})

test('where text messages do not count, the phone is offered apart, saying so', async () => {
  t = await startTestApp()
  const person = await createTestUser(t.services)
  await t.services.campaigns.create(campaignInput(t.clock.now(), { smsPolicy: 'excluded' }), SYSTEM)
  await t.services.engine.refreshUser(person.id)
  const page = await (await signIn(t, person.email)).get('/')
  assert.match(mainText(page.text), /Also possible, but text messages do not count here/)
  assert.deepEqual(addOptions(page.text).map((o) => [o.href, o.counts, o.apart]), [['/enroll/passkey', true, false], ['/enroll/totp', true, false], ['/enroll/phone', false, true]])
})
