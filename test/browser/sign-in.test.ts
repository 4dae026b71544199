import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { launchBrowser, openPage, signInThroughForm, startBrowserApp, type BrowserApp } from '../helpers/browser.ts'

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

test('a user signs in through the real form and sees the home page with their name', async () => {
  const user = await createTestUser(testApp.services, { displayName: 'Grace Hopper' })
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)

    assert.equal(new URL(page.url()).pathname, '/')
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Hello, Grace Hopper')
    assert.equal(await page.getByRole('button', { name: 'Sign out', exact: true }).isVisible(), true)
  } finally {
    await context.close()
  }
})

test('a wrong password shows the generic error on the sign-in page and keeps the email typed', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, 'not the password')

    assert.equal(new URL(page.url()).pathname, '/login')
    const alert = page.getByRole('alert')
    assert.equal(await alert.textContent(), 'That email and password do not match an account. Check both and try again.')
    assert.equal(await page.getByLabel('Work email', { exact: true }).inputValue(), user.email)
    assert.equal(await page.getByLabel('Password', { exact: true }).inputValue(), '')
  } finally {
    await context.close()
  }
})

test('signing out returns to the sign-in page with a notice, and the home page then asks to sign in', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await Promise.all([
      page.waitForURL('**/login?signed_out=1'),
      page.getByRole('button', { name: 'Sign out', exact: true }).click()
    ])
    assert.equal(await page.getByRole('status').textContent(), 'You are signed out.')

    await page.goto(`${testApp.baseUrl}/`)
    assert.equal(new URL(page.url()).pathname, '/login')
  } finally {
    await context.close()
  }
})
