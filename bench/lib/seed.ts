import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type Sqlite from 'better-sqlite3'
import type pg from 'pg'
import { loadConfig, type Config } from '../../server/config.ts'
import type { Clock } from '../../server/domain/clock.ts'

/**
 * Bulk seeding for the engine benchmarks: rows written straight into users, campaigns and user_states (the
 * domain's one-user-at-a-time path would take longer than the measurement). On SQLite with prepared statements in
 * one transaction; on PostgreSQL with batched multi-row INSERTs (one array parameter per column, unnest), also in
 * one transaction. The rows are the ones the engine itself would derive, so a refresh during a sweep leaves them as
 * they are: one armed campaign for the 'local' provider whose deadline passed a day ago, users first seen before it
 * started (due), users first seen since it started (pending, new-user window still running) and users of another
 * provider (not targeted).
 */

export const DAY = 24 * 3_600_000
const NEW_USER_WINDOW_DAYS = 14
export const DUE_VERSION = 1
// Rows per INSERT on PostgreSQL: one array per column, so the statement's size does not grow with the parameter count.
const PG_BATCH = 10_000

export interface Population {
  /** Past their deadline in the armed campaign: desired 'enforce', deadline passed. */
  due: number
  /** Inside their new-user window: desired 'enforce' stored ahead, deadline in the future. */
  pending: number
  /** Another provider's users: no campaign, nothing desired. */
  untargeted: number
}

export interface Seeded {
  campaignId: string
  dueIds: string[]
}

/** SESSION_SECRET and ENCRYPTION_KEY: throwaway, but the same for every instance on one database. */
export interface BenchSecrets {
  sessionSecret: string
  encryptionKey: string
}

export function benchSecrets (): BenchSecrets {
  return { sessionSecret: randomBytes(32).toString('base64url'), encryptionKey: randomBytes(32).toString('base64') }
}

/**
 * Config as the process would load it, on a fresh temporary data directory, with throwaway secrets (unless given);
 * with `databaseUrl`, on that PostgreSQL database (DATABASE_URL) instead of the data directory's SQLite file.
 */
export function benchConfig (dataDir = mkdtempSync(path.join(tmpdir(), 'mfa-bench-')), options: { databaseUrl?: string, secrets?: BenchSecrets } = {}): Config {
  const secrets = options.secrets ?? benchSecrets()
  return loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    SESSION_SECRET: secrets.sessionSecret,
    ENCRYPTION_KEY: secrets.encryptionKey,
    ...(options.databaseUrl === undefined ? {} : { DATABASE_URL: options.databaseUrl })
  })
}

/** A clock stopped at one instant, so a plan over seeded rows sees the same due set on every run. */
export function fixedClock (at: Date): Clock {
  return { now: () => new Date(at.getTime()) }
}

interface CampaignRow {
  id: string
  startsAt: number
  deadline: number
}

interface SeedRow {
  due: boolean
  user: { id: string, email: string, displayName: string, provider: string, firstSeenAt: number, updatedAt: number }
  state: { state: string, reason: string, deadline: number | null, campaignId: string | null, desired: 'enforce' | null, deadlineVersion: number, updatedAt: number }
}

/**
 * The population's rows, interleaved (every tenth user due when due is 10%), with random UUIDs as ids like real
 * users: the id order a plan pages through is unrelated to the order rows sit in the table.
 */
function * populationRows (population: Population, campaign: CampaignRow, at: number): Generator<SeedRow> {
  const total = population.due + population.pending + population.untargeted
  const kinds = interleave(population)
  for (let i = 0; i < total; i++) {
    const id = randomUUID()
    const kind = kinds(i)
    if (kind === 'due') {
      const firstSeen = campaign.startsAt - 30 * DAY
      yield {
        due: true,
        user: { id, email: `due${i}@bench.example`, displayName: `Due User ${i}`, provider: 'local', firstSeenAt: firstSeen, updatedAt: at },
        state: { state: 'overdue', reason: 'Deadline passed without a qualifying method: making MFA mandatory.', deadline: campaign.deadline, campaignId: campaign.id, desired: 'enforce', deadlineVersion: DUE_VERSION, updatedAt: at }
      }
    } else if (kind === 'pending') {
      // First seen 1..13 days ago: the new-user window puts the deadline 1..13 days ahead.
      const firstSeen = at - (1 + i % 13) * DAY
      yield {
        due: false,
        user: { id, email: `pending${i}@bench.example`, displayName: `Pending User ${i}`, provider: 'local', firstSeenAt: firstSeen, updatedAt: at },
        state: { state: 'pending', reason: 'Grace period running: no qualifying method yet.', deadline: firstSeen + NEW_USER_WINDOW_DAYS * DAY, campaignId: campaign.id, desired: 'enforce', deadlineVersion: DUE_VERSION, updatedAt: at }
      }
    } else {
      yield {
        due: false,
        user: { id, email: `other${i}@bench.example`, displayName: `Other User ${i}`, provider: 'entra', firstSeenAt: campaign.startsAt, updatedAt: at },
        state: { state: 'not_targeted', reason: 'No campaign includes this user.', deadline: null, campaignId: null, desired: null, deadlineVersion: 0, updatedAt: at }
      }
    }
  }
}

function campaignRow (now: Date): CampaignRow {
  const at = now.getTime()
  return { id: randomUUID(), startsAt: at - 60 * DAY, deadline: at - DAY }
}

