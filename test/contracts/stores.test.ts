import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { rmSync } from 'node:fs'
import path from 'node:path'
import { openDatabase } from '../../server/db/connection.ts'
import { applyMigrations } from '../../server/db/migrate.ts'
import { openPostgres } from '../../server/db/pg/connection.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'
import { pgMigrationStatus } from '../../server/db/pg/migration-status.ts'
import { postgresStores } from '../../server/db/pg/stores.ts'
import { Sealer } from '../../server/db/sealing.ts'
import { sqliteStores, type StoreDependencies, type Stores } from '../../server/db/stores.ts'
import { ChainKeyring } from '../../server/domain/audit.ts'
import { FakeClock, tempDir } from '../helpers/app.ts'
import { freshPostgresDatabase } from '../helpers/postgres.ts'

// Every field of the bundle, checked by the compiler: a field added to Stores must be added here too.
const EVERY_FIELD: Record<keyof Stores, true> = {
  dialect: true,
  users: true,
  audit: true,
  throttles: true,
  sessions: true,
  methods: true,
  pending: true,
  challenges: true,
  outbox: true,
  notices: true,
  accessPasses: true,
  campaigns: true,
  engine: true,
  enforcementRecords: true,
  rollout: true,
  approvals: true,
  recoveryCodes: true,
  recoveryNotices: true,
  invitations: true,
  directorySync: true,
  driftChecks: true,
  reminders: true,
  smsSunset: true,
  dashboard: true,
  entraPortal: true,
  providerEnrollments: true,
  userRefs: true,
  apiTokens: true,
  directoryPhones: true,
  compliance: true,
  storage: true,
  atomically: true,
  leadership: true,
  readiness: true,
  close: true
}

function dependencies (): StoreDependencies {
  const key = Buffer.alloc(32, 7)
  return {
    sealer: new Sealer(key),
    clock: new FakeClock(),
    keys: ChainKeyring.fromSecrets(undefined, key),
    sessionTimeouts: { idleMs: 30 * 60_000, absoluteMs: 12 * 3_600_000 }
  }
}

/** A fresh database of one dialect; `instance` builds the stores on it as one instance of the portal would. */
interface TestDatabase {
  instance(): Promise<Stores>
  drop(): Promise<void>
}

const DIALECTS: ReadonlyArray<{ name: string, dialect: Stores['dialect'], open: () => Promise<TestDatabase> }> = [
  {
    name: 'SQLite',
    dialect: 'sqlite',
    open: async () => {
      const dir = tempDir('mfa-stores-')
      const file = path.join(dir, 'portal.db')
      return {
        instance: async () => {
          const database = openDatabase(file)
          applyMigrations(database.db)
          return sqliteStores(database, dependencies())
        },
        drop: async () => { rmSync(dir, { recursive: true, force: true }) }
      }
    }
  },
  {
    name: 'PostgreSQL',
    dialect: 'postgresql',
    open: async () => {
      const target = await freshPostgresDatabase()
      return {
        instance: async () => await postgresStores(target.url, dependencies(), { max: 3, applicationName: 'mfa-rollout stores test' }),
        drop: async () => { await target.drop() }
      }
    }
  }
]

const LOCK = { failures: 5, windowStartedAt: 1_000, lockedUntil: 9_000_000_000_000 }

function mail (recipient: string): { channel: 'email', recipient: string, subject: string, bodyText: string, bodyHtml: null } {
  return { channel: 'email', recipient, subject: 'Your access pass', bodyText: 'A pass was issued.', bodyHtml: null }
}

async function mailTo (stores: Stores, recipient: string): Promise<number> {
  return (await stores.outbox.latest(1_000)).filter((message) => message.recipient === recipient).length
}

for (const { name, dialect, open } of DIALECTS) {
  describe(`the stores bundle on ${name}`, () => {
    let database: TestDatabase
    let stores: Stores
    before(async () => {
      database = await open()
      stores = await database.instance()
    })
    after(async () => {
      await stores.close()
      await database.drop()
    })

    test('holds every store, names its dialect and reports its migrations current', async () => {
      assert.equal(stores.dialect, dialect)
      assert.deepEqual(Object.keys(stores).sort(), Object.keys(EVERY_FIELD).sort())
      const missing = Object.entries(stores).filter(([, value]) => value === undefined || value === null).map(([field]) => field)
      assert.deepEqual(missing, [])
      const readiness = await stores.readiness()
      assert.equal(readiness.current, true)
      assert.ok(readiness.applied > 0)
      assert.equal(readiness.applied, readiness.expected)
    })

    test('work done atomically across stores is committed together, for every instance to see', async () => {
      await stores.atomically(async () => {
        await stores.throttles.write('atomic:commit', LOCK)
        await stores.outbox.add(mail('commit@example.test'), new Date('2026-11-25T09:00:00Z'))
      })
      const other = await database.instance()
      try {
        assert.deepEqual(await other.throttles.read('atomic:commit'), LOCK)
        assert.equal(await mailTo(other, 'commit@example.test'), 1)
      } finally {
        await other.close()
      }
    })

    test('work that throws leaves none of its writes behind in any store', async () => {
      await assert.rejects(stores.atomically(async () => {
        await stores.throttles.write('atomic:rollback', LOCK)
        await stores.outbox.add(mail('rollback@example.test'), new Date('2026-11-25T09:00:00Z'))
        throw new Error('the provider refused')
      }), /the provider refused/)
      assert.equal(await stores.throttles.read('atomic:rollback'), undefined)
      assert.equal(await mailTo(stores, 'rollback@example.test'), 0)
    })

    test('a closed bundle no longer reaches the database, and other instances carry on', async () => {
      const other = await database.instance()
      await other.close()
      await assert.rejects(other.readiness())
      assert.equal((await stores.readiness()).current, true)
    })
  })
}

describe('PostgreSQL migration status', () => {
  test('a database the portal has not migrated is reported not current, and current once migrated', async () => {
    const target = await freshPostgresDatabase()
    const database = await openPostgres(target.url, { max: 1 })
    try {
      const before = await pgMigrationStatus(database.db)
      assert.equal(before.applied, 0)
      assert.equal(before.current, false)
      assert.ok(before.expected > 0)
      await applyPgMigrations(database)
      assert.deepEqual(await pgMigrationStatus(database.db), { applied: before.expected, expected: before.expected, current: true })
    } finally {
      await database.close()
      await target.drop()
    }
  })
})
