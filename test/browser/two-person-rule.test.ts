import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { Secret } from 'otpauth'
import type { User } from '../../server/domain/users.ts'
import { createTestUser, TEST_PASSWORD, totpCode } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { assertNoSideways, clickAndWaitForPage, DESKTOP, launchBrowser, NARROW_PHONE, openPage, screenshot, signInThroughForm, startBrowserApp, stepUpThroughForm, type BrowserApp } from '../helpers/browser.ts'

/**
 * Issue #12 acceptance: administrator A asks for a temporary access pass for a privileged user; A cannot approve
 * it; administrator B approves it after B's own step-up and is shown the pass; the pass works once.
 */

let browser: Browser
let testApp: BrowserApp
let target: User
const admins: Record<'a' | 'b', { user: User, secret: string }> = {} as never

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
  const { services } = testApp
  target = await createTestUser(services, { displayName: 'Pat Privileged', privileged: true })
  for (const [key, name] of [['a', 'Ada Admin'], ['b', 'Ben Admin']] as const) {
    const user = await createTestUser(services, { role: 'admin', displayName: name })
    const secret = new Secret({ size: 20 }).base32
    await services.methods.addTotp(user.id, 'Phone', secret, 0)
    admins[key] = { user, secret }
  }
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

/** Signs an administrator in through the real form, in a browser of their own. */
async function signInAdmin (key: 'a' | 'b', viewport = DESKTOP): Promise<Page> {
  const { page } = await openPage(browser, viewport)
  await signInThroughForm(page, testApp.baseUrl, admins[key].user.email, TEST_PASSWORD)
  assert.equal(new URL(page.url()).pathname, '/')
  return page
}

/** On the step-up page: the code the administrator's own authenticator app shows now. */
async function confirmItsMe (page: Page, key: 'a' | 'b'): Promise<void> {
  assert.equal(new URL(page.url()).pathname, '/step-up')
  await stepUpThroughForm(page, totpCode(admins[key].secret, testApp.clock.now().getTime()))
}

async function checked (page: Page, label: string): Promise<void> {
  await assertNoAxeViolations(page, label)
  await assertNoSideways(page, label)
}

test('A requests a pass for a privileged user, A cannot approve it, B approves it after stepping up, and the pass works once', async () => {
  // Administrator A asks for the pass from the person's helpdesk page.
  const a = await signInAdmin('a')
  await a.goto(`${testApp.baseUrl}/step-up?next=${encodeURIComponent(`/helpdesk/users/${target.id}`)}`)
  await confirmItsMe(a, 'a')
  assert.equal(new URL(a.url()).pathname, `/helpdesk/users/${target.id}`)
  assert.match(await a.locator('#two-person-rule').innerText(), /a different administrator approves it/)
  await a.getByLabel('Reason', { exact: true }).first().fill('Lost phone; identity checked on a video call')
  await clickAndWaitForPage(a, () => a.getByRole('button', { name: 'Request pass' }).click())
  assert.equal(new URL(a.url()).pathname, `/helpdesk/users/${target.id}`)
  assert.match(await a.getByRole('status').first().innerText(), /Nothing has changed yet/)
  assert.match(await a.locator('#pending-approvals').innerText(), /A temporary access pass, asked by/)
  assert.equal(await a.locator('#pass-value').count(), 0, 'no pass for the requester')
  await checked(a, 'the helpdesk page with a request waiting')

  // A sees the request, but no Approve button, only Withdraw.
  await a.goto(`${testApp.baseUrl}/admin/approvals`)
  const row = a.locator('#pending-requests tbody tr').first()
  assert.match(await row.innerText(), /You asked for this: another administrator must approve it/)
  assert.equal(await row.getByRole('button', { name: /^Approve/ }).count(), 0)
  await checked(a, 'the approvals page, as the requester')
  await screenshot(a, 'approvals-requester')

  // A posting an approval anyway (a hand-made form with A's own valid CSRF token) is refused.
  const requestId = await row.getAttribute('data-request')
  assert.ok(requestId)
  const forged = await a.evaluate(async (id) => {
    const token = (document.querySelector('input[name="_csrf"]') as HTMLInputElement).value
    const res = await fetch(`/admin/approvals/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ _csrf: token }) })
    return { status: res.status, text: await res.text() }
  }, requestId)
  assert.equal(forged.status, 403)
  assert.match(forged.text, /a different administrator must approve it/)

  // Administrator B, on a phone, approves: the portal first has B confirm it's them with B's own app.
  const b = await signInAdmin('b', NARROW_PHONE)
  await b.goto(`${testApp.baseUrl}/admin/approvals`)
  await checked(b, 'the approvals page, as the approver')
  await clickAndWaitForPage(b, () => b.getByRole('button', { name: /^Approve temporary access pass for Pat Privileged/ }).click())
  await confirmItsMe(b, 'b')
  assert.equal(new URL(b.url()).pathname, '/step-up/continue')
  await clickAndWaitForPage(b, () => b.getByRole('button', { name: 'Approve the request' }).click())
  assert.equal(await b.title(), 'Request approved: temporary access pass issued · MFA enrollment')
  const pass = (await b.locator('#pass-value').innerText()).replace(/\s/g, '')
  assert.match(pass, /^[A-HJ-NP-Z2-9]{12}$/)
  await checked(b, 'the pass page, as the approver')
  await screenshot(b, 'approvals-pass-360')

  // A never sees the pass; the request shows as approved by B.
  await a.goto(`${testApp.baseUrl}/admin/approvals`)
  assert.match(await a.locator('#recent-requests').innerText(), new RegExp(`Approved\\s+by\\s+${admins.b.user.email.replace('.', '\\.')}`))
  assert.ok(!(await a.content()).includes(pass))

  // The person signs in with the pass once; a second use is refused.
  for (const attempt of ['first', 'second'] as const) {
    const { context, page } = await openPage(browser, DESKTOP)
    await page.goto(`${testApp.baseUrl}/login/pass`)
    await page.getByLabel('Work email').fill(target.email)
    await page.getByLabel('Access pass').fill(pass)
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Sign in' }).click())
    if (attempt === 'first') {
      assert.equal(new URL(page.url()).pathname, '/', 'the pass signs the person in')
      assert.match(await page.locator('h1').innerText(), /Pat Privileged/)
    } else {
      assert.equal(new URL(page.url()).pathname, '/login/pass', 'the pass works once')
      assert.match(await page.getByRole('alert').innerText(), /do not match an active pass/)
    }
    await context.close()
  }
})
