import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { AWS_VIRTUAL_MFA, type ProviderEnrollmentStore } from '../../server/domain/virtual-mfa-enrollment.ts'
import { SqliteProviderEnrollmentStore } from '../../server/db/provider-enrollments.ts'
import { PgProviderEnrollmentStore } from '../../server/db/pg/provider-enrollments.ts'
import { Sealer } from '../../server/db/sealing.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'
import { insertAccount, readAccount } from './rows.ts'

interface Stores {
  connection: Connection
  enrollments: ProviderEnrollmentStore | ProviderEnrollmentStore
  close(): Promise<void>
}

const sealer = new Sealer(Buffer.alloc(32, 7))
const clock = new FakeClock('2026-11-25T09:00:00Z')

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  const enrollments = connection.dialect === 'sqlite'
    ? new SqliteProviderEnrollmentStore(connection.database.access, sealer, clock)
    : new PgProviderEnrollmentStore(connection.access, sealer, clock)
  return { connection, enrollments, close: connection.close }
}

const at = (minute: number): Date => new Date(Date.UTC(2026, 10, 25, 9, minute))
const SEED = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

for (const { name, open } of BACKENDS) {
  describe(`provider enrollments on ${name}`, () => {
    let backend: Backend
    let stores: Stores
    const person = async (id: string, fields: { providerMethods?: string, providerAttributes?: string } = {}): Promise<string> => {
      await insertAccount(stores.connection, { id, email: `${id}@example.test`, provider: 'aws', externalId: id, ...fields })
      return id
    }
    const start = async (store: Stores, userId: string, deviceId: string, expiresAt = at(15), kind = AWS_VIRTUAL_MFA) =>
      await store.enrollments.start({ userId, provider: 'aws', kind, deviceId, secret: SEED, expiresAt })
    const methodsOf = async (userId: string): Promise<string[]> => JSON.parse((await readAccount(stores.connection, userId))?.providerMethods ?? 'null') as string[]
    before(async () => {
      backend = await open()
      stores = await storesOn(backend)
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('a started setup is found open, with its seed, until it expires', async () => {
      const userId = await person('starts')
      const started = await start(stores, userId, 'arn:aws:iam::1:mfa/starts', at(15))
      assert.deepEqual(started, {
        id: started.id, userId, provider: 'aws', kind: AWS_VIRTUAL_MFA, deviceId: 'arn:aws:iam::1:mfa/starts', attempts: 0, createdAt: clock.now(), expiresAt: at(15), completedAt: null
      })
      assert.deepEqual(await stores.enrollments.findOpen(userId, AWS_VIRTUAL_MFA, at(14)), { ...started, secret: SEED })
      assert.equal(await stores.enrollments.findOpen(userId, AWS_VIRTUAL_MFA, at(15)), undefined)
      assert.equal(await stores.enrollments.findOpen(userId, 'other_kind', at(14)), undefined)
    })

    test('starting again drops the earlier unfinished setup of that kind, so only the new device is ever cleaned up', async () => {
      const userId = await person('restarts')
      const first = await start(stores, userId, 'device-first', at(5))
      const second = await start(stores, userId, 'device-second', at(6))
      assert.equal((await stores.enrollments.findOpen(userId, AWS_VIRTUAL_MFA, at(0)))?.id, second.id)
      const abandoned = (await stores.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(30), 100)).filter((e) => e.userId === userId)
      assert.deepEqual(abandoned.map((e) => e.id), [second.id])
      assert.equal(await stores.enrollments.remove(first.id), false)
    })

    test('wrong codes are counted on the setup', async () => {
      const userId = await person('mistypes')
      const started = await start(stores, userId, 'device-mistyped')
      await stores.enrollments.addAttempt(started.id)
      await stores.enrollments.addAttempt(started.id)
      assert.equal((await stores.enrollments.findOpen(userId, AWS_VIRTUAL_MFA, at(0)))?.attempts, 2)
    })

    test("completing a setup adds the method to the user's provider methods once and keeps no seed; completing it again is refused", async () => {
      const userId = await person('completes', { providerMethods: '["phone"]' })
      const started = await start(stores, userId, 'device-done')
      assert.equal(await stores.enrollments.complete(started.id, AWS_VIRTUAL_MFA, at(2)), true)
      assert.deepEqual(await methodsOf(userId), ['phone', AWS_VIRTUAL_MFA])
      assert.equal((await readAccount(stores.connection, userId))?.updatedAt, at(2).getTime())
      assert.equal(await stores.enrollments.complete(started.id, AWS_VIRTUAL_MFA, at(3)), false)
      assert.equal(await stores.enrollments.findOpen(userId, AWS_VIRTUAL_MFA, at(3)), undefined)

      const again = await start(stores, userId, 'device-again')
      assert.equal(await stores.enrollments.complete(again.id, AWS_VIRTUAL_MFA, at(4)), true)
      assert.deepEqual(await methodsOf(userId), ['phone', AWS_VIRTUAL_MFA])
    })

    test('a completed setup is neither dropped by a new start nor listed as abandoned, nor removable', async () => {
      const userId = await person('keeps-completed')
      const done = await start(stores, userId, 'device-kept', at(5))
      await stores.enrollments.complete(done.id, AWS_VIRTUAL_MFA, at(1))
      await start(stores, userId, 'device-next', at(5))
      const listed = (await stores.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(30), 100)).map((e) => e.id)
      assert.equal(listed.includes(done.id), false)
      assert.equal(await stores.enrollments.remove(done.id), false)
    })

    test('abandoned setups of a kind are listed soonest expired first, up to the limit; one removed is gone until restored, without its seed', async () => {
      const own = await open()
      const listing = await storesOn(own)
      try {
        for (const id of ['a1', 'a2', 'a3', 'a4']) await insertAccount(listing.connection, { id, email: `${id}@example.test` })
        const late = await start(listing, 'a1', 'device-a1', at(9))
        const early = await start(listing, 'a2', 'device-a2', at(3))
        const middle = await start(listing, 'a3', 'device-a3', at(6))
        await start(listing, 'a4', 'device-a4', at(20))
        await start(listing, 'a4', 'device-other-kind', at(1), 'other_kind')
        assert.deepEqual((await listing.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(10), 10)).map((e) => e.id), [early.id, middle.id, late.id])
        assert.deepEqual((await listing.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(10), 2)).map((e) => e.id), [early.id, middle.id])

        await listing.enrollments.addAttempt(early.id)
        const [removed] = await listing.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(10), 1)
        assert.equal(await listing.enrollments.remove(removed.id), true)
        assert.equal(await listing.enrollments.remove(removed.id), false)
        assert.deepEqual((await listing.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(10), 10)).map((e) => e.id), [middle.id, late.id])

        await listing.enrollments.restore(removed)
        await listing.enrollments.restore(removed)
        assert.deepEqual((await listing.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(10), 1)), [removed])
        assert.equal(await listing.enrollments.findOpen('a2', AWS_VIRTUAL_MFA, at(0)), undefined)
      } finally {
        await listing.close()
        await own.drop()
      }
    })

    test("the user's provider methods become what the provider reports, each once", async () => {
      const userId = await person('synced', { providerMethods: '["phone"]' })
      clock.set(at(7))
      await stores.enrollments.setProviderMethods(userId, [AWS_VIRTUAL_MFA, 'passkey', AWS_VIRTUAL_MFA])
      assert.deepEqual(await methodsOf(userId), [AWS_VIRTUAL_MFA, 'passkey'])
      assert.equal((await readAccount(stores.connection, userId))?.updatedAt, at(7).getTime())
    })

    test('the ARN is the one the directory recorded, and null when it recorded none', async () => {
      const withArn = await person('has-arn', { providerAttributes: '{"arn":"arn:aws:iam::123456789012:user/has-arn"}' })
      const without = await person('no-arn', { providerAttributes: '{"consolePassword":true}' })
      assert.equal(await stores.enrollments.arnOf(withArn), 'arn:aws:iam::123456789012:user/has-arn')
      assert.equal(await stores.enrollments.arnOf(without), null)
      assert.equal(await stores.enrollments.arnOf('nobody'), null)
    })

    if (name === 'PostgreSQL') {
      test('a setup completed on two instances at the same moment completes exactly once', async () => {
        const other = await storesOn(backend)
        try {
          const userId = await person('race-complete')
          const started = await start(stores, userId, 'device-race')
          const done = await Promise.all([stores.enrollments.complete(started.id, AWS_VIRTUAL_MFA, at(1)), other.enrollments.complete(started.id, AWS_VIRTUAL_MFA, at(1))])
          assert.deepEqual(done.filter(Boolean), [true])
          assert.deepEqual(await methodsOf(userId), [AWS_VIRTUAL_MFA])
        } finally {
          await other.close()
        }
      })

      test('two setups of different kinds completed on two instances at the same moment both land in the user\'s methods', async () => {
        const other = await storesOn(backend)
        try {
          const userId = await person('race-kinds')
          const virtual = await start(stores, userId, 'device-virtual')
          const hardware = await start(stores, userId, 'device-hardware', at(15), 'aws_hardware_mfa')
          await Promise.all([stores.enrollments.complete(virtual.id, AWS_VIRTUAL_MFA, at(1)), other.enrollments.complete(hardware.id, 'aws_hardware_mfa', at(1))])
          assert.deepEqual((await methodsOf(userId)).sort(), ['aws_hardware_mfa', AWS_VIRTUAL_MFA])
        } finally {
          await other.close()
        }
      })

      test('two setups started for one user on two instances at the same moment leave one open', async () => {
        const other = await storesOn(backend)
        try {
          const userId = await person('race-start')
          await Promise.all([start(stores, userId, 'device-one', at(5)), start(other, userId, 'device-two', at(5))])
          const open = (await stores.enrollments.listAbandoned(AWS_VIRTUAL_MFA, at(30), 100)).filter((e) => e.userId === userId)
          assert.equal(open.length, 1)
        } finally {
          await other.close()
        }
      })
    }
  })
}
