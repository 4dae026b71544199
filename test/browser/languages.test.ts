import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { Role } from '../../server/domain/users.ts'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { assertNoSideways, clickAndWaitForPage, launchBrowser, NARROW_PHONE, startBrowserApp, type BrowserApp, type Viewport } from '../helpers/browser.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'

let browser: Browser
let testApp: BrowserApp

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

/** A browser set to a language and a time zone, as a person's own browser would be. */
async function openBrowser (locale: string, timezoneId: string, viewport: Viewport = NARROW_PHONE): Promise<{ context: BrowserContext, page: Page }> {
  const context = await browser.newContext({ viewport, locale, timezoneId })
  return { context, page: await context.newPage() }
}

/** Signs in through the form by its fields' ids (the labels are in the page's language). */
async function signIn (page: Page, email: string): Promise<void> {
  await page.goto(`${testApp.baseUrl}/`)
  assert.equal(new URL(page.url()).pathname, '/login')
  await page.locator('#email').fill(email)
  await page.locator('#password').fill(TEST_PASSWORD)
  await clickAndWaitForPage(page, () => page.locator('form[action="/login"] button[type="submit"]').click())
  assert.equal(new URL(page.url()).pathname, '/')
}

/** A catalogue key shown instead of words ("home.title", "errors.bad_code"). */
const RAW_KEY = /\b(?:common|home|login|enroll|methods|invite|pages|preferences|helpdesk|admin|approvals|tokens|exemptions|errors|email|sms|domain|events|campaigns|waves|compliance|recovery|stepup|step_up)\.[a-z0-9_]+\b/

async function assertLocalised (page: Page, locale: 'en' | 'de', label: string): Promise<void> {
  assert.equal(await page.locator('html').getAttribute('lang'), locale, `${label}: lang`)
  const text = await page.locator('body').innerText()
  assert.doesNotMatch(text, RAW_KEY, `${label}: a catalogue key is shown`)
}

const USER_PAGES = ['/', '/preferences', '/enroll/passkey', '/enroll/totp', '/enroll/phone', '/recovery-codes']
const ADMIN_PAGES = ['/helpdesk', '/admin', '/admin/campaigns', '/admin/campaigns/new', '/admin/audit', '/admin/exemptions', '/admin/approvals', '/admin/tokens', '/admin/outbox', '/admin/compliance']

for (const [locale, browserLocale] of [['de', 'de-DE'], ['en', 'en-GB']] as const) {
  test(`in ${locale === 'de' ? 'German' : 'English'}, every page at 360 px is in that language, shows no raw message key, fits the screen and has no accessibility problems axe can find`, async () => {
    const admin = await createTestUser(testApp.services, { role: 'admin' as Role })
    const { context, page } = await openBrowser(browserLocale, 'Europe/Berlin')
    try {
      for (const path of ['/login', '/login/pass', '/no/such/page']) {
        await page.goto(`${testApp.baseUrl}${path}`)
        await assertLocalised(page, locale, path)
        await assertNoSideways(page, `${path} (${locale})`)
        await assertNoAxeViolations(page, `${path} (${locale})`)
      }
      await signIn(page, admin.email)
      // Pages about one person or one campaign, and the step-up page, as staff reach them.
      const person = await createTestUser(testApp.services, { displayName: 'Paula Person' })
      const campaign = await testApp.services.campaigns.create(campaignInput(testApp.clock.now(), { name: `Campaign ${locale}` }), { id: admin.id, label: admin.email })
      const withIds = [`/helpdesk/users/${person.id}`, `/admin/campaigns/${campaign.id}`, `/admin/campaigns/${campaign.id}/edit`, '/admin/states/pending', '/step-up']
      for (const path of [...USER_PAGES, ...ADMIN_PAGES, ...withIds]) {
        const response = await page.goto(`${testApp.baseUrl}${path}`)
        assert.equal(response?.status(), 200, `GET ${path}`)
        await assertLocalised(page, locale, path)
        await assertNoSideways(page, `${path} (${locale})`)
        await assertNoAxeViolations(page, `${path} (${locale})`)
      }
    } finally {
      await context.close()
    }
  })
}

