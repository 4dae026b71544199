import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { awsPortalServices } from '../../server/wiring-aws.ts'
import { createTestUser, tempDir } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { assertNoSideways, clickAndWaitForPage, DESKTOP, launchBrowser, NARROW_PHONE, openPage, startBrowserApp, type BrowserApp } from '../helpers/browser.ts'
import { campaignInput } from '../helpers/campaigns.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { awsEnv, oathtool } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'

let browser: Browser
let testApp: BrowserApp | undefined
let fake: FakeIam
let smtp: SmtpSink
let context: BrowserContext
let page: Page
let userId: string

/**
 * The portal with PROVIDERS=aws against the fake IAM. The fake checks codes against the portal's own FakeClock (set
 * once the app exists), so oathtool codes computed for that clock are "now" for both.
 */
before(async () => {
  fake = await startFakeIam({ now: () => testApp?.clock.now() ?? new Date() })
  fake.state.addUser({ userName: 'bea', consolePassword: true, tags: { email: 'bea@example.org' } })
  // Invitations need a mail relay outside the sandbox: an in-process SMTP server stands in for it.
  smtp = await startSmtpSink()
  testApp = await startBrowserApp({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24', SMTP_URL: smtp.url })
  const { services } = testApp
  await services.directorySync.sync(services.providers.aws)
  await services.campaigns.create(campaignInput(testApp.clock.now()), { id: null, label: 'test' })
  await services.engine.refreshAll()
  userId = (await services.users.findByEmail('bea@example.org'))!.id

  // IAM users have no portal password: the helpdesk e-mails an invitation.
  const staff = await createTestUser(services, { role: 'helpdesk' })
  await awsPortalServices(services).invitations.issue(userId, 'first AWS MFA', { id: staff.id, label: staff.email, role: 'helpdesk' })
  const mail = await smtp.waitFor((m) => m.to.includes('bea@example.org') && /invitation/.test(m.subject))
  const link = /http:\/\/localhost:\d+\/invite\/[\w-]+/.exec(mail.text)?.[0]
  assert.ok(link, 'the invitation e-mail holds the link')

  browser = await launchBrowser()
  const opened = await openPage(browser, DESKTOP)
  context = opened.context
  page = opened.page
  await page.goto(link)
  await assertNoAxeViolations(page, 'invitation')
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Continue' }).click())
  assert.equal(new URL(page.url()).pathname, '/')
})

after(async () => {
  await context?.close()
  await browser?.close()
  await testApp?.close()
  await fake?.close()
  await smtp?.close()
})

function codeAt (key: string, stepsAhead: number): string {
  return oathtool(key, Math.floor(testApp!.clock.now().getTime() / 1000) + 30 * stepsAhead)
}

/** Reads the QR code the page shows (fetched with the page's own session) with zbarimg. */
async function scanQr (): Promise<URL> {
  const src = await page.getByRole('img', { name: 'QR code for your authenticator app' }).getAttribute('src')
  const png = await context.request.get(new URL(src!, page.url()).toString())
  assert.equal(png.headers()['content-type'], 'image/png')
  const dir = tempDir('aws-qr-')
  try {
    writeFileSync(path.join(dir, 'qr.png'), await png.body())
    return new URL(execFileSync('zbarimg', ['-q', '--raw', path.join(dir, 'qr.png')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim())
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

test('a user brokers a virtual MFA device with two consecutive codes from oathtool and ends enrolled; a non-consecutive pair is refused', async () => {
  await clickAndWaitForPage(page, () => page.getByRole('link', { name: /Authenticator app/ }).click())
  assert.equal(new URL(page.url()).pathname, '/enroll/aws-mfa')
  await assertNoAxeViolations(page, 'AWS authenticator-app setup')

  const uri = await scanQr()
  const key = uri.searchParams.get('secret')!
  assert.equal((await page.locator('#aws-mfa-key').textContent())?.replace(/ /g, ''), key, 'the key for manual entry is the QR code\'s')
  const serial = 'arn:aws:iam::123456789012:mfa/bea'
  assert.equal(fake.state.devices.get(serial)?.seed, key)

  // The code now, then one two steps later: not consecutive.
  await page.getByLabel('First code').fill(codeAt(key, 0))
  await page.getByLabel('Next code, after it changes').fill(codeAt(key, 2))
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Finish setup' }).click())
  await page.getByRole('alert').filter({ hasText: 'AWS did not accept those codes' }).waitFor()
  assert.equal(await page.getByLabel('First code').getAttribute('aria-invalid'), 'true')
  assert.equal(fake.state.devices.get(serial)?.userName, null, 'not enabled')
  await assertNoAxeViolations(page, 'AWS authenticator-app setup with an error')

  // The same QR code stays on the page: the user enters two codes in a row.
  assert.equal((await scanQr()).searchParams.get('secret'), key)
  await page.getByLabel('First code').fill(codeAt(key, 0))
  await page.getByLabel('Next code, after it changes').fill(codeAt(key, 1))
  await clickAndWaitForPage(page, () => page.getByRole('button', { name: 'Finish setup' }).click())
  assert.equal(new URL(page.url()).pathname, '/')
  await page.getByText('Your authenticator app is set up for AWS.').waitFor()

  assert.equal(fake.state.devices.get(serial)?.userName, 'bea', 'AWS enabled the device for bea')
  assert.deepEqual((await testApp!.services.users.findById(userId))!.providerMethods, ['totp'])
  assert.equal((await testApp!.services.engine.standing(userId))?.state, 'enrolled')
})

test('the AWS home and security-key pages have no accessibility violations and fit a 360 px wide phone', async () => {
  for (const path of ['/', '/enroll/aws-security-key']) {
    for (const viewport of [DESKTOP, NARROW_PHONE]) {
      await page.setViewportSize(viewport)
      const response = await page.goto(new URL(path, testApp!.baseUrl).toString())
      assert.equal(response?.status(), 200, `${path} answers 200`)
      await assertNoAxeViolations(page, `${path} at ${viewport.width} px`)
      await assertNoSideways(page, `${path} at ${viewport.width} px`)
    }
  }
})
