import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { closeSync, openSync, rmSync, writeSync } from 'node:fs'
import path from 'node:path'
import Sqlite from 'better-sqlite3'
import { buildApp } from '../../server/app.ts'
import { createServices } from '../../server/wiring.ts'
import { anonymous, createTestUser, FakeClock, signIn, tempDir, testConfig, type TestApp } from '../helpers/app.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close(); t = undefined })

/**
 * The portal on a database whose audit log has a page of garbage in the middle (written while the portal was
 * stopped, as a failing disk or a bad restore would leave it); returns the app and the ids on the damaged page.
 */
async function appWithDamagedAuditLog (): Promise<{ t: TestApp, admin: Awaited<ReturnType<typeof signIn>>, lost: number[] }> {
  const dataDir = tempDir()
  const config = testConfig({}, dataDir)
  const before = createServices(config)
  const adminUser = await createTestUser(before, { role: 'admin' })
  for (let i = 0; i < 2000; i++) before.audit.append({ action: 'test.filler', actorLabel: 'test', details: { i, note: 'x'.repeat(80) } })
  before.close()
  const lost = damageMiddleLeaf(path.join(dataDir, 'mfa-rollout.db'), 'audit_events')

  const clock = new FakeClock()
  const services = createServices(config, { clock })
  const app = await buildApp(services, { logger: false })
  await app.ready()
  t = {
    app,
    services,
    config,
    clock,
    dataDir,
    close: async () => {
      await app.close()
      services.close()
      rmSync(dataDir, { recursive: true, force: true })
    }
  }
  return { t, admin: await signIn(t, adminUser.email), lost }
}

/** Overwrites one leaf page of the table, in the middle of the file, with garbage; returns the ids no longer readable. */
function damageMiddleLeaf (file: string, table: string): number[] {
  const sqlite = new Sqlite(file)
  sqlite.pragma('wal_checkpoint(TRUNCATE)')
  const pageSize = sqlite.pragma('page_size', { simple: true }) as number
  const leaves = sqlite.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").pluck().all(table) as number[]
  const ids = sqlite.prepare(`SELECT id FROM ${table} ORDER BY id`).pluck().all() as number[]
  sqlite.close()
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (leaves[Math.floor(leaves.length / 2)] - 1) * pageSize)
  closeSync(fd)
  const damaged = new Sqlite(file, { readonly: true })
  const one = damaged.prepare(`SELECT * FROM ${table} WHERE id = ?`)
  const lost = ids.filter((id) => {
    try {
      one.get(id)
      return false
    } catch {
      return true
    }
  })
  damaged.close()
  assert.ok(lost.length > 0, 'the damaged page held rows')
  return lost
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
