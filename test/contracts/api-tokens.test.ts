import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ApiScope, ApiToken, ApiTokenStore } from '../../server/domain/api-tokens.ts'
import { SqliteApiTokenStore } from '../../server/db/api-tokens.ts'
import { PgApiTokenStore } from '../../server/db/pg/api-tokens.ts'
import { BACKENDS, type Backend } from '../helpers/backends.ts'

interface Stores {
  tokens: ApiTokenStore | ApiTokenStore
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  const tokens = connection.dialect === 'sqlite' ? new SqliteApiTokenStore(connection.database.access) : new PgApiTokenStore(connection.access)
  return { tokens, close: connection.close }
}

const at = (minute: number): Date => new Date(Date.UTC(2026, 10, 25, 9, minute))

function token (id: string, fields: Partial<ApiToken> = {}): ApiToken {
  return { id, name: `feed ${id}`, scopes: ['phones:write'], createdBy: 'admin-1', createdAt: at(0), expiresAt: null, lastUsedAt: null, revokedAt: null, ...fields }
}

for (const { name, open } of BACKENDS) {
  describe(`API tokens on ${name}`, () => {
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

    test('a token reads back by id and by hash as it was created; unknown ones find nothing', async () => {
      const created = token('t-read', { scopes: ['status:read', 'compliance:read'], expiresAt: at(90) })
      await stores.tokens.insert(created, 'hash-read')
      assert.deepEqual(await stores.tokens.find('t-read'), created)
      assert.deepEqual(await stores.tokens.findByHash('hash-read'), created)
      assert.equal(await stores.tokens.find('t-missing'), undefined)
      assert.equal(await stores.tokens.findByHash('hash-missing'), undefined)
    })

    test('scopes this version does not know grant nothing', async () => {
      await stores.tokens.insert(token('t-future', { scopes: ['status:read', 'users:delete' as ApiScope] }), 'hash-future')
      assert.deepEqual((await stores.tokens.find('t-future'))?.scopes, ['status:read'])
    })

    test('a token is revoked once: revoking it again, or a token that does not exist, says false and the first time stands', async () => {
      await stores.tokens.insert(token('t-revoke'), 'hash-revoke')
      assert.equal(await stores.tokens.revoke('t-revoke', at(5)), true)
      assert.equal(await stores.tokens.revoke('t-revoke', at(6)), false)
      assert.equal(await stores.tokens.revoke('t-missing', at(6)), false)
      assert.deepEqual((await stores.tokens.find('t-revoke'))?.revokedAt, at(5))
    })

    test('use is recorded at most once per interval', async () => {
      await stores.tokens.insert(token('t-touch'), 'hash-touch')
      const interval = 60_000
      await stores.tokens.touch('t-touch', at(10), interval)
      await stores.tokens.touch('t-touch', new Date(at(10).getTime() + 30_000), interval)
      assert.deepEqual((await stores.tokens.find('t-touch'))?.lastUsedAt, at(10))
      await stores.tokens.touch('t-touch', at(11), interval)
      assert.deepEqual((await stores.tokens.find('t-touch'))?.lastUsedAt, at(11))
    })

    test('after a key rotation a token is found by its new hash only', async () => {
      await stores.tokens.insert(token('t-rehash'), 'hash-old-key')
      await stores.tokens.rehash('t-rehash', 'hash-new-key')
      assert.equal((await stores.tokens.findByHash('hash-new-key'))?.id, 't-rehash')
      assert.equal(await stores.tokens.findByHash('hash-old-key'), undefined)
    })

    test('tokens are listed newest first, and those made at the same moment by id, last first', async () => {
      const fresh = await open()
      const listing = await storesOn(fresh)
      try {
        await listing.tokens.insert(token('t-b', { createdAt: at(1) }), 'hash-b')
        await listing.tokens.insert(token('t-a', { createdAt: at(2) }), 'hash-a')
        await listing.tokens.insert(token('t-c', { createdAt: at(1) }), 'hash-c')
        assert.deepEqual((await listing.tokens.list()).map((t) => t.id), ['t-a', 't-c', 't-b'])
      } finally {
        await listing.close()
        await fresh.drop()
      }
    })

    if (name === 'PostgreSQL') {
      test('a token revoked on two instances at the same moment is revoked once', async () => {
        const other = await storesOn(backend)
        try {
          await stores.tokens.insert(token('t-race'), 'hash-race')
          const revoked = await Promise.all([stores.tokens.revoke('t-race', at(5)), other.tokens.revoke('t-race', at(5))])
          assert.deepEqual(revoked.filter(Boolean), [true])
        } finally {
          await other.close()
        }
      })
    }
  })
}
