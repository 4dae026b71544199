import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ReminderStore } from '../../server/domain/reminders.ts'
import type { SmsSunsetStore } from '../../server/domain/sms-sunset.ts'
import { SqliteReminderStore } from '../../server/db/reminders.ts'
import { SqliteSmsSunsetStore } from '../../server/db/sms-sunset.ts'
import { PgReminderStore } from '../../server/db/pg/reminders.ts'
import { PgSmsSunsetStore } from '../../server/db/pg/sms-sunset.ts'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'

type Open = Connection & { close(): Promise<void> }

interface Stores {
  reminders: ReminderStore | ReminderStore
  sunset: SmsSunsetStore | SmsSunsetStore
  connection: Open
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  return connection.dialect === 'sqlite'
    ? { reminders: new SqliteReminderStore(connection.database.access), sunset: new SqliteSmsSunsetStore(connection.database.access), connection, close: connection.close }
    : { reminders: new PgReminderStore(connection.access), sunset: new PgSmsSunsetStore(connection.access), connection, close: connection.close }
}

const NOW = Date.parse('2026-03-02T10:00:00.000Z')
const DAY = 86_400_000

type UserRow = typeof sqliteSchema.users.$inferInsert
type StateRow = typeof sqliteSchema.userStates.$inferInsert

interface Fixture {
  users: UserRow[]
  states: StateRow[]
  methods?: Array<{ userId: string, kind: 'passkey' | 'totp' | 'phone' }>
  recoveryCodes?: Array<{ userId: string, used?: boolean, voided?: boolean }>
}

/** Users, their states in campaign "c1" or "c2", their portal methods and recovery codes, written with the connection's own schema. */
async function seed (connection: Open, fixture: Fixture): Promise<void> {
  const methods = (fixture.methods ?? []).map((m, i) => ({ id: `m-${m.userId}-${i}`, userId: m.userId, kind: m.kind, name: m.kind, createdAt: NOW }))
  const codes = (fixture.recoveryCodes ?? []).map((c, i) => ({ id: `rc-${c.userId}-${i}`, userId: c.userId, setId: 'set', codeHash: `h${i}`, createdAt: NOW, usedAt: c.used === true ? NOW : null, voidedAt: c.voided === true ? NOW : null }))
  if (connection.dialect === 'sqlite') {
    const { db } = connection.database
    db.insert(sqliteSchema.users).values(fixture.users).run()
    db.insert(sqliteSchema.userStates).values(fixture.states).run()
    if (methods.length > 0) db.insert(sqliteSchema.authMethods).values(methods).run()
    if (codes.length > 0) db.insert(sqliteSchema.recoveryCodes).values(codes).run()
  } else {
    const { db } = connection.access
    await db.insert(pgSchema.users).values(fixture.users)
    await db.insert(pgSchema.userStates).values(fixture.states)
    if (methods.length > 0) await db.insert(pgSchema.authMethods).values(methods)
    if (codes.length > 0) await db.insert(pgSchema.recoveryCodes).values(codes)
  }
}

async function addCampaigns (connection: Open): Promise<void> {
  const rows = ['c1', 'c2'].map((id) => ({ id, name: id, targetKind: 'all' as const, startsAt: NOW - 30 * DAY, deadline: NOW + 10 * DAY, newUserWindowDays: 14, reminderOffsets: '[7]', maxExtensionDays: 30, createdAt: NOW, updatedAt: NOW }))
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema.campaigns).values(rows).run()
  else await connection.access.db.insert(pgSchema.campaigns).values(rows)
}

function user (id: string, fields: Partial<UserRow> = {}): UserRow {
  return { id, email: `${id}@example.test`, displayName: `User ${id}`, firstSeenAt: NOW - 90 * DAY, createdAt: NOW, updatedAt: NOW, ...fields }
}

function state (userId: string, fields: Partial<StateRow> = {}): StateRow {
  return { userId, state: 'pending', reason: 'no method yet', deadline: NOW + 3 * DAY, campaignId: 'c1', updatedAt: NOW, ...fields }
}

