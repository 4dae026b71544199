import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { isNull, sql } from 'drizzle-orm'
import type { Campaign, Job, JobAction } from '../../server/domain/engine.ts'
import type { DerivedState, UserState } from '../../server/domain/states.ts'
import { SqliteEngineStore } from '../../server/db/engine.ts'
import { PgEngineStore } from '../../server/db/pg/engine.ts'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { DAY } from '../helpers/campaigns.ts'
import { FakeClock } from '../helpers/app.ts'
import { rowsOf, signedInSession } from './rows.ts'

type Open = Connection & { close(): Promise<void> }
type Engine = SqliteEngineStore | PgEngineStore

interface Stores {
  engine: Engine
  connection: Open
  close(): Promise<void>
}

const NOW = new Date('2026-03-02T10:00:00.000Z')
const T = NOW.getTime()
const at = (offsetMs: number): Date => new Date(T + offsetMs)
const MINUTE = 60_000
const LEASE = MINUTE

type CampaignRow = typeof sqliteSchema.campaigns.$inferSelect

/** The few fields the engine store reads of a campaign, from its row (the campaign stores have their own suite). */
function campaignOf (row: CampaignRow): Campaign {
  return {
    id: row.id, name: row.name, targetKind: row.targetKind, targetValue: row.targetValue, startsAt: new Date(row.startsAt), deadline: new Date(row.deadline),
    privilegedDeadline: null, newUserWindowDays: row.newUserWindowDays, reminderOffsets: [], maxExtensionDays: row.maxExtensionDays, smsPolicy: row.smsPolicy,
    privilegedMethods: row.privilegedMethods, softBlockDays: null, driftPolicy: row.driftPolicy, awsPolicyVariant: row.awsPolicyVariant, accessKeyReview: null,
    methodsRequired: row.methodsRequired, smsSunsetAt: null, smsAfterSunset: row.smsAfterSunset, smsSunsetGraceDays: row.smsSunsetGraceDays, armedAt: null,
    waves: null, waveStarts: [], breaker: { passesPer100: 15, failurePercent: 20, notMePer100: 3, minFlips: 10 }, pauses: []
  }
}

/** The engine store over the connection, with a campaign list read straight from the campaigns table. */
async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  let engine: Engine
  if (connection.dialect === 'sqlite') {
    const db = connection.database.db
    engine = new SqliteEngineStore(connection.database.access, { list: async () => db.select().from(sqliteSchema.campaigns).where(isNull(sqliteSchema.campaigns.archivedAt)).all().map(campaignOf) })
  } else {
    const db = connection.access.db
    engine = new PgEngineStore(connection.access, { list: async () => (await db.select().from(pgSchema.campaigns).where(isNull(pgSchema.campaigns.archivedAt))).map(campaignOf) })
  }
  return { engine, connection, close: connection.close }
}

type Tables = 'users' | 'userGroups' | 'authMethods' | 'recoveryCodes' | 'exemptions' | 'extensions' | 'campaigns' | 'enforcementJobs' | 'userStates'

/** Rows written straight into a table with the connection's own schema (the same row shapes on both dialects). */
async function insert<K extends Tables> (connection: Open, table: K, rows: Array<(typeof sqliteSchema)[K]['$inferInsert']>): Promise<void> {
  // The two schemas' row types are the same shapes; TypeScript cannot relate them through the generic table name.
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema[table]).values(rows as never).run()
  else await connection.access.db.insert(pgSchema[table]).values(rows as never)
}

async function addUsers (connection: Open, ids: string[], fields: Partial<typeof sqliteSchema.users.$inferInsert> = {}): Promise<void> {
  await insert(connection, 'users', ids.map((id) => ({ id, email: `${id}@example.test`, displayName: id, firstSeenAt: T - 90 * DAY, createdAt: T, updatedAt: T, ...fields })))
}

async function addCampaign (connection: Open, id: string, fields: Partial<CampaignRow> = {}): Promise<void> {
  await insert(connection, 'campaigns', [{
    id, name: id, targetKind: 'all', startsAt: T - 60 * DAY, deadline: T + 10 * DAY, newUserWindowDays: 14, reminderOffsets: '[]', maxExtensionDays: 30, createdAt: T, updatedAt: T, ...fields
  }])
}

/** A job row as enqueueDue writes it (queued and due), with the fields a test needs changed. */
async function addJobs (connection: Open, ids: string[], fields: Partial<typeof sqliteSchema.enforcementJobs.$inferInsert> = {}): Promise<void> {
  await insert(connection, 'enforcementJobs', ids.map((id) => ({
    id, userId: `user-of-${id}`, action: 'enforce' as const, deadlineVersion: 0, status: 'queued' as const, attempts: 0, nextAttemptAt: T - MINUTE, createdAt: T - DAY, updatedAt: T - DAY, ...fields
  })))
}

