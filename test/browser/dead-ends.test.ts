import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { Secret, TOTP } from 'otpauth'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { assertNoSideways, clickAndWaitForPage, DESKTOP, launchBrowser, NARROW_PHONE, openPage, screenshot, signInThroughForm, startBrowserApp, stepUpThroughForm, type BrowserApp } from '../helpers/browser.ts'

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

/** The code an authenticator app holding `key` (as the setup page shows it, in groups) shows now. */
function codeFor (key: string): string {
  return new TOTP({ secret: Secret.fromBase32(key.replace(/\s+/g, '')) }).generate({ timestamp: testApp.clock.now().getTime() })
}

test('a helpdesk member with no method presses "Issue pass", sets up an authenticator app, and is offered the pass again with the reason still filled in', async () => {
  await createTestUser(testApp.services, { role: 'helpdesk', email: 'new.desk@test.example' })
  const person = await createTestUser(testApp.services, { email: 'stranded@test.example', displayName: 'Stranded Person' })
  const reason = 'Phone lost on the train, ticket 4711'
  const { context, page } = await openPage(browser)
  try {
    await signInThroughForm(page, testApp.baseUrl, 'new.desk@test.example', TEST_PASSWORD)
    await page.goto(`${testApp.baseUrl}/helpdesk`)
    await page.getByLabel('Name or email').fill('stranded')
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Search' }).click())
    await clickAndWaitForPage(page, () => page.getByRole('link', { name: 'Stranded Person' }).click())
    await page.getByLabel('Reason').first().fill(reason)
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Issue pass' }).click())

    // No method yet: the page says what will happen, and the way forward is right there.
    assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Set up a sign-in method first')
    const notice = await page.locator('main').innerText()
    assert.match(notice, /then you will be asked to confirm it's you with it, and can send what you entered \(“Issue a temporary access pass”\), which is kept/)
    assert.doesNotMatch(notice, /nothing to confirm\. Add your first method/)
    await assertNoAxeViolations(page, 'the step-up page without a method')
    await clickAndWaitForPage(page, () => page.getByRole('link', { name: /Authenticator app/ }).click())

    assert.equal(new URL(page.url()).pathname, '/enroll/totp')
    const key = await page.locator('#totp-key').innerText()
    await page.getByLabel('6-digit code shown in your app').fill(codeFor(key))
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Finish setup' }).click())

    // On to the held action, through a step-up with the new app (the code just used works only once).
    assert.equal(new URL(page.url()).pathname, '/step-up')
    assert.match(await page.locator('main').innerText(), /Your authenticator app is set up\. To send “Issue a temporary access pass”, confirm it's you with it/)
    testApp.clock.advance(30_000)
    await stepUpThroughForm(page, codeFor(key))

    assert.equal(new URL(page.url()).pathname, '/step-up/continue')
    assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Issue a temporary access pass')
    assert.ok(await page.getByText(reason, { exact: true }).isVisible(), 'the reason is shown, still as typed')
    await assertNoAxeViolations(page, 'the held action offered again')
    await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Issue a temporary access pass' }).click())

    assert.ok(await page.locator('#pass-value').isVisible(), 'the pass is shown to read out')
    assert.match(await page.locator('main').innerText(), /Stranded Person/)
    const [issued] = await testApp.services.audit.list({ action: 'pass.issued', subjectUserId: person.id })
    assert.equal(JSON.parse(issued.details).reason, reason)
  } finally {
    await context.close()
  }
})

/**
 * The words (runs of letters and digits, up to `longest` long) inside `selector` that the browser broke across
 * lines, measured on the laid-out page: a word whose range has boxes on more than one line is split. (A line may
 * end after an @, a dot or a hyphen: that keeps every word whole.)
 */
async function splitWords (page: Page, selector: string, longest = 60): Promise<string[]> {
  return page.evaluate(({ selector, longest }) => {
    const split: string[] = []
    for (const element of document.querySelectorAll(selector)) {
      const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT)
      for (let node = walker.nextNode(); node !== null; node = walker.nextNode()) {
        for (const match of (node.textContent ?? '').matchAll(/[A-Za-z0-9]+/g)) {
          if (match[0].length > longest) continue
          const range = document.createRange()
          range.setStart(node, match.index)
          range.setEnd(node, match.index + match[0].length)
          const tops = new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top)))
          if (tops.size > 1) split.push(match[0])
        }
      }
    }
    return split
  }, { selector, longest })
}

/** How many lines the text inside each element matching `selector` takes, element by element. */
async function linesOf (page: Page, selector: string): Promise<number[]> {
  return page.evaluate((selector) => [...document.querySelectorAll(selector)].map((element) => {
    const range = document.createRange()
    range.selectNodeContents(element)
    return new Set([...range.getClientRects()].filter((r) => r.width > 0).map((r) => Math.round(r.top))).size
  }), selector)
}

