import assert from 'node:assert/strict'
import { createServer, type AddressInfo } from 'node:net'
import { after, before, test } from 'node:test'
import type { Browser } from 'playwright-core'
import { startTestApp, type TestApp } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { clickAndWaitForPage, launchBrowser, openPage } from '../helpers/browser.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra, type FakeEntra } from '../fakes/graph/server.ts'
import type { FakeUser } from '../fakes/graph/tenant.ts'

let browser: Browser
let fake: FakeEntra
let testApp: TestApp
let baseUrl: string
let ada: FakeUser

/** A port the OS just handed out: the callback address registered with Microsoft must name it before the app starts. */
async function freePort (): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

before(async () => {
  fake = await startFakeEntra({ now: () => testApp?.clock.now() ?? new Date() })
  const port = await freePort()
  baseUrl = `http://localhost:${port}`
  testApp = await startTestApp({ PUBLIC_URL: baseUrl, PROVIDERS: 'entra', ...fakeEnv(fake, { ENTRA_REDIRECT_URI: `${baseUrl}/login/microsoft/callback`, ENTRA_AUTH_CONTEXT: 'c1' }) as Record<string, string> })
  testApp.clock.set(new Date())
  await testApp.app.listen({ port, host: '127.0.0.1' })
  ada = fake.tenant.addUser({ displayName: 'Ada Lovelace' })
  await testApp.services.directorySync.sync(testApp.services.providers.entra)
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await testApp?.close()
  await fake?.close()
})

test('a user signs in with Microsoft against the authority (signed ID token) and lands on their home page', async () => {
  const { context, page } = await openPage(browser)
  try {
    await page.goto(`${baseUrl}/login`)
    await assertNoAxeViolations(page, 'the sign-in page with Microsoft')
    // The fake authority signs in whoever the test chose, as a user who completes Microsoft's own pages would be.
    fake.identity.signInAs(ada.id, { mfa: true })
    await clickAndWaitForPage(page, () => page.getByRole('link', { name: 'Sign in with Microsoft' }).click())
    await page.waitForURL(`${baseUrl}/`)
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Hello, Ada Lovelace')
    assert.ok(fake.identity.tokenRequests.some((r) => r.grant_type === 'authorization_code' && r.code_verifier !== undefined), 'the code was redeemed with a PKCE verifier')
    await assertNoAxeViolations(page, 'the home page of an Entra user')
    await clickAndWaitForPage(page, () => page.getByRole('link', { name: /Passkey or security key/ }).click())
    assert.equal(await page.getByRole('link', { name: 'Open Microsoft\'s security info page' }).getAttribute('href'), 'https://mysignins.microsoft.com/security-info')
    await assertNoAxeViolations(page, 'the Entra passkey guide')
  } finally {
    await context.close()
  }
})

test('a callback with a wrong state is refused with a clear page and the browser stays signed out', async () => {
  const { context, page } = await openPage(browser)
  try {
    await page.goto(`${baseUrl}/login`)
    fake.identity.signInAs(ada.id, { mfa: true })
    // The browser starts a sign-in (its session holds the state); the answer that comes back carries another state,
    // as a forged or stale link would.
    const begin = await page.request.get(`${baseUrl}/login/microsoft`, { maxRedirects: 0 })
    const answer = await page.request.get(begin.headers().location, { maxRedirects: 0 })
    const callback = new URL(answer.headers().location)
    assert.equal(callback.pathname, '/login/microsoft/callback')
    callback.searchParams.set('state', 'forged-state')
    const refused = await page.goto(callback.href)
    assert.equal(refused?.status(), 400)
    await page.waitForLoadState('load')
    assert.match(await page.getByRole('main').textContent() ?? '', /does not belong to a sign-in started here/)
    await assertNoAxeViolations(page, 'the refused Microsoft sign-in page')
    await page.goto(`${baseUrl}/`)
    assert.equal(new URL(page.url()).pathname, '/login', 'not signed in')
  } finally {
    await context.close()
  }
})