function derived (state: UserState, desiredEnforcement: JobAction | null = null, reason = `now ${state}`): DerivedState {
  return { state, reason, words: [{ key: 'reasons.test', values: { state } }], desiredEnforcement }
}

interface JobRow { id: string, status: string, attempts: number, leaseOwner: string | null, lastError: string | null }

async function job (connection: Open, id: string): Promise<JobRow | undefined> {
  const [row] = await rowsOf<JobRow>(connection, sql`SELECT id, status, attempts, lease_owner AS "leaseOwner", last_error AS "lastError" FROM enforcement_jobs WHERE id = ${id}`)
  return row
}

async function jobCount (connection: Open): Promise<number> {
  const [row] = await rowsOf<{ n: number }>(connection, sql`SELECT CAST(count(*) AS INTEGER) AS n FROM enforcement_jobs`)
  return row.n
}

async function everyDue (engine: Engine, now: Date): Promise<Array<{ userId: string, action: JobAction, deadline: Date | null, retryAt: Date | null, campaignId: string | null, deadlineVersion: number, state: UserState, email: string }>> {
  const rows = []
  for await (const row of engine.due(now)) rows.push(row)
  return rows
}

/** Claims one job at a time, as the sweep's workers do, until none is ready; the ids claimed. */
async function claimAll (engine: Engine, owner: string): Promise<string[]> {
  const ids: string[] = []
  for (;;) {
    const jobs: Job[] = await engine.claim(owner, 3, LEASE, NOW)
    if (jobs.length === 0) return ids
    ids.push(...jobs.map((j) => j.id))
  }
}

const byKey = <T extends { action: string, campaignId: string | null }>(a: T, b: T): number => `${a.action}:${a.campaignId ?? ''}`.localeCompare(`${b.action}:${b.campaignId ?? ''}`)

