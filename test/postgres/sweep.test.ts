import { after, before, describe, test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { createServices } from '../../server/wiring.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'
import { testConfig, TEST_SECRETS } from '../helpers/app.ts'
import { freshPostgresDatabase, type TestDatabase } from '../helpers/postgres.ts'
import type { KillPoint } from '../fakes/sweep-child.ts'

/**
 * Issue #18: the engine on one PostgreSQL shared by several processes. Every process here is a separate Node
 * process with its own pool, as two portal instances behind a load balancer would be.
 */

const DUE_USERS = 2_000
const SWEEP_CHILD = fileURLToPath(new URL('../fakes/sweep-child.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/**
 * A database with DUE_USERS users first seen long ago and one armed campaign whose deadline passed yesterday:
 * everyone is due. The campaign goes through the portal; users and their states are written in bulk, as the
 * engine would derive them (the one-at-a-time path would take most of the test), so a sweep's refresh of lapsed
 * states leaves them alone.
 */
async function dueDatabase (now: number): Promise<TestDatabase> {
  const database = await freshPostgresDatabase()
  const services = await createServices(testConfig({ DATABASE_URL: database.url }), { clock: { now: () => new Date(now) } })
  const deadline = now - DAY
  try {
    const campaign = await services.campaigns.create(campaignInput(now, { deadline: new Date(deadline) }), { id: null, label: 'test' })
    await services.campaigns.arm(campaign.id, { id: null, label: 'test' })
    const pool = new pg.Pool({ connectionString: database.url, max: 1 })
    try {
      for (let start = 0; start < DUE_USERS; start += 500) {
        const ids = Array.from({ length: Math.min(500, DUE_USERS - start) }, () => randomUUID())
        await pool.query(`INSERT INTO users (id, email, display_name, first_seen_at, created_at, updated_at)
          SELECT id, 'due' || (n + $2) || '@sweep.example', 'Due User ' || (n + $2), $3, $3, $3 FROM unnest($1::text[]) WITH ORDINALITY AS u(id, n)`,
        [ids, start, now - 90 * DAY])
        await pool.query(`INSERT INTO user_states (user_id, state, reason, deadline, campaign_id, desired, deadline_version, updated_at)
          SELECT id, 'overdue', 'Deadline passed without a qualifying method: making MFA mandatory.', $2, $3, 'enforce', 1, $4 FROM unnest($1::text[]) AS u(id)`,
        [ids, deadline, campaign.id, now])
      }
    } finally {
      await pool.end()
    }
    // As written, the rows are what the engine would plan, and nothing it would re-derive first.
    assert.equal(await services.engine.refreshLapsed(), 0)
    const due = (await services.engineStore.dueCounts(new Date(now))).reduce((sum, row) => sum + row.count, 0)
    assert.equal(due, DUE_USERS, 'every seeded user is due')
  } finally {
    await services.close()
  }
  return database
}

interface Outcome {
  /** enforcement.enforced audit events per user id. */
  enforcedEvents: Map<string, number>
  /** Users the portal records as enforced. */
  enforcedUsers: number
  /** Jobs by status. */
  jobs: Record<string, number>
}

async function outcome (databaseUrl: string): Promise<Outcome> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const events = await client.query<{ subject_user_id: string, n: string }>(
      "SELECT subject_user_id, count(*) AS n FROM audit_events WHERE action = 'enforcement.enforced' GROUP BY subject_user_id")
    const enforced = await client.query<{ n: string }>('SELECT count(*) AS n FROM users WHERE enforced_at IS NOT NULL')
    const jobs = await client.query<{ status: string, n: string }>('SELECT status, count(*) AS n FROM enforcement_jobs GROUP BY status')
    return {
      enforcedEvents: new Map(events.rows.map((row) => [row.subject_user_id, Number(row.n)])),
      enforcedUsers: Number(enforced.rows[0].n),
      jobs: Object.fromEntries(jobs.rows.map((row) => [row.status, Number(row.n)]))
    }
  } finally {
    await client.end()
  }
}

/** The audit chain on the shared database, checked by the real CLI: two writers must not have forked it. */
async function auditVerifies (t: TestContext, databaseUrl: string): Promise<void> {
  const verified = await runCli(['audit', 'verify'], { dataDir: scratchDir(t), env: { DATABASE_URL: databaseUrl }, timeoutMs: 120_000 })
  assert.equal(verified.code, 0, `audit verify: ${verified.stdout}${verified.stderr}`)
}

/** One sweep process (test/fakes/sweep-child.ts) on the shared database, its fake provider in its own directory. */
async function sweepChild (t: TestContext, databaseUrl: string, point: KillPoint, at: number, extra: string[] = [], dataDir = scratchDir(t)): Promise<{ dataDir: string, killed: boolean, stdout: string }> {
  return await new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', SWEEP_CHILD, dataDir, point, '--at', new Date(at).toISOString(), ...extra], {
      cwd: ROOT,
      env: { ...process.env, NODE_ENV: 'test', ...TEST_SECRETS, DATA_DIR: dataDir, DATABASE_URL: databaseUrl, LOG_LEVEL: 'silent', NODE_TEST_CONTEXT: undefined },
      timeout: 300_000
    }, (err, stdout, stderr) => {
      if (err === null) resolve({ dataDir, killed: false, stdout })
      else if (err.signal === 'SIGKILL' && point !== 'none') resolve({ dataDir, killed: true, stdout })
      else reject(new Error(`sweep child (${point}) failed: ${err.message}\n${stderr}`))
    })
  })
}