test('a German browser in Berlin: German from the first page, the zone is learned, deadlines read "00:07 (Berlin)", and texts and e-mails come in German', async () => {
  const now = testApp.clock.now()
  // A deadline at 23:07 UTC: in Berlin that is 00:07 the next day.
  const deadline = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 10, 23, 7))
  const admin = await createTestUser(testApp.services, { role: 'admin' as Role })
  await testApp.services.campaigns.create(campaignInput(now, { name: 'Alle', deadline, startsAt: new Date(now.getTime() - 60 * DAY), newUserWindowDays: 0 }), { id: admin.id, label: admin.email })
  const user = await createTestUser(testApp.services, { displayName: 'Greta Berlin' })
  await testApp.services.engine.refreshUser(user.id)
  const { context, page } = await openBrowser('de-DE', 'Europe/Berlin')
  try {
    await signIn(page, user.email)
    await assertLocalised(page, 'de', 'home')
    assert.match(await page.locator('h1').innerText(), /Greta Berlin/)
    // The browser's zone reaches the account in the background; the next page is written in it.
    await waitFor(async () => (await testApp.services.users.findById(user.id))?.timeZone === 'Europe/Berlin', 'the zone to be saved')
    await page.reload()
    const home = await page.locator('main').innerText()
    assert.match(home, /00:07 \(Berlin\)/, 'the deadline in Berlin time, zone named')
    assert.doesNotMatch(home, /23:07/)

    // Choosing German on the preferences page saves it: e-mails follow the saved choice.
    await choosePreference(page, 'de')
    assert.equal((await testApp.services.users.findById(user.id))?.locale, 'de')
    await assertLocalised(page, 'de', 'preferences after choosing German')

    // A phone set up from a German page: the text message is German, and so is the "a method was added" e-mail.
    await page.goto(`${testApp.baseUrl}/enroll/phone`)
    await page.locator('#phone').fill('+1 202 555 0143')
    await clickAndWaitForPage(page, () => page.locator('form[action="/enroll/phone"] button[type="submit"]').last().click())
    const sms = (await testApp.services.outbox.latest(10)).find((m) => m.channel === 'sms' && m.recipient === '+12025550143')
    assert.ok(sms !== undefined, 'a text message was sent')
    assert.doesNotMatch(sms.bodyText, /verification code/, 'not the English text')
    assert.match(sms.bodyText, /Bestätigungscode/)
    await page.locator('#code').fill(/\d{6}/.exec(sms.bodyText)![0])
    await clickAndWaitForPage(page, () => page.locator('form[action="/enroll/phone/verify"] button[type="submit"]').click())
    await assertLocalised(page, 'de', 'home after adding the phone')
    assert.equal((await testApp.services.methods.listFor(user.id)).length, 1)
    const mail = (await testApp.services.outbox.latest(20)).find((m) => m.channel === 'email' && m.recipient === user.email)
    assert.ok(mail !== undefined, 'the method-added e-mail was sent')
    assert.doesNotMatch(`${mail.subject ?? ''}\n${mail.bodyText}`, /A sign-in method was added/, 'not the English e-mail')
    assert.match(mail.bodyText, /\(Berlin\)/, 'the time in the e-mail names the zone')

    // Switching to English sticks: English although the browser asks for German, on every later page.
    await choosePreference(page, 'en')
    await assertLocalised(page, 'en', 'preferences after switching')
    await page.goto(`${testApp.baseUrl}/`)
    await assertLocalised(page, 'en', 'home after switching')
    assert.equal((await testApp.services.users.findById(user.id))?.locale, 'en')
  } finally {
    await context.close()
  }
})

async function choosePreference (page: Page, locale: string): Promise<void> {
  await page.goto(`${testApp.baseUrl}/preferences`)
  await page.locator('#locale').selectOption(locale)
  await clickAndWaitForPage(page, () => page.locator('form[action="/preferences"] button[type="submit"]').click())
}

async function waitFor (condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  assert.fail(`timed out waiting for ${what}`)
}
