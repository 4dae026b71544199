import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import type { User } from '../../server/domain/users.ts'
import { createTestUser, TEST_PASSWORD } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { createAttestationVendor, createMetadataService, metadataEntry, metadataFiles, metadataStatement } from '../helpers/fido-metadata.ts'
import {
  assertNoSideways, addVirtualAuthenticator, collectConsole, launchBrowser, NARROW_PHONE, openPage, screenshot, signInThroughForm, startBrowserApp,
  type BrowserApp, type VirtualAuthenticator
} from '../helpers/browser.ts'

let browser: Browser
let testApp: BrowserApp

before(async () => {
  // startBrowserApp sets PUBLIC_URL to http://localhost:<port>, so the RP ID is "localhost" and the origin exact.
  testApp = await startBrowserApp()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

async function passkeysOf (user: User) {
  return (await testApp.services.methods.listFor(user.id)).filter((m) => m.kind === 'passkey')
}

/** Problems a user would never see but that mean the page is broken: script errors, CSP refusals. */
function brokenPage (messages: string[]): string[] {
  return messages.filter((m) => m.startsWith('pageerror') || /Content Security Policy|Failed to load module/i.test(m))
}

async function storedCredentials (authenticator: VirtualAuthenticator): Promise<number> {
  const { credentials } = await authenticator.cdp.send('WebAuthn.getCredentials', { authenticatorId: authenticator.authenticatorId })
  return credentials.length
}

/** Through the real page: open it, optionally name the passkey, press the button, land on the home page. */
async function registerPasskey (page: Page, name?: string): Promise<void> {
  await page.goto(`${testApp.baseUrl}/enroll/passkey`)
  if (name !== undefined) await page.getByLabel('Name (optional)').fill(name)
  await Promise.all([
    page.waitForURL(`${testApp.baseUrl}/`),
    page.getByRole('button', { name: 'Create a passkey' }).click()
  ])
}

async function signOut (page: Page): Promise<void> {
  await Promise.all([
    page.waitForURL('**/login?signed_out=1'),
    page.getByRole('button', { name: 'Sign out' }).click()
  ])
}

/** Base64url JSON inside a WebAuthn response, edited. */
function editClientData (encoded: string, edit: (data: Record<string, unknown>) => void): string {
  const data = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as Record<string, unknown>
  edit(data)
  return Buffer.from(JSON.stringify(data)).toString('base64url')
}

test('a user adds a passkey on the enrollment page, sees it at home, and then signs in with the passkey alone', async () => {
  const user = await createTestUser(testApp.services, { displayName: 'Ada Lovelace' })
  const { context, page } = await openPage(browser)
  const messages = collectConsole(page)
  try {
    const authenticator = await addVirtualAuthenticator(page, { transport: 'internal' })
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)

    await registerPasskey(page, 'Work laptop')
    assert.equal(await page.getByRole('status').filter({ hasText: 'passkey' }).textContent(), 'Your passkey "Work laptop" is ready. Next time, you can use it to sign in.')
    assert.equal(await page.locator('.method-name').filter({ hasText: 'Work laptop' }).count(), 1)
    assert.deepEqual((await passkeysOf(user)).map((m) => m.name), ['Work laptop'])
    assert.equal(await storedCredentials(authenticator), 1, 'the authenticator keeps the passkey (discoverable)')

    await signOut(page)
    await Promise.all([
      page.waitForURL(`${testApp.baseUrl}/`),
      page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    ])
    assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Hello, Ada Lovelace')
    const signIns = await testApp.services.audit.list({ subjectUserId: user.id, action: 'signin.success' })
    assert.equal(JSON.parse(signIns[0].details).method, 'passkey')
    assert.ok((await passkeysOf(user))[0].lastUsedAt !== null, 'the passkey is marked as used')
    assert.deepEqual(brokenPage(messages), [])
  } finally {
    await context.close()
  }
})

test('signing in with a passkey returns the user to the page they asked for', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  try {
    await addVirtualAuthenticator(page, { transport: 'usb' })
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await registerPasskey(page)
    assert.deepEqual((await passkeysOf(user)).map((m) => m.name), ['Passkey on this computer'], 'an unnamed passkey gets a name')
    await signOut(page)

    await page.goto(`${testApp.baseUrl}/enroll/passkey`)
    assert.equal(new URL(page.url()).pathname, '/login')
    await Promise.all([
      page.waitForURL(`${testApp.baseUrl}/enroll/passkey`),
      page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    ])
    // The passkey sign-in counts as confirming it's them, so adding another method needs no extra step.
    assert.equal(await page.getByRole('button', { name: 'Create a passkey' }).isVisible(), true)
  } finally {
    await context.close()
  }
})

