import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoSideways, launchBrowser, NARROW_PHONE, openPage, PHONE, screenshot, signInThroughForm, startBrowserApp, type BrowserApp, type Viewport } from '../helpers/browser.ts'

let browser: Browser
let testApp: BrowserApp
// Two visitors for the whole file, resized per test: every sign-in costs a deliberately slow password check.
let visitor: Page
let member: Page

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
  visitor = (await openPage(browser, NARROW_PHONE)).page
  member = (await openPage(browser, NARROW_PHONE)).page
  // The longest name in the header is the hardest case for the header row.
  const user = await createTestUser(testApp.services, { role: 'admin', displayName: 'Maximiliana Featherstonehaugh-Worthington' })
  await signInThroughForm(member, testApp.baseUrl, user.email, TEST_PASSWORD)
  assert.equal(new URL(member.url()).pathname, '/')
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

/** Entirely inside the viewport, across and down, without scrolling. */
async function assertFullyVisible (page: Page, name: string, viewport: Viewport): Promise<void> {
  const box = await page.getByRole('button', { name, exact: true }).boundingBox()
  assert.ok(box !== null, `the ${name} button is rendered`)
  assert.ok(box.x >= 0 && box.x + box.width <= viewport.width, `the ${name} button fits across: ${JSON.stringify(box)}`)
  assert.ok(box.y >= 0 && box.y + box.height <= viewport.height, `the ${name} button is on the first screen: ${JSON.stringify(box)}`)
}

for (const [label, viewport] of [['a 360 px wide phone', NARROW_PHONE], ['a 390×844 phone', PHONE]] as const) {
  test(`on ${label} the sign-in page fits the screen and the sign-in button is fully visible`, async () => {
    await visitor.setViewportSize(viewport)
    await visitor.goto(`${testApp.baseUrl}/login`)
    await assertNoSideways(visitor, 'the sign-in page')
    await assertFullyVisible(visitor, 'Sign in', viewport)
    await screenshot(visitor, `sign-in-${viewport.width}`)

    // The most this page ever shows: the error message, with a long address kept in the field.
    await signInThroughForm(visitor, testApp.baseUrl, 'someone.with.a.rather.long.name@subsidiary.example.org', 'wrong password')
    assert.equal(await visitor.getByRole('alert').isVisible(), true)
    await assertNoSideways(visitor, 'the sign-in page with an error')
    await assertFullyVisible(visitor, 'Sign in', viewport)
    await screenshot(visitor, `sign-in-error-${viewport.width}`)
  })

  test(`on ${label} the home page fits the screen, with the name and a one-line sign-out button`, async () => {
    await member.setViewportSize(viewport)
    await member.goto(`${testApp.baseUrl}/`)
    await assertNoSideways(member, 'the home page')
    await assertFullyVisible(member, 'Sign out', viewport)
    const signOutLines = await member.getByRole('button', { name: 'Sign out', exact: true }).evaluate((button) => {
      const range = document.createRange()
      range.selectNodeContents(button)
      return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size
    })
    assert.equal(signOutLines, 1, 'the Sign out label stays on one line')
    await screenshot(member, `home-${viewport.width}`)
  })
}
