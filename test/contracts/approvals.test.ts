import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import type { ApprovalRequest, ApprovalStore } from '../../server/domain/approvals.ts'
import { SqliteApprovalStore } from '../../server/db/approvals.ts'
import { PgApprovalStore } from '../../server/db/pg/approvals.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { insertAccount } from './rows.ts'

interface Stores {
  connection: Connection
  approvals: ApprovalStore | ApprovalStore
  close(): Promise<void>
}

async function storesOn (backend: Backend): Promise<Stores> {
  const connection = await backend.connect()
  const approvals = connection.dialect === 'sqlite' ? new SqliteApprovalStore(connection.database.access) : new PgApprovalStore(connection.access)
  return { connection, approvals, close: connection.close }
}

/** A backend with the two staff members who ask and decide. */
async function openWithStaff (open: () => Promise<Backend>): Promise<{ backend: Backend, stores: Stores }> {
  const backend = await open()
  const stores = await storesOn(backend)
  await insertAccount(stores.connection, { id: 'hd-asks', email: 'asks@example.test' })
  await insertAccount(stores.connection, { id: 'hd-decides', email: 'decides@example.test' })
  return { backend, stores }
}

const at = (minute: number): Date => new Date(Date.UTC(2026, 10, 25, 9, minute))

function request (id: string, userId: string, fields: Partial<ApprovalRequest> = {}): ApprovalRequest {
  return {
    id,
    userId,
    action: { kind: 'pass', lifetimeMinutes: 60, oneTime: true },
    reason: 'lost phone, verified by video call',
    requestedBy: 'hd-asks',
    requestedAt: at(0),
    expiresAt: at(60),
    status: 'pending',
    decidedBy: null,
    decidedAt: null,
    ...fields
  }
}

