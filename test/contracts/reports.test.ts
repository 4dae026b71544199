import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { DashboardStore } from '../../server/domain/dashboard.ts'
import type { ComplianceStore } from '../../server/domain/compliance.ts'
import { SqliteDashboardStore } from '../../server/db/dashboard.ts'
import { SqliteComplianceStore } from '../../server/db/compliance.ts'
import { PgDashboardStore } from '../../server/db/pg/dashboard.ts'
import { PgComplianceStore } from '../../server/db/pg/compliance.ts'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'

type Open = Connection & { close(): Promise<void> }

interface Stores {
  dashboard: DashboardStore | DashboardStore
  compliance: ComplianceStore | ComplianceStore
  connection: Open
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  return connection.dialect === 'sqlite'
    ? { dashboard: new SqliteDashboardStore(connection.database.access), compliance: new SqliteComplianceStore(connection.database.access), connection, close: connection.close }
    : { dashboard: new PgDashboardStore(connection.access), compliance: new PgComplianceStore(connection.access), connection, close: connection.close }
}

const NOW = new Date('2026-03-02T10:00:00.000Z')
const T = NOW.getTime()
const DAY = 86_400_000

type UserRow = typeof sqliteSchema.users.$inferInsert

function user (id: string, fields: Partial<UserRow> = {}): UserRow {
  return { id, email: `${id}@example.test`, displayName: id, firstSeenAt: T - 90 * DAY, createdAt: T, updatedAt: T, ...fields }
}

/**
 * A small rollout: three portal users, one Entra user, two AWS users (one disabled, never assessed), in campaign
 * "c1" (the first three in its wave 1), with methods, recovery codes and enforcement jobs. Rows are written with
 * the connection's own schema, states in user id order (SQLite lists attention in the order states were written).
 */
async function seedRollout (connection: Open): Promise<void> {
  const users = [
    user('a-local', { privileged: true, enforcedAt: T - DAY }),
    user('b-local'),
    user('c-entra', { provider: 'entra', externalId: 'obj-c', providerMethods: '["phone","microsoftAuthenticator","phone"]', driftFlaggedAt: T }),
    user('d-aws', { provider: 'aws', externalId: 'AIDAD', providerMethods: '["virtualMfa"]', providerAttributes: '{"consolePassword":true}' }),
    user('e-aws', { provider: 'aws', externalId: 'AIDAE', disabled: true, providerAttributes: '{"consolePassword":false}' }),
    user('f-local')
  ]
  const campaign = { id: 'c1', name: 'c1', targetKind: 'all' as const, startsAt: T - 30 * DAY, deadline: T + 10 * DAY, newUserWindowDays: 14, reminderOffsets: '[7]', maxExtensionDays: 30, createdAt: T, updatedAt: T }
  const state = (userId: string, fields: Partial<typeof sqliteSchema.userStates.$inferInsert>) => ({ userId, reason: `${userId} reason`, campaignId: 'c1', deadline: T + 10 * DAY, updatedAt: T, state: 'pending' as const, ...fields })
  const states = [
    state('a-local', { state: 'enrolled', wave: 1 }),
    state('b-local', { state: 'pending', wave: 1, reasonWords: '{"key":"domain.pending"}' }),
    // f-local was assessed before c-entra: lists follow that order, not the ids'.
    state('f-local', { state: 'attention', deadline: null, campaignId: null }),
    state('c-entra', { state: 'attention', wave: 1, desired: 'enforce', deadline: T - DAY, deadlineVersion: 2 }),
    state('d-aws', { state: 'overdue', desired: 'enforce', deadline: T - DAY, deadlineVersion: 3 })
  ]
  const methods = [
    { id: 'm1', userId: 'a-local', kind: 'passkey' as const, name: 'Key', createdAt: T },
    { id: 'm2', userId: 'a-local', kind: 'totp' as const, name: 'App 1', createdAt: T },
    { id: 'm3', userId: 'a-local', kind: 'totp' as const, name: 'App 2', createdAt: T },
    { id: 'm4', userId: 'c-entra', kind: 'totp' as const, name: 'App', createdAt: T }
  ]
  const codes = [
    { id: 'rc1', userId: 'a-local', setId: 's', codeHash: 'h1', createdAt: T },
    { id: 'rc2', userId: 'a-local', setId: 's', codeHash: 'h2', createdAt: T },
    { id: 'rc3', userId: 'a-local', setId: 's', codeHash: 'h3', createdAt: T, usedAt: T }
  ]
  const job = (id: string, userId: string, fields: Partial<typeof sqliteSchema.enforcementJobs.$inferInsert>) => ({ id, userId, action: 'enforce' as const, deadlineVersion: 0, status: 'queued' as const, attempts: 1, nextAttemptAt: T + 60_000, createdAt: T, updatedAt: T, ...fields })
  const jobs = [
    job('j-failed', 'c-entra', { status: 'failed', deadlineVersion: 2, lastError: 'permission denied' }),
    job('j-retrying', 'd-aws', { deadlineVersion: 3, attempts: 2, lastError: 'throttled' }),
    job('j-stale', 'd-aws', { deadlineVersion: 2, lastError: 'throttled' }),
    job('j-fresh', 'b-local', { deadlineVersion: 0 })
  ]
  if (connection.dialect === 'sqlite') {
    const { db } = connection.database
    db.insert(sqliteSchema.users).values(users).run()
    db.insert(sqliteSchema.campaigns).values(campaign).run()
    for (const row of states) db.insert(sqliteSchema.userStates).values(row).run()
    db.insert(sqliteSchema.authMethods).values(methods).run()
    db.insert(sqliteSchema.recoveryCodes).values(codes).run()
    db.insert(sqliteSchema.enforcementJobs).values(jobs).run()
  } else {
    const { db } = connection.access
    await db.insert(pgSchema.users).values(users)
    await db.insert(pgSchema.campaigns).values(campaign)
    for (const row of states) await db.insert(pgSchema.userStates).values(row)
    await db.insert(pgSchema.authMethods).values(methods)
    await db.insert(pgSchema.recoveryCodes).values(codes)
    await db.insert(pgSchema.enforcementJobs).values(jobs)
  }
}