describe('sweeps of 2,000 due users by two processes on one PostgreSQL', () => {
  const now = Date.now()
  let databases: TestDatabase[] = []
  after(async () => { await Promise.all(databases.map(async (d) => { await d.drop() })) })

  // Seeded once; each test sweeps its own copy.
  let seeded: TestDatabase
  before(async () => {
    seeded = await dueDatabase(now)
    databases = [seeded]
  })

  test('two `mfa-rollout sweep` runs at once enforce every user exactly once between them, and the audit chain stays one chain', async (t) => {
    const shared = await seeded.copy()
    databases.push(shared)
    const env = { DATABASE_URL: shared.url }
    const [a, b] = await Promise.all([
      runCli(['sweep', '--json'], { dataDir: scratchDir(t), env, timeoutMs: 300_000 }),
      runCli(['sweep', '--json'], { dataDir: scratchDir(t), env, timeoutMs: 300_000 })
    ])
    assert.equal(a.code, 0, a.stderr)
    assert.equal(b.code, 0, b.stderr)
    const reports = [a, b].map((run) => JSON.parse(run.stdout) as { completed: number, failed: number })
    assert.equal(reports[0].completed + reports[1].completed, DUE_USERS, `A completed ${reports[0].completed}, B ${reports[1].completed}`)
    assert.equal(reports[0].failed + reports[1].failed, 0)

    const result = await outcome(shared.url)
    assert.equal(result.enforcedUsers, DUE_USERS, 'every due user is enforced')
    assert.equal(result.enforcedEvents.size, DUE_USERS, 'an enforcement event for every user')
    assert.deepEqual([...new Set(result.enforcedEvents.values())], [1], 'and exactly one each')
    assert.deepEqual(result.jobs, { done: DUE_USERS }, 'one job per user, done once')
    await auditVerifies(t, shared.url)

    const again = await runCli(['sweep'], { dataDir: scratchDir(t), env, timeoutMs: 300_000 })
    assert.match(again.stdout, /^sweep: 0 planned/, 'nothing is left to do')
  })

  test('a sweep process killed with SIGKILL mid-sweep loses nothing: the other finishes, and picks up the jobs the dead one had claimed once their lease ends', async (t) => {
    const database = await seeded.copy()
    databases.push(database)
    const leaseMs = 60_000
    // The portal's own provider: its switch is in the shared database, as a directory would be for both.
    const options = ['--provider', 'portal', '--no-refresh-all', '--lease-ms', String(leaseMs)]
    // A dies right after claiming its 40th job (leased, untouched at the provider, while its other workers are
    // mid-job); B sweeps at the same time.
    const [a, b] = await Promise.all([
      sweepChild(t, database.url, 'after-claim', now, ['--nth', '40', ...options]),
      sweepChild(t, database.url, 'none', now, options)
    ])
    assert.equal(a.killed, true, 'A was killed mid-sweep')
    const stranded = await outcome(database.url)
    assert.ok((stranded.jobs.running ?? 0) > 0, `A's claimed jobs are still leased to it: ${JSON.stringify(stranded.jobs)}`)
    assert.ok(stranded.enforcedEvents.size < DUE_USERS)

    // B's next sweep, after A's leases ran out (the scheduler's next run on the instance that now leads).
    const later = await sweepChild(t, database.url, 'none', now + leaseMs + 1_000, options, b.dataDir)
    assert.equal(JSON.parse(later.stdout.trim()).completed, stranded.jobs.running, 'the later sweep finished exactly the stranded jobs')

    const result = await outcome(database.url)
    assert.equal(result.enforcedUsers, DUE_USERS, 'every due user is enforced')
    assert.equal(result.enforcedEvents.size, DUE_USERS, 'an enforcement event for every user')
    assert.deepEqual([...new Set(result.enforcedEvents.values())], [1], 'and exactly one each')
    assert.deepEqual(result.jobs, { done: DUE_USERS })
    await auditVerifies(t, database.url)
  })
})

