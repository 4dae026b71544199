import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, closeSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import Sqlite from 'better-sqlite3'
import request from 'supertest'
import { DEMO_ACCOUNTS } from '../../server/domain/sandbox.ts'
import { createServices } from '../../server/wiring.ts'
import { csrfFrom, readable, tempDir, testConfig, TEST_SECRETS } from '../helpers/app.ts'
import { damageMiddleLeaf } from '../helpers/damage.ts'
import { readOnlyScratch, type RunAs } from '../helpers/read-only.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function startPortal (env: Record<string, string>, runAs: RunAs = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'server/main.ts'], {
    cwd: ROOT,
    // Empty values (not absent ones) so a developer's own .env cannot fill them in.
    env: { PATH: process.env.PATH ?? '', SESSION_SECRET: '', ENCRYPTION_KEY: '', PUBLIC_URL: '', PROVIDERS: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...runAs
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += chunk })
  child.stderr.on('data', (chunk) => { stderr += chunk })
  return { child, output: () => ({ stdout, stderr }) }
}

test('in production without SESSION_SECRET the portal exits 1 with one line naming SESSION_SECRET', async () => {
  const portal = startPortal({ NODE_ENV: 'production', DATA_DIR: tempDir(), PUBLIC_URL: 'https://mfa.example.org', ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64') })
  const [code] = await once(portal.child, 'exit')
  const { stdout, stderr } = portal.output()
  assert.equal(code, 1)
  assert.equal(stdout, '')
  const lines = stderr.trim().split('\n')
  assert.equal(lines.length, 1, stderr)
  assert.match(lines[0], /^mfa-rollout: configuration error: SESSION_SECRET: required in production/)
})

test('a first start with no provider seeds the documented demo accounts, shows the sandbox banner and stops cleanly on SIGTERM', async () => {
  const portal = startPortal({ NODE_ENV: 'development', DATA_DIR: tempDir(), PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' })
  try {
    const address = await listening(portal)
    assert.match(portal.output().stdout, /development defaults in use/)

    const agent = request.agent(address)
    const form = await agent.get('/login')
    assert.match(readable(form.text), /Sandbox — no cloud provider configured/)
    const admin = DEMO_ACCOUNTS.find((a) => a.role === 'admin')!
    const res = await agent.post('/login').type('form').send({ email: admin.email, password: admin.password, _csrf: csrfFrom(form.text) })
    assert.equal(res.status, 303)
    assert.equal((await agent.get('/admin')).status, 200)

    portal.child.kill('SIGTERM')
    const [code] = await once(portal.child, 'exit')
    assert.equal(code, 0)
    assert.match(portal.output().stdout, /"msg":"stopped"/)
  } finally {
    if (portal.child.exitCode === null) portal.child.kill('SIGKILL')
  }
})

/** Starts the portal on dataDir and expects it to give up: exit 1, nothing on stdout's error path but one line. */
async function refusedStart (env: Record<string, string>, runAs: RunAs = {}): Promise<string> {
  const portal = startPortal({ NODE_ENV: 'development', PORT: '0', HOST: '127.0.0.1', ...env }, runAs)
  // A portal that starts anyway is stopped and the test fails, instead of waiting for an exit that never comes.
  const timer = setTimeout(() => portal.child.kill('SIGKILL'), 30_000)
  const [code, signal] = await once(portal.child, 'exit')
  clearTimeout(timer)
  const { stdout, stderr } = portal.output()
  assert.equal(signal, null, `the portal started instead of refusing to:\n${stdout}${stderr}`)
  assert.equal(code, 1, stderr)
  const lines = stderr.trim().split('\n')
  assert.equal(lines.length, 1, `expected one line, got:\n${stderr}`)
  assert.doesNotMatch(stderr, /\n\s+at /)
  return lines[0]
}

/**
 * Waits for "Server listening" and returns the address; up to a minute, for a machine busy with other test files
 * (the first start compiles the TypeScript).
 */
async function listening (portal: ReturnType<typeof startPortal>): Promise<string> {
  for (let i = 0; i < 600; i++) {
    const address = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(portal.output().stdout)?.[1]
    if (address !== undefined) return address
    if (portal.child.exitCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`the portal did not start: ${portal.output().stderr}`)
}

function scratch (t: TestContext): string {
  const dir = tempDir()
  t.after(() => {
    chmodSync(dir, 0o700)
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** A database made by the portal itself, with its demo accounts, closed cleanly. */
async function portalDatabase (dataDir: string): Promise<string> {
  const services = await createServices(testConfig({}, dataDir))
  await services.close()
  return path.join(dataDir, 'mfa-rollout.db')
}

test('a read-only DATA_DIR on a first start: exit 1 with one line naming the secrets file and what to do', async (t) => {
  const { dir: dataDir, seal } = readOnlyScratch(t)
  const line = await refusedStart({ DATA_DIR: dataDir }, seal())
  assert.match(line, /^mfa-rollout: configuration error: .*development-secrets\.json: cannot be written \((permission denied|read-only file system)\): make .* writable .*, or set SESSION_SECRET and ENCRYPTION_KEY$/)
})

test('a read-only DATA_DIR with secrets set: exit 1 with one line naming the database file and what to do', async (t) => {
  const { dir: dataDir, seal } = readOnlyScratch(t)
  const line = await refusedStart({ DATA_DIR: dataDir, ...TEST_SECRETS }, seal())
  assert.ok(line.includes(path.join(dataDir, 'mfa-rollout.db')), line)
  assert.match(line, /(permission denied|read-only file system).*read and write/)
})

test('an existing database in a read-only DATA_DIR: exit 1 with one line naming it', async (t) => {
  const { dir: dataDir, seal } = readOnlyScratch(t)
  const file = await portalDatabase(dataDir)
  const line = await refusedStart({ DATA_DIR: dataDir, ...TEST_SECRETS }, seal())
  assert.ok(line.includes(file), line)
  assert.match(line, /read-only|cannot create files/)
})

test('a corrupt development-secrets.json: exit 1 with one line naming it and what to do', async (t) => {
  const dataDir = scratch(t)
  writeFileSync(path.join(dataDir, 'development-secrets.json'), '{"sessionSecret": "cut off')
  const line = await refusedStart({ DATA_DIR: dataDir })
  assert.match(line, /^mfa-rollout: configuration error: .*development-secrets\.json: is not valid JSON\. Restore it, or set SESSION_SECRET and ENCRYPTION_KEY/)
})

test('a database file that is not a database: exit 1 with one line naming it, and the file is left alone', async (t) => {
  const dataDir = scratch(t)
  const file = await portalDatabase(dataDir)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.alloc(100, 0x41), 0, 100, 0)
  closeSync(fd)
  const before = readFileSync(file)
  const line = await refusedStart({ DATA_DIR: dataDir, ...TEST_SECRETS })
  assert.equal(line, `mfa-rollout: ${file} is not an SQLite database (it is damaged, or another kind of file): restore it from a backup, or set DATABASE_FILE to the portal's database`)
  assert.deepEqual(readFileSync(file), before)
})

test('an empty (0-byte) database file is refused, not replaced by a fresh sandbox with demo accounts', async (t) => {
  const dataDir = scratch(t)
  const file = path.join(dataDir, 'mfa-rollout.db')
  writeFileSync(file, '')
  const line = await refusedStart({ DATA_DIR: dataDir })
  assert.equal(line, `mfa-rollout: ${file} is empty (0 bytes), so it holds no portal data: restore the database from a backup, or delete the file to start a new, empty portal`)
  assert.equal(statSync(file).size, 0)
})

test('an SQLite database that is not the portal\'s is refused and left as it was', async (t) => {
  const dataDir = scratch(t)
  const file = path.join(dataDir, 'mfa-rollout.db')
  const foreign = new Sqlite(file)
  foreign.exec("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')")
  foreign.close()
  const line = await refusedStart({ DATA_DIR: dataDir })
  assert.match(line, /is an SQLite database, but not mfa-rollout's/)
  const after = new Sqlite(file, { readonly: true })
  t.after(() => after.close())
  assert.deepEqual(after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all(), ['notes'])
})

test('a full disk at the first start: exit 1 with one line naming the database and what to do', async (t) => {
  // A real, small file system: SQLite then gets ENOSPC from the kernel, as on a full volume.
  const mountPoint = tempDir('mfa-full-')
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160k,mode=0700', 'tmpfs', mountPoint], { stdio: 'ignore' })
  } catch {
    rmSync(mountPoint, { recursive: true, force: true })
    t.skip('mounting a small tmpfs needs root; the runtime full disk is covered by test/web/storage-full.test.ts')
    return
  }
  t.after(() => {
    execFileSync('umount', [mountPoint])
    rmSync(mountPoint, { recursive: true, force: true })
  })
  const line = await refusedStart({ DATA_DIR: mountPoint, ...TEST_SECRETS })
  assert.equal(line, `mfa-rollout: cannot write ${path.join(mountPoint, 'mfa-rollout.db')}: the disk is full. Free space on the volume holding ${mountPoint} and start again`)
})

test('a damaged page in the audit log: the portal starts, logs the damage and /readyz says not ready with the reason', async (t) => {
  const dataDir = scratch(t)
  const services = await createServices(testConfig({}, dataDir))
  for (let i = 0; i < 2000; i++) await services.audit.append({ action: 'test.filler', actorLabel: 'test', details: { i, note: 'x'.repeat(80) } })
  await services.close()
  damageMiddleLeaf(path.join(dataDir, 'mfa-rollout.db'), 'audit_events')

  const portal = startPortal({ NODE_ENV: 'development', DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...TEST_SECRETS })
  try {
    const address = await listening(portal)
    assert.match(portal.output().stdout, /"storage":"damaged"/)
    const ready = await request(address).get('/readyz')
    assert.equal(ready.status, 503)
    assert.equal(ready.body.status, 'not_ready')
    assert.match(ready.body.reason, /damaged/)
  } finally {
    portal.child.kill('SIGTERM')
    await once(portal.child, 'exit')
  }
})

