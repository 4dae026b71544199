import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { sql } from 'drizzle-orm'
import { SqliteUserStore } from '../../server/db/users.ts'
import { PgUserStore } from '../../server/db/pg/users.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'
import { changeRows, rowsOf } from './rows.ts'

interface Stores {
  connection: Connection
  users: SqliteUserStore | PgUserStore
  close(): Promise<void>
}

async function storesOn (backend: Backend, clock: FakeClock): Promise<Stores> {
  const connection = await backend.connect()
  const users = connection.dialect === 'sqlite' ? new SqliteUserStore(connection.database.access, clock) : new PgUserStore(connection.access, clock)
  return { connection, users, close: connection.close }
}

for (const { name, open } of BACKENDS) {
  describe(`users on ${name}`, () => {
    const clock = new FakeClock('2026-11-25T09:00:00Z')
    let backend: Backend
    let stores: Stores
    before(async () => {
      backend = await open()
      stores = await storesOn(backend, clock)
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('a created user reads back by id and by email, groups in byte order, optional fields at their defaults', async () => {
      const { users } = stores
      const created = await users.create({ email: 'ada@example.test', displayName: 'Ada Lovelace', groups: ['zeta', 'Alpha', 'beta'] })
      const expected = {
        id: created.id, email: 'ada@example.test', displayName: 'Ada Lovelace', role: 'user', phone: null,
        privileged: false, provider: 'local', groups: ['Alpha', 'beta', 'zeta'], disabled: false, enforcedAt: null, externalId: null,
        providerMethods: [], providerAttributes: {}, reenrollUntil: null, locale: null, timeZone: null,
        firstSeenAt: clock.now(), createdAt: clock.now()
      }
      assert.deepEqual(created, expected)
      assert.deepEqual(await users.findById(created.id), expected)
      assert.deepEqual(await users.findByEmail('ada@example.test'), expected)
    })

    test('the fields given at creation are kept, and a user without groups has none', async () => {
      const created = await stores.users.create({ email: 'root@example.test', displayName: 'Root', role: 'admin', passwordHash: 'hash', phone: '+4915112345678', privileged: true })
      const found = await stores.users.findById(created.id)
      assert.equal(found?.role, 'admin')
      assert.equal(found?.phone, '+4915112345678')
      assert.equal(found?.privileged, true)
      assert.deepEqual(found?.groups, [])
    })

    test('a user is read without their password hash; only their credentials, by email, carry it', async () => {
      const { users } = stores
      const created = await users.create({ email: 'hash@example.test', displayName: 'Hashed', role: 'admin', passwordHash: 'scrypt$hash', groups: ['ops'] })
      const passwordKeys = (user: object | undefined): string[] => Object.keys(user ?? {}).filter((key) => /password/i.test(key))
      const listed = (await users.listByRole('admin')).filter((user) => user.id === created.id)
      assert.equal(listed.length, 1)
      for (const user of [created, await users.findById(created.id), await users.findByEmail('hash@example.test'), ...listed]) {
        assert.deepEqual([user?.email, passwordKeys(user)], ['hash@example.test', []])
      }
      assert.deepEqual(await users.findCredentials('hash@example.test'), { user: await users.findById(created.id), passwordHash: 'scrypt$hash' })
      const withoutPassword = await users.create({ email: 'nopass@example.test', displayName: 'No password' })
      assert.deepEqual(await users.findCredentials('nopass@example.test'), { user: withoutPassword, passwordHash: null })
      assert.equal(await users.findCredentials('nobody@example.test'), undefined)
    })

    test('inside a transaction a user is read as the transaction left them; after a rollback, as before', async () => {
      const { users, connection } = stores
      const access = connection.dialect === 'sqlite' ? connection.database.access : connection.access
      const created = await users.create({ email: 'tx@example.test', displayName: 'In a transaction' })
      await assert.rejects(access.transaction(async () => {
        await users.setRole(created.id, 'admin')
        assert.equal((await users.findById(created.id))?.role, 'admin')
        throw new Error('rolled back')
      }), /rolled back/)
      assert.equal((await users.findById(created.id))?.role, 'user')
    })

    test('nobody is found for an unknown id or email', async () => {
      assert.equal(await stores.users.findById('no-such-id'), undefined)
      assert.equal(await stores.users.findByEmail('nobody@example.test'), undefined)
    })

    test('a second user with the same email is refused', async () => {
      await stores.users.create({ email: 'twice@example.test', displayName: 'Once' })
      await assert.rejects(async () => { await stores.users.create({ email: 'twice@example.test', displayName: 'Twice' }) })
      assert.equal((await stores.users.findByEmail('twice@example.test'))?.displayName, 'Once')
    })

    test('alerts go to the active users of a role: a changed role counts, a disabled user does not', async () => {
      const { users, connection } = stores
      const promoted = await users.create({ email: 'promoted@example.test', displayName: 'Promoted', groups: ['ops'] })
      const disabled = await users.create({ email: 'disabled-helpdesk@example.test', displayName: 'Gone', role: 'helpdesk' })
      await changeRows(connection, sql`UPDATE users SET disabled = ${connection.dialect === 'sqlite' ? 1 : true} WHERE id = ${disabled.id}`)
      await users.setRole(promoted.id, 'helpdesk')
      const helpdesk = await users.listByRole('helpdesk')
      assert.deepEqual(helpdesk.map((u) => u.email), ['promoted@example.test'])
      assert.deepEqual(helpdesk[0].groups, ['ops'])
      assert.equal(helpdesk[0].role, 'helpdesk')
    })

    test('enforcement time is set, read back and cleared', async () => {
      const { users } = stores
      const user = await users.create({ email: 'enforced@example.test', displayName: 'Enforced' })
      assert.equal(await users.enforcedAt(user.id), null)
      await users.setEnforcedAt(user.id, new Date('2027-01-01T00:00:00Z'))
      assert.deepEqual(await users.enforcedAt(user.id), new Date('2027-01-01T00:00:00Z'))
      assert.deepEqual((await users.findById(user.id))?.enforcedAt, new Date('2027-01-01T00:00:00Z'))
      await users.setEnforcedAt(user.id, null)
      assert.equal(await users.enforcedAt(user.id), null)
      assert.equal(await users.enforcedAt('no-such-id'), null)
    })

    test('a re-enrollment window is set and cleared', async () => {
      const { users } = stores
      const user = await users.create({ email: 'reenroll@example.test', displayName: 'Reset' })
      await users.setReenrollUntil(user.id, new Date('2026-11-26T09:00:00Z'))
      assert.deepEqual((await users.findById(user.id))?.reenrollUntil, new Date('2026-11-26T09:00:00Z'))
      await users.setReenrollUntil(user.id, null)
      assert.equal((await users.findById(user.id))?.reenrollUntil, null)
    })

    test('preferences change only what is given: undefined keeps a value, null clears it', async () => {
      const { users } = stores
      const user = await users.create({ email: 'prefs@example.test', displayName: 'Prefs' })
      await users.setPreferences(user.id, { locale: 'de', timeZone: 'Europe/Berlin' })
      await users.setPreferences(user.id, { timeZone: 'Europe/Vienna' })
      let found = await users.findById(user.id)
      assert.equal(found?.locale, 'de')
      assert.equal(found?.timeZone, 'Europe/Vienna')
      await users.setPreferences(user.id, { locale: null })
      found = await users.findById(user.id)
      assert.equal(found?.locale, null)
      assert.equal(found?.timeZone, 'Europe/Vienna')
    })

    test('an import creates new users and updates existing ones, replacing their groups', async () => {
      const { users } = stores
      const existing = await users.create({ email: 'import-old@example.test', displayName: 'Old Name', groups: ['old'] })
      const counts = await users.upsertDirectoryUsers([
        { email: 'import-new@example.test', displayName: 'New', phone: '+4915100000001', groups: ['b', 'a'], privileged: true },
        { email: 'import-old@example.test', displayName: 'New Name', phone: null, groups: ['fresh'], privileged: false }
      ])
      assert.deepEqual(counts, { created: 1, updated: 1 })
      const created = await users.findByEmail('import-new@example.test')
      assert.equal(created?.displayName, 'New')
      assert.equal(created?.phone, '+4915100000001')
      assert.equal(created?.privileged, true)
      assert.deepEqual(created?.groups, ['a', 'b'])
      const updated = await users.findById(existing.id)
      assert.equal(updated?.displayName, 'New Name')
      assert.deepEqual(updated?.groups, ['fresh'])
    })

    test('an import is all or nothing: a bad row leaves every user as it was', async () => {
      const { users } = stores
      const existing = await users.create({ email: 'atomic-old@example.test', displayName: 'Before', groups: ['kept'] })
      await assert.rejects(async () => {
        await users.upsertDirectoryUsers([
          { email: 'atomic-new@example.test', displayName: 'Never', phone: null, groups: [], privileged: false },
          { email: 'atomic-old@example.test', displayName: 'After', phone: null, groups: ['dup', 'dup'], privileged: false }
        ])
      })
      assert.equal(await users.findByEmail('atomic-new@example.test'), undefined)
      const unchanged = await users.findById(existing.id)
      assert.equal(unchanged?.displayName, 'Before')
      assert.deepEqual(unchanged?.groups, ['kept'])
    })

    test('search matches the start of the email, of the name or of a word of the name, whatever the case', async () => {
      const { users } = stores
      await users.create({ email: 'ola.nordmann@example.test', displayName: 'Ola Nordmann' })
      await users.create({ email: 'Kari.Mixed@Example.test', displayName: 'Kari Svensson' })
      const emails = async (prefix: string) => (await users.search(prefix, null, 10)).map((u) => u.email)
      assert.deepEqual(await emails('OLA.'), ['ola.nordmann@example.test'])
      assert.deepEqual(await emails('  nord '), ['ola.nordmann@example.test'])
      assert.deepEqual(await emails('kari.m'), ['Kari.Mixed@Example.test'])
      assert.deepEqual(await emails('SVENS'), ['Kari.Mixed@Example.test'])
      assert.deepEqual(await emails('ordmann'), [])
      assert.deepEqual(await users.search('ola', null, 1), [{ id: (await users.findByEmail('ola.nordmann@example.test'))!.id, email: 'ola.nordmann@example.test', displayName: 'Ola Nordmann', role: 'user', provider: 'local', disabled: false }])
    })

    test('search takes % and _ literally', async () => {
      const { users } = stores
      await users.create({ email: 'pct%user@example.test', displayName: 'Percent' })
      await users.create({ email: 'pctxuser@example.test', displayName: 'Letter' })
      assert.deepEqual((await users.search('pct%', null, 10)).map((u) => u.email), ['pct%user@example.test'])
      assert.deepEqual((await users.search('pct_', null, 10)).map((u) => u.email), [])
    })

    test('search pages by email in byte order, after the last email shown', async () => {
      const { users } = stores
      for (const email of ['pg_a@example.test', 'pga@example.test', 'pg.a@example.test', 'pgB@example.test']) {
        await users.create({ email, displayName: 'Paged' })
      }
      const first = await users.search('pg', null, 2)
      assert.deepEqual(first.map((u) => u.email), ['pg.a@example.test', 'pgB@example.test'])
      const second = await users.search('pg', first[1].email, 2)
      assert.deepEqual(second.map((u) => u.email), ['pg_a@example.test', 'pga@example.test'])
      assert.deepEqual(await users.search('pg', second[1].email, 2), [])
    })

    test('count is the number of users', async () => {
      const [{ n }] = await rowsOf<{ n: number }>(stores.connection, sql`SELECT CAST(count(*) AS INTEGER) AS n FROM users`)
      assert.equal(await stores.users.count(), n)
      await stores.users.create({ email: 'counted@example.test', displayName: 'Counted' })
      assert.equal(await stores.users.count(), n + 1)
    })

    if (name === 'PostgreSQL') {
      test('the same new person imported on two instances at once is created once', async () => {
        const other = await storesOn(backend, clock)
        try {
          const row = { email: 'imported-twice@example.test', displayName: 'Twice', phone: null, groups: ['g'], privileged: false }
          const counts = await Promise.all([stores.users.upsertDirectoryUsers([row]), other.users.upsertDirectoryUsers([row])])
          assert.deepEqual(counts.map((c) => c.created).sort(), [0, 1])
          assert.deepEqual(counts.map((c) => c.updated).sort(), [0, 1])
          const [{ n }] = await rowsOf<{ n: number }>(stores.connection, sql`SELECT CAST(count(*) AS INTEGER) AS n FROM users WHERE email = 'imported-twice@example.test'`)
          assert.equal(n, 1)
          assert.deepEqual((await stores.users.findByEmail('imported-twice@example.test'))?.groups, ['g'])
        } finally {
          await other.close()
        }
      })
    }
  })
}