test('registering the same authenticator twice is refused in plain words and keeps one passkey', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  const messages = collectConsole(page)
  try {
    const authenticator = await addVirtualAuthenticator(page, { transport: 'internal' })
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await registerPasskey(page, 'Phone')

    // A second method needs a fresh confirmation; the passkey just added gives it through the step-up page.
    await page.goto(`${testApp.baseUrl}/enroll/passkey`)
    await Promise.all([page.waitForURL('**/step-up?next=*'), page.getByRole('link', { name: 'Confirm it\'s you' }).click()])
    await Promise.all([
      page.waitForURL(`${testApp.baseUrl}/enroll/passkey`),
      page.getByRole('button', { name: 'Use my passkey' }).click()
    ])

    await page.getByRole('button', { name: 'Create a passkey' }).click()
    const alert = page.getByRole('alert')
    await alert.waitFor()
    assert.equal(await alert.textContent(), 'This passkey or security key is already registered to your account. Use a different one, or keep using the one you have.')
    assert.equal(await page.getByRole('button', { name: 'Create a passkey' }).isEnabled(), true, 'the user can try again with another key')
    assert.equal((await passkeysOf(user)).length, 1)
    assert.equal(await storedCredentials(authenticator), 1)
    assert.deepEqual(brokenPage(messages), [])
  } finally {
    await context.close()
  }
})

test('a registration altered on its way to the server is refused, stores nothing, and the user can try again', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  try {
    await addVirtualAuthenticator(page, { transport: 'internal' })
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await page.goto(`${testApp.baseUrl}/enroll/passkey`)

    // Someone between browser and server swaps the origin the browser signed for one of their own.
    await page.route('**/enroll/passkey/verify', async (route) => {
      const body = JSON.parse(route.request().postData()!)
      body.response.response.clientDataJSON = editClientData(body.response.response.clientDataJSON, (data) => { data.origin = 'https://evil.example' })
      await route.continue({ postData: JSON.stringify(body) })
    })
    const [verify] = await Promise.all([
      page.waitForResponse('**/enroll/passkey/verify'),
      page.getByRole('button', { name: 'Create a passkey' }).click()
    ])
    assert.equal(verify.status(), 400)
    assert.equal((await verify.json()).error.code, 'passkey_rejected')
    const alert = page.getByRole('alert')
    await alert.waitFor()
    assert.equal(await alert.textContent(), 'Your passkey could not be verified. Please try again.')
    assert.deepEqual(await passkeysOf(user), [])
    assert.equal((await testApp.services.audit.list({ subjectUserId: user.id, action: 'passkey.registration_rejected' })).length, 1)
    assert.equal((await testApp.services.audit.list({ subjectUserId: user.id, action: 'method.added' })).length, 0)

    await page.unroute('**/enroll/passkey/verify')
    await Promise.all([page.waitForURL(`${testApp.baseUrl}/`), page.getByRole('button', { name: 'Create a passkey' }).click()])
    assert.equal((await passkeysOf(user)).length, 1)
  } finally {
    await context.close()
  }
})

