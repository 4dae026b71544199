import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { RolloutStore, PauseFigures } from '../../server/domain/rollout-guard.ts'
import { SqliteRolloutStore } from '../../server/db/rollout.ts'
import { PgRolloutStore } from '../../server/db/pg/rollout.ts'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'

type Open = Connection & { close(): Promise<void> }

interface Stores {
  rollout: RolloutStore | RolloutStore
  connection: Open
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  const rollout = connection.dialect === 'sqlite' ? new SqliteRolloutStore(connection.database.access) : new PgRolloutStore(connection.access)
  return { rollout, connection, close: connection.close }
}

const T0 = Date.parse('2026-03-02T10:00:00.000Z')
const DAY = 86_400_000

interface Fixture {
  users: Array<typeof sqliteSchema.users.$inferInsert>
  campaigns: Array<typeof sqliteSchema.campaigns.$inferInsert>
  states: Array<typeof sqliteSchema.userStates.$inferInsert>
  audit: Array<{ at: number, action: string, subject: string, details?: object }>
}

/** Rows as the portal writes them, with the connection's own schema: users, campaigns, states, then the audit log in time order. */
async function seed (connection: Open, fixture: Fixture): Promise<void> {
  const audit = fixture.audit.map((e) => ({ at: new Date(e.at).toISOString(), action: e.action, subjectUserId: e.subject, details: JSON.stringify(e.details ?? {}), prevHash: '-', hash: '-' }))
  if (connection.dialect === 'sqlite') {
    const { db } = connection.database
    if (fixture.users.length > 0) db.insert(sqliteSchema.users).values(fixture.users).run()
    if (fixture.campaigns.length > 0) db.insert(sqliteSchema.campaigns).values(fixture.campaigns).run()
    if (fixture.states.length > 0) db.insert(sqliteSchema.userStates).values(fixture.states).run()
    for (const event of audit) db.insert(sqliteSchema.auditEvents).values(event).run()
  } else {
    const { db } = connection.access
    if (fixture.users.length > 0) await db.insert(pgSchema.users).values(fixture.users)
    if (fixture.campaigns.length > 0) await db.insert(pgSchema.campaigns).values(fixture.campaigns)
    if (fixture.states.length > 0) await db.insert(pgSchema.userStates).values(fixture.states)
    for (const event of audit) await db.insert(pgSchema.auditEvents).values(event)
  }
}

function user (id: string, enforcedAt: number | null = null): typeof sqliteSchema.users.$inferInsert {
  return { id, email: `${id}@example.test`, displayName: id, enforcedAt, firstSeenAt: T0 - 90 * DAY, createdAt: T0 - 90 * DAY, updatedAt: T0 }
}

function campaign (id: string): typeof sqliteSchema.campaigns.$inferInsert {
  return { id, name: id, targetKind: 'all', startsAt: T0 - 30 * DAY, deadline: T0, newUserWindowDays: 14, reminderOffsets: '[7]', maxExtensionDays: 30, createdAt: T0 - 30 * DAY, updatedAt: T0 - 30 * DAY }
}

function state (userId: string, campaignId: string | null, fields: Partial<typeof sqliteSchema.userStates.$inferInsert> = {}): typeof sqliteSchema.userStates.$inferInsert {
  return { userId, campaignId, state: 'pending', reason: 'no method yet', deadline: T0, desired: null, updatedAt: T0, ...fields }
}

const figures: PauseFigures = {
  counts: { flipped: 10, failures: 3, passes: 0, resets: 0, notMe: 0 },
  since: new Date(T0 - DAY).toISOString(),
  until: new Date(T0).toISOString(),
  value: 30,
  threshold: 20,
  thresholds: { passesPer100: 15, failurePercent: 20, notMePer100: 3, minFlips: 10 }
}

