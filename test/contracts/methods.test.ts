import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { sql } from 'drizzle-orm'
import type { NewPasskey } from '../../server/domain/methods.ts'
import { SqliteMethodStore } from '../../server/db/methods.ts'
import { PgMethodStore } from '../../server/db/pg/methods.ts'
import { Sealer } from '../../server/db/sealing.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'
import { changeRows, insertUser, rowsOf } from './rows.ts'

type Methods = SqliteMethodStore | PgMethodStore

const OLD_KEY = Buffer.alloc(32, 1)
const NEW_KEY = Buffer.alloc(32, 2)
const NEWEST_KEY = Buffer.alloc(32, 3)

function methodStore (connection: Connection, sealer: Sealer, clock: FakeClock): Methods {
  return connection.dialect === 'sqlite'
    ? new SqliteMethodStore(connection.database.access, sealer, clock)
    : new PgMethodStore(connection.access, sealer, clock)
}

function passkey (credentialId: string, counter = 0): NewPasskey {
  return { name: `Key ${credentialId}`, credentialId, publicKey: new Uint8Array([1, 2, 3, 250]), counter, transports: ['usb', 'nfc'], aaguid: 'aaguid-1', backedUp: false }
}

async function totpCount (connection: Connection): Promise<number> {
  const [{ n }] = await rowsOf<{ n: number }>(connection, sql`SELECT CAST(count(*) AS INTEGER) AS n FROM auth_methods WHERE kind = 'totp'`)
  return n
}