for (const { name, open } of BACKENDS) {
  describe(`reminders and the SMS sunset on ${name}`, () => {
    let backend: Backend
    let stores: Stores
    before(async () => {
      backend = await open()
      stores = await storesOn(backend)
      await addCampaigns(stores.connection)
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('reminders go to pending users whose deadline falls after now and within the horizon, a page at a time by user id', async () => {
      await seed(stores.connection, {
        users: [user('r-a', { locale: 'fr', timeZone: 'Europe/Paris' }), user('r-b'), user('r-c'), user('r-due-now'), user('r-too-far'), user('r-enrolled')],
        states: [
          state('r-a'), state('r-b', { deadline: NOW + 7 * DAY }), state('r-c', { campaignId: 'c2', deadline: NOW + 1 }),
          state('r-due-now', { deadline: NOW }), state('r-too-far', { deadline: NOW + 7 * DAY + 1 }), state('r-enrolled', { state: 'enrolled' })
        ]
      })
      const first = await stores.reminders.pendingAfter(null, new Date(NOW), 7 * DAY, 2)
      assert.deepEqual(first, [
        { userId: 'r-a', email: 'r-a@example.test', displayName: 'User r-a', locale: 'fr', timeZone: 'Europe/Paris', campaignId: 'c1', deadline: new Date(NOW + 3 * DAY) },
        { userId: 'r-b', email: 'r-b@example.test', displayName: 'User r-b', locale: null, timeZone: null, campaignId: 'c1', deadline: new Date(NOW + 7 * DAY) }
      ])
      const second = await stores.reminders.pendingAfter('r-b', new Date(NOW), 7 * DAY, 2)
      assert.deepEqual(second.map((c) => [c.userId, c.campaignId]), [['r-c', 'c2']])
      assert.deepEqual(await stores.reminders.pendingAfter('r-c', new Date(NOW), 7 * DAY, 2), [])
    })

    test('a reminder is recorded once per user, campaign and offset', async () => {
      assert.equal(await stores.reminders.claim('r-a', 'c1', 7, new Date(NOW)), true)
      assert.equal(await stores.reminders.claim('r-a', 'c1', 7, new Date(NOW + 1)), false)
      assert.equal(await stores.reminders.claim('r-a', 'c1', 1, new Date(NOW)), true)
      assert.equal(await stores.reminders.claim('r-a', 'c2', 7, new Date(NOW)), true)
    })

    test("the sunset finds the campaign's enabled, targeted users holding a phone in the portal or at their directory", async () => {
      await seed(stores.connection, {
        users: [
          user('p-portal', { privileged: true, locale: 'de' }), user('p-directory', { provider: 'entra', providerMethods: '["phone","microsoftAuthenticator"]' }),
          user('p-both', { provider: 'entra', providerMethods: '["phone"]' }), user('p-none', { providerMethods: '["fido2"]' }),
          user('p-disabled', { disabled: true }), user('p-exempt'), user('p-other-campaign'), user('p-untargeted')
        ],
        states: [
          state('p-portal'), state('p-directory', { state: 'enrolled' }), state('p-both', { state: 'enforced' }), state('p-none'),
          state('p-disabled'), state('p-exempt', { state: 'exempt' }), state('p-other-campaign', { campaignId: 'c2' }), state('p-untargeted', { state: 'not_targeted' })
        ],
        methods: [
          { userId: 'p-portal', kind: 'phone' }, { userId: 'p-portal', kind: 'totp' }, { userId: 'p-portal', kind: 'totp' },
          { userId: 'p-both', kind: 'passkey' }, { userId: 'p-none', kind: 'totp' },
          { userId: 'p-disabled', kind: 'phone' }, { userId: 'p-exempt', kind: 'phone' }, { userId: 'p-other-campaign', kind: 'phone' }, { userId: 'p-untargeted', kind: 'phone' }
        ],
        recoveryCodes: [{ userId: 'p-portal' }, { userId: 'p-portal' }, { userId: 'p-portal', used: true }, { userId: 'p-portal', voided: true }]
      })
      const holders = await stores.sunset.phoneHoldersAfter('c1', 'p', 10)
      assert.deepEqual(holders.map((h) => ({ ...h, portalMethods: [...h.portalMethods].sort() })), [
        { userId: 'p-both', email: 'p-both@example.test', displayName: 'User p-both', locale: null, timeZone: null, provider: 'entra', privileged: false, portalMethods: ['passkey'], providerMethods: ['phone'], recoveryCodes: 0 },
        { userId: 'p-directory', email: 'p-directory@example.test', displayName: 'User p-directory', locale: null, timeZone: null, provider: 'entra', privileged: false, portalMethods: [], providerMethods: ['phone', 'microsoftAuthenticator'], recoveryCodes: 0 },
        { userId: 'p-portal', email: 'p-portal@example.test', displayName: 'User p-portal', locale: 'de', timeZone: null, provider: 'local', privileged: true, portalMethods: ['phone', 'totp'], providerMethods: [], recoveryCodes: 2 }
      ])
      assert.deepEqual((await stores.sunset.phoneHoldersAfter('c1', 'p', 1)).map((h) => h.userId), ['p-both'])
      assert.deepEqual((await stores.sunset.phoneHoldersAfter('c1', 'p-both', 1)).map((h) => h.userId), ['p-directory'])
      assert.deepEqual((await stores.sunset.phoneHoldersAfter('c2', null, 10)).map((h) => h.userId), ['p-other-campaign'])
    })

    test('a sunset is recorded as carried out once', async () => {
      const sunsetAt = new Date(NOW + DAY)
      assert.equal(await stores.sunset.hasRun('c1', sunsetAt), false)
      assert.equal(await stores.sunset.recordRun('c1', sunsetAt, new Date(NOW + DAY), 12, 3), true)
      assert.equal(await stores.sunset.hasRun('c1', sunsetAt), true)
      assert.equal(await stores.sunset.recordRun('c1', sunsetAt, new Date(NOW + DAY + 1), 12, 3), false)
      assert.equal(await stores.sunset.hasRun('c1', new Date(NOW + 2 * DAY)), false, 'a moved sunset is a new one')
      assert.equal(await stores.sunset.hasRun('c2', sunsetAt), false)
    })

    test('a reminder before the sunset is recorded once per user, sunset and offset', async () => {
      const sunsetAt = new Date(NOW + DAY)
      assert.equal(await stores.sunset.claimReminder('p-portal', 'c1', sunsetAt, 7, new Date(NOW)), true)
      assert.equal(await stores.sunset.claimReminder('p-portal', 'c1', sunsetAt, 7, new Date(NOW + 1)), false)
      assert.equal(await stores.sunset.claimReminder('p-portal', 'c1', sunsetAt, 1, new Date(NOW)), true)
      assert.equal(await stores.sunset.claimReminder('p-portal', 'c1', new Date(NOW + 2 * DAY), 7, new Date(NOW)), true)
    })

    if (name === 'PostgreSQL') {
      test('of two instances sending the same reminder at once, exactly one records it', async () => {
        const other = await storesOn(backend)
        try {
          const sunsetAt = new Date(NOW + 5 * DAY)
          const reminders = await Promise.all([stores.reminders.claim('r-b', 'c1', 3, new Date(NOW)), other.reminders.claim('r-b', 'c1', 3, new Date(NOW))])
          assert.deepEqual(reminders.sort(), [false, true])
          const sunsetReminders = await Promise.all([stores.sunset.claimReminder('p-portal', 'c1', sunsetAt, 3, new Date(NOW)), other.sunset.claimReminder('p-portal', 'c1', sunsetAt, 3, new Date(NOW))])
          assert.deepEqual(sunsetReminders.sort(), [false, true])
          const runs = await Promise.all([stores.sunset.recordRun('c1', sunsetAt, new Date(NOW), 1, 1), other.sunset.recordRun('c1', sunsetAt, new Date(NOW), 1, 1)])
          assert.deepEqual(runs.sort(), [false, true])
        } finally {
          await other.close()
        }
      })
    }
  })
}
