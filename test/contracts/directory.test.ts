import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { eq } from 'drizzle-orm'
import { SYNC_NAMES_KEPT, type DirectoryRecord, type DirectorySyncStore } from '../../server/domain/directory-sync.ts'
import type { DriftCheckStore } from '../../server/domain/drift-checks.ts'
import type { DirectoryPhoneStore } from '../../server/domain/directory-phones.ts'
import type { EnforcementRecords } from '../../server/domain/provider.ts'
import { SqliteDirectorySyncStore } from '../../server/db/directory-sync.ts'
import { SqliteDriftCheckStore } from '../../server/db/drift-checks.ts'
import { SqliteDirectoryPhoneStore } from '../../server/db/directory-phones.ts'
import { SqliteEnforcementRecords } from '../../server/db/enforcement-records.ts'
import { SqliteEntraPortalStore } from '../../server/db/entra-portal.ts'
import { PgDirectorySyncStore } from '../../server/db/pg/directory-sync.ts'
import { PgDriftCheckStore } from '../../server/db/pg/drift-checks.ts'
import { PgDirectoryPhoneStore } from '../../server/db/pg/directory-phones.ts'
import { PgEnforcementRecords } from '../../server/db/pg/enforcement-records.ts'
import { PgEntraPortalStore } from '../../server/db/pg/entra-portal.ts'
import { Sealer } from '../../server/db/sealing.ts'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'

type Open = Connection & { close(): Promise<void> }

interface Stores {
  sync: DirectorySyncStore | DirectorySyncStore
  drift: DriftCheckStore | DriftCheckStore
  // The twin's atomically takes asynchronous work, which the port's synchronous signature cannot name yet.
  phones: DirectoryPhoneStore | PgDirectoryPhoneStore
  records: EnforcementRecords | EnforcementRecords
  entra: PgEntraPortalStore | SqliteEntraPortalStore
  connection: Open
  close(): Promise<void>
}

const NOW = new Date('2026-03-02T10:00:00.000Z')
const T = NOW.getTime()
const DAY = 86_400_000
const sealer = new Sealer(Buffer.alloc(32, 9))

async function storesOn (backend: Backend, clock = new FakeClock(NOW)): Promise<Stores> {
  const connection = await backend.connect()
  if (connection.dialect === 'sqlite') {
    const sqlite = connection.database.access
    return {
      sync: new SqliteDirectorySyncStore(sqlite), drift: new SqliteDriftCheckStore(sqlite), phones: new SqliteDirectoryPhoneStore(sqlite, clock),
      records: new SqliteEnforcementRecords(sqlite, clock), entra: new SqliteEntraPortalStore(sqlite, sealer, clock), connection, close: connection.close
    }
  }
  const { access } = connection
  return {
    sync: new PgDirectorySyncStore(access), drift: new PgDriftCheckStore(access), phones: new PgDirectoryPhoneStore(access, clock),
    records: new PgEnforcementRecords(access, clock), entra: new PgEntraPortalStore(access, sealer, clock), connection, close: connection.close
  }
}

type UserRow = typeof sqliteSchema.users.$inferInsert

/** Users written with the connection's own schema. */
async function addUsers (connection: Open, ...users: Array<{ id: string } & Partial<UserRow>>): Promise<void> {
  const rows = users.map((u): UserRow => ({ email: `${u.id}@example.test`, displayName: u.id, firstSeenAt: T - 90 * DAY, createdAt: T - 90 * DAY, updatedAt: T - 90 * DAY, ...u }))
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema.users).values(rows).run()
  else await connection.access.db.insert(pgSchema.users).values(rows)
}

async function readUser (connection: Open, id: string): Promise<typeof sqliteSchema.users.$inferSelect | undefined> {
  if (connection.dialect === 'sqlite') return connection.database.db.select().from(sqliteSchema.users).where(eq(sqliteSchema.users.id, id)).get()
  const [row] = await connection.access.db.select().from(pgSchema.users).where(eq(pgSchema.users.id, id))
  return row
}

