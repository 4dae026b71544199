import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { Secret } from 'otpauth'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createTestUser, TEST_PASSWORD, totpCode } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { assertNoSideways, clickAndWaitForPage, launchBrowser, NARROW_PHONE, openPage, screenshot, signInThroughForm, startBrowserApp, stepUpThroughForm, type BrowserApp } from '../helpers/browser.ts'

let browser: Browser
let testApp: BrowserApp
// One admin for the whole file, on the narrowest supported screen: every sign-in costs a slow password check.
let admin: Page
let campaignId: string
// The admin's authenticator app, for the step-up that admin actions ask for.
const SECRET = new Secret({ size: 20 }).base32

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
  const { services, clock } = testApp
  const user = await createTestUser(services, { role: 'admin' })
  await services.methods.addTotp(user.id, 'Admin phone', SECRET, 0)
  // Long addresses are the hardest case for the dry-run table on a phone.
  const due = [
    await createTestUser(services, { email: 'maximiliana.featherstonehaugh-worthington@subsidiary.example.org' }),
    await createTestUser(services)
  ]
  const now = clock.now().getTime()
  for (const u of due) services.database.sqlite.prepare('UPDATE users SET first_seen_at = ? WHERE id = ?').run(now - 90 * DAY, u.id)
  const actor = { id: user.id, label: user.email }
  await services.campaigns.create(campaignInput(now, { name: 'Privileged accounts first', targetKind: 'privileged', startsAt: new Date(now), deadline: new Date(now + 30 * DAY), smsPolicy: 'excluded' }), actor)
  const overdue = await services.campaigns.create(campaignInput(now, { name: 'Everyone, with a deadline that has already passed', deadline: new Date(now - DAY), privilegedDeadline: new Date(now - 30 * DAY) }), actor)
  // Armed but not yet swept: the dry run lists the due users.
  await services.campaigns.arm(overdue.id, actor)
  campaignId = overdue.id

  admin = (await openPage(browser, NARROW_PHONE)).page
  await signInThroughForm(admin, testApp.baseUrl, user.email, TEST_PASSWORD)
  assert.equal(new URL(admin.url()).pathname, '/')
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

async function visit (path: string): Promise<void> {
  const response = await admin.goto(`${testApp.baseUrl}${path}`)
  assert.equal(response?.status(), 200, `GET ${path}`)
}

test('the campaign list has no accessibility problems axe can find and fits a 360 px screen', async () => {
  await visit('/admin/campaigns')
  assert.equal(await admin.getByRole('link', { name: 'Privileged accounts first' }).isVisible(), true)
  await assertNoAxeViolations(admin, 'the campaign list')
  await assertNoSideways(admin, 'the campaign list')
  await screenshot(admin, 'admin-campaigns-list-360')
})

test('the new-campaign form, empty, held for a step-up, and showing field errors, has no accessibility problems and fits a 360 px screen', async () => {
  await visit('/admin/campaigns/new')
  await assertNoAxeViolations(admin, 'the new-campaign form')
  await assertNoSideways(admin, 'the new-campaign form')

  await admin.getByLabel('A group', { exact: true }).check()
  await admin.getByLabel('Deadline', { exact: true }).fill('2026-01-01')
  await admin.getByLabel('Reminders, in days before the deadline').fill('30, fortnight, 7')
  await clickAndWaitForPage(admin, () => admin.getByRole('button', { name: 'Create campaign' }).click())
  // Admin actions need a fresh step-up: the form is held while the admin confirms it's them, and nothing is lost.
  assert.equal(new URL(admin.url()).pathname, '/step-up')
  assert.match(await admin.getByRole('status').innerText(), /Nothing has changed yet: what you entered is kept/)
  await assertNoAxeViolations(admin, 'the step-up page holding an admin action')
  await stepUpThroughForm(admin, totpCode(SECRET, testApp.clock.now().getTime()))
  assert.equal(new URL(admin.url()).pathname, '/step-up/continue')
  assert.equal(await admin.getByRole('heading', { level: 1 }).innerText(), 'Create the campaign')
  await admin.getByText('What will be sent').click()
  await assertNoAxeViolations(admin, 'the held admin action, ready to send')
  await assertNoSideways(admin, 'the held admin action, ready to send')
  await screenshot(admin, 'admin-held-action-360')
  await clickAndWaitForPage(admin, () => admin.getByRole('button', { name: 'Create the campaign' }).click())
  assert.equal(await admin.title(), 'Error: New campaign · MFA enrollment')
  assert.equal(await admin.getByRole('alert').isVisible(), true)
  // Each field is described by its own message, so it is read out when the field has focus.
  const description = await admin.getByLabel('Name', { exact: true }).evaluate((field) => (field.getAttribute('aria-describedby') ?? '').split(' ')
    .map((id) => document.getElementById(id)?.textContent?.trim() ?? '').join(' | '))
  assert.equal(description, 'For admins and the helpdesk, such as "MFA for everyone, spring 2027". | Error: Give the campaign a name of up to 100 characters.')
  assert.equal(await admin.getByLabel('Reminders, in days before the deadline').inputValue(), '30, fortnight, 7')
  await assertNoAxeViolations(admin, 'the new-campaign form with errors')
  await assertNoSideways(admin, 'the new-campaign form with errors')
  await screenshot(admin, 'admin-campaigns-form-errors-360')
})

test('a campaign page with a non-empty dry run has no accessibility problems axe can find and fits a 360 px screen', async () => {
  await visit(`/admin/campaigns/${campaignId}`)
  const rows = admin.getByRole('region', { name: /changes/ }).getByRole('row')
  assert.ok(await rows.count() >= 3, 'a header row and the two due users')
  assert.equal(await admin.getByRole('cell', { name: 'maximiliana.featherstonehaugh-worthington@subsidiary.example.org' }).isVisible(), true)
  assert.equal(await admin.getByRole('button', { name: 'Disarm' }).isVisible(), true)
  await assertNoAxeViolations(admin, 'a campaign page with a dry run')
  await assertNoSideways(admin, 'a campaign page with a dry run')
  await screenshot(admin, 'admin-campaign-dry-run-360')
})
