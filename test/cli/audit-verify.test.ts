import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import Sqlite from 'better-sqlite3'
import { createServices } from '../../server/wiring.ts'
import { testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

/** A database whose audit log holds three ordinary events, written through the real audit log. */
function logWithThreeEvents (dataDir: string): void {
  const services = createServices(testConfig({}, dataDir))
  services.audit.append({ action: 'user.created', actorLabel: 'cli', details: { email: 'ann@example.org', role: 'user' } })
  services.audit.append({ action: 'user.role_changed', actorLabel: 'cli', details: { from: 'user', to: 'helpdesk' } })
  services.audit.append({ action: 'signin.success', actorLabel: 'ann@example.org', details: { method: 'password' }, ip: '192.0.2.7' })
  services.close()
}

/** Opens the file as an attacker with access to it would: plain SQLite, no application code. */
function openRaw (dataDir: string): Sqlite.Database {
  return new Sqlite(path.join(dataDir, 'mfa-rollout.db'))
}

test('audit verify reports an untouched log as intact with its number of events', async (t) => {
  const dataDir = scratchDir(t)
  logWithThreeEvents(dataDir)

  const { code, stdout } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), 'chain intact (3 events)')
})

test('the database itself refuses to change or delete an audit row', (t) => {
  const dataDir = scratchDir(t)
  logWithThreeEvents(dataDir)
  const sqlite = openRaw(dataDir)
  t.after(() => sqlite.close())

  assert.throws(() => sqlite.prepare("UPDATE audit_events SET details = '{}' WHERE id = 2").run(), /append-only/)
  assert.throws(() => sqlite.prepare('DELETE FROM audit_events WHERE id = 2').run(), /append-only/)
  assert.equal((sqlite.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n, 3)
})

test('audit verify fails with exit 1 and names the row whose contents were altered', async (t) => {
  const dataDir = scratchDir(t)
  logWithThreeEvents(dataDir)
  const sqlite = openRaw(dataDir)
  sqlite.exec('DROP TRIGGER audit_events_no_update')
  sqlite.prepare('UPDATE audit_events SET details = ? WHERE id = 2').run(JSON.stringify({ from: 'user', to: 'user' }))
  sqlite.close()

  const { code, stdout } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 1)
  assert.match(stdout, /^chain broken at event #2: its contents do not match its hash/m)
  assert.match(stdout, /\(1 event before it is intact\)/)
})

test('audit verify detects a row removed from the middle of the log', async (t) => {
  const dataDir = scratchDir(t)
  logWithThreeEvents(dataDir)
  const sqlite = openRaw(dataDir)
  sqlite.exec('DROP TRIGGER audit_events_no_delete')
  sqlite.prepare('DELETE FROM audit_events WHERE id = 2').run()
  sqlite.close()

  const { code, stdout } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 1)
  assert.match(stdout, /^chain broken at event #3: its previous-hash link does not match/m)
})