for (const { name, open } of BACKENDS) {
  describe(`engine store on ${name}`, () => {
    // A fresh database per test: jobs are claimed from one table for the whole database.
    let backend: Backend
    let stores: Stores
    beforeEach(async () => {
      backend = await open()
      stores = await storesOn(backend)
    })
    afterEach(async () => {
      await stores.close()
      await backend.drop()
    })

    test('the facts of a user gather their groups, methods, recovery codes, strongest exemption, extensions and trouble; the deadline\'s facts are the same without exemption and trouble', async () => {
      const { engine, connection } = stores
      // Live campaigns come newest first, ties by id; an archived one not at all.
      await addCampaign(connection, 'c1')
      await addCampaign(connection, 'c0', { createdAt: T - DAY })
      await addCampaign(connection, 'c3', { createdAt: T + MINUTE })
      await addCampaign(connection, 'c2', { createdAt: T + MINUTE })
      await addCampaign(connection, 'c-archived', { createdAt: T + DAY, archivedAt: T + DAY })
      await addUsers(connection, ['u-f'], { privileged: true, providerAttributes: '{"targetable":false}', directoryCreatedAt: T - 5 * DAY })
      await insert(connection, 'userGroups', [{ userId: 'u-f', groupName: 'g-b' }, { userId: 'u-f', groupName: 'g-a' }])
      // Oldest first, ties by id: m-1, then m-0 and m-2 made at the same moment.
      await insert(connection, 'authMethods', [
        { id: 'm-2', userId: 'u-f', kind: 'passkey', name: 'Laptop', createdAt: T, aaguid: 'aaguid-2' },
        { id: 'm-0', userId: 'u-f', kind: 'passkey', name: 'Phone', createdAt: T, lastUsedAt: T + MINUTE, credentialId: 'cred-0', publicKey: 'pk' },
        { id: 'm-1', userId: 'u-f', kind: 'totp', name: 'App', createdAt: T - MINUTE, secretSealed: 'sealed' },
        { id: 'm-3', userId: 'u-f', kind: 'phone', name: 'Mobile', createdAt: T + MINUTE, phone: '+4915112345678' }
      ])
      await insert(connection, 'recoveryCodes', [{ id: 'rc-1', userId: 'u-f', setId: 's', codeHash: 'h1', createdAt: T }, { id: 'rc-2', userId: 'u-f', setId: 's', codeHash: 'h2', createdAt: T, usedAt: T }])
      await insert(connection, 'exemptions', [
        { id: 'x-1', userId: 'u-f', kind: 'other', reason: 'r', owner: 'o', expiresAt: null, createdAt: T },
        { id: 'x-2', userId: 'u-f', kind: 'break_glass', reason: 'r', owner: 'o', expiresAt: T + DAY, createdAt: T },
        { id: 'x-3', userId: 'u-f', kind: 'break_glass', reason: 'r', owner: 'o', expiresAt: T + 9 * DAY, createdAt: T, revokedAt: T }
      ])
      await insert(connection, 'extensions', [{ id: 'e-1', userId: 'u-f', campaignId: 'c1', days: 7, reason: 'travel', createdAt: T }])
      // The latest job decides: an older failure, then a newer job waiting to be tried again.
      await addJobs(connection, ['old'], { userId: 'u-f', status: 'failed', lastError: 'denied: no', updatedAt: T - 2 * MINUTE })
      await addJobs(connection, ['new'], { userId: 'u-f', deadlineVersion: 1, lastError: 'provider_unavailable: 503', nextAttemptAt: T + 60 * MINUTE, updatedAt: T - MINUTE })
      await engine.setEnforcedAt('u-f', at(-DAY))
      await engine.setDriftFlagged('u-f', at(-MINUTE))

      const facts = await engine.facts('u-f')
      assert.ok(facts !== undefined)
      assert.deepEqual({ ...facts, groups: [...facts.groups].sort() }, {
        userId: 'u-f', email: 'u-f@example.test', externalId: null, provider: 'local', privileged: true, disabled: false, targetable: false,
        groups: ['g-a', 'g-b'], firstSeenAt: at(-90 * DAY), directoryCreatedAt: at(-5 * DAY), methodKinds: ['passkey', 'phone', 'recovery_codes', 'totp'], recoveryCodes: 1,
        // What the home page lists, without the secrets the rows also hold.
        methods: [
          { id: 'm-1', userId: 'u-f', kind: 'totp', name: 'App', createdAt: at(-MINUTE), lastUsedAt: null, phone: null, aaguid: null },
          { id: 'm-0', userId: 'u-f', kind: 'passkey', name: 'Phone', createdAt: NOW, lastUsedAt: at(MINUTE), phone: null, aaguid: null },
          { id: 'm-2', userId: 'u-f', kind: 'passkey', name: 'Laptop', createdAt: NOW, lastUsedAt: null, phone: null, aaguid: 'aaguid-2' },
          { id: 'm-3', userId: 'u-f', kind: 'phone', name: 'Mobile', createdAt: at(MINUTE), lastUsedAt: null, phone: '+4915112345678', aaguid: null }
        ],
        exemption: { kind: 'break_glass', expiresAt: at(DAY) }, extensions: [{ campaignId: 'c1', days: 7 }], enforcedAt: at(-DAY),
        trouble: { action: 'enforce', error: 'provider_unavailable: 503', retryAt: at(60 * MINUTE) }, driftFlaggedAt: at(-MINUTE)
      })
      assert.equal(await engine.facts('nobody'), undefined)
      // What a deadline is derived from: the same facts without the exemption and the job's trouble.
      const { exemption, trouble, ...forDeadline } = facts
      const deadlineFacts = await engine.deadlineFacts('u-f')
      assert.ok(deadlineFacts !== undefined)
      assert.deepEqual({ ...deadlineFacts, groups: [...deadlineFacts.groups].sort() }, { ...forDeadline, groups: ['g-a', 'g-b'] })
      assert.equal(await engine.deadlineFacts('nobody'), undefined)
      // The home page reads them with its session, in the same statement: the same facts and live campaigns.
      const withCampaigns = await engine.deadlineFactsWithCampaigns('u-f')
      assert.deepEqual(withCampaigns?.facts, deadlineFacts)
      assert.deepEqual(withCampaigns?.campaigns.map((c) => c.id), ['c2', 'c3', 'c1', 'c0'])
      const sessions = await signedInSession(connection, new FakeClock(NOW), 'u-f-browser', 'u-f')
      assert.deepEqual((await sessions.get('u-f-browser', { deadline: true }))?.signedIn?.deadline, withCampaigns)

      await engine.markGoneFromDirectory('u-f', NOW)
      const gone = await engine.facts('u-f')
      assert.deepEqual([gone?.disabled, gone?.enforcedAt], [true, null])
    })

    test('a user with nothing recorded has plain facts: no groups, methods, exemption, extensions or trouble', async () => {
      await addUsers(stores.connection, ['u-plain'], { provider: 'entra', externalId: 'ext-1', providerMethods: '["phone"]' })
      const facts = await stores.engine.facts('u-plain')
      assert.deepEqual([facts?.groups, facts?.methodKinds, facts?.methods, facts?.recoveryCodes, facts?.exemption, facts?.extensions, facts?.trouble, facts?.targetable, facts?.directoryCreatedAt],
        [[], ['phone'], [], 0, null, [], null, true, null])
    })

    test('saving a state records a transition only when the state changes, and bumps the version when the deadline or the desired action does', async () => {
      const { engine, connection } = stores
      await addUsers(connection, ['u-s'])
      const deadline = at(10 * DAY)
      await engine.saveState('u-s', derived('pending', 'enforce'), deadline, 'c1', at(5 * DAY), at(-3 * MINUTE), 1)
      assert.deepEqual(await engine.state('u-s'), { state: 'pending', deadline, deadlineVersion: 0, desired: 'enforce', campaignId: 'c1', softBlockAt: at(5 * DAY) })
      await engine.saveState('u-s', derived('pending', 'enforce', 'same, in other words'), deadline, 'c1', at(5 * DAY), at(-2 * MINUTE))
      assert.equal((await engine.state('u-s'))?.deadlineVersion, 0)
      await engine.saveState('u-s', derived('pending', 'enforce'), at(17 * DAY), 'c1', null, at(-MINUTE))
      assert.equal((await engine.state('u-s'))?.deadlineVersion, 1)
      await engine.saveState('u-s', derived('exempt', 'relax'), at(17 * DAY), null, null, NOW)
      assert.deepEqual(await engine.state('u-s'), { state: 'exempt', deadline: at(17 * DAY), deadlineVersion: 2, desired: 'relax', campaignId: null, softBlockAt: null })
      await engine.saveState('u-s', derived('exempt', null), null, null, null, NOW)
      assert.equal((await engine.state('u-s'))?.deadlineVersion, 3)
      const transitions = await rowsOf<{ fromState: string | null, toState: string, reason: string }>(connection,
        sql`SELECT from_state AS "fromState", to_state AS "toState", reason FROM state_transitions WHERE user_id = 'u-s' ORDER BY id`)
      assert.deepEqual(transitions, [{ fromState: null, toState: 'pending', reason: 'now pending' }, { fromState: 'pending', toState: 'exempt', reason: 'now exempt' }])
      assert.equal(await engine.state('nobody'), undefined)
    })

    test('users are paged by id: all of them, and those no state was derived for yet', async () => {
      const { engine, connection } = stores
      await addUsers(connection, ['u-3', 'u-1', 'u-5', 'u-2', 'u-4'])
      await engine.saveState('u-2', derived('pending'), null, null, null, NOW)
      await engine.saveState('u-4', derived('pending'), null, null, null, NOW)
      assert.deepEqual(await engine.userIdsAfter(null, 2), ['u-1', 'u-2'])
      assert.deepEqual(await engine.userIdsAfter('u-2', 10), ['u-3', 'u-4', 'u-5'])
      assert.deepEqual(await engine.unassessedAfter(null, 2), ['u-1', 'u-3'])
      assert.deepEqual(await engine.unassessedAfter('u-3', 2), ['u-5'])
    })

    test('states are scanned by id: a campaign\'s users, the enforced, the lapsed, the overdue and those failed for good', async () => {
      const { engine, connection } = stores
      await addUsers(connection, ['a', 'b', 'c', 'd', 'e', 'f'])
      await engine.saveState('a', derived('pending', 'enforce'), at(-DAY), 'c1', null, NOW)
      await engine.saveState('b', derived('enrolled', 'enforce'), at(-2 * DAY), 'c1', null, NOW)
      await engine.saveState('c', derived('enforced', 'enforce'), at(-DAY), 'c1', null, NOW)
      await engine.saveState('d', derived('pending', 'enforce'), at(DAY), 'c1', null, NOW)
      await engine.saveState('e', derived('attention', 'enforce'), at(-DAY), 'c2', null, NOW)
      await engine.saveState('f', derived('attention', 'enforce'), at(-DAY), 'c2', null, NOW)
      await addJobs(connection, ['failed-e'], { userId: 'e', status: 'failed', lastError: 'denied: no' })
      assert.deepEqual(await engine.campaignUserIdsAfter('c1', null, 3), ['a', 'b', 'c'])
      assert.deepEqual(await engine.campaignUserIdsAfter('c1', 'c', 3), ['d'])
      assert.deepEqual(await engine.enforcedAfter(null, 10), ['c'])
      assert.deepEqual(await engine.lapsedAfter(null, NOW, 10), ['a', 'b'])
      assert.deepEqual(await engine.lapsedAfter('a', NOW, 10), ['b'])
      assert.deepEqual(await engine.overdueInAfter('c1', null, NOW, 10), [
        { userId: 'a', email: 'a@example.test', deadlineVersion: 0, state: 'pending', deadline: at(-DAY) },
        { userId: 'b', email: 'b@example.test', deadlineVersion: 0, state: 'enrolled', deadline: at(-2 * DAY) }
      ])
      assert.deepEqual((await engine.overdueInAfter('c1', 'a', NOW, 1)).map((row) => row.userId), ['b'])
      assert.deepEqual(await engine.failedAttentionAfter(null, 10), ['e'])
    })

    test('due users are every relax and every enforce whose deadline passed, relax first then by deadline, with when a waiting job is tried again', async () => {
      const { engine, connection } = stores
      await addUsers(connection, ['r1', 'r2', 'e1', 'e2', 'e3', 'n1'])
      await engine.saveState('r1', derived('exempt', 'relax'), null, 'c1', null, NOW)
      await engine.saveState('r2', derived('not_targeted', 'relax'), null, null, null, NOW)
      await engine.saveState('e2', derived('overdue', 'enforce'), at(-DAY), 'c2', null, NOW)
      await engine.saveState('e1', derived('overdue', 'enforce'), at(-2 * DAY), 'c1', null, NOW)
      await engine.saveState('e3', derived('pending', 'enforce'), at(DAY), 'c1', null, NOW)
      await engine.saveState('n1', derived('enrolled'), at(-DAY), 'c1', null, NOW)
      await addJobs(connection, ['waits'], { userId: 'e2', lastError: 'provider_unavailable: 503', nextAttemptAt: T + 60 * MINUTE })
      await addJobs(connection, ['failed'], { userId: 'e1', status: 'failed', lastError: 'denied: no' })

      const due = await everyDue(engine, NOW)
      assert.deepEqual(due.slice(0, 2).map((row) => row.userId).sort(), ['r1', 'r2'])
      assert.deepEqual(due.slice(2), [
        { userId: 'e1', email: 'e1@example.test', action: 'enforce', deadlineVersion: 0, campaignId: 'c1', state: 'overdue', deadline: at(-2 * DAY), retryAt: null },
        { userId: 'e2', email: 'e2@example.test', action: 'enforce', deadlineVersion: 0, campaignId: 'c2', state: 'overdue', deadline: at(-DAY), retryAt: at(60 * MINUTE) }
      ])
      assert.deepEqual((await engine.dueCounts(NOW)).sort(byKey), [
        { action: 'enforce', campaignId: 'c1', count: 1 }, { action: 'enforce', campaignId: 'c2', count: 1 },
        { action: 'relax', campaignId: null, count: 1 }, { action: 'relax', campaignId: 'c1', count: 1 }
      ])
      assert.deepEqual((await everyDue(engine, at(2 * DAY))).map((row) => row.userId).slice(2), ['e1', 'e2', 'e3'])
    })

    test('due users stream past any batch size: each of 1,300 once, enforce ones in deadline order', async () => {
      const { engine, connection } = stores
      const relax = Array.from({ length: 600 }, (_, i) => `r-${String(i).padStart(4, '0')}`)
      const enforce = Array.from({ length: 700 }, (_, i) => `e-${String(699 - i).padStart(4, '0')}`)
      await addUsers(connection, [...relax, ...enforce])
      const state = (userId: string, desired: JobAction, deadline: number | null): typeof sqliteSchema.userStates.$inferInsert =>
        ({ userId, state: 'overdue', reason: 'r', desired, deadline, deadlineVersion: 0, updatedAt: T })
      // Deadlines shared by seven users at a time: the batches must not lose or repeat users on a tie.
      await insert(connection, 'userStates', [...relax.map((id) => state(id, 'relax', null)), ...enforce.map((id, i) => state(id, 'enforce', T - DAY + Math.floor(i / 7) * MINUTE))])
      const due = await everyDue(engine, NOW)
      assert.equal(due.length, 1300)
      assert.deepEqual(due.slice(0, 600).map((row) => row.userId).sort(), relax)
      assert.deepEqual(due.slice(600).map((row) => row.userId).sort(), [...enforce].sort())
      const deadlines = due.slice(600).map((row) => row.deadline?.getTime() ?? 0)
      assert.deepEqual(deadlines, [...deadlines].sort((a, b) => a - b))
    })

    test('enqueueing writes one job per due user and version: a second run adds none, a new deadline adds one', async () => {
      const { engine, connection } = stores
      await addUsers(connection, ['r1', 'e1', 'e2'])
      await engine.saveState('r1', derived('exempt', 'relax'), null, null, null, NOW)
      await engine.saveState('e1', derived('overdue', 'enforce'), at(-DAY), 'c1', null, NOW)
      await engine.saveState('e2', derived('pending', 'enforce'), at(DAY), 'c1', null, NOW)
      assert.equal(await engine.enqueueDue(NOW), 2)
      assert.equal(await engine.enqueueDue(NOW), 0)
      await engine.saveState('e1', derived('overdue', 'enforce'), at(-MINUTE), 'c1', null, NOW)
      assert.equal(await engine.enqueueDue(NOW), 1)
      const jobs = await rowsOf<{ userId: string, action: string, deadlineVersion: number, status: string, attempts: number, idLength: number }>(connection,
        sql`SELECT user_id AS "userId", action, deadline_version AS "deadlineVersion", status, attempts, length(id) AS "idLength" FROM enforcement_jobs ORDER BY user_id, deadline_version`)
      assert.deepEqual(jobs, [
        { userId: 'e1', action: 'enforce', deadlineVersion: 0, status: 'queued', attempts: 0, idLength: 32 },
        { userId: 'e1', action: 'enforce', deadlineVersion: 1, status: 'queued', attempts: 0, idLength: 32 },
        { userId: 'r1', action: 'relax', deadlineVersion: 0, status: 'queued', attempts: 0, idLength: 32 }
      ])
      const claimed = await engine.claim('w', 5, LEASE, NOW)
      assert.equal(claimed.length, 3)
    })

    test('claiming takes expired leases first, then due jobs by time, each once, and leaves jobs not yet due or still leased', async () => {
      const { engine, connection } = stores
      await addJobs(connection, ['expired'], { status: 'running', leaseOwner: 'gone', leaseExpiresAt: T - 1, attempts: 1, nextAttemptAt: T - DAY })
      await addJobs(connection, ['due-late'], { nextAttemptAt: T - MINUTE })
      await addJobs(connection, ['due-early'], { nextAttemptAt: T - 2 * MINUTE })
      await addJobs(connection, ['future'], { nextAttemptAt: T + MINUTE })
      await addJobs(connection, ['held'], { status: 'running', leaseOwner: 'busy', leaseExpiresAt: T + 30_000 })
      await addJobs(connection, ['done'], { status: 'done' })
      assert.deepEqual(await engine.claim('a', 2, LEASE, NOW), [
        { id: 'expired', userId: 'user-of-expired', action: 'enforce', deadlineVersion: 0, attempts: 2, unfinished: 2 },
        { id: 'due-early', userId: 'user-of-due-early', action: 'enforce', deadlineVersion: 0, attempts: 0, unfinished: 0 }
      ])
      assert.deepEqual((await engine.claim('b', 5, LEASE, NOW)).map((j) => j.id), ['due-late'])
      assert.deepEqual(await engine.claim('c', 5, LEASE, NOW), [])
      assert.deepEqual(await job(connection, 'due-early'), { id: 'due-early', status: 'running', attempts: 0, leaseOwner: 'a', lastError: null })
    })

    test('a lease that runs out makes the job claimable again, and the sweep that lost it can no longer end it', async () => {
      const { engine, connection } = stores
      await addJobs(connection, ['j'])
      assert.deepEqual((await engine.claim('a', 1, LEASE, NOW)).map((j) => [j.id, j.attempts, j.unfinished]), [['j', 0, 0]])
      assert.deepEqual(await engine.claim('b', 1, LEASE, at(30_000)), [])
      assert.deepEqual((await engine.claim('b', 1, LEASE, at(LEASE + 1))).map((j) => [j.id, j.attempts, j.unfinished]), [['j', 1, 1]])

      assert.equal(await engine.complete('j', 'a', at(LEASE + 2)), false)
      await engine.retryLater('j', 'a', 'provider_unavailable: 503', at(DAY), at(LEASE + 2))
      await engine.failForGood('j', 'a', 'denied: no', at(LEASE + 2))
      assert.equal(await engine.supersede('j', 'a', at(LEASE + 2)), false)
      assert.deepEqual(await job(connection, 'j'), { id: 'j', status: 'running', attempts: 1, leaseOwner: 'b', lastError: null })

      // A provider error is not an unfinished attempt; leases lost after it count up from one again.
      await engine.retryLater('j', 'b', 'provider_unavailable: 503', at(5 * MINUTE), at(2 * MINUTE))
      assert.deepEqual(await job(connection, 'j'), { id: 'j', status: 'queued', attempts: 2, leaseOwner: null, lastError: 'provider_unavailable: 503' })
      assert.deepEqual((await engine.claim('c', 1, LEASE, at(5 * MINUTE))).map((j) => [j.attempts, j.unfinished]), [[2, 0]])
      assert.deepEqual((await engine.claim('d', 1, LEASE, at(7 * MINUTE))).map((j) => [j.attempts, j.unfinished]), [[3, 1]])
      assert.deepEqual((await engine.claim('e', 1, LEASE, at(9 * MINUTE))).map((j) => [j.attempts, j.unfinished]), [[4, 2]])
      assert.equal((await job(connection, 'j'))?.lastError, 'interrupted 2')
      assert.equal(await engine.complete('j', 'e', at(9 * MINUTE)), true)
      assert.deepEqual(await job(connection, 'j'), { id: 'j', status: 'done', attempts: 5, leaseOwner: null, lastError: null })
    })

    test('a job ends done, waiting to retry, failed for good or superseded, each counted as an attempt', async () => {
      const { engine, connection } = stores
      await addJobs(connection, ['done', 'retry', 'fail', 'super'])
      assert.equal((await engine.claim('w', 4, LEASE, NOW)).length, 4)
      assert.equal(await engine.complete('done', 'w', NOW), true)
      await engine.retryLater('retry', 'w', 'provider_unavailable: 503', at(MINUTE), NOW)
      await engine.failForGood('fail', 'w', 'denied: no', NOW)
      assert.equal(await engine.supersede('super', 'w', NOW), true)
      assert.deepEqual(await Promise.all(['done', 'retry', 'fail', 'super'].map(async (id) => await job(connection, id))), [
        { id: 'done', status: 'done', attempts: 1, leaseOwner: null, lastError: null },
        { id: 'retry', status: 'queued', attempts: 1, leaseOwner: null, lastError: 'provider_unavailable: 503' },
        { id: 'fail', status: 'failed', attempts: 1, leaseOwner: null, lastError: 'denied: no' },
        { id: 'super', status: 'superseded', attempts: 1, leaseOwner: null, lastError: null }
      ])
      assert.deepEqual(await engine.claim('w', 4, LEASE, NOW), [])
      assert.deepEqual((await engine.claim('w', 4, LEASE, at(MINUTE))).map((j) => j.id), ['retry'])
    })

    test('waiting jobs of one provider\'s users are brought forward; failed jobs are ended for a user or a campaign', async () => {
      const { engine, connection } = stores
      await addUsers(connection, ['u-entra'], { provider: 'entra' })
      await addUsers(connection, ['u-local', 'u-c1', 'u-c2'])
      await engine.saveState('u-c1', derived('attention', 'enforce'), at(-DAY), 'c1', null, NOW)
      await engine.saveState('u-c2', derived('attention', 'enforce'), at(-DAY), 'c2', null, NOW)
      await addJobs(connection, ['entra-waits'], { userId: 'u-entra', lastError: 'provider_unavailable: 503', nextAttemptAt: T + DAY })
      await addJobs(connection, ['entra-new'], { userId: 'u-entra', deadlineVersion: 1, nextAttemptAt: T + DAY })
      await addJobs(connection, ['local-waits'], { userId: 'u-local', lastError: 'provider_unavailable: 503', nextAttemptAt: T + DAY })
      await addJobs(connection, ['c1-failed'], { userId: 'u-c1', status: 'failed', lastError: 'denied: no' })
      await addJobs(connection, ['c1-failed-again'], { userId: 'u-c1', deadlineVersion: 1, status: 'failed', lastError: 'denied: no' })
      await addJobs(connection, ['c2-failed'], { userId: 'u-c2', status: 'failed', lastError: 'denied: no' })
      await addJobs(connection, ['local-failed'], { userId: 'u-local', deadlineVersion: 1, status: 'failed', lastError: 'denied: no' })

      assert.deepEqual(await engine.retryWaitingNow('entra', NOW), ['u-entra'])
      assert.deepEqual((await engine.claim('w', 5, LEASE, NOW)).map((j) => j.id), ['entra-waits'])
      assert.deepEqual(await engine.supersedeFailedInCampaign('c1', NOW), ['u-c1', 'u-c1'])
      assert.equal(await engine.supersedeFailed('u-local', NOW), 1)
      assert.equal(await engine.supersedeFailed('u-local', NOW), 0)
      assert.deepEqual(await engine.failedAttentionAfter(null, 10), ['u-c2'])
      assert.equal((await job(connection, 'c1-failed'))?.status, 'superseded')
    })

    test('work done atomically is undone as a whole when it fails', async () => {
      const { engine, connection } = stores
      await addUsers(connection, ['u-a'])
      await addJobs(connection, ['j'])
      await engine.claim('w', 1, LEASE, NOW)
      await assert.rejects(engine.atomically(async () => {
        await engine.complete('j', 'w', NOW)
        await engine.setEnforcedAt('u-a', NOW)
        throw new Error('the audit append failed')
      }), /audit append failed/)
      assert.equal((await engine.facts('u-a'))?.enforcedAt, null)
      assert.equal((await job(connection, 'j'))?.status, 'running')
      const kept = await engine.atomically(async () => await engine.complete('j', 'w', NOW))
      assert.equal(kept, true)
      assert.equal((await job(connection, 'j'))?.status, 'done')
    })

    test('a campaign\'s outlook counts its users by state, those inside the new-user window and those whose deadline is ahead', async () => {
      const { engine, connection } = stores
      await addCampaign(connection, 'c1')
      await addCampaign(connection, 'c-archived', { archivedAt: T })
      await addUsers(connection, ['old', 'late'])
      await addUsers(connection, ['new'], { firstSeenAt: T, directoryCreatedAt: T - DAY })
      await addUsers(connection, ['other'])
      await engine.saveState('old', derived('pending', 'enforce'), at(10 * DAY), 'c1', null, NOW)
      await engine.saveState('new', derived('pending', 'enforce'), at(13 * DAY), 'c1', null, NOW)
      await engine.saveState('late', derived('overdue', 'enforce'), at(-DAY), 'c1', null, NOW)
      await engine.saveState('other', derived('pending', 'enforce'), at(DAY), 'c2', null, NOW)
      const [campaign] = await engine.activeCampaigns()
      assert.equal(campaign.id, 'c1')
      assert.deepEqual(await engine.campaignOutlook(campaign, NOW), {
        byState: { pending: 2, overdue: 1 }, inWindow: { count: 1, until: at(13 * DAY) }, ahead: { count: 1, next: at(10 * DAY) }
      })
      assert.deepEqual(await engine.campaignOutlook({ ...campaign, id: 'nobody-here' }, NOW), { byState: {}, inWindow: { count: 0, until: null }, ahead: { count: 0, next: null } })
    })

    if (name === 'PostgreSQL') {
      test('two instances enqueueing at once write each due user\'s job once', async () => {
        const other = await storesOn(backend)
        try {
          const ids = Array.from({ length: 300 }, (_, i) => `u-${String(i).padStart(3, '0')}`)
          await addUsers(stores.connection, ids)
          await insert(stores.connection, 'userStates', ids.map((userId, i) => ({ userId, state: 'overdue' as const, reason: 'r', desired: i % 3 === 0 ? 'relax' as const : 'enforce' as const, deadline: T - DAY, deadlineVersion: 0, updatedAt: T })))
          const added = await Promise.all([stores.engine.enqueueDue(NOW), other.engine.enqueueDue(NOW), stores.engine.enqueueDue(NOW), other.engine.enqueueDue(NOW)])
          assert.equal(added.reduce((a, b) => a + b, 0), 300)
          assert.equal(await jobCount(stores.connection), 300)
        } finally {
          await other.close()
        }
      })

      test('two instances claiming from 200 ready jobs at once get disjoint sets that together hold every job once', async () => {
        const other = await storesOn(backend)
        try {
          await addJobs(stores.connection, Array.from({ length: 200 }, (_, i) => `job-${i}`))
          // Four workers per instance, as the sweep's concurrency runs them.
          const workers = [stores, other].flatMap((s, n) => Array.from({ length: 4 }, async (_, w) => await claimAll(s.engine, `instance-${n}-worker-${w}`)))
          const claimed = await Promise.all(workers)
          const all = claimed.flat()
          assert.equal(all.length, 200)
          assert.equal(new Set(all).size, 200)
          assert.ok(claimed.slice(0, 4).flat().length > 0 && claimed.slice(4).flat().length > 0, 'both instances claimed some')
        } finally {
          await other.close()
        }
      })

      test('a job another instance is claiming in an unfinished transaction is passed over, not waited for', async () => {
        const other = await storesOn(backend)
        try {
          await addJobs(stores.connection, ['first'], { nextAttemptAt: T - 2 * MINUTE })
          await addJobs(stores.connection, ['second'])
          const pg = stores.engine as PgEngineStore
          let heldByA: Job[] = []
          let finishA!: () => void
          const aHolds = new Promise<void>((resolve) => { finishA = resolve })
          let aClaimed!: () => void
          const aHasClaimed = new Promise<void>((resolve) => { aClaimed = resolve })
          const a = pg.atomically(async () => {
            heldByA = await pg.claim('a', 1, LEASE, NOW)
            aClaimed()
            await aHolds
          })
          await aHasClaimed
          const waited = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('the claim waited for the other instance')), 5_000).unref())
          let claimedByB: Job[]
          try {
            claimedByB = await Promise.race([other.engine.claim('b', 1, LEASE, NOW), waited])
          } finally {
            finishA()
            await a
          }
          assert.deepEqual([heldByA.map((j) => j.id), claimedByB.map((j) => j.id)], [['first'], ['second']])
        } finally {
          await other.close()
        }
      })

      test('two instances saving the same new user\'s state at once record one first transition and the change between them', async () => {
        const other = await storesOn(backend)
        try {
          await addUsers(stores.connection, ['u-race'])
          await Promise.all([
            stores.engine.saveState('u-race', derived('pending', 'enforce'), at(DAY), 'c1', null, NOW),
            other.engine.saveState('u-race', derived('enrolled', 'enforce'), at(DAY), 'c1', null, NOW)
          ])
          const transitions = await rowsOf<{ fromState: string | null }>(stores.connection, sql`SELECT from_state AS "fromState" FROM state_transitions WHERE user_id = 'u-race' ORDER BY id`)
          assert.deepEqual(transitions.map((t) => t.fromState === null), [true, false])
        } finally {
          await other.close()
        }
      })
    }
  })
}
