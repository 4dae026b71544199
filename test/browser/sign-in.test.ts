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

test('a person with a helpdesk pass starts at /, finds "I have an access pass" and signs in with it', async () => {
  const helpdesk = await createTestUser(testApp.services, { role: 'helpdesk' })
  const user = await createTestUser(testApp.services, { displayName: 'Ada Pass' })
  const { pass } = await testApp.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: true }, { id: helpdesk.id, label: helpdesk.email })
  const { context, page } = await openPage(browser)
  try {
    await page.goto(`${testApp.baseUrl}/`)
    assert.equal(new URL(page.url()).pathname, '/login')
    await Promise.all([page.waitForURL('**/login/pass'), page.getByRole('link', { name: 'I have an access pass' }).click()])
    await page.getByLabel('Work email', { exact: true }).fill(user.email)
    await page.getByLabel('Access pass', { exact: true }).fill(pass.toLowerCase())
    await Promise.all([page.waitForURL(`${testApp.baseUrl}/`), page.getByRole('button', { name: 'Sign in', exact: true }).click()])
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Hello, Ada Pass')
    assert.equal(await page.getByRole('note').filter({ hasText: 'access pass' }).textContent(), 'You signed in with a temporary access pass. You can set up your sign-in methods, then sign out.')
  } finally {
    await context.close()
  }
})

test('a pass typed into the password box is recognised and the page says where it goes, without using it up', async () => {
  const helpdesk = await createTestUser(testApp.services, { role: 'helpdesk' })
  const user = await createTestUser(testApp.services)
  const { pass } = await testApp.services.passes.issue(user, { lifetimeMinutes: 60, oneTime: true }, { id: helpdesk.id, label: helpdesk.email })
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, pass)
    assert.equal(new URL(page.url()).pathname, '/login')
    assert.equal(await page.getByRole('alert').textContent(), 'That is your temporary access pass, not your password. Choose "I have an access pass" below and enter it there.')
    await Promise.all([page.waitForURL('**/login/pass'), page.getByRole('link', { name: 'I have an access pass' }).click()])
    await page.getByLabel('Work email', { exact: true }).fill(user.email)
    await page.getByLabel('Access pass', { exact: true }).fill(pass)
    await Promise.all([page.waitForURL(`${testApp.baseUrl}/`), page.getByRole('button', { name: 'Sign in', exact: true }).click()])
    assert.equal(new URL(page.url()).pathname, '/', 'the one-time pass still works where it belongs')
  } finally {
    await context.close()
  }
})
