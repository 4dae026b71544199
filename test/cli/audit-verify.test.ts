import assert from 'node:assert/strict'
import path from 'node:path'
import { test } from 'node:test'
import Sqlite from 'better-sqlite3'
import { auditHash, GENESIS_HASH, type AuditRecord } from '../../server/domain/audit.ts'
import { createServices } from '../../server/wiring.ts'
import { testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

/** A database whose audit log holds three ordinary events, written through the real audit log. */
async function logWithThreeEvents (dataDir: string): Promise<void> {
  const services = await createServices(testConfig({}, dataDir))
  await services.audit.append({ action: 'user.created', actorLabel: 'cli', details: { email: 'ann@example.org', role: 'user' } })
  await services.audit.append({ action: 'user.role_changed', actorLabel: 'cli', details: { from: 'user', to: 'helpdesk' } })
  await services.audit.append({ action: 'signin.success', actorLabel: 'ann@example.org', details: { method: 'password' }, ip: '192.0.2.7' })
  await services.close()
}

/** Opens the file as an attacker with access to it would: plain SQLite, no application code. */
function openRaw (dataDir: string): Sqlite.Database {
  return new Sqlite(path.join(dataDir, 'mfa-rollout.db'))
}

test('audit verify reports an untouched log as intact with its number of events', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)

  const { code, stdout } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), 'chain intact (3 events)')
})

test('the database itself refuses to change or delete an audit row', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)
  const sqlite = openRaw(dataDir)
  t.after(() => sqlite.close())

  assert.throws(() => sqlite.prepare("UPDATE audit_events SET details = '{}' WHERE id = 2").run(), /append-only/)
  assert.throws(() => sqlite.prepare('DELETE FROM audit_events WHERE id = 2').run(), /append-only/)
  assert.equal((sqlite.prepare('SELECT count(*) AS n FROM audit_events').get() as { n: number }).n, 3)
})

test('audit verify fails with exit 1 and names the row whose contents were altered', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)
  const sqlite = openRaw(dataDir)
  sqlite.exec('DROP TRIGGER audit_events_no_update')
  sqlite.prepare('UPDATE audit_events SET details = ? WHERE id = 2').run(JSON.stringify({ from: 'user', to: 'user' }))
  sqlite.close()

  const { code, stdout } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 1)
  assert.match(stdout, /^chain broken at event #2: its contents do not match its keyed hash/m)
  assert.match(stdout, /\(1 event before it is intact\)/)
})

test('audit verify detects a row removed from the middle of the log', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)
  const sqlite = openRaw(dataDir)
  sqlite.exec('DROP TRIGGER audit_events_no_delete')
  sqlite.prepare('DELETE FROM audit_events WHERE id = 2').run()
  sqlite.close()

  const { code, stdout } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 1)
  assert.match(stdout, /^chain broken at event #3: its previous-hash link does not match/m)
})

/** Recomputes, as someone with the file but not the key would, the plain SHA-256 hashes from event `from` to the end. */
function rehashWithoutKey (sqlite: Sqlite.Database, from: number): void {
  sqlite.exec('DROP TRIGGER IF EXISTS audit_events_no_update')
  const rows = sqlite.prepare(`SELECT id, at, action, actor_id AS actorId, actor_label AS actorLabel, subject_user_id AS subjectUserId,
    details, ip, user_agent AS userAgent, prev_hash AS prevHash FROM audit_events WHERE id >= ? ORDER BY id`).all(from) as Array<Omit<AuditRecord, 'hash'>>
  let prevHash = from === 1 ? GENESIS_HASH : (sqlite.prepare('SELECT hash FROM audit_events WHERE id = ?').pluck().get(from - 1) as string)
  for (const row of rows) {
    const hash = auditHash({ ...row, prevHash })
    sqlite.prepare('UPDATE audit_events SET prev_hash = ?, hash = ? WHERE id = ?').run(prevHash, hash, row.id)
    prevHash = hash
  }
}