test('a passkey sign-in with an altered signature is refused with a generic message and signs nobody in', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  try {
    await addVirtualAuthenticator(page, { transport: 'internal' })
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await registerPasskey(page)
    await signOut(page)

    await page.route('**/login/passkey/verify', async (route) => {
      const body = JSON.parse(route.request().postData()!)
      const signature = Buffer.from(body.response.response.signature, 'base64url')
      signature[signature.length - 1] ^= 0xff
      body.response.response.signature = signature.toString('base64url')
      await route.continue({ postData: JSON.stringify(body) })
    })
    const [verify] = await Promise.all([
      page.waitForResponse('**/login/passkey/verify'),
      page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    ])
    assert.equal(verify.status(), 400)
    const alert = page.getByRole('alert')
    await alert.waitFor()
    assert.equal(await alert.textContent(), 'That passkey could not be used to sign in here.')
    assert.equal(new URL(page.url()).pathname, '/login')
    assert.equal((await testApp.services.audit.list({ subjectUserId: user.id, action: 'passkey.assertion_rejected' })).length, 1)
    await page.goto(`${testApp.baseUrl}/`)
    assert.equal(new URL(page.url()).pathname, '/login', 'still signed out')
  } finally {
    await context.close()
  }
})

test('the page follows only a redirect that stays on the portal, whatever the answer to a passkey sign-in says', async () => {
  const user = await createTestUser(testApp.services)
  const { context, page } = await openPage(browser)
  try {
    await addVirtualAuthenticator(page, { transport: 'internal' })
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await registerPasskey(page)
    await signOut(page)

    // An answer that a browser would read as another host once it drops the tab ("//evil.example").
    await page.route('**/login/passkey/verify', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ ok: true, redirect: '/\t/evil.example' }) }))
    await Promise.all([
      // Home, which (the answer having been made up) sends the still signed-out visitor to sign in.
      page.waitForURL((url) => url.pathname === '/login' && url.searchParams.get('next') === '/', { timeout: 10_000 }),
      page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    ])
    assert.equal(new URL(page.url()).origin, testApp.baseUrl, 'still on the portal')
  } finally {
    await context.close()
  }
})

test('signing in with a passkey on a device that has none explains it in plain words', async () => {
  const { context, page } = await openPage(browser)
  try {
    await addVirtualAuthenticator(page, { transport: 'internal' })
    await page.goto(`${testApp.baseUrl}/login`)
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click()
    const alert = page.getByRole('alert')
    await alert.waitFor()
    assert.match(await alert.textContent() ?? '', /^No passkey was used: /)
    assert.equal(await page.getByRole('button', { name: 'Sign in with a passkey' }).isEnabled(), true)
  } finally {
    await context.close()
  }
})

test('on a 360 px wide phone the passkey page has no accessibility problems and no sideways scrolling, also when showing an error', async () => {
  const user = await createTestUser(testApp.services, { displayName: 'Maximiliana Featherstonehaugh-Worthington' })
  const { context, page } = await openPage(browser, NARROW_PHONE)
  try {
    await signInThroughForm(page, testApp.baseUrl, user.email, TEST_PASSWORD)
    await page.goto(`${testApp.baseUrl}/enroll/passkey`)
    await assertNoAxeViolations(page, 'the passkey page')
    await assertNoSideways(page, 'the passkey page')
    await screenshot(page, 'enroll-passkey-360')

    // A refusal from the server, shown where the button is.
    await page.route('**/enroll/passkey/options', (route) => route.fulfill({
      status: 403,
      contentType: 'application/json',
      body: JSON.stringify({ error: { code: 'step_up_required', message: 'To change your sign-in methods, first confirm it\'s you with a method you already have.' } })
    }))
    await page.getByRole('button', { name: 'Create a passkey' }).click()
    await page.getByRole('alert').waitFor()
    assert.equal(await page.getByRole('alert').getByRole('link', { name: 'Confirm it\'s you' }).getAttribute('href'), '/step-up?next=%2Fenroll%2Fpasskey')
    await assertNoAxeViolations(page, 'the passkey page with an error')
    await assertNoSideways(page, 'the passkey page with an error')
    const file = await screenshot(page, 'enroll-passkey-error-360')
    console.log(`screenshots: ${file}`)
  } finally {
    await context.close()
  }
})

