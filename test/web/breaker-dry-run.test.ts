import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DEFAULT_BREAKER } from '../../server/domain/breaker.ts'
import { createServices } from '../../server/wiring.ts'
import { createTestUser, portalDatabase, testConfig } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'
import { sqlOn } from '../helpers/sql.ts'

/** 10 users flipped today in an armed campaign, and 2 of them reported "This wasn't me" since (20 per 100 > 3). */
async function arrange (dataDir: string, env: Record<string, string>): Promise<string> {
  const services = await createServices(testConfig(env, dataDir))
  try {
    const users = []
    for (let i = 0; i < 10; i++) users.push(await createTestUser(services))
    const now = Date.now()
    await sqlOn(services).run('UPDATE users SET first_seen_at = ?', now - 90 * DAY)
    const actor = { id: null, label: 'test' }
    const campaign = await services.campaigns.create(campaignInput(now, { deadline: new Date(now - DAY), breaker: DEFAULT_BREAKER }), actor)
    await services.campaigns.arm(campaign.id, actor)
    await services.engine.sweep()
    for (const u of users.slice(0, 2)) await services.audit.append({ action: 'method.reported_not_me', actorId: u.id, actorLabel: u.email, subjectUserId: u.id, details: {} })
    return campaign.id
  } finally {
    await services.close()
  }
}

test('sweep --dry-run --campaign says the breaker would trip on today\'s figures, and --json carries it', async (t) => {
  const dataDir = scratchDir(t)
  const { env, release } = await portalDatabase()
  t.after(release)
  const campaignId = await arrange(dataDir, env)
  const { code, stdout } = await runCli(['sweep', '--dry-run', '--campaign', campaignId], { dataDir, env })
  assert.equal(code, 0)
  assert.match(stdout, /Breaker, last 24 hours: 10 users flipped, 0 enforcement failures, 0 passes and 0 helpdesk resets for flipped users, 2 "This wasn't me" reports\./)
  assert.match(stdout, /WOULD TRIP after the next sweep: 20 "This wasn't me" reports per 100 users flipped \(threshold 3\)/)
  const json = await runCli(['sweep', '--dry-run', '--json'], { dataDir, env })
  const result = JSON.parse(json.stdout) as { breaker: string[] }
  assert.ok(result.breaker.some((line) => /WOULD TRIP/.test(line)))
})
