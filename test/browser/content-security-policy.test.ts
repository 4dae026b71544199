import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import type { Role } from '../../server/domain/users.ts'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { collectConsole, launchBrowser, openPage, signInThroughForm, startBrowserApp, type BrowserApp } from '../helpers/browser.ts'

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

/** Everything the page does that a strict CSP would have to allow by exception. */
async function inlineCode (page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const found: string[] = []
    for (const element of document.querySelectorAll('*')) {
      const tag = element.tagName.toLowerCase()
      // A data block (type="application/json", the passkey page's messages) never runs: CSP need not allow it.
      if (tag === 'script' && !element.hasAttribute('src') && element.getAttribute('type') !== 'application/json') found.push('inline <script>')
      if (tag === 'style') found.push('<style> element')
      if (element.hasAttribute('style')) found.push(`style attribute on <${tag}>`)
      for (const attribute of element.getAttributeNames()) {
        if (attribute.startsWith('on')) found.push(`${attribute} handler on <${tag}>`)
      }
      const href = element.getAttribute('href') ?? element.getAttribute('action') ?? ''
      if (/^\s*javascript:/i.test(href)) found.push(`javascript: URL on <${tag}>`)
    }
    return found
  })
}

/**
 * Records CSP violations the browser reports, from before any page script runs, on every document this page
 * loads from now on. Returns a reader for the current document's list.
 */
async function recordViolations (page: Page): Promise<() => Promise<string[]>> {
  await page.addInitScript(() => {
    const seen: string[] = []
    Object.defineProperty(window, '__cspViolations', { value: seen })
    document.addEventListener('securitypolicyviolation', (event) => {
      seen.push(`${event.effectiveDirective} blocked ${event.blockedURI || 'inline code'} at ${event.sourceFile}:${event.lineNumber}`)
    })
  })
  return () => page.evaluate(() => (window as unknown as { __cspViolations: string[] }).__cspViolations)
}

const PAGES: Array<{ label: string, role: Role | null, path: string, status: number }> = [
  { label: 'the sign-in page', role: null, path: '/login', status: 200 },
  { label: 'the not-found page', role: null, path: '/no/such/page', status: 404 },
  { label: 'the home page', role: 'user', path: '/', status: 200 },
  { label: 'the access-denied page', role: 'user', path: '/admin', status: 403 },
  { label: 'the helpdesk page', role: 'helpdesk', path: '/helpdesk', status: 200 },
  { label: 'the admin page', role: 'admin', path: '/admin', status: 200 }
]

test('every page is sent with a strict Content-Security-Policy that allows no inline script or style', async () => {
  const { context, page } = await openPage(browser)
  try {
    const response = await page.goto(`${testApp.baseUrl}/login`)
    const csp = (await response?.allHeaders())?.['content-security-policy'] ?? ''
    const directives = new Map(csp.split(';').map((part) => part.trim().split(/\s+/)).map(([name, ...values]) => [name, values.join(' ')]))
    assert.equal(directives.get('default-src'), "'self'", csp)
    assert.equal(directives.get('script-src'), "'self'", csp)
    assert.equal(directives.get('style-src'), "'self'", csp)
    assert.equal(directives.get('frame-ancestors'), "'none'", csp)
    assert.equal(directives.get('object-src'), "'none'", csp)
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
  } finally {
    await context.close()
  }
})

test('no page carries inline scripts, styles or event handlers, and the browser reports no CSP violations', async () => {
  const pages = new Map<Role | null, { page: Page, violations: () => Promise<string[]>, consoleLines: string[] }>()
  try {
    for (const { label, role, path, status } of PAGES) {
      let visitor = pages.get(role)
      if (visitor === undefined) {
        const { page } = await openPage(browser)
        visitor = { page, violations: await recordViolations(page), consoleLines: collectConsole(page) }
        pages.set(role, visitor)
        if (role !== null) {
          const user = await createTestUser(testApp.services, { role })
          await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
        }
      }
      const { page, violations, consoleLines } = visitor
      const response = await page.goto(`${testApp.baseUrl}${path}`)
      assert.equal(response?.status(), status, `GET ${path}`)
      assert.ok((await response?.allHeaders())?.['content-security-policy'], `${label} has a CSP header`)

      assert.deepEqual(await inlineCode(page), [], `${label} has inline code`)
      assert.deepEqual(await violations(), [], `${label} broke its CSP`)
      assert.deepEqual(consoleLines.filter((line) => /Content Security Policy|Refused to/i.test(line)), [], `${label} console`)
      // The stylesheet really applied: the page background is app.css's --page colour, not the browser's white.
      assert.equal(await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor), 'rgb(245, 247, 249)', `${label} is styled`)
    }
  } finally {
    for (const { page } of pages.values()) await page.context().close()
  }
})
