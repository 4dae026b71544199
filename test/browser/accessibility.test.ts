import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import type { Role } from '../../server/domain/users.ts'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { launchBrowser, openPage, signInThroughForm, startBrowserApp, type BrowserApp } from '../helpers/browser.ts'

let browser: Browser
let testApp: BrowserApp
// One signed-in context per role, reused across tests; closed with the browser.
const signedIn = new Map<Role, Promise<Page>>()
let anonymous: { context: BrowserContext, page: Page }

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
  anonymous = await openPage(browser)
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

function pageSignedInAs (role: Role): Promise<Page> {
  let page = signedIn.get(role)
  if (page === undefined) {
    page = (async () => {
      const user = await createTestUser(testApp.services, { role })
      const { page } = await openPage(browser)
      await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
      assert.equal(new URL(page.url()).pathname, '/', `signing in as ${role} failed`)
      return page
    })()
    signedIn.set(role, page)
  }
  return page
}

async function visit (page: Page, path: string, status: number): Promise<void> {
  const response = await page.goto(`${testApp.baseUrl}${path}`)
  assert.equal(response?.status(), status, `GET ${path}`)
}

test('the sign-in page has no accessibility problems axe can find', async () => {
  await visit(anonymous.page, '/login', 200)
  await assertNoAxeViolations(anonymous.page, 'the sign-in page')
})

test('the sign-in page showing an error has no accessibility problems axe can find', async () => {
  const { page } = anonymous
  await signInThroughForm(page, testApp.baseUrl, 'nobody@test.example', 'wrong password')
  assert.equal(await page.getByRole('alert').isVisible(), true)
  await assertNoAxeViolations(page, 'the sign-in page with an error')
})

test('after a failed sign-in, the page title says so and the focused email field is described by the error', async () => {
  const { page } = anonymous
  await signInThroughForm(page, testApp.baseUrl, 'nobody@test.example', 'wrong password')
  assert.equal(await page.title(), 'Error: Sign in · MFA enrollment')
  const focused = await page.evaluate(() => {
    const field = document.activeElement as HTMLInputElement
    const description = (field.getAttribute('aria-describedby') ?? '').split(' ')
      .map((id) => document.getElementById(id)?.textContent?.trim() ?? '').join(' ')
    return { id: field.id, invalid: field.getAttribute('aria-invalid'), description }
  })
  assert.deepEqual(focused, {
    id: 'email',
    invalid: 'true',
    description: 'That email and password do not match an account. Check both and try again.'
  })
})

test('the sign-in page showing a notice has no accessibility problems axe can find', async () => {
  await visit(anonymous.page, '/login?signed_out=1', 200)
  assert.equal(await anonymous.page.getByRole('status').isVisible(), true)
  await assertNoAxeViolations(anonymous.page, 'the sign-in page with a notice')
})

test('the home page has no accessibility problems axe can find', async () => {
  const page = await pageSignedInAs('user')
  await visit(page, '/', 200)
  await assertNoAxeViolations(page, 'the home page')
})

test('the not-found page has no accessibility problems axe can find', async () => {
  await visit(anonymous.page, '/no/such/page', 404)
  await assertNoAxeViolations(anonymous.page, 'the 404 page')
})

test('the access-denied page a plain user sees at /admin has no accessibility problems axe can find', async () => {
  const page = await pageSignedInAs('user')
  await visit(page, '/admin', 403)
  await assertNoAxeViolations(page, 'the 403 page')
})

test('the helpdesk page has no accessibility problems axe can find', async () => {
  const page = await pageSignedInAs('helpdesk')
  await visit(page, '/helpdesk', 200)
  await assertNoAxeViolations(page, 'the helpdesk page')
})

test('the admin page has no accessibility problems axe can find', async () => {
  const page = await pageSignedInAs('admin')
  await visit(page, '/admin', 200)
  await assertNoAxeViolations(page, 'the admin page')
})

test('keyboard users can skip straight to the main content', async () => {
  const page = await pageSignedInAs('admin')
  await visit(page, '/admin', 200)
  await page.keyboard.press('Tab')
  const skip = page.getByRole('link', { name: 'Skip to content', exact: true })
  assert.equal(await skip.evaluate((link) => link === document.activeElement), true)
  const box = await skip.boundingBox()
  assert.ok(box !== null && box.x >= 0 && box.y >= 0, 'the focused skip link is on screen')
  await page.keyboard.press('Enter')
  // The in-page jump updates the address asynchronously: wait for it rather than read it at once.
  await page.waitForURL(/#main$/, { timeout: 5000 })
  assert.equal(new URL(page.url()).hash, '#main')
})