for (const { name, open } of BACKENDS) {
  describe(`rollout guard on ${name}`, () => {
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

    test('with nothing in the audit log the breaker reads no figures', async () => {
      assert.deepEqual(await stores.rollout.breakerCounts(new Date(T0 - DAY), new Date(T0 + DAY)), new Map())
    })

    test("the breaker counts each campaign's flips, failed enforcements, passes and resets after the flip, and not-me reports within the window", async () => {
      const flippedAt = T0 + 10_500
      await seed(stores.connection, {
        users: [user('u1', flippedAt), user('u2'), user('u3', T0), user('u4', T0)],
        campaigns: [campaign('c1'), campaign('c2')],
        states: [state('u1', 'c1', { state: 'enforced' }), state('u2', 'c1'), state('u3', 'c2', { state: 'enforced' }), state('u4', null, { state: 'enforced' })],
        audit: [
          { at: T0 - 3_600_000, action: 'enforcement.enforced', subject: 'u1' }, // before the window
          { at: T0 + 1_000, action: 'signin.success', subject: 'u1' }, // not a breaker action
          { at: T0 + 5_000, action: 'pass.issued', subject: 'u1' }, // before the flip: a first enrollment, no lockout
          { at: T0 + 10_500, action: 'enforcement.enforced', subject: 'u1' },
          // The same second as the flip (10.2 s against 10.5 s): audit times count to the second.
          { at: T0 + 10_200, action: 'pass.issued', subject: 'u1' },
          { at: T0 + 11_000, action: 'enforcement.failed', subject: 'u2', details: { action: 'enforce', error: 'throttled' } },
          { at: T0 + 12_000, action: 'enforcement.failed', subject: 'u2', details: { action: 'relax' } },
          { at: T0 + 13_000, action: 'pass.issued', subject: 'u2' }, // never flipped
          { at: T0 + 14_000, action: 'methods.reset', subject: 'u1' },
          { at: T0 + 15_000, action: 'method.reported_not_me', subject: 'u3' },
          { at: T0 + 16_000, action: 'enforcement.enforced', subject: 'u4' }, // in no campaign
          { at: T0 + 3_600_000, action: 'enforcement.enforced', subject: 'u3' } // after the window
        ]
      })
      const counts = await stores.rollout.breakerCounts(new Date(T0), new Date(T0 + 60_000))
      assert.deepEqual(counts, new Map([
        ['c1', { flipped: 1, failures: 1, passes: 1, resets: 1, notMe: 0 }],
        ['c2', { flipped: 0, failures: 0, passes: 0, resets: 0, notMe: 1 }]
      ]))
      assert.deepEqual(await stores.rollout.breakerCounts(new Date(T0 + 14_500), new Date(T0 + DAY)), new Map([
        ['c2', { flipped: 1, failures: 0, passes: 0, resets: 0, notMe: 1 }]
      ]))
      assert.deepEqual(await stores.rollout.breakerCounts(new Date(T0 + 2 * DAY), new Date(T0 + 3 * DAY)), new Map())
    })

    test('a campaign is paused once until resumed, and a resume closes the open pause once', async () => {
      const { rollout } = stores
      await seed(stores.connection, { users: [], campaigns: [campaign('paused')], states: [], audit: [] })
      const pause = await rollout.pause('paused', new Date(T0), 'failures', figures)
      assert.deepEqual(pause, { id: pause?.id, campaignId: 'paused', pausedAt: new Date(T0), signal: 'failures', figures, resumedAt: null, resumedBy: null, resumeReason: null })
      assert.equal(await rollout.pause('paused', new Date(T0 + 1), 'passes', figures), undefined)
      assert.deepEqual(await rollout.resume('paused', new Date(T0 + 60_000), 'admin-1', 'provider fixed'), {
        id: pause?.id, campaignId: 'paused', pausedAt: new Date(T0), signal: 'failures', figures, resumedAt: new Date(T0 + 60_000), resumedBy: 'admin-1', resumeReason: 'provider fixed'
      })
      assert.equal(await rollout.resume('paused', new Date(T0 + 60_001), 'admin-2', 'again'), undefined)
      assert.notEqual(await rollout.pause('paused', new Date(T0 + DAY), 'not_me', figures), undefined, 'paused again after the resume')
    })

    test('a wave starts counting once', async () => {
      await seed(stores.connection, { users: [], campaigns: [campaign('waves')], states: [], audit: [] })
      assert.equal(await stores.rollout.startWave('waves', 1, new Date(T0), 'admin-1'), true)
      assert.equal(await stores.rollout.startWave('waves', 1, new Date(T0 + 1), null), false)
      assert.equal(await stores.rollout.startWave('waves', 2, new Date(T0 + 1), null), true)
    })

    test("a wave's progress counts its users by state and those whose flip is due", async () => {
      await seed(stores.connection, {
        users: ['w1', 'w2', 'w3', 'w4', 'w5', 'w6'].map((id) => user(id)),
        campaigns: [campaign('progress')],
        states: [
          state('w1', 'progress', { wave: 1, desired: 'enforce', deadline: T0 - DAY, state: 'overdue' }),
          state('w2', 'progress', { wave: 1, desired: 'enforce', deadline: T0, state: 'overdue' }),
          state('w3', 'progress', { wave: 1, state: 'enrolled' }),
          state('w4', 'progress', { wave: 2, desired: 'enforce', deadline: T0 + DAY }),
          state('w5', 'progress', { wave: null }),
          state('w6', 'c1', { wave: 1, desired: 'enforce', deadline: T0 - DAY })
        ],
        audit: []
      })
      assert.deepEqual(await stores.rollout.waveProgress('progress', new Date(T0)), [
        { wave: 1, byState: { overdue: 2, enrolled: 1 }, due: 2 },
        { wave: 2, byState: { pending: 1 }, due: 0 }
      ])
      assert.deepEqual(await stores.rollout.waveProgress('no-such-campaign', new Date(T0)), [])
    })

    if (name === 'PostgreSQL') {
      test('of two instances tripping the breaker at once, one pauses the campaign; of two resuming, one resumes it', async () => {
        const other = await storesOn(backend)
        try {
          await seed(stores.connection, { users: [], campaigns: [campaign('race')], states: [], audit: [] })
          const pauses = await Promise.all([stores.rollout.pause('race', new Date(T0), 'failures', figures), other.rollout.pause('race', new Date(T0), 'passes', figures)])
          assert.equal(pauses.filter((p) => p !== undefined).length, 1)
          const resumes = await Promise.all([stores.rollout.resume('race', new Date(T0 + 1), 'a', 'ok'), other.rollout.resume('race', new Date(T0 + 1), 'b', 'ok')])
          assert.equal(resumes.filter((p) => p !== undefined).length, 1)
        } finally {
          await other.close()
        }
      })
    }
  })
}
