import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { after, before, test } from 'node:test'
import { Secret } from 'otpauth'
import type { Browser, Page } from 'playwright-core'
import { createTestUser, totpCode, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { clickAndWaitForPage, launchBrowser, openPage, signInThroughForm, startBrowserApp, stepUpThroughForm, type BrowserApp } from '../helpers/browser.ts'

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

async function shownCodes (page: Page): Promise<string[]> {
  return (await page.locator('#recovery-code-list code').allTextContents()).map((c) => c.trim())
}

/** From /recovery-codes: "Create …", confirm it's you with the app, "Create …" again; ends on the page showing the set. */
async function createThroughPage (page: Page, secret: string, button: string): Promise<string[]> {
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: button }).click())
  assert.equal(new URL(page.url()).pathname, '/step-up')
  await stepUpThroughForm(page, totpCode(secret, testApp.clock.now().getTime()))
  assert.equal(new URL(page.url()).pathname, '/recovery-codes')
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: button }).click())
  return await shownCodes(page)
}

/** Signs in with the password (MFA is enforced, so the second factor is asked) and offers `code` instead of a method. */
async function signInWithRecoveryCode (email: string, code: string): Promise<{ page: Page, close: () => Promise<void> }> {
  const { context, page } = await openPage(browser)
  await signInThroughForm(page, testApp.baseUrl, email, TEST_PASSWORD)
  assert.equal(new URL(page.url()).pathname, '/step-up')
  await page.getByText('Use a recovery code').click()
  await page.getByLabel('Recovery code', { exact: true }).fill(code)
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Sign in with the code' }).click())
  return { page, close: async () => await context.close() }
}

test('recovery codes are shown once and downloaded; one signs in once, the second use is refused, the user is e-mailed; new codes void the old', async () => {
  const user = await createTestUser(testApp.services, { displayName: 'Rosa Recovery' })
  const secret = new Secret({ size: 20 }).base32
  await testApp.services.methods.addTotp(user.id, 'Phone app', secret, 0)
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await clickAndWaitForPage(page, () => page.getByRole('link', { name: 'Recovery codes' }).click())
    await assertNoAxeViolations(page, 'recovery codes page')
    const codes = await createThroughPage(page, secret, 'Create recovery codes')
    assert.equal(codes.length, 10)
    assert.match(await page.locator('main, body').first().textContent() ?? '', /shown only this once/)
    await assertNoAxeViolations(page, 'recovery codes shown')

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download as a text file' }).click()
    ])
    assert.equal(download.suggestedFilename(), 'recovery-codes.txt')
    const file = await readFile((await download.path())!, 'utf8')
    for (const code of codes) assert.ok(file.includes(code), `${code} is in the downloaded file`)

    await page.reload()
    assert.deepEqual(await shownCodes(page), [], 'shown once: a reload no longer shows them')

    // From now on the password alone is not enough: the second factor is owed at sign-in.
    testApp.services.database.sqlite.prepare('UPDATE users SET enforced_at = ? WHERE id = ?').run(testApp.clock.now().getTime(), user.id)

    const first = await signInWithRecoveryCode(user.email, codes[0].toLowerCase())
    try {
      assert.equal(new URL(first.page.url()).pathname, '/')
      assert.equal(await first.page.getByRole('heading', { level: 1 }).textContent(), 'Hello, Rosa Recovery')
      assert.match(await first.page.getByRole('status').textContent() ?? '', /You have 9 recovery codes left/)
    } finally { await first.close() }
    const mail = (await testApp.services.outbox.latest(20)).find((m) => m.recipient === user.email && /recovery code was used/.test(m.subject ?? ''))
    assert.ok(mail !== undefined, 'the user is e-mailed')
    assert.match(mail.bodyText, /Was this you\?/)
    assert.match(mail.bodyText, /You have 9 recovery codes left/)

    const second = await signInWithRecoveryCode(user.email, codes[0])
    try {
      assert.equal(new URL(second.page.url()).pathname, '/step-up')
      assert.match(await second.page.getByText('That recovery code is not right, or it was already used').textContent() ?? '', /already used/)
      await assertNoAxeViolations(second.page, 'step-up page with a refused recovery code')
    } finally { await second.close() }

    // A new set needs a fresh step-up and voids the old codes.
    testApp.clock.advance(11 * 60_000)
    await page.goto(`${testApp.baseUrl}/step-up?next=/recovery-codes`)
    await stepUpThroughForm(page, totpCode(secret, testApp.clock.now().getTime()))
    assert.equal(new URL(page.url()).pathname, '/recovery-codes')
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Create new codes' }).click())
    const fresh = await shownCodes(page)
    assert.equal(fresh.length, 10)

    const old = await signInWithRecoveryCode(user.email, codes[1])
    try {
      assert.equal(new URL(old.page.url()).pathname, '/step-up', 'an old code no longer signs in')
    } finally { await old.close() }
    const next = await signInWithRecoveryCode(user.email, fresh[1])
    try {
      assert.equal(new URL(next.page.url()).pathname, '/')
    } finally { await next.close() }
  } finally {
    await context.close()
  }
})
