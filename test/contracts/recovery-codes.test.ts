import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { RecoveryCodeStore, RecoveryNoticeStore } from '../../server/domain/recovery-codes.ts'
import { SqliteRecoveryCodeStore } from '../../server/db/recovery-codes.ts'
import { SqliteRecoveryNoticeStore } from '../../server/db/recovery-code-notices.ts'
import { PgRecoveryCodeStore } from '../../server/db/pg/recovery-codes.ts'
import { PgRecoveryNoticeStore } from '../../server/db/pg/recovery-code-notices.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { insertAccount } from './rows.ts'

interface Stores {
  connection: Connection
  codes: RecoveryCodeStore | RecoveryCodeStore
  notices: RecoveryNoticeStore | RecoveryNoticeStore
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  if (connection.dialect === 'sqlite') {
    return { connection, codes: new SqliteRecoveryCodeStore(connection.database.access), notices: new SqliteRecoveryNoticeStore(connection.database.access), close: connection.close }
  }
  return { connection, codes: new PgRecoveryCodeStore(connection.access), notices: new PgRecoveryNoticeStore(connection.access), close: connection.close }
}

const at = (minute: number): Date => new Date(Date.UTC(2026, 10, 25, 9, minute))

for (const { name, open } of BACKENDS) {
  describe(`recovery codes on ${name}`, () => {
    let backend: Backend
    let stores: Stores
    const user = async (id: string): Promise<string> => {
      await insertAccount(stores.connection, { id, email: `${id}@example.test` })
      return id
    }
    before(async () => {
      backend = await open()
      stores = await storesOn(backend)
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('a new set replaces the old one: only its codes count and work, and the reply says how many unused codes were voided', async () => {
      const { codes } = stores
      const id = await user('regenerates')
      assert.equal(await codes.replace(id, 'set-1', ['h1', 'h2', 'h3'], at(0)), 0)
      assert.equal(await codes.consume(id, 'h1', at(1)), true)
      assert.equal(await codes.remaining(id), 2)
      assert.equal(await codes.replace(id, 'set-2', ['h4', 'h5'], at(2)), 2)
      assert.equal(await codes.remaining(id), 2)
      assert.equal(await codes.consume(id, 'h2', at(3)), false)
      assert.equal(await codes.consume(id, 'h4', at(3)), true)
      assert.equal(await codes.remaining(id), 1)
    })

    test('a code works once: the same code used again is refused', async () => {
      const { codes } = stores
      const id = await user('uses-twice')
      await codes.replace(id, 'set-1', ['once'], at(0))
      assert.equal(await codes.consume(id, 'once', at(1)), true)
      assert.equal(await codes.consume(id, 'once', at(2)), false)
      assert.equal(await codes.remaining(id), 0)
    })

    test("a code works only for the user it was issued to", async () => {
      const { codes } = stores
      const owner = await user('owner')
      const other = await user('other')
      await codes.replace(owner, 'set-1', ['owned'], at(0))
      assert.equal(await codes.consume(other, 'owned', at(1)), false)
      assert.equal(await codes.remaining(owner), 1)
    })

    test('a helpdesk reset (no new codes) voids the set, and the user still counts as having had codes', async () => {
      const { codes } = stores
      const id = await user('reset')
      assert.equal(await codes.hasEverHad(id), false)
      await codes.replace(id, 'set-1', ['r1', 'r2'], at(0))
      assert.equal(await codes.replace(id, 'reset', [], at(1)), 2)
      assert.equal(await codes.remaining(id), 0)
      assert.equal(await codes.consume(id, 'r1', at(2)), false)
      assert.equal(await codes.hasEverHad(id), true)
    })

    test("a \"This wasn't me\" notice is found by its token hash as it was stored; a token nobody issued finds nothing", async () => {
      const { notices } = stores
      const id = await user('noticed')
      const created = await notices.create({ userId: id, tokenHash: 'notice-hash', usedCodeAt: at(5), expiresAt: at(50) })
      assert.deepEqual(created, { id: created.id, userId: id, usedCodeAt: at(5), expiresAt: at(50), usedAt: null })
      assert.deepEqual(await notices.findByTokenHash('notice-hash'), created)
      assert.equal(await notices.findByTokenHash('never-issued'), undefined)
    })

    test('a notice is claimed once: a second claim is refused and the first time stands', async () => {
      const { notices } = stores
      const id = await user('claims')
      const notice = await notices.create({ userId: id, tokenHash: 'claim-hash', usedCodeAt: at(5), expiresAt: at(50) })
      assert.equal(await notices.claim(notice.id, at(6)), true)
      assert.equal(await notices.claim(notice.id, at(7)), false)
      assert.deepEqual((await notices.findByTokenHash('claim-hash'))?.usedAt, at(6))
    })

    if (name === 'PostgreSQL') {
      test('one code tried on two instances at the same moment works exactly once', async () => {
        const other = await storesOn(backend)
        try {
          const id = await user('code-race')
          await stores.codes.replace(id, 'set-1', ['raced'], at(0))
          const tries = await Promise.all(Array.from({ length: 10 }, async (_, i) => await (i % 2 === 0 ? stores : other).codes.consume(id, 'raced', at(1))))
          assert.equal(tries.filter(Boolean).length, 1)
        } finally {
          await other.close()
        }
      })

      test('two new sets made for one user at the same moment on two instances leave exactly one current set', async () => {
        const other = await storesOn(backend)
        try {
          const id = await user('set-race')
          await Promise.all([
            stores.codes.replace(id, 'set-a', ['a1', 'a2', 'a3'], at(0)),
            other.codes.replace(id, 'set-b', ['b1', 'b2', 'b3'], at(0))
          ])
          assert.equal(await stores.codes.remaining(id), 3)
        } finally {
          await other.close()
        }
      })

      test('a notice claimed on two instances at the same moment is claimed exactly once', async () => {
        const other = await storesOn(backend)
        try {
          const id = await user('notice-race')
          const notice = await stores.notices.create({ userId: id, tokenHash: 'race-hash', usedCodeAt: at(5), expiresAt: at(50) })
          const claims = await Promise.all([stores.notices.claim(notice.id, at(6)), other.notices.claim(notice.id, at(6))])
          assert.deepEqual(claims.filter(Boolean), [true])
        } finally {
          await other.close()
        }
      })
    }
  })
}
