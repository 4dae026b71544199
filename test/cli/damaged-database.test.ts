import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createServices } from '../../server/wiring.ts'
import { testConfig, TEST_SECRETS } from '../helpers/app.ts'
import { runCli, scratchDir, type CliResult } from '../helpers/cli.ts'
import { damageMiddleLeaf } from '../helpers/damage.ts'
import { readOnlyScratch, type RunAs } from '../helpers/read-only.ts'

const BIN = fileURLToPath(new URL('../../bin/mfa-rollout.js', import.meta.url))

/** A database whose audit log holds `count` events, written through the real audit log. */
async function auditLog (dataDir: string, count: number): Promise<string> {
  const services = await createServices(testConfig({}, dataDir))
  for (let i = 1; i <= count; i++) await services.audit.append({ action: 'user.created', actorLabel: 'cli', details: { email: `user${i}@example.org`, note: 'x'.repeat(60) } })
  await services.close()
  return path.join(dataDir, 'mfa-rollout.db')
}

/** Runs the bin as `runAs` (nobody, when sealing the directory as root had to fall back to file modes). */
function runCliAs (args: string[], dataDir: string, runAs: RunAs): Promise<CliResult> {
  const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'test', DATA_DIR: dataDir, ...TEST_SECRETS }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dataDir, env, timeout: 30_000, ...runAs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      if (code === null) reject(err as Error)
      else resolve({ code, stdout, stderr })
    })
  })
}

test('audit verify works on a read-only database in a read-only directory, and leaves it as it was', async (t) => {
  const { dir: dataDir, seal } = readOnlyScratch(t, 'mfa-cli-')
  const file = await auditLog(dataDir, 3)
  const before = readFileSync(file)

  const { code, stdout, stderr } = await runCliAs(['audit', 'verify'], dataDir, seal())
  assert.equal(stderr, '')
  assert.equal(code, 0)
  assert.equal(stdout.trim(), 'chain intact (3 events)')
  assert.deepEqual(readFileSync(file), before)
  assert.equal(existsSync(`${file}-wal`), false)
})

test('audit verify reports a damaged page of the audit log as a broken chain at the first unreadable event, and lists them all', async (t) => {
  const dataDir = scratchDir(t)
  const file = await auditLog(dataDir, 2000)
  const lost = damageMiddleLeaf(file, 'audit_events')
  assert.ok(lost.length > 0 && lost[0] > 1 && lost.at(-1)! < 2000, `the damage should hide rows in the middle: ${lost.join(',')}`)

  const { code, stdout, stderr } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 1)
  assert.doesNotMatch(stderr, /unexpected error|\n\s+at /)
  const [verdict, listing] = stdout.trim().split('\n')
  assert.equal(verdict, `chain broken at event #${lost[0]}: it cannot be read: the database file is damaged there (database disk image is malformed) (${lost[0] - 1} events before it are intact)`)
  assert.equal(listing, `${lost.length} events cannot be read: #${lost[0]}–#${lost.at(-1)!}; the file is damaged there. Restore the database from a backup to recover them.`)
})

test('a command on an empty (0-byte) database file refuses with one line and does not create a database in its place', async (t) => {
  const dataDir = scratchDir(t)
  const file = path.join(dataDir, 'mfa-rollout.db')
  writeFileSync(file, '')

  for (const args of [['migrate'], ['audit', 'verify']]) {
    const { code, stdout, stderr } = await runCli(args, { dataDir })
    assert.equal(code, 1)
    assert.equal(stdout, '')
    assert.equal(stderr.trim(), `mfa-rollout: ${file} is empty (0 bytes), so it holds no portal data: restore the database from a backup, or delete the file to start a new, empty portal`)
    assert.equal(statSync(file).size, 0)
  }
})

test('a command on a file that is not a database says so in one line, not a stack trace', async (t) => {
  const dataDir = scratchDir(t)
  const file = await auditLog(dataDir, 3)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.alloc(100, 0x41), 0, 100, 0)
  closeSync(fd)

  const { code, stderr } = await runCli(['audit', 'verify'], { dataDir })
  assert.equal(code, 1)
  assert.equal(stderr.trim(), `mfa-rollout: ${file} is not an SQLite database (it is damaged, or another kind of file): restore it from a backup, or set DATABASE_FILE to the portal's database`)
})
