import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type Sqlite from 'better-sqlite3'
import { loadConfig, type Config } from '../../server/config.ts'
import type { Clock } from '../../server/domain/clock.ts'

/**
 * Bulk seeding for the engine benchmarks: rows written straight into users, campaigns and user_states with
 * prepared statements in one transaction (the domain's one-user-at-a-time path would take longer than the
 * measurement). The rows are the ones the engine itself would derive, so a refresh during a sweep leaves them
 * as they are: one armed campaign for the 'local' provider whose deadline passed a day ago, users first seen
 * before it started (due), users first seen since it started (pending, new-user window still running) and users
 * of another provider (not targeted).
 */

export const DAY = 24 * 3_600_000
const NEW_USER_WINDOW_DAYS = 14
export const DUE_VERSION = 1

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

/** Config as the process would load it, on a fresh temporary data directory, with throwaway secrets. */
export function benchConfig (dataDir = mkdtempSync(path.join(tmpdir(), 'mfa-bench-'))): Config {
  return loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    ENCRYPTION_KEY: randomBytes(32).toString('base64')
  })
}

/** A clock stopped at one instant, so a plan over seeded rows sees the same due set on every run. */
export function fixedClock (at: Date): Clock {
  return { now: () => new Date(at.getTime()) }
}

/**
 * Writes the population, interleaved (every tenth user due when due is 10%), with random UUIDs as ids like real
 * users: the id order a plan pages through is unrelated to the order rows sit in the table. Returns the due ids.
 */
export function seedPopulation (sqlite: Sqlite.Database, population: Population, now: Date, progress: (done: number) => void = () => {}): Seeded {
  const at = now.getTime()
  const campaignDeadline = at - DAY
  const campaignStart = at - 60 * DAY
  const campaignId = randomUUID()
  const insertCampaign = sqlite.prepare(`INSERT INTO campaigns (id, name, target_kind, target_value, starts_at, deadline, privileged_deadline,
    new_user_window_days, reminder_offsets, max_extension_days, sms_policy, armed_at, created_at, updated_at)
    VALUES (?, 'Benchmark rollout', 'provider', 'local', ?, ?, NULL, ?, '[14,7,3,1]', 30, 'counts', ?, ?, ?)`)
  const insertUser = sqlite.prepare(`INSERT INTO users (id, email, display_name, role, privileged, provider, disabled, first_seen_at, created_at, updated_at)
    VALUES (?, ?, ?, 'user', 0, ?, 0, ?, ?, ?)`)
  const insertState = sqlite.prepare(`INSERT INTO user_states (user_id, state, reason, deadline, campaign_id, desired, deadline_version, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)

  const total = population.due + population.pending + population.untargeted
  const kinds = interleave(population)
  const dueIds: string[] = []
  sqlite.transaction(() => {
    insertCampaign.run(campaignId, campaignStart, campaignDeadline, NEW_USER_WINDOW_DAYS, campaignStart, campaignStart, campaignStart)
    for (let i = 0; i < total; i++) {
      const id = randomUUID()
      const kind = kinds(i)
      if (kind === 'due') {
        insertUser.run(id, `due${i}@bench.example`, `Due User ${i}`, 'local', campaignStart - 30 * DAY, campaignStart - 30 * DAY, at)
        insertState.run(id, 'overdue', 'Deadline passed without a qualifying method: making MFA mandatory.', campaignDeadline, campaignId, 'enforce', DUE_VERSION, at)
        dueIds.push(id)
      } else if (kind === 'pending') {
        // First seen 1..13 days ago: the new-user window puts the deadline 1..13 days ahead.
        const firstSeen = at - (1 + i % 13) * DAY
        insertUser.run(id, `pending${i}@bench.example`, `Pending User ${i}`, 'local', firstSeen, firstSeen, at)
        insertState.run(id, 'pending', 'Grace period running: no qualifying method yet.', firstSeen + NEW_USER_WINDOW_DAYS * DAY, campaignId, 'enforce', DUE_VERSION, at)
      } else {
        insertUser.run(id, `other${i}@bench.example`, `Other User ${i}`, 'entra', campaignStart, campaignStart, at)
        insertState.run(id, 'not_targeted', 'No campaign includes this user.', null, null, null, 0, at)
      }
      if ((i + 1) % 100_000 === 0) progress(i + 1)
    }
  })()
  return { campaignId, dueIds }
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
