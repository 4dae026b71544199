import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createServices } from '../../server/wiring.ts'
import { testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

test('set-role changes the role, records who changed it from what to what, and signs the user out', async (t) => {
  const dataDir = scratchDir(t)
  const services = await createServices(testConfig({}, dataDir))
  t.after(() => services.close())
  const user = await services.userService.createUser({ email: 'hal@example.org', displayName: 'Hal' }, { id: null, label: 'test' })
  const now = Date.now()
  await services.sessions.set('sid-of-hal', { auth: { userId: user.id, createdAt: now, lastSeenAt: now } })

  const { code, stdout } = await runCli(['set-role', '--email', 'hal@example.org', '--role', 'helpdesk'], { dataDir })
  assert.equal(code, 0)
  assert.match(stdout, /role changed from user to helpdesk/)

  assert.equal((await services.users.findById(user.id))?.role, 'helpdesk')
  const [changed] = await services.audit.list({ action: 'user.role_changed' })
  assert.equal(changed.subjectUserId, user.id)
  assert.equal(changed.actorLabel, 'cli')
  assert.deepEqual(JSON.parse(changed.details), { from: 'user', to: 'helpdesk', sessionsEnded: 1 })
  const sessionsLeft = services.database.sqlite.prepare('SELECT count(*) AS n FROM sessions WHERE user_id = ?').get(user.id) as { n: number }
  assert.equal(sessionsLeft.n, 0)
})

test('set-role for an unknown email exits 1 and writes no audit event', async (t) => {
  const dataDir = scratchDir(t)
  const { code, stderr } = await runCli(['set-role', '--email', 'nobody@example.org', '--role', 'admin'], { dataDir })
  assert.equal(code, 1)
  assert.equal(stderr.trim(), 'mfa-rollout: No user has the email nobody@example.org.')

  const services = await createServices(testConfig({}, dataDir))
  t.after(() => services.close())
  assert.deepEqual(await services.audit.list({ action: 'user.role_changed' }), [])
})