for (const { name, open } of BACKENDS) {
  describe(`two-person approvals on ${name}`, () => {
    let backend: Backend
    let stores: Stores
    const person = async (id: string): Promise<string> => {
      await insertAccount(stores.connection, { id, email: `${id}@example.test` })
      return id
    }
    before(async () => {
      ({ backend, stores } = await openWithStaff(open))
    })
    after(async () => {
      await stores.close()
      await backend.drop()
    })

    test('a request reads back with the action and options that were asked for, pending', async () => {
      const userId = await person('reads')
      const asked = request('r-read', userId, { action: { kind: 'reset', issuePass: true, lifetimeMinutes: 30, oneTime: false } })
      assert.equal(await stores.approvals.create(asked), true)
      assert.deepEqual(await stores.approvals.find('r-read'), asked)
      assert.equal(await stores.approvals.find('r-missing'), undefined)
    })

    test('a second pending request of the same kind for the same person is refused; another kind, or after a decision, is taken', async () => {
      const userId = await person('asked-twice')
      assert.equal(await stores.approvals.create(request('r-first', userId)), true)
      assert.equal(await stores.approvals.create(request('r-second', userId)), false)
      assert.equal(await stores.approvals.find('r-second'), undefined)
      assert.equal(await stores.approvals.create(request('r-other-kind', userId, { action: { kind: 'invitation' } })), true)
      await stores.approvals.decide('r-first', 'refused', 'hd-decides', at(1))
      assert.equal(await stores.approvals.create(request('r-third', userId)), true)
    })

    test('a request is decided once: a second decision is refused and the first stands', async () => {
      const userId = await person('decided')
      await stores.approvals.create(request('r-decide', userId))
      assert.equal(await stores.approvals.decide('r-decide', 'approved', 'hd-decides', at(1)), true)
      assert.equal(await stores.approvals.decide('r-decide', 'withdrawn', 'hd-asks', at(2)), false)
      const decided = await stores.approvals.find('r-decide')
      assert.deepEqual([decided?.status, decided?.decidedBy, decided?.decidedAt], ['approved', 'hd-decides', at(1)])
    })

    test('a request whose time is up can no longer be decided', async () => {
      const userId = await person('lapsed')
      await stores.approvals.create(request('r-lapsed', userId, { expiresAt: at(10) }))
      assert.equal(await stores.approvals.decide('r-lapsed', 'approved', 'hd-decides', at(10)), false)
      assert.equal((await stores.approvals.find('r-lapsed'))?.status, 'pending')
    })

    test('an approved request whose action failed goes back to pending; a refused one stays refused', async () => {
      const userId = await person('reopened')
      await stores.approvals.create(request('r-approved', userId))
      await stores.approvals.decide('r-approved', 'approved', 'hd-decides', at(1))
      await stores.approvals.reopen('r-approved')
      const reopened = await stores.approvals.find('r-approved')
      assert.deepEqual([reopened?.status, reopened?.decidedBy, reopened?.decidedAt], ['pending', null, null])

      await stores.approvals.create(request('r-refused', userId, { action: { kind: 'invitation' } }))
      await stores.approvals.decide('r-refused', 'refused', 'hd-decides', at(1))
      await stores.approvals.reopen('r-refused')
      assert.equal((await stores.approvals.find('r-refused'))?.status, 'refused')
    })

    test('expiry marks only the pending requests whose time is up, and hands back each of them', async () => {
      const { backend: own, stores: fresh } = await openWithStaff(open)
      try {
        for (const id of ['due-1', 'due-2', 'later', 'decided']) await insertAccount(fresh.connection, { id, email: `${id}@example.test` })
        await fresh.approvals.create(request('r-due-1', 'due-1', { expiresAt: at(10) }))
        await fresh.approvals.create(request('r-due-2', 'due-2', { expiresAt: at(5) }))
        await fresh.approvals.create(request('r-later', 'later', { expiresAt: at(11) }))
        await fresh.approvals.create(request('r-decided', 'decided', { expiresAt: at(10) }))
        await fresh.approvals.decide('r-decided', 'approved', 'hd-decides', at(1))
        const expired = await fresh.approvals.expireDue(at(10))
        assert.deepEqual(expired.map((r) => [r.id, r.status]).sort(), [['r-due-1', 'expired'], ['r-due-2', 'expired']])
        assert.equal((await fresh.approvals.find('r-later'))?.status, 'pending')
        assert.equal((await fresh.approvals.find('r-decided'))?.status, 'approved')
        assert.deepEqual(await fresh.approvals.expireDue(at(10)), [])
      } finally {
        await fresh.close()
        await own.drop()
      }
    })

    test('requests made in the same millisecond list in one order, the same on every database', async () => {
      const { backend: own, stores: fresh } = await openWithStaff(open)
      try {
        for (const id of ['q1', 'q2', 'q3']) await insertAccount(fresh.connection, { id, email: `${id}@example.test` })
        for (const [id, userId] of [['r-c', 'q1'], ['r-a', 'q2'], ['r-b', 'q3']]) await fresh.approvals.create(request(id, userId, { requestedAt: at(1) }))
        assert.deepEqual((await fresh.approvals.pending(10)).map((r) => r.id), ['r-a', 'r-b', 'r-c'])
        for (const id of ['r-c', 'r-a', 'r-b']) await fresh.approvals.decide(id, 'withdrawn', 'hd-asks', at(2))
        assert.deepEqual((await fresh.approvals.recent(10)).map((r) => r.id), ['r-a', 'r-b', 'r-c'])
      } finally {
        await fresh.close()
        await own.drop()
      }
    })

    test('waiting requests list oldest first, decided ones newest first, each with the people it names', async () => {
      const { backend: own, stores: fresh } = await openWithStaff(open)
      try {
        for (const id of ['p1', 'p2', 'p3']) await insertAccount(fresh.connection, { id, email: `${id}@example.test` })
        await fresh.approvals.create(request('r-p2', 'p2', { requestedAt: at(2) }))
        await fresh.approvals.create(request('r-p1', 'p1', { requestedAt: at(1) }))
        await fresh.approvals.create(request('r-p3', 'p3', { requestedAt: at(3) }))
        await fresh.approvals.create(request('r-p1-reset', 'p1', { requestedAt: at(4), action: { kind: 'reset', issuePass: false, lifetimeMinutes: 60, oneTime: true } }))
        await fresh.approvals.create(request('r-p1-done', 'p1', { requestedAt: at(0), action: { kind: 'invitation' } }))
        await fresh.approvals.decide('r-p1-done', 'refused', 'hd-decides', at(5))
        await fresh.approvals.decide('r-p3', 'withdrawn', 'hd-asks', at(6))

        assert.deepEqual((await fresh.approvals.pending(10)).map((r) => r.id), ['r-p1', 'r-p2', 'r-p1-reset'])
        assert.deepEqual((await fresh.approvals.pending(2)).map((r) => r.id), ['r-p1', 'r-p2'])
        assert.deepEqual((await fresh.approvals.pendingFor('p1')).map((r) => r.id), ['r-p1', 'r-p1-reset'])
        const recent = await fresh.approvals.recent(10)
        assert.deepEqual(recent.map((r) => r.id), ['r-p3', 'r-p1-done'])
        assert.deepEqual((await fresh.approvals.recent(1)).map((r) => r.id), ['r-p3'])

        const [waiting] = await fresh.approvals.pending(1)
        assert.deepEqual([waiting.subject, waiting.requesterEmail, waiting.deciderEmail],
          [{ id: 'p1', email: 'p1@example.test', displayName: 'p1@example.test' }, 'asks@example.test', null])
        assert.deepEqual([recent[1].status, recent[1].requesterEmail, recent[1].deciderEmail], ['refused', 'asks@example.test', 'decides@example.test'])
      } finally {
        await fresh.close()
        await own.drop()
      }
    })

    if (name === 'PostgreSQL') {
      test('a request decided on two instances at the same moment is decided exactly once, as the winner said', async () => {
        const other = await storesOn(backend)
        try {
          const userId = await person('race-decide')
          await stores.approvals.create(request('r-race', userId))
          const [approved, refused] = await Promise.all([
            stores.approvals.decide('r-race', 'approved', 'hd-decides', at(1)),
            other.approvals.decide('r-race', 'refused', 'hd-decides', at(1))
          ])
          assert.notEqual(approved, refused)
          assert.equal((await stores.approvals.find('r-race'))?.status, approved ? 'approved' : 'refused')
        } finally {
          await other.close()
        }
      })

      test('two requests of one kind for one person made on two instances at the same moment: exactly one is kept', async () => {
        const other = await storesOn(backend)
        try {
          const userId = await person('race-create')
          const created = await Promise.all(Array.from({ length: 6 }, async (_, i) => await (i % 2 === 0 ? stores : other).approvals.create(request(`r-race-create-${i}`, userId))))
          assert.equal(created.filter(Boolean).length, 1)
          assert.equal((await stores.approvals.pendingFor(userId)).length, 1)
        } finally {
          await other.close()
        }
      })

      test('requests expired by two instances at the same moment are each handed back once', async () => {
        const other = await storesOn(backend)
        try {
          for (const id of ['race-exp-1', 'race-exp-2', 'race-exp-3']) {
            await person(id)
            await stores.approvals.create(request(`r-${id}`, id, { expiresAt: at(-10) }))
          }
          const [a, b] = await Promise.all([stores.approvals.expireDue(at(0)), other.approvals.expireDue(at(0))])
          const ids = [...a, ...b].map((r) => r.id).filter((id) => id.startsWith('r-race-exp-')).sort()
          assert.deepEqual(ids, ['r-race-exp-1', 'r-race-exp-2', 'r-race-exp-3'])
        } finally {
          await other.close()
        }
      })
    }
  })
}
