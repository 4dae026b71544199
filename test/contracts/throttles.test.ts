import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Regulator, type ThrottleRows } from '../../server/domain/regulation.ts'
import { SqliteThrottleStore } from '../../server/db/throttles.ts'
import { PgThrottleStore } from '../../server/db/pg/throttles.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'

interface Stores {
  throttles: ThrottleRows
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection: Connection & { close(): Promise<void> } = await backend.connect()
  const throttles = connection.dialect === 'sqlite' ? new SqliteThrottleStore(connection.database.access) : new PgThrottleStore(connection.access)
  return { throttles, close: connection.close }
}

const policy = { maxFailures: 5, windowMs: 60_000, lockoutMs: 15 * 60_000 }

for (const { name, open } of BACKENDS) {
  describe(`throttles on ${name}`, () => {
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

    test('a key reads back what was written, the last write wins, and a cleared key is gone', async () => {
      const { throttles } = stores
      assert.equal(await throttles.read('rw'), undefined)
      await throttles.write('rw', { failures: 1, windowStartedAt: 1_000, lockedUntil: null })
      await throttles.write('rw', { failures: 2, windowStartedAt: 1_000, lockedUntil: 9_000_000_000_000 })
      assert.deepEqual(await throttles.read('rw'), { failures: 2, windowStartedAt: 1_000, lockedUntil: 9_000_000_000_000 })
      await throttles.clear('rw')
      assert.equal(await throttles.read('rw'), undefined)
    })

    test('housekeeping forgets only windows and locks that ended before the cut-off', async () => {
      const { throttles } = stores
      await throttles.write('purge:old-window', { failures: 1, windowStartedAt: 100, lockedUntil: null })
      await throttles.write('purge:old-lock', { failures: 5, windowStartedAt: 100, lockedUntil: 200 })
      await throttles.write('purge:lock-still-on', { failures: 5, windowStartedAt: 100, lockedUntil: 5_000 })
      await throttles.write('purge:new-window', { failures: 1, windowStartedAt: 4_000, lockedUntil: null })
      assert.equal(await throttles.purge(1_000), 2)
      assert.equal(await throttles.read('purge:old-window'), undefined)
      assert.equal(await throttles.read('purge:old-lock'), undefined)
      assert.notEqual(await throttles.read('purge:lock-still-on'), undefined)
      assert.notEqual(await throttles.read('purge:new-window'), undefined)
    })

    test('of 20 guesses claimed at the same moment, exactly the limit of 5 are let through to be checked', async () => {
      const regulator = new Regulator(stores.throttles, new FakeClock())
      const verdicts = await Promise.all(Array.from({ length: 20 }, async () => await regulator.claim([{ key: 'race', policy }])))
      assert.equal(verdicts.filter((v) => v.granted).length, 5)
      assert.deepEqual(await stores.throttles.read('race').then((s) => s?.failures), 5)
    })

    test('a claim over an account and an address is all or nothing when the address is locked', async () => {
      const regulator = new Regulator(stores.throttles, new FakeClock())
      for (let i = 0; i < 5; i++) await regulator.claim([{ key: 'ip:locked', policy }])
      const refused = await regulator.claim([{ key: 'account:x', policy }, { key: 'ip:locked', policy }])
      assert.equal(refused.granted, false)
      assert.equal(await stores.throttles.read('account:x'), undefined)
    })

    if (name === 'PostgreSQL') {
      test('guesses spread over two instances count against one limit: exactly 5 of 30 are let through', async () => {
        const other = await storesOn(backend)
        try {
          const clock = new FakeClock()
          const a = new Regulator(stores.throttles, clock)
          const b = new Regulator(other.throttles, clock)
          const verdicts = await Promise.all(Array.from({ length: 30 }, async (_, i) => await (i % 2 === 0 ? a : b).claim([{ key: 'two-instances', policy }])))
          assert.equal(verdicts.filter((v) => v.granted).length, 5)
          assert.equal((await a.check('two-instances')).locked, true)
          assert.equal((await b.check('two-instances')).locked, true)
        } finally {
          await other.close()
        }
      })
    }
  })
}