async function groupsOf (connection: Open, userId: string): Promise<string[]> {
  const rows = connection.dialect === 'sqlite'
    ? connection.database.db.select().from(sqliteSchema.userGroups).where(eq(sqliteSchema.userGroups.userId, userId)).all()
    : await connection.access.db.select().from(pgSchema.userGroups).where(eq(pgSchema.userGroups.userId, userId))
  return rows.map((g) => g.groupName).sort()
}

async function signedIn (connection: Open, userId: string): Promise<void> {
  const event = { at: NOW.toISOString(), action: 'signin.success', subjectUserId: userId, prevHash: '-', hash: '-' }
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema.auditEvents).values(event).run()
  else await connection.access.db.insert(pgSchema.auditEvents).values(event)
}

function record (externalId: string, fields: Partial<DirectoryRecord> = {}): DirectoryRecord {
  return { externalId, email: `${externalId}@corp.test`, displayName: `Name ${externalId}`, privileged: false, groups: [], disabled: false, methods: [], phone: null, attributes: {}, createdAt: null, ...fields }
}

for (const { name, open } of BACKENDS) {
  describe(`directory stores on ${name}`, () => {
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

    test("a sync run is recorded from its start to its outcome, and a provider's latest run is its newest", async () => {
      const { sync } = stores
      assert.equal(await sync.latest('entra'), undefined)
      const earlier = await sync.begin('entra', new Date(T - DAY))
      const id = await sync.begin('entra', NOW)
      assert.ok(id > earlier)
      assert.deepEqual(await sync.latest('entra'), {
        id, provider: 'entra', startedAt: NOW, finishedAt: null, status: 'running', seen: 0, created: 0, updated: 0, skipped: 0, registrationSource: null, error: null, adopted: [], conflicts: []
      })
      const conflicts = Array.from({ length: SYNC_NAMES_KEPT + 5 }, (_, i) => ({ name: `n${i}`, email: `e${i}@corp.test`, reason: 'taken' }))
      await sync.finish(id, { status: 'done', seen: 120, created: 3, updated: 110, skipped: 7, registrationSource: 'graph', error: null, adopted: [{ name: 'a', email: 'a@corp.test' }], conflicts }, new Date(T + 60_000))
      const latest = await sync.latest('entra')
      assert.deepEqual({ ...latest, conflicts: latest?.conflicts.length }, {
        id, provider: 'entra', startedAt: NOW, finishedAt: new Date(T + 60_000), status: 'done', seen: 120, created: 3, updated: 110, skipped: 7, registrationSource: 'graph', error: null,
        adopted: [{ name: 'a', email: 'a@corp.test' }], conflicts: SYNC_NAMES_KEPT
      })
      assert.equal(await sync.latest('aws'), undefined)
    })

    test('a directory user is created once and then updated in place, keeping a phone and creation date the directory stops sending', async () => {
      const { sync, connection } = stores
      const created = await sync.upsert('entra', record('obj-1', { privileged: true, groups: ['Finance', 'Admins', 'Finance'], methods: ['phone'], phone: '+14155550100', attributes: { dept: 'x' }, createdAt: new Date(T - 5 * DAY) }), NOW)
      assert.ok('userId' in created && created.created && !created.adopted)
      const userId = 'userId' in created ? created.userId : ''
      assert.equal(await sync.exists('entra', 'obj-1'), true)
      assert.equal(await sync.exists('aws', 'obj-1'), false)
      assert.deepEqual(await groupsOf(connection, userId), ['Admins', 'Finance'])
      const later = new Date(T + DAY)
      assert.deepEqual(await sync.upsert('entra', record('obj-1', { displayName: 'Renamed', groups: ['Sales'], disabled: true }), later), { userId, created: false, adopted: false })
      const row = await readUser(connection, userId)
      assert.deepEqual({ ...row, id: undefined }, {
        ...row, id: undefined, email: 'obj-1@corp.test', displayName: 'Renamed', role: 'user', privileged: false, provider: 'entra', disabled: true, externalId: 'obj-1',
        phone: '+14155550100', providerMethods: '[]', providerAttributes: '{}', directoryCreatedAt: T - 5 * DAY, syncedAt: later.getTime(), firstSeenAt: T, createdAt: T, updatedAt: later.getTime()
      })
      assert.deepEqual(await groupsOf(connection, userId), ['Sales'])
    })

    test("a user stored under a former id is found by it and takes the directory's new id", async () => {
      const { sync, connection } = stores
      await addUsers(connection, { id: 'iam-user', provider: 'aws', externalId: 'alice' })
      assert.deepEqual(await sync.upsert('aws', record('AIDA111', { formerExternalIds: ['alice'] }), NOW), { userId: 'iam-user', created: false, adopted: false })
      assert.equal((await readUser(connection, 'iam-user'))?.externalId, 'AIDA111')
      assert.equal(await sync.exists('aws', 'alice'), false)
    })

    test('a portal account imported before the directory is adopted by email; staff and accounts that signed in are not', async () => {
      const { sync, connection } = stores
      await addUsers(connection,
        { id: 'imported', email: 'imported@corp.test' },
        { id: 'helpdesk', email: 'helpdesk@corp.test', role: 'helpdesk' },
        { id: 'active', email: 'active@corp.test' })
      await signedIn(connection, 'active')
      assert.deepEqual(await sync.upsert('entra', record('obj-imp', { email: 'imported@corp.test' }), NOW), { userId: 'imported', created: false, adopted: true })
      assert.equal((await readUser(connection, 'imported'))?.externalId, 'obj-imp')
      assert.deepEqual(await sync.upsert('entra', record('obj-hd', { email: 'helpdesk@corp.test' }), NOW), {
        conflict: 'email helpdesk@corp.test belongs to a portal helpdesk account, which a directory never takes over', existingUserId: 'helpdesk', adoption: true, storedEmail: null
      })
      assert.deepEqual(await sync.upsert('entra', record('obj-act', { email: 'active@corp.test' }), NOW), {
        conflict: 'email active@corp.test belongs to a portal account that has signed in, which a directory never takes over by email', existingUserId: 'active', adoption: true, storedEmail: null
      })
      assert.equal(await sync.exists('entra', 'obj-hd'), false)
    })

    test("a directory user moving to an address another account holds is a conflict, and nothing of theirs changes", async () => {
      const { sync, connection } = stores
      await addUsers(connection, { id: 'dir-a', provider: 'aws', externalId: 'AIDA-A', email: 'a@corp.test' }, { id: 'dir-b', provider: 'aws', externalId: 'AIDA-B', email: 'b@corp.test', displayName: 'bob' })
      assert.deepEqual(await sync.upsert('aws', record('AIDA-A', { email: 'b@corp.test', displayName: 'Changed' }), NOW), {
        conflict: 'email b@corp.test belongs to aws user bob (AIDA-B)', existingUserId: 'dir-b', adoption: false, storedEmail: 'a@corp.test'
      })
      assert.equal((await readUser(connection, 'dir-a'))?.displayName, 'dir-a')
    })

    test('users of a provider not seen since a sync began are disabled, and named once', async () => {
      const { sync, connection } = stores
      await addUsers(connection,
        { id: 'gone', provider: 'gone-dir', externalId: 'g1', syncedAt: T - DAY },
        { id: 'never-synced', provider: 'gone-dir', externalId: 'g2' },
        { id: 'seen', provider: 'gone-dir', externalId: 'g3', syncedAt: T },
        { id: 'already-off', provider: 'gone-dir', externalId: 'g4', syncedAt: T - DAY, disabled: true },
        { id: 'elsewhere', provider: 'other-dir', externalId: 'g5', syncedAt: T - DAY })
      assert.deepEqual((await sync.disableUnseen('gone-dir', NOW)).sort(), ['gone', 'never-synced'])
      assert.equal((await readUser(connection, 'gone'))?.disabled, true)
      assert.equal((await readUser(connection, 'gone'))?.updatedAt, T)
      assert.equal((await readUser(connection, 'seen'))?.disabled, false)
      assert.equal((await readUser(connection, 'elsewhere'))?.disabled, false)
      assert.deepEqual(await sync.disableUnseen('gone-dir', NOW), [])
    })

    test('the newest drift check is the one the dashboard reads', async () => {
      const { drift } = stores
      assert.equal(await drift.latest(), undefined)
      await drift.record({ startedAt: new Date(T - DAY), finishedAt: new Date(T - DAY + 1000), checked: 10, drifted: 1, unchecked: 0, error: null })
      await drift.record({ startedAt: NOW, finishedAt: new Date(T + 1000), checked: 8, drifted: 0, unchecked: 2, error: 'throttled' })
      assert.deepEqual(await drift.latest(), { startedAt: NOW, finishedAt: new Date(T + 1000), checked: 8, drifted: 0, unchecked: 2, error: 'throttled' })
    })

    test("a user's directory phone reads back as set, null when none, undefined when there is no such user", async () => {
      const { phones, connection } = stores
      await addUsers(connection, { id: 'phone-user' })
      assert.equal(await phones.phoneOf('phone-user'), null)
      assert.equal(await phones.phoneOf('nobody'), undefined)
      await phones.setPhone('phone-user', '+14155550123')
      assert.equal(await phones.phoneOf('phone-user'), '+14155550123')
      assert.equal((await readUser(connection, 'phone-user'))?.updatedAt, T)
    })

    test('what a directory switch was before the first flip is kept per provider until forgotten; a later put replaces it', async () => {
      const { records, connection } = stores
      await addUsers(connection, { id: 'flipped' })
      assert.equal(await records.get('entra', 'flipped'), undefined)
      await records.put('entra', 'flipped', { found: 'disabled', set: 'enforced' })
      await records.put('aws', 'flipped', { found: 'none', set: 'policy' })
      await records.put('entra', 'flipped', { found: 'enabled', set: 'enforced' })
      assert.deepEqual(await records.get('entra', 'flipped'), { found: 'enabled', set: 'enforced' })
      await records.forget('entra', 'flipped')
      assert.equal(await records.get('entra', 'flipped'), undefined)
      assert.deepEqual(await records.get('aws', 'flipped'), { found: 'none', set: 'policy' })
    })

    test("an OATH setup opens with its seed, a newer one replaces it, and it is claimed once until given back", async () => {
      const { entra, connection } = stores
      await addUsers(connection, { id: 'oath-user', provider: 'entra', externalId: 'obj-oath' })
      const first = await entra.startOath('oath-user', 'JBSWY3DPEHPK3PXP', new Date(T + 600_000))
      const second = await entra.startOath('oath-user', 'KRSXG5CTMVRXEZLU', new Date(T + 900_000))
      assert.deepEqual(await entra.findOath('oath-user'), { id: second.id, userId: 'oath-user', secret: 'KRSXG5CTMVRXEZLU', expiresAt: new Date(T + 900_000) })
      assert.equal(await entra.claimOath(first.id, NOW), false, 'the replaced setup is gone')
      assert.equal(await entra.claimOath(second.id, NOW), true)
      assert.equal(await entra.claimOath(second.id, NOW), false)
      assert.equal(await entra.findOath('oath-user'), undefined, 'a claimed setup is no longer pending')
      await entra.releaseOath(second.id)
      assert.equal((await entra.findOath('oath-user'))?.id, second.id)
      assert.equal(await entra.claimOath(second.id, NOW), true)
      await entra.completeOath(second.id, 'device-1')
      await entra.releaseOath(second.id)
      assert.equal(await entra.findOath('oath-user'), undefined, 'an activated token is never given back')
      assert.equal(await entra.findOath('nobody'), undefined)
    })

    test('unfinished setups that ended are purged; live, activated and cleanup entries are kept', async () => {
      const { entra, connection } = stores
      await addUsers(connection, { id: 'purge-a', provider: 'entra', externalId: 'obj-pa' }, { id: 'purge-b', provider: 'entra', externalId: 'obj-pb' }, { id: 'purge-c', provider: 'entra', externalId: 'obj-pc' })
      await entra.startOath('purge-a', 'JBSWY3DPEHPK3PXP', new Date(T - 1))
      await entra.startOath('purge-b', 'JBSWY3DPEHPK3PXP', new Date(T + 1))
      const done = await entra.startOath('purge-c', 'JBSWY3DPEHPK3PXP', new Date(T - 1))
      await entra.claimOath(done.id, NOW)
      await entra.completeOath(done.id, 'device-2')
      await entra.recordOathCleanup('purge-c', 'SN-purge', new Date(T - DAY))
      assert.equal(await entra.purgeUnfinishedOath(NOW), 1)
      assert.equal(await entra.findOath('purge-a'), undefined)
      assert.notEqual(await entra.findOath('purge-b'), undefined)
      assert.ok((await entra.dueOathCleanups(NOW, 10)).some((c) => c.serialNumber === 'SN-purge'))
    })

    test('token cleanups fall due in order, are leased by moving their due time once, and are forgotten when done', async () => {
      const { entra, connection } = stores
      await addUsers(connection, { id: 'cleanup-entra', provider: 'entra', externalId: 'obj-cl' }, { id: 'cleanup-local' })
      const later = await entra.recordOathCleanup('cleanup-entra', 'SN-2', new Date(T - 1000))
      const sooner = await entra.recordOathCleanup('cleanup-local', 'SN-1', new Date(T - 2 * DAY))
      await entra.recordOathCleanup('cleanup-entra', 'SN-future', new Date(T + DAY))
      const due = (await entra.dueOathCleanups(NOW, 10)).filter((c) => c.serialNumber.startsWith('SN-') && c.serialNumber !== 'SN-purge')
      assert.deepEqual(due, [
        { id: sooner, userId: 'cleanup-local', externalId: null, serialNumber: 'SN-1', dueAt: new Date(T - 2 * DAY) },
        { id: later, userId: 'cleanup-entra', externalId: 'obj-cl', serialNumber: 'SN-2', dueAt: new Date(T - 1000) }
      ])
      assert.equal((await entra.dueOathCleanups(NOW, 1)).length, 1)
      assert.equal(await entra.postponeOathCleanup(due[0], new Date(T + 3_600_000)), true)
      assert.equal(await entra.postponeOathCleanup(due[0], new Date(T + 7_200_000)), false, 'another caller moved it first')
      await entra.forgetOathCleanup(later)
      assert.deepEqual((await entra.dueOathCleanups(NOW, 10)).map((c) => c.serialNumber).filter((s) => s !== 'SN-purge'), [])
    })

    test('Entra users are found by object id with their directory phones, methods and what was read while disabled', async () => {
      const { entra, connection } = stores
      await addUsers(connection,
        { id: 'ph-b', email: 'b-phone@corp.test', provider: 'entra', externalId: 'obj-pb2', phone: '+14155550002', privileged: true, role: 'admin' },
        { id: 'ph-a', email: 'a-phone@corp.test', provider: 'entra', externalId: 'obj-pa2', phone: '+14155550001' },
        { id: 'ph-off', email: 'c-phone@corp.test', provider: 'entra', externalId: 'obj-off', phone: '+14155550003', disabled: true, providerMethods: '["fido2"]', providerAttributes: '{"methodsReadWhileDisabled":"2026-03-01T00:00:00.000Z","unrecognisedMethods":7}' },
        { id: 'ph-local', email: 'd-phone@corp.test', phone: '+14155550004' })
      const withPhones = (await entra.entraUsersWithPhones()).filter((u) => u.email.endsWith('-phone@corp.test'))
      assert.deepEqual(withPhones, [
        { userId: 'ph-a', email: 'a-phone@corp.test', externalId: 'obj-pa2', phone: '+14155550001', privileged: false, role: 'user' },
        { userId: 'ph-b', email: 'b-phone@corp.test', externalId: 'obj-pb2', phone: '+14155550002', privileged: true, role: 'admin' }
      ])
      assert.deepEqual(await entra.entraUsersByExternalId(['obj-pb2', 'obj-unknown', 'obj-pb2']), new Map([['obj-pb2', { userId: 'ph-b', email: 'b-phone@corp.test', privileged: true, role: 'admin' }]]))
      await entra.setProviderMethods('ph-a', ['phone', 'microsoftAuthenticator'])
      assert.deepEqual(await entra.disabledUserRecords(['obj-off', 'obj-pa2', 'obj-unknown']), new Map([
        ['obj-off', { methods: ['fido2'], readAt: '2026-03-01T00:00:00.000Z', unrecognisedMethods: null }],
        ['obj-pa2', { methods: ['phone', 'microsoftAuthenticator'], readAt: null, unrecognisedMethods: null }]
      ]))
      assert.equal(await entra.userIdByObjectId('obj-off'), 'ph-off')
      assert.equal(await entra.userIdByObjectId('obj-unknown'), undefined)
    })

    if (name === 'PostgreSQL') {
      test('the same new directory user synced by two instances at once is created once', async () => {
        const other = await storesOn(backend)
        try {
          const results = await Promise.all([stores.sync.upsert('entra', record('obj-race'), NOW), other.sync.upsert('entra', record('obj-race'), NOW)])
          assert.deepEqual(results.map((r) => 'created' in r && r.created).sort(), [false, true])
          assert.equal(new Set(results.map((r) => 'userId' in r ? r.userId : '')).size, 1)
        } finally {
          await other.close()
        }
      })

      test('an OATH setup activated from two instances at once is claimed by exactly one', async () => {
        const other = await storesOn(backend)
        try {
          await addUsers(stores.connection, { id: 'oath-race', provider: 'entra', externalId: 'obj-oath-race' })
          const pending = await stores.entra.startOath('oath-race', 'JBSWY3DPEHPK3PXP', new Date(T + 600_000))
          const claims = await Promise.all([stores.entra.claimOath(pending.id, NOW), other.entra.claimOath(pending.id, NOW)])
          assert.deepEqual(claims.sort(), [false, true])
        } finally {
          await other.close()
        }
      })

      test("two instances changing one user's phone at once take turns: the second sees the first one's number", async () => {
        const other = await storesOn(backend)
        try {
          await addUsers(stores.connection, { id: 'phone-race', phone: '+14155550999' })
          const change = async (phones: PgDirectoryPhoneStore, phone: string) => await phones.atomically(async () => {
            const before = await phones.phoneOf('phone-race')
            await sleep(30)
            await phones.setPhone('phone-race', phone)
            return before
          })
          const seen = await Promise.all([change(stores.phones as PgDirectoryPhoneStore, '+14155550111'), change(other.phones as PgDirectoryPhoneStore, '+14155550222')])
          const final = await stores.phones.phoneOf('phone-race')
          assert.ok(seen.includes('+14155550999'))
          assert.ok(seen.includes(final === '+14155550111' ? '+14155550222' : '+14155550111'))
        } finally {
          await other.close()
        }
      })

      test('a phone change whose work fails is rolled back', async () => {
        await addUsers(stores.connection, { id: 'phone-rollback', phone: '+14155550888' })
        const phones = stores.phones as PgDirectoryPhoneStore
        await assert.rejects(phones.atomically(async () => {
          await phones.setPhone('phone-rollback', '+14155550777')
          throw new Error('the audit write failed')
        }), /the audit write failed/)
        assert.equal(await stores.phones.phoneOf('phone-rollback'), '+14155550888')
      })
    }
  })
}
