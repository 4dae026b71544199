import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, signIn, startTestApp, testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam } from '../fakes/iam/server.ts'

/** Two users whose deadline passed yesterday in an armed campaign, arranged as a stopped server would leave them. */
async function arrange (dataDir: string): Promise<string[]> {
  const services = await createServices(testConfig({}, dataDir))
  try {
    const users = [await createTestUser(services), await createTestUser(services)]
    const now = Date.now()
    services.database.sqlite.prepare('UPDATE users SET first_seen_at = ?').run(now - 90 * DAY)
    const campaign = await services.campaigns.create(campaignInput(now, { deadline: new Date(now - DAY) }), { id: null, label: 'test' })
    await services.campaigns.arm(campaign.id, { id: null, label: 'test' })
    return users.map((u) => u.email).sort()
  } finally {
    await services.close()
  }
}

test('sweep --dry-run --json lists each due user with the action and reason, and changes nothing', async (t) => {
  const dataDir = scratchDir(t)
  const emails = await arrange(dataDir)
  const { code, stdout } = await runCli(['sweep', '--dry-run', '--json'], { dataDir })
  assert.equal(code, 0)
  const result = JSON.parse(stdout) as { dryRun: boolean, planned: Array<{ email: string, action: string, reason: string }> }
  assert.equal(result.dryRun, true)
  assert.deepEqual(result.planned.map((p) => p.email).sort(), emails)
  assert.ok(result.planned.every((p) => p.action === 'enforce' && /^Deadline \d{4}-\d{2}-\d{2} passed without a qualifying method/.test(p.reason)))
  const again = await runCli(['sweep', '--dry-run', '--json'], { dataDir })
  assert.deepEqual(JSON.parse(again.stdout).planned.length, emails.length, 'a dry run changed nothing')
})

test('sweep enforces what the dry run showed, and a second sweep has nothing left to do', async (t) => {
  const dataDir = scratchDir(t)
  const emails = await arrange(dataDir)
  const dry = JSON.parse((await runCli(['sweep', '--dry-run', '--json'], { dataDir })).stdout) as { planned: Array<{ email: string, action: string }> }
  const real = await runCli(['sweep', '--json'], { dataDir })
  assert.equal(real.code, 0)
  const report = JSON.parse(real.stdout) as { planned: number, completed: number, failed: number }
  assert.equal(report.planned, dry.planned.length)
  assert.equal(report.completed, emails.length)
  const services = await createServices(testConfig({}, dataDir))
  try {
    const done = services.database.sqlite.prepare(`SELECT u.email, j.action FROM enforcement_jobs j JOIN users u ON u.id = j.user_id WHERE j.status = 'done' ORDER BY u.email`).all()
    assert.deepEqual(done, dry.planned.map((p) => ({ email: p.email, action: p.action })).sort((a, b) => a.email.localeCompare(b.email)), 'the sweep did what the dry run listed')
  } finally {
    await services.close()
  }
  const second = await runCli(['sweep'], { dataDir })
  assert.match(second.stdout, /^sweep: 0 planned/)
})

