import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { InvitationStore } from '../../server/domain/invitations.ts'
import { SqliteInvitationStore } from '../../server/db/invitations.ts'
import { PgInvitationStore } from '../../server/db/pg/invitations.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { insertAccount } from './rows.ts'

interface Stores {
  connection: Connection
  invitations: InvitationStore | InvitationStore
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  const invitations = connection.dialect === 'sqlite' ? new SqliteInvitationStore(connection.database.access) : new PgInvitationStore(connection.access)
  return { connection, invitations, close: connection.close }
}

const at = (minute: number): Date => new Date(Date.UTC(2026, 10, 25, 9, minute))

for (const { name, open } of BACKENDS) {
  describe(`invitations on ${name}`, () => {
    let backend: Backend
    let stores: Stores
    const user = async (id: string): Promise<string> => {
      await insertAccount(stores.connection, { id, email: `${id}@example.test` })
      return id
    }
    const issue = async (store: Stores, userId: string, id: string, createdAt: Date, expiresAt = at(60)): Promise<void> => {
      await store.invitations.replace({ id, userId, tokenHash: `hash-${id}`, createdBy: 'admin-1', createdAt, expiresAt })
    }
    before(async () => {
      backend = await open()
      stores = await storesOn(backend)
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('an invitation is found by its token hash as it was issued, unused; a token nobody issued finds nothing', async () => {
      const userId = await user('invited')
      await issue(stores, userId, 'inv-read', at(0))
      assert.deepEqual(await stores.invitations.findByTokenHash('hash-inv-read'),
        { id: 'inv-read', userId, createdBy: 'admin-1', createdAt: at(0), expiresAt: at(60), usedAt: null })
      assert.equal(await stores.invitations.findByTokenHash('hash-never-issued'), undefined)
    })

    test('an invitation works once: used again it is refused, and the first use is what stays recorded', async () => {
      const userId = await user('uses-twice')
      await issue(stores, userId, 'inv-once', at(0))
      assert.equal(await stores.invitations.consume('inv-once', at(1)), true)
      assert.equal(await stores.invitations.consume('inv-once', at(2)), false)
      assert.deepEqual((await stores.invitations.findByTokenHash('hash-inv-once'))?.usedAt, at(1))
    })

    test('an invitation stops working the moment it expires', async () => {
      const userId = await user('too-late')
      await issue(stores, userId, 'inv-late', at(0), at(30))
      assert.equal(await stores.invitations.consume('inv-late', at(30)), false)
      assert.equal(await stores.invitations.consume('inv-late', at(29)), true)
    })

    test('a new invitation ends the unused earlier one at once; a used one keeps its record', async () => {
      const userId = await user('reissued')
      await issue(stores, userId, 'inv-used', at(0))
      await stores.invitations.consume('inv-used', at(1))
      await issue(stores, userId, 'inv-old', at(2))
      await issue(stores, userId, 'inv-new', at(3))
      assert.deepEqual((await stores.invitations.findByTokenHash('hash-inv-old'))?.expiresAt, at(3))
      assert.deepEqual((await stores.invitations.findByTokenHash('hash-inv-used'))?.expiresAt, at(60))
      assert.equal(await stores.invitations.consume('inv-old', at(4)), false)
      assert.equal(await stores.invitations.consume('inv-new', at(4)), true)
    })

    test('an invitation whose e-mail could not be sent is ended now; expiring a used one changes nothing', async () => {
      const userId = await user('unsent')
      await issue(stores, userId, 'inv-unsent', at(0))
      await stores.invitations.expire('inv-unsent', at(1))
      assert.deepEqual((await stores.invitations.findByTokenHash('hash-inv-unsent'))?.expiresAt, at(1))
      assert.equal(await stores.invitations.consume('inv-unsent', at(1)), false)

      await issue(stores, userId, 'inv-done', at(2))
      await stores.invitations.consume('inv-done', at(3))
      await stores.invitations.expire('inv-done', at(4))
      assert.deepEqual((await stores.invitations.findByTokenHash('hash-inv-done'))?.expiresAt, at(60))
    })

    if (name === 'PostgreSQL') {
      test('an invitation used on two instances at the same moment signs in exactly once', async () => {
        const other = await storesOn(backend)
        try {
          const userId = await user('race-use')
          await issue(stores, userId, 'inv-race', at(0))
          const uses = await Promise.all(Array.from({ length: 10 }, async (_, i) => await (i % 2 === 0 ? stores : other).invitations.consume('inv-race', at(1))))
          assert.equal(uses.filter(Boolean).length, 1)
        } finally {
          await other.close()
        }
      })

      test('two invitations issued for one person at the same moment on two instances leave exactly one usable', async () => {
        const other = await storesOn(backend)
        try {
          const userId = await user('race-issue')
          await Promise.all([issue(stores, userId, 'inv-a', at(0)), issue(other, userId, 'inv-b', at(0))])
          const uses = [await stores.invitations.consume('inv-a', at(0)), await stores.invitations.consume('inv-b', at(0))]
          assert.deepEqual(uses.filter(Boolean), [true])
        } finally {
          await other.close()
        }
      })
    }
  })
}