test('the audit log keeps words and e-mail addresses whole at 1280 px, and at 360 px an address takes at most two lines and an event name one', async () => {
  const { services } = testApp
  await createTestUser(services, { role: 'admin', email: 'audit.reader@test.example' })
  const subject = await createTestUser(services, { email: 'alexandra.konstantinopoulou@research-division.example.com' })
  for (let i = 0; i < 3; i++) {
    await services.audit.append({ action: 'enforcement.drift_check_incomplete', actorLabel: 'maximiliana.featherstonehaugh@helpdesk-team.example.com', subjectUserId: subject.id, details: { reason: 'The directory did not answer for several accounts in time', unchecked: 12, campaignId: 'c0ffee00-1234-4abc-8def-0123456789ab' } })
    await services.audit.append({ action: 'pass.signin_failure', actorLabel: subject.email, subjectUserId: subject.id, details: {} })
  }
  for (const viewport of [DESKTOP, NARROW_PHONE]) {
    const { context, page } = await openPage(browser, viewport)
    try {
      await signInThroughForm(page, testApp.baseUrl, 'audit.reader@test.example', TEST_PASSWORD)
      await page.goto(`${testApp.baseUrl}/admin/audit?subject=${encodeURIComponent(subject.email)}`)
      const rows = await page.locator('#audit-events tbody tr').count()
      assert.ok(rows >= 6, `${rows} events shown`)
      await assertNoSideways(page, `the audit log at ${viewport.width} px`)
      const at = `at ${viewport.width} px`
      assert.deepEqual(await linesOf(page, '#audit-events .event-name'), Array(rows).fill(1), `each event name on one line ${at}`)
      if (viewport === DESKTOP) {
        assert.deepEqual(await splitWords(page, '#audit-events tbody'), [], `no word broken across lines ${at}`)
      } else {
        for (const lines of await linesOf(page, '#audit-events tbody td.cell-address')) {
          assert.ok(lines <= 2, `an e-mail address takes ${lines} lines ${at}`)
        }
        assert.deepEqual(await splitWords(page, '#audit-events tbody td:not(.cell-details)'), [], `no word broken across lines outside the details ${at}`)
      }
      await screenshot(page, `audit-log-${viewport.width}`)
      await assertNoAxeViolations(page, `the audit log ${at}`)
    } finally {
      await context.close()
    }
  }
})

test('before any campaign, an administrator reads that no deadline is set yet and that only a passkey counts for them, offered first', async () => {
  await createTestUser(testApp.services, { role: 'admin', privileged: true, email: 'first.admin@test.example' })
  for (const viewport of [DESKTOP, NARROW_PHONE]) {
    const { context, page } = await openPage(browser, viewport)
    try {
      await signInThroughForm(page, testApp.baseUrl, 'first.admin@test.example', TEST_PASSWORD)
      assert.equal(new URL(page.url()).pathname, '/')
      const status = await page.locator('#no-deadline').innerText()
      assert.match(status, /Your organisation has not set a deadline for your account yet, so multi-factor sign-in is not mandatory for you yet\./)
      assert.match(await page.locator('#what-counts').innerText(), /only a passkey or security key counts for it/)

      const options = page.locator('#add-method ~ ul.add-list').first().locator('a.add-method')
      assert.equal(await options.count(), 1, 'one option counts')
      assert.match(await options.first().innerText(), /Passkey or security key\s+Counts for your account/)
      assert.equal(await page.getByRole('heading', { name: 'Also possible, but does not count for privileged accounts' }).count(), 1)
      const apart = await page.locator('ul.add-list-secondary a.add-method strong').allInnerTexts()
      assert.deepEqual(apart, ['Authenticator app', 'Phone'])
      // The passkey is the more prominent card: it comes first on the page.
      const [passkeyTop, appTop] = await Promise.all([options.first(), page.locator('ul.add-list-secondary a.add-method').first()].map(async (l) => (await l.boundingBox())!.y))
      assert.ok(passkeyTop < appTop)
      await assertNoSideways(page, `the home page at ${viewport.width} px`)
      await assertNoAxeViolations(page, `the home page of a privileged account before any campaign at ${viewport.width} px`)
      await clickAndWaitForPage(page, () => options.first().click())
      assert.equal(new URL(page.url()).pathname, '/enroll/passkey')
    } finally {
      await context.close()
    }
  }
})

test('the helpdesk timeline reads as words, with the event name beside them, at 360 px too', async () => {
  const { services } = testApp
  await createTestUser(services, { role: 'helpdesk', email: 'timeline.desk@test.example' })
  const person = await createTestUser(services, { email: 'timeline.person@test.example', displayName: 'Timeline Person' })
  await services.audit.append({ action: 'pass.signin_failure', actorLabel: person.email, subjectUserId: person.id, details: {} })
  await services.audit.append({ action: 'enforcement.enforced', actorLabel: 'engine', subjectUserId: person.id, details: {} })
  const { context, page } = await openPage(browser, NARROW_PHONE)
  try {
    await signInThroughForm(page, testApp.baseUrl, 'timeline.desk@test.example', TEST_PASSWORD)
    await page.goto(`${testApp.baseUrl}/helpdesk/users/${person.id}`)
    const rows = await page.locator('#timeline-events tbody tr').allInnerTexts()
    assert.match(rows[0], /Multi-factor sign-in was made mandatory\s+enforcement\.enforced/)
    assert.match(rows[1], /Sign-in with an access pass failed\s+pass\.signin_failure/)
    assert.deepEqual(await linesOf(page, '#timeline-events .event-name'), Array(rows.length).fill(1), 'each event name on one line')
    assert.deepEqual(await splitWords(page, '#timeline-events tbody'), [], 'no word broken across lines')
    await assertNoSideways(page, 'the helpdesk person page at 360 px')
    await assertNoAxeViolations(page, 'the helpdesk person page at 360 px')
  } finally {
    await context.close()
  }
})