test('sweep --check-drift exits non-zero and says how many users could not be checked when the provider cannot be read', async (t) => {
  const dataDir = scratchDir(t)
  const fake = await startFakeIam()
  t.after(async () => { await fake.close() })
  const env = { PROVIDERS: 'aws', ...awsEnv(fake) }
  for (const userName of ['ann', 'ben']) fake.state.addUser({ userName, consolePassword: true, createDate: new Date(Date.now() - 400 * DAY) })
  const services = await createServices(testConfig(env, dataDir))
  try {
    await services.directorySync.sync(services.providers.aws)
    const now = Date.now()
    services.database.sqlite.prepare('UPDATE users SET first_seen_at = ?').run(now - 90 * DAY)
    const campaign = await services.campaigns.create(campaignInput(now, { deadline: new Date(now - DAY) }), { id: null, label: 'test' })
    await services.campaigns.arm(campaign.id, { id: null, label: 'test' })
    await services.engine.sweep()
    assert.equal(services.database.sqlite.prepare("SELECT count(*) FROM user_states WHERE state = 'enforced'").pluck().get(), 2)
  } finally {
    await services.close()
  }

  const healthy = await runCli(['sweep', '--check-drift'], { dataDir, env })
  assert.equal(healthy.code, 0)
  assert.match(healthy.stdout, /drift check: 2 users checked, none had enforcement switched off by hand/)

  // IAM answers nothing but server errors: the check cannot vouch for anyone, and must not look clean.
  fake.inject('server-error', { times: 10_000 })
  const outage = await runCli(['sweep', '--check-drift'], { dataDir, env })
  assert.notEqual(outage.code, 0)
  assert.match(outage.stdout, /drift check: 2 users could not be checked because the provider could not be read \(server_error: IAM \w+ failed on the AWS side/)
  const json = JSON.parse((await runCli(['sweep', '--check-drift', '--json'], { dataDir, env })).stdout) as { driftUnchecked: number }
  assert.equal(json.driftUnchecked, 2)
})

/**
 * A disarmed campaign for everyone whose deadline passed yesterday: three long-standing users (overdue) and two
 * who arrived a day ago (inside the 14-day new-user window). The app's clock is the real one, as the CLI's is.
 */
async function disarmedCampaign (t: TestContext) {
  const testApp = await startTestApp()
  t.after(async () => { await testApp.close() })
  const { services, clock } = testApp
  clock.set(new Date())
  const now = clock.now().getTime()
  const admin = await createTestUser(services, { role: 'admin' })
  const overdue = [await createTestUser(services), await createTestUser(services), await createTestUser(services)]
  const newcomers = [await createTestUser(services), await createTestUser(services)]
  const firstSeen = services.database.sqlite.prepare('UPDATE users SET first_seen_at = ? WHERE id = ?')
  for (const u of overdue) firstSeen.run(now - 90 * DAY, u.id)
  for (const u of [admin, ...newcomers]) firstSeen.run(now - DAY, u.id)
  const campaign = await services.campaigns.create(campaignInput(now, { deadline: new Date(now - DAY) }), { id: null, label: 'test' })
  return { testApp, admin, overdue, newcomers, campaign }
}

test('sweep --dry-run --campaign ID before arming lists the same users as the campaign\'s page, and changes nothing', async (t) => {
  const { testApp, admin, overdue, campaign } = await disarmedCampaign(t)
  const agent = await signIn(testApp, admin.email)
  const page = await agent.get(`/admin/campaigns/${campaign.id}`)
  const onPage = [...page.text.matchAll(/<td class="wrap-anywhere">([^<]+)<\/td>/g)].map((m) => m[1]).sort()

  const { code, stdout } = await runCli(['sweep', '--dry-run', '--campaign', campaign.id, '--json'], { dataDir: testApp.dataDir })

  assert.equal(code, 0)
  const result = JSON.parse(stdout) as { campaign: { id: string, armed: boolean }, planned: Array<{ email: string, action: string }>, why: string[] }
  assert.deepEqual(result.campaign, { id: campaign.id, name: 'Everyone', armed: false })
  assert.deepEqual(result.planned.map((p) => p.email).sort(), onPage, 'the command and the page list the same users')
  assert.deepEqual(onPage, overdue.map((u) => u.email).sort(), 'those past their deadline, not the newcomers')
  assert.ok(result.planned.every((p) => p.action === 'enforce'))
  assert.deepEqual(result.why, [])
  assert.equal(testApp.services.database.sqlite.prepare('SELECT count(*) FROM enforcement_jobs').pluck().get(), 0, 'nothing was queued')
  const text = await runCli(['sweep', '--dry-run', '--campaign', campaign.id], { dataDir: testApp.dataDir })
  assert.match(text.stdout, /^dry run of arming "Everyone" \(not armed yet\): 3 users would be changed; nothing was changed$/m)
})

test('an empty dry run says why: the campaign is not armed (and how to preview it), users still inside the new-user window', async (t) => {
  const { testApp, newcomers, campaign } = await disarmedCampaign(t)
  const until = new Date(testApp.clock.now().getTime() - DAY + 14 * DAY).toISOString().slice(0, 10)

  const disarmed = await runCli(['sweep', '--dry-run'], { dataDir: testApp.dataDir })

  assert.equal(disarmed.code, 0)
  assert.match(disarmed.stdout, /^dry run: 0 users would be changed; nothing was changed$/m)
  assert.match(disarmed.stdout, new RegExp(`^why: "Everyone": the campaign is not armed: use --campaign ${campaign.id} to preview what arming it would do\\.$`, 'm'))
  assert.match(disarmed.stdout, new RegExp(`^why: "Everyone": 3 targeted users are still inside the 14-day new-user window, until ${until}\\.$`, 'm'), `the admin and ${newcomers.length} newcomers`)

  // Armed, and the overdue users enforced: the next dry run is empty again, and says so.
  await testApp.services.campaigns.arm(campaign.id, { id: null, label: 'test' })
  await testApp.services.engine.sweep()
  const armed = await runCli(['sweep', '--dry-run', '--json'], { dataDir: testApp.dataDir })
  assert.deepEqual((JSON.parse(armed.stdout) as { why: string[] }).why, [
    `"Everyone": 3 targeted users are still inside the 14-day new-user window, until ${until}.`,
    '"Everyone": 3 targeted users already have MFA enforced.'
  ])
})

test('an unknown campaign id is refused with the ids that exist; --campaign without --dry-run is a usage error; --help names --campaign', async (t) => {
  const { testApp, campaign } = await disarmedCampaign(t)
  const unknown = await runCli(['sweep', '--dry-run', '--campaign', 'no-such-id'], { dataDir: testApp.dataDir })
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, new RegExp(`No campaign has the id "no-such-id"\\. Campaigns in force: ${campaign.id} \\(Everyone, not armed\\)\\.`))
  const real = await runCli(['sweep', '--campaign', campaign.id], { dataDir: testApp.dataDir })
  assert.equal(real.code, 2)
  assert.match(real.stderr, /--campaign needs --dry-run/)
  assert.equal(testApp.services.database.sqlite.prepare('SELECT count(*) FROM enforcement_jobs').pluck().get(), 0)
  const help = await runCli(['sweep', '--help'], { dataDir: testApp.dataDir })
  assert.match(help.stdout, /--campaign ID\s+with --dry-run: only this campaign; before it is armed, the users arming it would make use MFA/)
})
