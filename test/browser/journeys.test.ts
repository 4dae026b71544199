import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { Secret, TOTP } from 'otpauth'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { clickAndWaitForPage, launchBrowser, openPage, signInThroughForm, startBrowserApp, type BrowserApp } from '../helpers/browser.ts'

let browser: Browser
let testApp: BrowserApp

before(async () => {
  testApp = await startBrowserApp({ SMS_ALLOWED_COUNTRIES: 'US', SMS_MAX_PER_NUMBER_PER_HOUR: '1000' })
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

test('a wrong step-up code, then reload or reopening the address: the confirm form again, never a 404', async () => {
  const user = await createTestUser(testApp.services)
  const secret = new Secret({ size: 20 })
  await testApp.services.methods.addTotp(user.id, 'Authenticator', secret.base32, 0)
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await page.goto(`${testApp.baseUrl}/step-up?next=/`)
    const right = new TOTP({ secret }).generate({ timestamp: testApp.clock.now().getTime() })
    await page.getByLabel('6-digit code from your app').fill(right === '000000' ? '111111' : '000000')
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Confirm' }).first().click())
    assert.match(await page.locator('main').innerText(), /not right|wrong|incorrect|did not match|does not match/i)

    const reloaded = await page.reload()
    assert.notEqual(reloaded?.status(), 404)
    assert.ok(await page.getByLabel('6-digit code from your app').isVisible(), 'the code form after reloading')

    const opened = await page.goto(page.url())
    assert.equal(opened?.status(), 200)
    assert.equal(new URL(page.url()).pathname, '/step-up')
    assert.ok(await page.getByLabel('6-digit code from your app').isVisible(), 'the code form after opening the address')
  } finally {
    await context.close()
  }
})

test('phone setup: a wrong code survives a reload, and once locked the code box gives way to when a new code can be asked for', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await page.goto(`${testApp.baseUrl}/enroll/phone`)
    await page.getByLabel('Mobile number').fill('+1 202 555 0143')
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Text me a code' }).click())
    const text = (await testApp.services.outbox.latest(10)).find((m) => m.channel === 'sms')!.bodyText
    const wrong = text.startsWith('000000') ? '111111' : '000000'

    await page.getByLabel('6-digit code from the text message').fill(wrong)
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Add this phone' }).click())
    assert.match(await page.locator('main').innerText(), /That code is not right/)
    const reloaded = await page.reload()
    assert.notEqual(reloaded?.status(), 404)
    const opened = await page.goto(page.url())
    assert.equal(opened?.status(), 200)
    assert.equal(new URL(page.url()).pathname, '/enroll/phone')
    assert.ok(await page.getByLabel('6-digit code from the text message').isVisible())

    // Up to five wrong codes in all (a reload above may have sent the same wrong code again).
    while (await page.getByRole('button', { name: 'Add this phone' }).count() > 0) {
      await page.getByLabel('6-digit code from the text message').fill(wrong)
      await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Add this phone' }).click())
    }
    const main = await page.locator('main').innerText()
    assert.match(main, /Too many wrong codes/)
    assert.match(main, /You can ask for a new code from \d\d:\d\d \(UTC\)/)
    assert.equal(await page.getByLabel('6-digit code from the text message').count(), 0, 'no code box while locked')
    assert.ok(await page.getByRole('button', { name: 'Send a new code' }).isVisible(), 'the way to start again')
    await assertNoAxeViolations(page, 'locked phone setup')
  } finally {
    await context.close()
  }
})

test('Add to calendar on the home page downloads the deadline as an .ics file', async () => {
  const now = testApp.clock.now().getTime()
  await testApp.services.campaigns.create(campaignInput(now, { deadline: new Date(now + 12 * DAY), newUserWindowDays: 0 }), { id: null, label: 'test' })
  const user = await createTestUser(testApp.services)
  await testApp.services.engine.refreshUser(user.id)
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await page.goto(`${testApp.baseUrl}/`)
    await assertNoAxeViolations(page, 'home with Add to calendar')
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Add to calendar' }).click()])
    assert.equal(download.suggestedFilename(), 'mfa-deadline.ics')
    const ics = readFileSync((await download.path())!, 'utf8')
    assert.match(ics, /^BEGIN:VCALENDAR\r\n/)
    assert.match(ics, /\r\nBEGIN:VEVENT\r\n/)
    assert.match(ics, /\r\nTRIGGER:-P1D\r\n/)
    assert.match(ics, new RegExp(`\\r\\nURL:${testApp.baseUrl}/\\r\\n`))
  } finally {
    await context.close()
  }
})