/** Writes the population into SQLite in one transaction. Returns the due ids. */
export function seedPopulation (sqlite: Sqlite.Database, population: Population, now: Date, progress: (done: number) => void = () => {}): Seeded {
  const campaign = campaignRow(now)
  const insertCampaign = sqlite.prepare(`INSERT INTO campaigns (id, name, target_kind, target_value, starts_at, deadline, privileged_deadline,
    new_user_window_days, reminder_offsets, max_extension_days, sms_policy, armed_at, created_at, updated_at)
    VALUES (?, 'Benchmark rollout', 'provider', 'local', ?, ?, NULL, ?, '[14,7,3,1]', 30, 'counts', ?, ?, ?)`)
  const insertUser = sqlite.prepare(`INSERT INTO users (id, email, display_name, role, privileged, provider, disabled, first_seen_at, created_at, updated_at)
    VALUES (?, ?, ?, 'user', 0, ?, 0, ?, ?, ?)`)
  const insertState = sqlite.prepare(`INSERT INTO user_states (user_id, state, reason, deadline, campaign_id, desired, deadline_version, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)

  const dueIds: string[] = []
  sqlite.transaction(() => {
    insertCampaign.run(campaign.id, campaign.startsAt, campaign.deadline, NEW_USER_WINDOW_DAYS, campaign.startsAt, campaign.startsAt, campaign.startsAt)
    let done = 0
    for (const { due, user, state } of populationRows(population, campaign, now.getTime())) {
      insertUser.run(user.id, user.email, user.displayName, user.provider, user.firstSeenAt, user.firstSeenAt, user.updatedAt)
      insertState.run(user.id, state.state, state.reason, state.deadline, state.campaignId, state.desired, state.deadlineVersion, state.updatedAt)
      if (due) dueIds.push(user.id)
      if (++done % 100_000 === 0) progress(done)
    }
  })()
  return { campaignId: campaign.id, dueIds }
}

/**
 * Writes the same population into PostgreSQL (migrated, empty) in one transaction, PG_BATCH users to a statement,
 * then VACUUM ANALYZE: the planner's statistics and the visibility map a database in use gets from autovacuum,
 * which a bulk load made a second ago has not had yet. Returns the due ids.
 */
export async function seedPopulationPostgres (client: pg.Client, population: Population, now: Date, progress: (done: number) => void = () => {}): Promise<Seeded> {
  const campaign = campaignRow(now)
  const dueIds: string[] = []
  await client.query('BEGIN')
  try {
    await client.query(`INSERT INTO campaigns (id, name, target_kind, target_value, starts_at, deadline, privileged_deadline,
      new_user_window_days, reminder_offsets, max_extension_days, sms_policy, armed_at, created_at, updated_at)
      VALUES ($1, 'Benchmark rollout', 'provider', 'local', $2, $3, NULL, $4, '[14,7,3,1]', 30, 'counts', $2, $2, $2)`,
    [campaign.id, campaign.startsAt, campaign.deadline, NEW_USER_WINDOW_DAYS])
    let batch: SeedRow[] = []
    let done = 0
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return
      const users = batch.map((row) => row.user)
      const states = batch.map((row) => row.state)
      await client.query(`INSERT INTO users (id, email, display_name, role, privileged, provider, disabled, first_seen_at, created_at, updated_at)
        SELECT id, email, display_name, 'user', false, provider, false, first_seen_at, first_seen_at, updated_at
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS t(id, email, display_name, provider, first_seen_at, updated_at)`,
      [users.map((u) => u.id), users.map((u) => u.email), users.map((u) => u.displayName), users.map((u) => u.provider), users.map((u) => u.firstSeenAt), users.map((u) => u.updatedAt)])
      await client.query(`INSERT INTO user_states (user_id, state, reason, deadline, campaign_id, desired, deadline_version, updated_at)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::int[], $8::bigint[])`,
      [users.map((u) => u.id), states.map((s) => s.state), states.map((s) => s.reason), states.map((s) => s.deadline), states.map((s) => s.campaignId),
        states.map((s) => s.desired), states.map((s) => s.deadlineVersion), states.map((s) => s.updatedAt)])
      const before = done
      done += batch.length
      batch = []
      if (Math.floor(done / 100_000) > Math.floor(before / 100_000)) progress(done)
    }
    for (const row of populationRows(population, campaign, now.getTime())) {
      batch.push(row)
      if (row.due) dueIds.push(row.user.id)
      if (batch.length === PG_BATCH) await flush()
    }
    await flush()
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK')
    throw err
  }
  await client.query('VACUUM (ANALYZE) campaigns, users, user_states')
  return { campaignId: campaign.id, dueIds }
}

/** Which kind the i-th user is, spreading each kind evenly over the whole range. */
function interleave (population: Population): (i: number) => keyof Population {
  const total = population.due + population.pending + population.untargeted
  return (i) => {
    // Bresenham-style: user i is due when the running share of due users crosses a whole number.
    if (Math.floor((i + 1) * population.due / total) > Math.floor(i * population.due / total)) return 'due'
    const rest = total - population.due
    const j = i - Math.floor(i * population.due / total)
    return Math.floor((j + 1) * population.pending / rest) > Math.floor(j * population.pending / rest) ? 'pending' : 'untargeted'
  }
}