test('audit verify catches an event rewritten with a recomputed hash by someone holding the file but not the key', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)
  const sqlite = openRaw(dataDir)
  sqlite.exec('DROP TRIGGER audit_events_no_update')
  sqlite.prepare('UPDATE audit_events SET details = ? WHERE id = 2').run(JSON.stringify({ from: 'user', to: 'user' }))
  rehashWithoutKey(sqlite, 2)
  sqlite.close()

  const { code, stdout } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 1)
  assert.match(stdout, /^chain broken at event #2: it carries an unkeyed hash although the chain is keyed from event #1 on/m)
})

test('newest events cut from the file are caught against an anchor recorded outside it', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)
  const services = await createServices(testConfig({}, dataDir))
  const head = (await services.audit.head())!
  await services.close()
  assert.equal(head.seq, 3)
  const sqlite = openRaw(dataDir)
  sqlite.exec('DROP TRIGGER audit_events_no_delete')
  sqlite.prepare('DELETE FROM audit_events WHERE id = 3').run()
  sqlite.close()

  const plain = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(plain.stdout.trim(), 'chain intact (2 events)', 'without an anchor a cut tail cannot show')
  const anchored = await runCli(['audit', 'verify', '--anchor', `${head.seq}:${head.hash}`], { dataDir })
  assert.equal(anchored.code, 1)
  assert.match(anchored.stdout, /^anchor #3 not found as recorded: the log ends at event #2, before the anchored event #3: newer events were cut/m)

  const bad = await runCli(['audit', 'verify', '--anchor', '3:not-a-hash'], { dataDir })
  assert.equal(bad.code, 2)
  assert.match(bad.stderr, /--anchor: expected SEQ:HASH/)
})

test('an untouched log verifies against its anchor', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)
  const services = await createServices(testConfig({}, dataDir))
  const head = (await services.audit.head())!
  await services.close()
  const { code, stdout } = await runCli(['audit', 'verify', '--anchor', `${head.seq}:${head.hash}`], { dataDir })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), 'chain intact (3 events), and it holds anchored event #3')
})

test('a log written before keyed chains is keyed by migrate and then verifies, its old hashes intact', async (t) => {
  const dataDir = scratchDir(t)
  await logWithThreeEvents(dataDir)
  // The log as an earlier version wrote it: every event with plain SHA-256.
  const sqlite = openRaw(dataDir)
  rehashWithoutKey(sqlite, 1)
  const oldHashes = sqlite.prepare('SELECT hash FROM audit_events ORDER BY id').pluck().all()
  sqlite.close()

  const before = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(before.code, 1)
  assert.match(before.stdout, /newest event is not keyed: .* never upgraded \(run mfa-rollout migrate\)/)

  assert.equal((await runCli(['migrate'], { dataDir })).code, 0)
  const after = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(after.code, 0, after.stdout)
  assert.equal(after.stdout.trim(), 'chain intact (4 events)')
  const check = openRaw(dataDir)
  t.after(() => check.close())
  assert.deepEqual(check.prepare('SELECT hash FROM audit_events WHERE id <= 3 ORDER BY id').pluck().all(), oldHashes, 'old hashes kept')
  assert.equal(check.prepare('SELECT action FROM audit_events WHERE id = 4').pluck().get(), 'audit.chain_keyed')
})

test('the chain is keyed with AUDIT_KEY when set, and a log keyed under another key is not called intact', async (t) => {
  const dataDir = scratchDir(t)
  const auditKey = Buffer.alloc(32, 5).toString('base64')
  const services = await createServices(testConfig({ AUDIT_KEY: auditKey }, dataDir))
  await services.audit.append({ action: 'user.created', actorLabel: 'cli' })
  await services.close()
  assert.equal((await runCli(['audit', 'verify'], { dataDir, env: { AUDIT_KEY: auditKey } })).code, 0)
  const other = await runCli(['audit', 'verify'], { dataDir, env: { AUDIT_KEY: Buffer.alloc(32, 6).toString('base64') } })
  assert.equal(other.code, 1)
  assert.match(other.stdout, /signed with a key this configuration does not hold/)
})