for (const { name, open } of BACKENDS) {
  describe(`methods on ${name}`, () => {
    const clock = new FakeClock('2026-11-25T09:00:00Z')
    let backend: Backend
    let connection: Connection & { close(): Promise<void> }
    let methods: Methods
    before(async () => {
      backend = await open()
      connection = await backend.connect()
      methods = methodStore(connection, new Sealer(OLD_KEY), clock)
      for (const id of ['ann', 'ben', 'cat', 'dan', 'eve']) await insertUser(connection, id)
    })
    after(async () => {
      await connection.close()
      await backend.drop()
    })

    test('a user\'s methods list in the order they were added, and count', async () => {
      const key = await methods.addPasskey('ann', passkey('ann-key'))
      clock.advance(1_000)
      const app = await methods.addTotp('ann', 'Phone app', 'JBSWY3DPEHPK3PXP', 100)
      clock.advance(1_000)
      const phone = await methods.addPhone('ann', 'Mobile', '+4915112345678')
      await methods.addPhone('ben', 'Not Ann\'s', '+4915100000000')
      assert.deepEqual(key, { id: key.id, userId: 'ann', kind: 'passkey', name: 'Key ann-key', createdAt: new Date(clock.now().getTime() - 2_000), lastUsedAt: null, phone: null, aaguid: 'aaguid-1' })
      assert.deepEqual(phone, { id: phone.id, userId: 'ann', kind: 'phone', name: 'Mobile', createdAt: clock.now(), lastUsedAt: null, phone: '+4915112345678', aaguid: null })
      assert.deepEqual(await methods.listFor('ann'), [key, app, phone])
      assert.equal(await methods.countFor('ann'), 3)
      assert.equal(await methods.countFor('nobody'), 0)
      assert.deepEqual(await methods.listFor('nobody'), [])
      // Two added at the same moment list by id, the same on both databases (and as the home page lists them).
      const second = await methods.addPhone('ben', 'Also Ben\'s', '+4915100000001')
      const bens = await methods.listFor('ben')
      assert.equal(bens.length, 2)
      assert.deepEqual(bens.map((m) => m.id), [second.id, ...bens.filter((m) => m.id !== second.id).map((m) => m.id)].sort())
    })

    test('a method is found, renamed and removed only through its own user', async () => {
      const phone = await methods.addPhone('ben', 'Old name', '+4915100000001')
      assert.deepEqual(await methods.findFor('ben', phone.id), phone)
      assert.equal(await methods.findFor('ann', phone.id), undefined)
      assert.equal(await methods.rename('ann', phone.id, 'Hijacked'), false)
      assert.equal(await methods.rename('ben', phone.id, 'New name'), true)
      assert.equal((await methods.findFor('ben', phone.id))?.name, 'New name')
      assert.equal(await methods.remove('ann', phone.id), undefined)
      assert.deepEqual(await methods.remove('ben', phone.id), { ...phone, name: 'New name' })
      assert.equal(await methods.remove('ben', phone.id), undefined)
      assert.equal(await methods.findFor('ben', phone.id), undefined)
    })

    test('a passkey is found by its credential id with its key, counter and transports; other kinds are not passkeys', async () => {
      const added = await methods.addPasskey('cat', passkey('cat-key', 7))
      await methods.addTotp('cat', 'App', 'JBSWY3DPEHPK3PXP', 1)
      const expected = { methodId: added.id, userId: 'cat', credentialId: 'cat-key', publicKey: new Uint8Array([1, 2, 3, 250]), counter: 7, transports: ['usb', 'nfc'] }
      assert.deepEqual(await methods.passkeyByCredentialId('cat-key'), expected)
      assert.equal(await methods.passkeyByCredentialId('no-such-key'), undefined)
      assert.deepEqual(await methods.passkeysFor('cat'), [expected])
    })

    test('a passkey use is recorded once per counter value: a clone presenting the old counter loses', async () => {
      const added = await methods.addPasskey('cat', passkey('cat-counter', 5))
      const at = new Date('2026-11-25T10:00:00Z')
      assert.equal(await methods.recordPasskeyUse(added.id, 5, 6, at), true)
      assert.equal(await methods.recordPasskeyUse(added.id, 5, 7, at), false)
      assert.equal((await methods.passkeyByCredentialId('cat-counter'))?.counter, 6)
      assert.deepEqual((await methods.findFor('cat', added.id))?.lastUsedAt, at)
    })

    test('a counter past 2^31 is kept exactly', async () => {
      const added = await methods.addPasskey('cat', passkey('cat-big', 2 ** 32 - 2))
      assert.equal(await methods.recordPasskeyUse(added.id, 2 ** 32 - 2, 2 ** 32 - 1, clock.now()), true)
      assert.equal((await methods.passkeyByCredentialId('cat-big'))?.counter, 2 ** 32 - 1)
    })

    test('an authenticator app\'s secret is sealed at rest and opens only for its own user', async () => {
      const app = await methods.addTotp('dan', 'App', 'JBSWY3DPEHPK3PXP', 1)
      assert.equal(await methods.totpSecret('dan', app.id), 'JBSWY3DPEHPK3PXP')
      assert.equal(await methods.totpSecret('ann', app.id), undefined)
      const [row] = await rowsOf<{ secret_sealed: string }>(connection, sql`SELECT secret_sealed FROM auth_methods WHERE id = ${app.id}`)
      assert.doesNotMatch(row.secret_sealed, /JBSWY3DPEHPK3PXP/)
    })

    test('a sealed secret copied onto another method does not open', async () => {
      const original = await methods.addTotp('dan', 'Original', 'JBSWY3DPEHPK3PXP', 1)
      const target = await methods.addTotp('dan', 'Target', 'GEZDGNBVGY3TQOJQ', 1)
      await changeRows(connection, sql`UPDATE auth_methods SET secret_sealed = (SELECT secret_sealed FROM auth_methods WHERE id = ${original.id}) WHERE id = ${target.id}`)
      await assert.rejects(async () => { await methods.totpSecret('dan', target.id) })
      // A secret that will not open stops key rotation: the tests after this one rotate keys.
      await methods.remove('dan', target.id)
    })

    test('a time step is claimed once, and never one at or before the last step used', async () => {
      const app = await methods.addTotp('dan', 'Steps', 'JBSWY3DPEHPK3PXP', 100)
      const at = new Date('2026-11-25T11:00:00Z')
      assert.equal(await methods.claimTotpStep(app.id, 100, at), false)
      assert.equal(await methods.claimTotpStep(app.id, 99, at), false)
      assert.equal(await methods.claimTotpStep(app.id, 101, at), true)
      assert.equal(await methods.claimTotpStep(app.id, 101, at), false)
      assert.deepEqual((await methods.findFor('dan', app.id))?.lastUsedAt, at)
    })

    test('a use is recorded on the method', async () => {
      const phone = await methods.addPhone('eve', 'Mobile', '+4915100000002')
      await methods.markUsed(phone.id, new Date('2026-11-25T12:00:00Z'))
      assert.deepEqual((await methods.findFor('eve', phone.id))?.lastUsedAt, new Date('2026-11-25T12:00:00Z'))
    })

    test('key rotation re-seals every secret not under the current key once, and they open under the new key alone', async () => {
      const app = await methods.addTotp('eve', 'Rotated', 'JBSWY3DPEHPK3PXP', 1)
      const rotating = methodStore(connection, new Sealer(NEW_KEY, [OLD_KEY]), clock)
      assert.equal(await rotating.resealAll(), await totpCount(connection))
      assert.equal(await rotating.resealAll(), 0)
      assert.equal(await methodStore(connection, new Sealer(NEW_KEY), clock).totpSecret('eve', app.id), 'JBSWY3DPEHPK3PXP')
    })

    test('key rotation changes nothing when one secret will not open', async () => {
      const app = await methods.addTotp('eve', 'Sealed elsewhere', 'JBSWY3DPEHPK3PXP', 1)
      const [before] = await rowsOf<{ secret_sealed: string }>(connection, sql`SELECT secret_sealed FROM auth_methods WHERE id = ${app.id}`)
      // The store knows the newest and the new key, but this secret is under the old one.
      await assert.rejects(async () => { await methodStore(connection, new Sealer(NEWEST_KEY, [NEW_KEY]), clock).resealAll() })
      const [after] = await rowsOf<{ secret_sealed: string }>(connection, sql`SELECT secret_sealed FROM auth_methods WHERE id = ${app.id}`)
      assert.equal(after.secret_sealed, before.secret_sealed)
      const [{ n }] = await rowsOf<{ n: number }>(connection, sql`SELECT CAST(count(*) AS INTEGER) AS n FROM auth_methods WHERE kind = 'totp' AND secret_sealed LIKE ${`v1.${new Sealer(NEWEST_KEY).currentKeyId}.%`}`)
      assert.equal(n, 0)
    })

    if (name === 'PostgreSQL') {
      test('the same time step claimed on two instances at once is accepted once', async () => {
        const other = await backend.connect()
        try {
          const app = await methods.addTotp('ann', 'Raced', 'JBSWY3DPEHPK3PXP', 1)
          const otherMethods = methodStore(other, new Sealer(OLD_KEY), clock)
          const claims = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? methods : otherMethods).claimTotpStep(app.id, 2, clock.now())))
          assert.equal(claims.filter(Boolean).length, 1)
        } finally {
          await other.close()
        }
      })

      test('one passkey counter value presented on two instances at once is recorded once', async () => {
        const other = await backend.connect()
        try {
          const key = await methods.addPasskey('ann', passkey('ann-raced', 10))
          const otherMethods = methodStore(other, new Sealer(OLD_KEY), clock)
          const uses = await Promise.all(Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? methods : otherMethods).recordPasskeyUse(key.id, 10, 11 + i, clock.now())))
          assert.equal(uses.filter(Boolean).length, 1)
        } finally {
          await other.close()
        }
      })

      test('a key rotation run on two instances at once re-seals each secret once', async () => {
        const other = await backend.connect()
        try {
          await methods.addTotp('ann', 'Rotated twice', 'JBSWY3DPEHPK3PXP', 1)
          const sealer = new Sealer(NEWEST_KEY, [NEW_KEY, OLD_KEY])
          const counts = await Promise.all([methodStore(connection, sealer, clock).resealAll(), methodStore(other, sealer, clock).resealAll()])
          assert.equal(counts[0] + counts[1], await totpCount(connection))
          assert.ok(counts.includes(0))
        } finally {
          await other.close()
        }
      })
    }
  })
}