for (const { name, open } of BACKENDS) {
  describe(`dashboard and compliance export on ${name}`, () => {
    let backend: Backend
    let stores: Stores
    before(async () => {
      backend = await open()
      stores = await storesOn(backend)
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('before anyone is assessed every count is zero and the day\'s snapshot is empty', async () => {
      const { dashboard } = stores
      assert.deepEqual(await dashboard.stateCounts(), { counts: { exempt: 0, not_targeted: 0, pending: 0, enrolled: 0, overdue: 0, enforced: 0, attention: 0 }, unassessed: 0 })
      assert.deepEqual(await dashboard.methodCounts(), ['passkey', 'totp', 'phone'].map((kind) => ({ kind, portalUsers: 0, providerUsers: 0, countingUsers: 0 })))
      assert.deepEqual(await dashboard.retrying(5), { total: 0, first: [] })
      assert.equal(await dashboard.takeSnapshot(new Date(T - 2 * DAY)), true)
      assert.deepEqual(await dashboard.snapshots('2026-01-01'), [{ day: '2026-02-28', counts: {} }])
      await seedRollout(stores.connection)
    })

    test('users are counted per state, with the users not yet assessed apart', async () => {
      assert.deepEqual(await stores.dashboard.stateCounts(), { counts: { exempt: 0, not_targeted: 0, pending: 1, enrolled: 1, overdue: 1, enforced: 0, attention: 2 }, unassessed: 1 })
    })

    test('method kinds count users holding them in the portal, at their directory, and where they protect the sign-in', async () => {
      const counts = await stores.dashboard.methodCounts()
      assert.deepEqual(counts.slice(0, 3).map((c) => c.kind), ['passkey', 'totp', 'phone'])
      assert.deepEqual([...counts].sort((a, b) => a.kind.localeCompare(b.kind)), [
        { kind: 'microsoftAuthenticator', portalUsers: 0, providerUsers: 1, countingUsers: 1 },
        { kind: 'passkey', portalUsers: 1, providerUsers: 0, countingUsers: 1 },
        { kind: 'phone', portalUsers: 0, providerUsers: 1, countingUsers: 1 },
        // c-entra's portal app does not protect an Entra sign-in.
        { kind: 'totp', portalUsers: 2, providerUsers: 0, countingUsers: 1 },
        { kind: 'virtualMfa', portalUsers: 0, providerUsers: 1, countingUsers: 1 }
      ])
    })

    test('each provider shows its users in total and by state, the unassessed in the total only', async () => {
      const byProvider = (await stores.dashboard.providerCounts()).sort((a, b) => a.provider.localeCompare(b.provider))
      const zero = { exempt: 0, not_targeted: 0, pending: 0, enrolled: 0, overdue: 0, enforced: 0, attention: 0 }
      assert.deepEqual(byProvider, [
        { provider: 'aws', total: 2, byState: { ...zero, overdue: 1 } },
        { provider: 'entra', total: 1, byState: { ...zero, attention: 1 } },
        { provider: 'local', total: 3, byState: { ...zero, pending: 1, enrolled: 1, attention: 1 } }
      ])
    })

    test('users needing attention say whether drift was flagged and whether a job failed, in the order they were first assessed', async () => {
      assert.deepEqual(await stores.dashboard.attention(10), [
        { userId: 'f-local', email: 'f-local@example.test', reason: 'f-local reason', reasonWords: null, driftFlagged: false, failed: false },
        { userId: 'c-entra', email: 'c-entra@example.test', reason: 'c-entra reason', reasonWords: null, driftFlagged: true, failed: true }
      ])
      assert.deepEqual((await stores.dashboard.attention(1)).map((u) => u.userId), ['f-local'])
    })

    test("only a queued job for the user's current wish that already failed counts as retrying", async () => {
      assert.deepEqual(await stores.dashboard.retrying(5), {
        total: 1,
        first: [{ userId: 'd-aws', email: 'd-aws@example.test', provider: 'aws', action: 'enforce', attempts: 2, nextAttemptAt: new Date(T + 60_000), lastError: 'throttled' }]
      })
    })

    test('the users of one state come a page at a time, each once, in the order they were first assessed', async () => {
      const { dashboard } = stores
      const first = await dashboard.usersInState('attention', null, 1)
      assert.deepEqual(first.map((row) => [row.userId, row.deadline]), [['f-local', null]])
      const second = await dashboard.usersInState('attention', first[0].cursor, 1)
      assert.deepEqual(second.map(({ cursor, ...row }) => row), [{ userId: 'c-entra', email: 'c-entra@example.test', provider: 'entra', reason: 'c-entra reason', reasonWords: null, deadline: new Date(T - DAY) }])
      assert.deepEqual(await dashboard.usersInState('attention', second[0].cursor, 1), [])
      assert.deepEqual((await dashboard.usersInState('pending', null, 10)).map((row) => [row.userId, row.reasonWords]), [['b-local', '{"key":"domain.pending"}']])
      assert.deepEqual(await dashboard.usersInState('enforced', null, 10), [])
    })

    test("the day's counts are recorded once a day, overall and per wave, and read back from a day on", async () => {
      const { dashboard } = stores
      assert.equal(await dashboard.takeSnapshot(NOW), true)
      assert.equal(await dashboard.takeSnapshot(new Date(T + 3_600_000)), false, 'the first snapshot of the day wins')
      assert.deepEqual(await dashboard.snapshots('2026-03-01'), [{ day: '2026-03-02', counts: { pending: 1, enrolled: 1, overdue: 1, attention: 2 } }])
      assert.deepEqual((await dashboard.snapshots('2026-02-01')).map((s) => s.day), ['2026-02-28', '2026-03-02'])
      assert.equal(await dashboard.takeSnapshot(new Date(T + DAY)), true)
      assert.deepEqual(await dashboard.waveSnapshots('c1', '2026-03-01'), new Map([[1, [
        { day: '2026-03-02', counts: { enrolled: 1, pending: 1, attention: 1 } },
        { day: '2026-03-03', counts: { enrolled: 1, pending: 1, attention: 1 } }
      ]]]))
      assert.equal((await dashboard.waveSnapshots('c1', '2026-03-03')).get(1)?.length, 1)
      assert.deepEqual(await dashboard.waveSnapshots('no-campaign', '2026-01-01'), new Map())
    })

    test('the compliance export lists every user by id, a page at a time, with their methods, codes, state and deadline', async () => {
      const { compliance } = stores
      const first = await compliance.factsAfter(null, 2)
      assert.deepEqual(first, [
        {
          userId: 'a-local', email: 'a-local@example.test', provider: 'local', externalId: null, privileged: true, disabled: false, portalMethods: ['passkey', 'totp'], providerMethods: [],
          consolePassword: null, state: 'enrolled', deadline: new Date(T + 10 * DAY), campaignId: 'c1', enforcedAt: new Date(T - DAY), recoveryCodes: 2
        },
        {
          userId: 'b-local', email: 'b-local@example.test', provider: 'local', externalId: null, privileged: false, disabled: false, portalMethods: [], providerMethods: [],
          consolePassword: null, state: 'pending', deadline: new Date(T + 10 * DAY), campaignId: 'c1', enforcedAt: null, recoveryCodes: 0
        }
      ])
      const rest = await compliance.factsAfter('b-local', 10)
      assert.deepEqual(rest.map((f) => f.userId), ['c-entra', 'd-aws', 'e-aws', 'f-local'])
      assert.deepEqual(rest[0].providerMethods, ['microsoftAuthenticator', 'phone'])
      assert.deepEqual(rest[0].portalMethods, ['totp'])
      assert.deepEqual(await compliance.factsAfter('f-local', 10), [])
    })

    test("an AWS user's console password reads as the provider said it, and an unassessed user has no state", async () => {
      const { compliance } = stores
      assert.equal((await compliance.factsFor('d-aws'))?.consolePassword, true)
      assert.deepEqual(await compliance.factsFor('e-aws'), {
        userId: 'e-aws', email: 'e-aws@example.test', provider: 'aws', externalId: 'AIDAE', privileged: false, disabled: true, portalMethods: [], providerMethods: [],
        consolePassword: false, state: null, deadline: null, campaignId: null, enforcedAt: null, recoveryCodes: 0
      })
      assert.equal((await compliance.factsFor('f-local'))?.deadline, null)
      assert.equal(await compliance.factsFor('nobody'), undefined)
    })
  })
}
