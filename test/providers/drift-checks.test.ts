import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestUser, signIn, startTestApp, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam } from '../fakes/iam/server.ts'

test('the admin dashboard shows when the last drift check ran and how it went, including users the provider could not be read for', async () => {
  let app: TestApp | undefined
  const fake = await startFakeIam({ now: () => app?.clock.now() ?? new Date() })
  app = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake) })
  const t = app
  try {
    const now = t.clock.now().getTime()
    for (const userName of ['ann', 'ben', 'cai']) fake.state.addUser({ userName, consolePassword: true, createDate: new Date(now - 400 * DAY) })
    await t.services.directorySync.sync(t.services.providers.aws)
    t.services.database.sqlite.prepare("UPDATE users SET first_seen_at = ? WHERE provider = 'aws'").run(now - 90 * DAY)
    const campaign = await t.services.campaigns.create(campaignInput(now, { deadline: new Date(now - DAY) }), { id: null, label: 'test' })
    await t.services.campaigns.arm(campaign.id, { id: null, label: 'test' })
    await t.services.engine.sweep()

    const admin = await createTestUser(t.services, { role: 'admin' })
    const agent = await signIn(t, admin.email)
    assert.match((await agent.get('/admin')).text, /No drift check has run yet/)

    t.clock.advance(10 * 60_000)
    fake.inject('server-error', { times: 10_000 })
    const run = await t.services.driftChecks.run()
    assert.deepEqual({ checked: run.checked, unchecked: run.unchecked }, { checked: 0, unchecked: 3 })

    const page = (await agent.get('/admin')).text
    // When it ran, with its time and the reader's zone (DEFAULT_TIME_ZONE: UTC here).
    const at = t.services.localiser.for().dateTime(new Date(now + 10 * 60_000))
    assert.ok(page.includes(`Last drift check on ${at}: <strong>incomplete</strong>.`), `the drift check line names ${at}`)
    assert.match(page, /<strong>incomplete<\/strong>\. 3 users could not be checked because the provider could not be read/)
    const audit = t.services.database.sqlite.prepare("SELECT details FROM audit_events WHERE action = 'enforcement.drift_check_incomplete'").pluck().all() as string[]
    assert.equal(audit.length, 1)
    assert.equal(JSON.parse(audit[0]).unchecked, 3)
  } finally {
    await t.close()
    await fake.close()
  }
})
