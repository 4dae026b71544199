import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { UserRefResolver } from '../../server/domain/user-refs.ts'
import { SqliteUserRefResolver } from '../../server/db/user-refs.ts'
import { PgUserRefResolver } from '../../server/db/pg/user-refs.ts'
import { BACKENDS, type Backend } from '../helpers/backends.ts'
import { insertAccount } from './rows.ts'

for (const { name, open } of BACKENDS) {
  describe(`user references on ${name}`, () => {
    let backend: Backend
    let close: () => Promise<void>
    let refs: UserRefResolver | UserRefResolver
    before(async () => {
      backend = await open()
      const connection = await backend.connect()
      close = connection.close
      refs = connection.dialect === 'sqlite' ? new SqliteUserRefResolver(connection.database.access) : new PgUserRefResolver(connection.access)
      await insertAccount(connection, { id: 'u-local', email: 'local@example.test' })
      await insertAccount(connection, { id: 'u-entra', email: 'entra@example.test', provider: 'entra', externalId: 'object:1' })
      await insertAccount(connection, { id: 'u-aws', email: 'aws@example.test', provider: 'aws', externalId: 'object:1' })
    })
    after(async () => {
      await close()
      await backend.drop()
    })

    test("a portal id names the user only if it exists", async () => {
      assert.equal(await refs.resolve({ kind: 'id', id: 'u-local' }), 'u-local')
      assert.equal(await refs.resolve({ kind: 'id', id: 'u-missing' }), undefined)
    })

    test('an e-mail address names the user who has it', async () => {
      assert.equal(await refs.resolve({ kind: 'email', email: 'entra@example.test' }), 'u-entra')
      assert.equal(await refs.resolve({ kind: 'email', email: 'nobody@example.test' }), undefined)
    })

    test("a provider's id names the user of that provider only, even when another provider uses the same id", async () => {
      assert.equal(await refs.resolve({ kind: 'external', provider: 'entra', externalId: 'object:1' }), 'u-entra')
      assert.equal(await refs.resolve({ kind: 'external', provider: 'aws', externalId: 'object:1' }), 'u-aws')
      assert.equal(await refs.resolve({ kind: 'external', provider: 'local', externalId: 'object:1' }), undefined)
    })
  })
}
