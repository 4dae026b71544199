import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { fileURLToPath } from 'node:url'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import type { User } from '../../server/domain/users.ts'
import { createServices, type Services } from '../../server/wiring.ts'
import { readPersisted } from '../fakes/provider.ts'
import type { KillPoint } from '../fakes/sweep-child.ts'
import { createTestUser, FakeClock, portalDatabase, TEST_SECRETS, tempDir, testConfig } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

const LEASE_MS = 30_000
const USERS = 20
const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CHILD = fileURLToPath(new URL('../fakes/sweep-child.ts', import.meta.url))
const admin = { id: null, label: 'test-admin' }

// The developer's shell and the test runner must not steer the child: it gets the test configuration only.
const INHERITED_OUT = ['NODE_TEST_CONTEXT', 'NODE_OPTIONS', 'NODE_ENV', 'DATA_DIR', 'DATABASE_FILE', 'DATABASE_URL', 'SESSION_SECRET', 'ENCRYPTION_KEY', 'ENCRYPTION_KEYS_PREVIOUS', 'PROVIDERS', 'LOG_LEVEL']

interface ChildResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs one sweep in a separate process at the instant `at`, killing itself at `point` (the nth time it is reached). */
function sweepInChild ({ dataDir, databaseEnv }: Arranged, point: KillPoint, at: Date, nth = 5): Promise<ChildResult> {
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !INHERITED_OUT.includes(name))), NODE_ENV: 'test', ...TEST_SECRETS, ...databaseEnv }
  const args = ['--import', 'tsx', CHILD, dataDir, point, '--at', at.toISOString(), '--nth', String(nth), '--lease-ms', String(LEASE_MS)]
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => child.kill('SIGTERM'), 30_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

interface Arranged { services: Services, dataDir: string, databaseEnv: Record<string, string>, users: User[], deadlinePassedAt: Date }

/** USERS long-standing users under an armed campaign whose deadline passed a day ago, on a fresh data directory. */
async function arrange (t: TestContext): Promise<Arranged> {
  const dataDir = tempDir('mfa-crash-')
  const database = await portalDatabase()
  const clock = new FakeClock()
  const services = await createServices(testConfig(database.env, dataDir), { clock })
  t.after(async () => {
    await services.close()
    await database.release()
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 })
  })
  const users: User[] = []
  for (let i = 0; i < USERS; i++) users.push(await createTestUser(services))
  await sqlOn(services).run('UPDATE users SET first_seen_at = ?', clock.now().getTime() - 90 * DAY)
  const now = clock.now().getTime()
  const c = await services.campaigns.create(campaignInput(now), admin)
  await services.campaigns.arm(c.id, admin)
  clock.advance(11 * DAY)
  return { services, dataDir, databaseEnv: database.env, users, deadlinePassedAt: clock.now() }
}

async function jobCounts (services: Services): Promise<Record<string, number>> {
  const rows = await sqlOn(services).all<{ status: string, n: number }>('SELECT status, count(*) AS n FROM enforcement_jobs GROUP BY status')
  return Object.fromEntries(rows.map((r) => [r.status, r.n]))
}

async function crashAt (arranged: Arranged, point: KillPoint, at: Date, nth = 5): Promise<void> {
  const crashed = await sweepInChild(arranged, point, at, nth)
  assert.equal(crashed.signal, 'SIGKILL', `the sweep died at ${point}: ${crashed.stderr}`)
  const counts = await jobCounts(arranged.services)
  const open = (counts.queued ?? 0) + (counts.running ?? 0)
  assert.ok(open > 0, 'the crash left work unfinished')
}

async function sweepToTheEnd (arranged: Arranged, at: Date): Promise<void> {
  const finished = await sweepInChild(arranged, 'none', at)
  assert.equal(finished.code, 0, `the restarted sweep ran to the end: ${finished.stderr}`)
}