test('on a 360 px wide phone the sign-in page with its passkey button has no accessibility problems and no sideways scrolling', async () => {
  const { context, page } = await openPage(browser, NARROW_PHONE)
  try {
    await page.goto(`${testApp.baseUrl}/login`)
    await assertNoAxeViolations(page, 'the sign-in page')
    await assertNoSideways(page, 'the sign-in page')
    await screenshot(page, 'login-passkey-360')
  } finally {
    await context.close()
  }
})

test('with an AAGUID allow-list, privileged users can only register an approved authenticator that proves its model', async () => {
  const YUBIKEY_5 = 'cb69481e-8ff7-4039-93ec-0a2729a154a8'
  const strict = await startBrowserApp({ PRIVILEGED_AAGUIDS: YUBIKEY_5 })
  let virtualAaguid: string
  try {
    const admin = await createTestUser(strict.services, { role: 'admin', privileged: true })
    const { context, page } = await openPage(browser)
    try {
      await addVirtualAuthenticator(page, { transport: 'usb' })
      await signInThroughForm(page, strict.baseUrl, admin.email, TEST_PASSWORD)
      await page.goto(`${strict.baseUrl}/enroll/passkey`)
      await page.getByRole('button', { name: 'Create a passkey' }).click()
      const alert = page.getByRole('alert')
      await alert.waitFor()
      assert.match(await alert.textContent() ?? '', /requires an approved security key/)
      assert.equal((await strict.services.methods.listFor(admin.id)).length, 0)
      const [refusal] = await strict.services.audit.list({ subjectUserId: admin.id, action: 'passkey.registration_rejected' })
      virtualAaguid = JSON.parse(refusal.details).aaguid
    } finally {
      await context.close()
    }
  } finally {
    await strict.close()
  }

  // The same authenticator with its AAGUID on the list is still refused: an AAGUID counts only when the attestation
  // certificate chains to the root the FIDO metadata lists for that model, and this (software) authenticator's is
  // self-signed. (A key that does chain is accepted: test/web/passkey-attestation.test.ts.)
  const metadata = await createMetadataService()
  const maker = await createAttestationVendor('Virtual Maker')
  const files = metadataFiles(mkdtempSync(path.join(tmpdir(), 'mfa-mds-')), metadata.blob([metadataEntry(metadataStatement(virtualAaguid, 'Chromium virtual authenticator', [maker.root]))]), metadata.rootPem)
  const listed = await startBrowserApp({ PRIVILEGED_AAGUIDS: `${YUBIKEY_5},${virtualAaguid}`, ...files })
  try {
    const admin = await createTestUser(listed.services, { role: 'admin', privileged: true })
    const { context, page } = await openPage(browser)
    try {
      await addVirtualAuthenticator(page, { transport: 'usb' })
      await signInThroughForm(page, listed.baseUrl, admin.email, TEST_PASSWORD)
      await page.goto(`${listed.baseUrl}/enroll/passkey`)
      await page.getByRole('button', { name: 'Create a passkey' }).click()
      const alert = page.getByRole('alert')
      await alert.waitFor()
      assert.match(await alert.textContent() ?? '', /could not prove which model it is/)
      assert.equal((await listed.services.methods.listFor(admin.id)).length, 0)
      const [refusal] = await listed.services.audit.list({ subjectUserId: admin.id, action: 'passkey.registration_rejected' })
      assert.equal(JSON.parse(refusal.details).reason, 'attestation_untrusted')
    } finally {
      await context.close()
    }
  } finally {
    await listed.close()
    rmSync(path.dirname(files.FIDO_MDS_FILE), { recursive: true, force: true })
  }
})
