import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { Secret } from 'otpauth'
import { TEST_PASSWORD, totpCode } from '../helpers/app.ts'
import { assertNoAxeViolations } from '../helpers/axe.ts'
import { assertNoSideways, clickAndWaitForPage, launchBrowser, NARROW_PHONE, openPage, screenshot, signInThroughForm, startBrowserApp, stepUpThroughForm, type BrowserApp } from '../helpers/browser.ts'
import { POPULATION_STATES, seedPopulation, seedSnapshots, type Population } from '../helpers/rollout.ts'

let browser: Browser
let testApp: BrowserApp
// One admin for the whole file, on the narrowest supported screen: every sign-in costs a slow password check.
let admin: Page
let population: Population
let snapshots: Array<{ day: string, notYetEnrolled: number }>

before(async () => {
  testApp = await startBrowserApp()
  browser = await launchBrowser()
  population = await seedPopulation(testApp.services, testApp.clock)
  snapshots = seedSnapshots(testApp.services, testApp.clock)
  // Something in the audit log about a user, and an ended exemption, so those pages show full tables.
  admin = (await openPage(browser, NARROW_PHONE)).page
  await signInThroughForm(admin, testApp.baseUrl, population.admin.email, TEST_PASSWORD)
  assert.equal(new URL(admin.url()).pathname, '/')
})

after(async () => {
  await browser?.close()
  await testApp?.close()
})

async function visit (path: string): Promise<number> {
  const response = await admin.goto(`${testApp.baseUrl}${path}`)
  return response?.status() ?? 0
}

test('the dashboard draws the burn-down chart as SVG with the seeded numbers, and its table says the same', async () => {
  assert.equal(await visit('/admin'), 200)
  const chart = admin.getByRole('img', { name: 'Users not yet enrolled, per day' })
  assert.equal(await chart.isVisible(), true)
  const expected = [...snapshots.map((s) => ({ day: s.day, value: s.notYetEnrolled })), { day: '2026-11-25', value: POPULATION_STATES.pending + POPULATION_STATES.overdue }]
  assert.deepEqual(expected.map((p) => p.value), [9, 8, 7, 5])

  // The points as drawn: their numbers, and positions that rise and fall with them.
  const dots = await chart.locator('circle').evaluateAll((circles) => circles.map((c) => ({
    day: c.getAttribute('data-day'), value: Number(c.getAttribute('data-value')), x: Number(c.getAttribute('cx')), y: Number(c.getAttribute('cy'))
  })))
  assert.deepEqual(dots.map(({ day, value }) => ({ day, value })), expected)
  for (let i = 1; i < dots.length; i++) {
    assert.ok(dots[i].x > dots[i - 1].x, 'later days further right')
    assert.ok(dots[i].y > dots[i - 1].y, 'fewer users not yet enrolled, lower on the chart')
  }
  const description = await chart.evaluate((svg) => svg.querySelector('desc')?.textContent ?? '')
  assert.match(description, /pending plus overdue/)
  assert.match(description, /today 5\./)
  assert.equal(await chart.locator('line[data-kind]').count(), 2, 'the campaign\'s deadline and its privileged deadline')

  // The same numbers as a table, for screen readers and anyone who prefers one.
  await admin.getByText('The chart\'s numbers as a table').click()
  const table = admin.getByRole('table', { name: /Users not yet enrolled \(pending plus overdue\), per day/ })
  const rows = await table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.querySelector('time')?.getAttribute('datetime'), Number(tr.querySelector('td')?.textContent)]))
  assert.deepEqual(rows, expected.map((p) => [p.day, p.value]))

  // The counts by state, as links to the lists.
  assert.match(await admin.getByRole('link', { name: /Grace period/ }).innerText(), /^3\s+Grace period$/)
  assert.match(await admin.getByRole('link', { name: /Needs attention/ }).innerText(), /^2\s+Needs attention$/)
  const box = await chart.boundingBox()
  assert.ok(box !== null && box.width <= NARROW_PHONE.width, 'the chart shrinks to the screen')
  await screenshot(admin, 'admin-dashboard-360')
})

test('every admin console page has no accessibility problems axe can find and fits a 360 px screen', async (t) => {
  const pages = [
    '/admin',
    '/admin/states/attention',
    '/admin/audit',
    `/admin/audit?subject=${encodeURIComponent(population.users.late.email)}`,
    '/admin/exemptions',
    `/admin/campaigns/${population.campaignId}/edit`,
    '/helpdesk',
    '/admin/tokens',
    '/admin/compliance'
  ]
  const skipped: string[] = []
  for (const path of pages) {
    const status = await visit(path)
    if (status === 404) { skipped.push(path); continue }
    assert.equal(status, 200, `GET ${path}`)
    // Closed <details> hide their content from axe: open them so the tables inside are checked too.
    await admin.locator('details').evaluateAll((all) => { for (const d of all) (d as HTMLDetailsElement).open = true })
    await assertNoAxeViolations(admin, path)
    await assertNoSideways(admin, path)
  }
  if (skipped.length > 0) t.diagnostic(`not built yet (404), skipped: ${skipped.join(', ')}`)
})

test('forms that came back with errors (exemption, audit filters, campaign edit) have no accessibility problems and fit 360 px', async () => {
  // Sending an admin form needs a fresh step-up: the admin sets up an authenticator app and confirms with it first.
  const secret = new Secret({ size: 20 }).base32
  await testApp.services.methods.addTotp(population.admin.id, 'Admin phone', secret, 0)
  assert.equal(await visit('/step-up?next=/admin/exemptions'), 200)
  await stepUpThroughForm(admin, totpCode(secret, testApp.clock.now().getTime()))
  assert.equal(new URL(admin.url()).pathname, '/admin/exemptions')
  await clickAndWaitForPage(admin, () => admin.getByRole('button', { name: 'Add exemption' }).click())
  assert.equal(await admin.title(), 'Error: Exemptions · MFA enrollment')
  assert.equal(await admin.getByRole('alert').isVisible(), true)
  const described = await admin.getByLabel('Reason', { exact: true }).evaluate((field) => (field.getAttribute('aria-describedby') ?? '').split(' ')
    .map((id) => document.getElementById(id)?.textContent?.trim() ?? '').join(' | '))
  assert.match(described, /\| Error: Say why this account is exempt\.$/)
  await assertNoAxeViolations(admin, 'the exemption form with errors')
  await assertNoSideways(admin, 'the exemption form with errors')
  await screenshot(admin, 'admin-exemptions-errors-360')

  assert.equal(await visit('/admin/audit?subject=nobody%40test.example&from=soon'), 400)
  await assertNoAxeViolations(admin, 'the audit log with filter errors')
  await assertNoSideways(admin, 'the audit log with filter errors')

  assert.equal(await visit(`/admin/campaigns/${population.campaignId}/edit`), 200)
  await admin.getByLabel('Name', { exact: true }).fill('')
  await clickAndWaitForPage(admin, () => admin.getByRole('button', { name: 'Save changes' }).click())
  assert.match(await admin.title(), /^Error: Edit Everyone/)
  await assertNoAxeViolations(admin, 'the campaign edit form with errors')
  await assertNoSideways(admin, 'the campaign edit form with errors')
})