/** What an operator relies on after a crash: each due user enforced exactly once in effect, recorded, no job lost or left open. */
async function assertEveryUserEnforcedOnce ({ services, dataDir, users }: Arranged): Promise<void> {
  const { enforced, calls } = readPersisted(dataDir)
  const db = sqlOn(services)
  for (const u of users) {
    assert.equal(enforced[u.id], true, `${u.email} is enforced at the provider`)
    assert.equal(calls.filter((c) => c.userId === u.id && c.changed).length, 1, `${u.email} flipped exactly once at the provider`)
    assert.deepEqual(await db.values('SELECT status FROM enforcement_jobs WHERE user_id = ?', u.id), ['done'], `${u.email} has one job, done`)
    assert.equal(await db.value('SELECT state FROM user_states WHERE user_id = ?', u.id), 'enforced')
    assert.notEqual((await services.users.findById(u.id))?.enforcedAt, null, `the portal records ${u.email} as enforced`)
  }
  assert.deepEqual(await jobCounts(services), { done: users.length }, 'nothing left queued or running')
}

async function assertEveryFlipAudited ({ services, users }: Arranged): Promise<void> {
  const audited = async (userId: string) => (await sqlOn(services).value<number>("SELECT count(*) FROM audit_events WHERE action = 'enforcement.enforced' AND subject_user_id = ?", userId)) ?? 0
  for (const u of users) assert.ok(await audited(u.id) >= 1, `the enforcement of ${u.email} is in the audit log`)
}

const MOMENTS: Array<[KillPoint, string]> = [
  ['before-claim', 'while asking for its next job'],
  ['after-claim', 'right after leasing a job'],
  ['after-provider-call', 'after the provider applied a flip but before the engine heard back'],
  ['before-commit', 'while recording a finished job'],
  ['after-commit', 'right after a finished job is recorded']
]

for (const [point, moment] of MOMENTS) {
  test(`a sweep killed ${moment} loses no job, flips no one twice and leaves every flip audited: once its leases lapse, the next sweep enforces every due user exactly once`, async (t) => {
    const arranged = await arrange(t)
    await crashAt(arranged, point, arranged.deadlinePassedAt)

    await sweepToTheEnd(arranged, new Date(arranged.deadlinePassedAt.getTime() + LEASE_MS + 1_000))

    await assertEveryUserEnforcedOnce(arranged)
    await assertEveryFlipAudited(arranged)
  })
}

test('a sweep restarted while the crashed one\'s leases are live leaves those jobs alone, then takes them over once the leases lapse', async (t) => {
  const arranged = await arrange(t)
  const { services, dataDir, deadlinePassedAt } = arranged
  await crashAt(arranged, 'after-claim', deadlinePassedAt)
  const leased = await sqlOn(services).values<string>("SELECT user_id FROM enforcement_jobs WHERE status = 'running'")
  assert.ok(leased.length > 0)
  const callsAtCrash = readPersisted(dataDir).calls.length

  await sweepToTheEnd(arranged, new Date(deadlinePassedAt.getTime() + 1_000))
  assert.deepEqual(await jobCounts(services), { done: USERS - leased.length, running: leased.length }, 'the jobs leased by the dead sweep wait for their lease')
  const callsSince = readPersisted(dataDir).calls.slice(callsAtCrash)
  assert.ok(callsSince.every((c) => !leased.includes(c.userId)), 'no one called the provider for a leased job')

  await sweepToTheEnd(arranged, new Date(deadlinePassedAt.getTime() + LEASE_MS + 1_000))
  await assertEveryUserEnforcedOnce(arranged)
})

test('a sweep that crashes twice in a row, at different points, still ends with every due user enforced exactly once', async (t) => {
  const arranged = await arrange(t)
  const start = arranged.deadlinePassedAt.getTime()
  await crashAt(arranged, 'before-commit', new Date(start), 3)
  await crashAt(arranged, 'after-provider-call', new Date(start + LEASE_MS + 1_000), 4)

  await sweepToTheEnd(arranged, new Date(start + 2 * (LEASE_MS + 1_000)))

  await assertEveryUserEnforcedOnce(arranged)
  await assertEveryFlipAudited(arranged)
})
