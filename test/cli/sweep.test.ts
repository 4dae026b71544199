import assert from 'node:assert/strict'
import { test } from 'node:test'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

/** Two users whose deadline passed yesterday in an armed campaign, arranged as a stopped server would leave them. */
async function arrange (dataDir: string): Promise<string[]> {
  const services = createServices(testConfig({}, dataDir))
  try {
    const users = [await createTestUser(services), await createTestUser(services)]
    const now = Date.now()
    services.database.sqlite.prepare('UPDATE users SET first_seen_at = ?').run(now - 90 * DAY)
    const campaign = services.campaigns.create(campaignInput(now, { deadline: new Date(now - DAY) }), { id: null, label: 'test' })
    services.campaigns.arm(campaign.id, { id: null, label: 'test' })
    return users.map((u) => u.email).sort()
  } finally {
    services.close()
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
  const services = createServices(testConfig({}, dataDir))
  try {
    const done = services.database.sqlite.prepare(`SELECT u.email, j.action FROM enforcement_jobs j JOIN users u ON u.id = j.user_id WHERE j.status = 'done' ORDER BY u.email`).all()
    assert.deepEqual(done, dry.planned.map((p) => ({ email: p.email, action: p.action })).sort((a, b) => a.email.localeCompare(b.email)), 'the sweep did what the dry run listed')
  } finally {
    services.close()
  }
  const second = await runCli(['sweep'], { dataDir })
  assert.match(second.stdout, /^sweep: 0 planned/)
})
