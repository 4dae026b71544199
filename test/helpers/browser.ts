import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core'
import { startTestApp, type TestApp } from './app.ts'

/** The real app listening on a local port, reachable by Chromium at `baseUrl`. */
export interface BrowserApp extends TestApp {
  /** `http://localhost:<port>`: WebAuthn refuses IP addresses, so pages are always opened by name. */
  baseUrl: string
}

/** A port the OS just handed out and released, so PUBLIC_URL can name it before the app is built. */
async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', resolve)
  })
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

/**
 * startTestApp() (temp SQLite, FakeClock) listening on 127.0.0.1. The port is chosen first so that
 * PUBLIC_URL (and so any origin the app derives from it, e.g. WebAuthn's expected origin) carries it exactly.
 * Chromium resolves `localhost` to the loopback address itself.
 */
export async function startBrowserApp (env: Record<string, string> = {}): Promise<BrowserApp> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const baseUrl = `http://localhost:${port}`
    const testApp = await startTestApp({ PUBLIC_URL: baseUrl, ...env })
    try {
      await testApp.app.listen({ port, host: '127.0.0.1' })
      return { ...testApp, baseUrl }
    } catch (err) {
      await testApp.close()
      // Another process took the port between the probe and listen: rare, so a couple of retries is plenty.
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 3) throw err
    }
  }
}

/** Flags that let Debian's Chromium run as root, headless, on a closed network (see TOOLCHAIN.md). */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

/** Debian's Chromium, headless. Launch once per test file (before) and close it in after. */
export async function launchBrowser (): Promise<Browser> {
  return chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS })
}

export interface Viewport { width: number, height: number }

export const DESKTOP: Viewport = { width: 1280, height: 800 }
/** The narrowest screen the portal supports (STYLE: works from 360 px wide). */
export const NARROW_PHONE: Viewport = { width: 360, height: 740 }
export const PHONE: Viewport = { width: 390, height: 844 }

/** A fresh context (own cookies, so its own session) with one page. Close the context when done. */
export async function openPage (browser: Browser, viewport: Viewport = DESKTOP): Promise<{ context: BrowserContext, page: Page }> {
  const context = await browser.newContext({ viewport, locale: 'en-GB' })
  const page = await context.newPage()
  return { context, page }
}

/** Waits for the navigation a click starts to commit and load, so the caller sees the new page. */
export async function clickAndWaitForPage (page: Page, click: () => Promise<void>): Promise<void> {
  const navigated = page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() })
  await click()
  await navigated
  await page.waitForLoadState('load')
}

/** Opens /login, fills the real form by its labels and submits it. Ends on whatever page the server answers. */
export async function signInThroughForm (page: Page, baseUrl: string, email: string, password: string): Promise<void> {
  await page.goto(`${baseUrl}/login`)
  await page.getByLabel('Work email', { exact: true }).fill(email)
  await page.getByLabel('Password', { exact: true }).fill(password)
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Sign in', exact: true }).click())
}

/** On the step-up page: confirms with a code from the person's authenticator app, and lands where it leads. */
export async function stepUpThroughForm (page: Page, code: string): Promise<void> {
  await page.getByLabel('6-digit code from your app').fill(code)
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Confirm' }).click())
}

/** Console messages and uncaught page errors, collected from now on. */
export function collectConsole (page: Page): string[] {
  const messages: string[] = []
  page.on('console', (message) => messages.push(`${message.type()}: ${message.text()}`))
  page.on('pageerror', (error) => messages.push(`pageerror: ${error.message}`))
  return messages
}

let screenshotDir: string | undefined

/** A full-page PNG in a per-process temporary folder (never in the repo); returns its path. */
export async function screenshot (page: Page, name: string): Promise<string> {
  screenshotDir ??= mkdtempSync(path.join(tmpdir(), 'mfa-screens-'))
  const file = path.join(screenshotDir, `${name.replace(/[^a-z0-9-]+/gi, '-')}.png`)
  await page.screenshot({ path: file, fullPage: true })
  return file
}

export interface VirtualAuthenticator {
  authenticatorId: string
  /** The page's CDP session (shared by its authenticators), for WebAuthn.getCredentials, addCredential and the like. */
  cdp: CDPSession
  remove(): Promise<void>
}

// One CDP session per page: detaching a session disables WebAuthn for the whole page, dropping every authenticator.
const webAuthnSessions = new WeakMap<Page, Promise<CDPSession>>()

async function webAuthnSession (page: Page): Promise<CDPSession> {
  let session = webAuthnSessions.get(page)
  if (session === undefined) {
    session = page.context().newCDPSession(page).then(async (cdp) => {
      await cdp.send('WebAuthn.enable', { enableUI: false })
      return cdp
    })
    webAuthnSessions.set(page, session)
  }
  return session
}

/**
 * A CTAP2 authenticator that holds resident keys and always verifies the user, attached to this page's
 * target: 'internal' acts like a platform passkey (Touch ID, Windows Hello), 'usb' like a security key.
 * Several may be attached to one page; they share its CDP session.
 */
export async function addVirtualAuthenticator (page: Page, options: { transport: 'internal' | 'usb' }): Promise<VirtualAuthenticator> {
  const cdp = await webAuthnSession(page)
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: options.transport,
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true
    }
  })
  return {
    authenticatorId,
    cdp,
    remove: async () => {
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId })
    }
  }
}

/** The page fits its window across: nothing makes the user scroll sideways. */
export async function assertNoSideways (page: Page, label: string): Promise<void> {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth
  }))
  assert.ok(scrollWidth <= innerWidth, `${label} scrolls sideways: content is ${scrollWidth} px wide in a ${innerWidth} px window`)
}
