import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { Secret, TOTP } from 'otpauth'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { assertNoSideways, DESKTOP, launchBrowser, NARROW_PHONE, openPage, screenshot, signInThroughForm, startBrowserApp, type BrowserApp } from '../helpers/browser.ts'

let browser: Browser
let testApp: BrowserApp
let page: Page
let notMeLink: string

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
  page = (await openPage(browser, DESKTOP)).page
  // An admin with an app and a phone: the fullest home page, step-up page and outbox.
  const user = await createTestUser(testApp.services, { role: 'admin', displayName: 'Maximiliana Featherstonehaugh-Worthington' })
  const secret = new Secret({ size: 20 })
  const app = await testApp.services.methods.addTotp(user.id, 'Authenticator on my work phone', secret.base32, 0)
  const phone = await testApp.services.methods.addPhone(user.id, 'Mobile •••• 0143', '+12025550143')
  await testApp.services.lifecycle.added(user, phone, null)
  notMeLink = new URL(/\/methods\/not-me\?token=[\w-]+/.exec((await testApp.services.outbox.latest())[0].bodyText)![0], testApp.baseUrl).toString()
  await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
  // Confirmed with the app, so the setup pages show their forms rather than the step-up explanation.
  await page.goto(`${testApp.baseUrl}/step-up?next=/`)
  await page.getByLabel('6-digit code from your app').fill(new TOTP({ secret }).generate({ timestamp: testApp.clock.now().getTime() }))
  await Promise.all([page.waitForURL(`${testApp.baseUrl}/`), page.getByRole('button', { name: 'Confirm' }).click()])
  assert.ok((await testApp.services.methods.findFor(user.id, app.id))?.lastUsedAt !== null)
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

// Every page a user meets while enrolling, as this admin sees it.
const PAGES: Array<[string, () => string]> = [
  ['home with methods', () => '/'],
  ['authenticator app setup', () => '/enroll/totp'],
  ['phone setup', () => '/enroll/phone'],
  ['passkey setup', () => '/enroll/passkey'],
  ['confirm it\'s you', () => '/step-up?next=/'],
  ['"this wasn\'t me"', () => notMeLink],
  ['admin outbox', () => '/admin/outbox']
]

for (const [label, path] of PAGES) {
  test(`the ${label} page has no accessibility violations and fits a 360 px wide phone`, async () => {
    for (const viewport of [DESKTOP, NARROW_PHONE]) {
      await page.setViewportSize(viewport)
      const response = await page.goto(new URL(path(), testApp.baseUrl).toString())
      assert.equal(response?.status(), 200, `${label} answers 200`)
      await assertNoAxeViolations(page, `${label} at ${viewport.width} px`)
      await assertNoSideways(page, `${label} at ${viewport.width} px`)
      await screenshot(page, `${label.replace(/\W+/g, '-')}-${viewport.width}`)
    }
  })
}

test('the access-pass sign-in page has no accessibility violations and fits a 360 px wide phone', async () => {
  const { context, page: visitor } = await openPage(browser, NARROW_PHONE)
  try {
    await visitor.goto(`${testApp.baseUrl}/login/pass`)
    await assertNoAxeViolations(visitor, 'access-pass sign-in')
    await assertNoSideways(visitor, 'access-pass sign-in')
  } finally {
    await context.close()
  }
})
