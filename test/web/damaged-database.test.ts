import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { createServices } from '../../server/wiring.ts'
import { anonymous, createTestUser, signIn, startTestApp, tempDir, testConfig, type TestApp } from '../helpers/app.ts'
import { damageMiddleLeaf } from '../helpers/damage.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

/**
 * The portal on a database whose audit log has a page of garbage in the middle (written while the portal was
 * stopped, as a failing disk or a bad restore would leave it); returns the app and the ids on the damaged page.
 */
async function appWithDamagedAuditLog (): Promise<{ t: TestApp, admin: Awaited<ReturnType<typeof signIn>>, lost: number[] }> {
  const dataDir = tempDir()
  const config = testConfig({}, dataDir)
  const before = await createServices(config)
  const adminUser = await createTestUser(before, { role: 'admin' })
  for (let i = 0; i < 2000; i++) await before.audit.append({ action: 'test.filler', actorLabel: 'test', details: { i, note: 'x'.repeat(80) } })
  await before.close()
  const lost = damageMiddleLeaf(path.join(dataDir, 'mfa-rollout.db'), 'audit_events')

  // On SQLite in every mode: the damage is done to the SQLite file's pages, and quick_check is SQLite's own.
  const app = await startTestApp({}, { dataDir, backend: 'sqlite' })
  t = app
  return { t: app, admin: await signIn(app, adminUser.email), lost }
}

test('with a damaged page in the audit log, /readyz says not ready and names PRAGMA quick_check', async () => {
  const { t } = await appWithDamagedAuditLog()
  const res = await anonymous(t).get('/readyz')
  assert.equal(res.status, 503)
  assert.equal(res.body.status, 'not_ready')
  assert.match(res.body.reason, /damaged \(PRAGMA quick_check\)/)
  assert.ok(res.body.problems.length > 0)
})

test('with a damaged page in the audit log, the admin\'s audit page still opens and says where the chain cannot be read', async () => {
  const { admin, lost } = await appWithDamagedAuditLog()
  const page = await admin.get('/admin/audit?verify=1')
  assert.equal(page.status, 200)
  assert.match(page.text, new RegExp(`Chain broken at event #${lost[0]}:</strong> it cannot be read: the database file is damaged there`))
})

test('a page that has to read the damaged part answers a plain 500 naming stored data, not SQLite\'s message', async () => {
  const { admin, lost } = await appWithDamagedAuditLog()
  const page = await admin.get(`/admin/audit?before=${lost.at(-1)! + 1}`)
  assert.equal(page.status, 500)
  assert.match(page.text, /stored data cannot be read/)
  assert.doesNotMatch(page.text, /malformed|SQLITE/)
})
