import { afterEach, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { auditHash, chainKey, ChainKeyring, GENESIS_HASH, isKeyedHash, verifyChain, type AuditRecord, type UnreadableAuditEvent } from '../../server/domain/audit.ts'
import { SqliteAuditLog } from '../../server/db/audit.ts'
import { PgAuditLog } from '../../server/db/pg/audit.ts'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { BACKENDS, type Backend, type Connection } from '../helpers/backends.ts'
import { FakeClock } from '../helpers/app.ts'
import { changeRows, insertUser } from './rows.ts'

type Open = Connection & { close(): Promise<void> }
type Audit = SqliteAuditLog | PgAuditLog

interface Stores {
  audit: Audit
  connection: Open
  close(): Promise<void>
}

const keys = new ChainKeyring(chainKey(randomBytes(32)))

async function storesOn (backend: Backend, clock = new FakeClock()): Promise<Stores> {
  const connection = await backend.connect()
  const audit = connection.dialect === 'sqlite' ? new SqliteAuditLog(connection.database.access, clock, keys) : new PgAuditLog(connection.access, clock, keys)
  return { audit, connection, close: connection.close }
}

/** The whole log, oldest first, as verification and exports read it. */
async function everything (audit: Audit): Promise<Array<AuditRecord | UnreadableAuditEvent>> {
  const rows: Array<AuditRecord | UnreadableAuditEvent> = []
  for await (const row of audit.all()) rows.push(row)
  return rows
}

/** Runs work as one transaction of the connection, which rolls back when work throws. */
async function inTransaction (connection: Open, work: () => Promise<void>): Promise<void> {
  if (connection.dialect === 'sqlite') await connection.database.access.transaction(work)
  else await connection.access.transaction(work)
}

/** A row hashed the way the first chains were (plain SHA-256), written straight into the table. */
async function insertUnkeyed (connection: Open, id: number, prevHash: string): Promise<string> {
  const body = { id, at: '2025-01-01T00:00:00.000Z', action: 'user.created', actorId: null, actorLabel: 'cli', subjectUserId: null, details: '{}', ip: null, userAgent: null, prevHash }
  const row = { ...body, hash: auditHash(body) }
  if (connection.dialect === 'sqlite') connection.database.db.insert(sqliteSchema.auditEvents).values(row).run()
  else await connection.database.db.insert(pgSchema.auditEvents).values(row)
  return row.hash
}

/** The database's own refusal (drizzle wraps it: the driver's error is the cause). */
function refusedAsAppendOnly (err: unknown): boolean {
  const cause = (err as { cause?: unknown }).cause
  return /audit_events is append-only/.test(cause instanceof Error ? cause.message : String(err))
}

for (const { name, open } of BACKENDS) {
  describe(`audit log on ${name}`, () => {
    // Each test starts from an empty log: the chain is one sequence for the whole database.
    let backend: Backend
    let stores: Stores
    beforeEach(async () => {
      backend = await open()
      stores = await storesOn(backend)
    })
    afterEach(async () => {
      await stores.close()
      await backend.drop()
    })

    test('events are numbered from #1, each links to the one before, and the whole log verifies', async () => {
      const { audit } = stores
      assert.equal(await audit.head(), undefined)
      assert.equal(await audit.size(), 0)
      const first = await audit.append({ action: 'user.created', actorLabel: 'cli', subjectUserId: 'u-1' })
      const second = await audit.append({ action: 'method.added', actorId: 'u-1', subjectUserId: 'u-1' })
      const third = await audit.append({ action: 'session.signed_in', actorId: 'u-1' })
      assert.deepEqual([first.id, second.id, third.id], [1, 2, 3])
      assert.deepEqual([first.prevHash, second.prevHash, third.prevHash], [GENESIS_HASH, first.hash, second.hash])
      assert.ok(isKeyedHash(third.hash))
      assert.deepEqual(await audit.head(), { seq: 3, hash: third.hash })
      assert.equal(await audit.size(), 3)
      assert.deepEqual(await audit.find(2), second)
      assert.equal(await audit.find(4), undefined)
      const rows = await everything(audit)
      assert.deepEqual(rows, [first, second, third])
      assert.deepEqual(await verifyChain(rows, keys), { intact: true, count: 3 })
    })

    test('an event is stored as given: details as canonical JSON, the user agent cut to 512 characters, what is missing as null', async () => {
      const record = await stores.audit.append({ action: 'session.signed_in', details: { b: 1, a: { d: 2, c: 3 } }, userAgent: 'x'.repeat(600), ip: '203.0.113.9' })
      assert.deepEqual(await stores.audit.find(record.id), {
        id: 1, at: '2026-11-25T09:00:00.000Z', action: 'session.signed_in', actorId: null, actorLabel: null, subjectUserId: null,
        details: '{"a":{"c":3,"d":2},"b":1}', ip: '203.0.113.9', userAgent: 'x'.repeat(512), prevHash: GENESIS_HASH, hash: record.hash
      })
    })

    test('the log refuses to change or remove an event, and stays intact', async () => {
      await stores.audit.append({ action: 'user.created', actorLabel: 'cli' })
      await assert.rejects(changeRows(stores.connection, sql`UPDATE audit_events SET action = 'user.deleted' WHERE id = 1`), refusedAsAppendOnly)
      await assert.rejects(changeRows(stores.connection, sql`DELETE FROM audit_events WHERE id = 1`), refusedAsAppendOnly)
      assert.equal((await stores.audit.find(1) as AuditRecord).action, 'user.created')
      assert.deepEqual(await verifyChain(await everything(stores.audit), keys), { intact: true, count: 1 })
    })

    test('a listener hears of each event once another instance can read it', async () => {
      const other = await storesOn(backend)
      try {
        const seenByOther: Array<Promise<unknown>> = []
        stores.audit.onAppend((record) => { seenByOther.push(other.audit.find(record.id)) })
        await stores.audit.append({ action: 'user.created', actorLabel: 'cli' })
        await stores.audit.append({ action: 'user.updated', actorLabel: 'cli' })
        const found = await Promise.all(seenByOther)
        assert.deepEqual(found.map((row) => (row as AuditRecord | undefined)?.action), ['user.created', 'user.updated'])
      } finally {
        await other.close()
      }
    })

    test('inside a transaction, listeners hear of an event once it commits, and never of one that rolled back', async () => {
      const other = await storesOn(backend)
      try {
        const heard: string[] = []
        const readable: Array<Promise<unknown>> = []
        stores.audit.onAppend((record) => {
          heard.push(record.action)
          readable.push(other.audit.find(record.id))
        })
        await assert.rejects(inTransaction(stores.connection, async () => {
          await stores.audit.append({ action: 'enforcement.enforced', actorLabel: 'engine' })
          throw new Error('the provider call failed')
        }), /provider call failed/)
        assert.deepEqual(heard, [], 'an anchor of an event that never was would not verify')
        await inTransaction(stores.connection, async () => {
          await stores.audit.append({ action: 'user.created', actorLabel: 'cli' })
          await stores.audit.append({ action: 'user.updated', actorLabel: 'cli' })
          assert.deepEqual(heard, [], 'not before the commit')
        })
        assert.deepEqual(heard, ['user.created', 'user.updated'])
        const found = await Promise.all(readable)
        assert.deepEqual(found.map((row) => (row as AuditRecord | undefined)?.id), [1, 2], 'each readable by another connection when heard of')
      } finally {
        await other.close()
      }
    })

    test('an event appended in a transaction that rolls back is not kept, and the chain goes on from the last kept one', async () => {
      const kept = await stores.audit.append({ action: 'user.created', actorLabel: 'cli' })
      await assert.rejects(inTransaction(stores.connection, async () => {
        await stores.audit.append({ action: 'enforcement.enforced', actorLabel: 'engine' })
        throw new Error('the provider call failed')
      }), /provider call failed/)
      const next = await stores.audit.append({ action: 'user.updated', actorLabel: 'cli' })
      assert.deepEqual([next.id, next.prevHash], [2, kept.hash])
      assert.deepEqual(await verifyChain(await everything(stores.audit), keys), { intact: true, count: 2 })
    })

    test('a chain from before keyed hashes is keyed by one event appended after its head, once', async () => {
      assert.equal(await stores.audit.upgradeChain(), false)
      const firstHash = await insertUnkeyed(stores.connection, 1, GENESIS_HASH)
      const oldHead = await insertUnkeyed(stores.connection, 2, firstHash)
      assert.equal(await stores.audit.upgradeChain(), true)
      const keyedEvent = await stores.audit.find(3) as AuditRecord
      assert.deepEqual([keyedEvent.action, keyedEvent.prevHash, JSON.parse(keyedEvent.details)], ['audit.chain_keyed', oldHead, { keyId: keys.signing.id, unkeyedEvents: 2 }])
      assert.equal(await stores.audit.upgradeChain(), false)
      assert.equal(await stores.audit.size(), 3)
      assert.deepEqual(await verifyChain(await everything(stores.audit), keys), { intact: true, count: 3 })
    })

    test('the timeline lists events newest first, by subject, by action and before an event, up to its limit', async () => {
      const { audit } = stores
      for (let i = 0; i < 6; i++) await audit.append({ action: i % 2 === 0 ? 'method.added' : 'method.removed', actorLabel: 'cli', subjectUserId: i < 4 ? 'u-a' : 'u-b' })
      const ids = (rows: AuditRecord[]): number[] => rows.map((row) => row.id)
      assert.deepEqual(ids(await audit.list()), [6, 5, 4, 3, 2, 1])
      assert.deepEqual(ids(await audit.list({ subjectUserId: 'u-a' })), [4, 3, 2, 1])
      assert.deepEqual(ids(await audit.list({ subjectUserId: 'u-a', action: 'method.added' })), [3, 1])
      assert.deepEqual(ids(await audit.list({ beforeId: 5, limit: 2 })), [4, 3])
      assert.deepEqual(ids(await audit.list({ limit: 1000 })), [6, 5, 4, 3, 2, 1])
    })

    test('the log viewer pages newest first and back, with filters that combine', async () => {
      const { audit, connection } = stores
      await insertUser(connection, 'u-alice')
      const clock = new FakeClock('2026-01-01T00:00:00Z')
      const viewer = (await storesOn(backend, clock))
      try {
        // 1-3 on Jan 1st by Alice's account, 4-5 on Jan 2nd by a label spelled in capitals, 6 by the engine about Alice.
        for (let i = 0; i < 3; i++) await viewer.audit.append({ action: 'method.added', actorId: 'u-alice', subjectUserId: 'u-alice' })
        clock.set('2026-01-02T00:00:00Z')
        for (let i = 0; i < 2; i++) await viewer.audit.append({ action: 'campaign.armed', actorLabel: 'U-Alice@Example.test' })
        await viewer.audit.append({ action: 'enforcement.enforced', actorLabel: 'engine', subjectUserId: 'u-alice' })
      } finally {
        await viewer.close()
      }
      const ids = (page: { events: AuditRecord[] }): number[] => page.events.map((event) => event.id)
      const firstPage = await audit.search({ limit: 4 })
      assert.deepEqual([ids(firstPage), firstPage.more], [[6, 5, 4, 3], true])
      const older = await audit.search({ limit: 4, beforeId: 3 })
      assert.deepEqual([ids(older), older.more], [[2, 1], false])
      const newer = await audit.search({ limit: 2, afterId: 2 })
      assert.deepEqual([ids(newer), newer.more], [[4, 3], true])
      assert.deepEqual(ids(await audit.search({ limit: 50, actor: 'u-alice@example.test' })), [5, 4, 3, 2, 1])
      assert.deepEqual(ids(await audit.search({ limit: 50, actionPrefix: 'enforcement.' })), [6])
      assert.deepEqual(ids(await audit.search({ limit: 50, actionPrefix: 'Enforcement.' })), [])
      assert.deepEqual(ids(await audit.search({ limit: 50, subjectUserId: 'u-alice', from: '2026-01-02T00:00:00.000Z' })), [6])
      assert.deepEqual(ids(await audit.search({ limit: 50, until: '2026-01-02T00:00:00.000Z' })), [3, 2, 1])
      const aboutAlice = await audit.search({ limit: 1, subjectUserId: 'u-alice' })
      assert.equal(aboutAlice.events[0].subjectEmail, 'u-alice@example.test')
    })

    if (name === 'PostgreSQL') {
      test('two instances appending 100 events each at once make one chain: #1 to #200, no gap, no fork', async () => {
        const other = await storesOn(backend)
        try {
          const appends = Array.from({ length: 100 }, async (_, i) => await Promise.all([
            stores.audit.append({ action: 'user.updated', actorLabel: 'instance-a', details: { i } }),
            other.audit.append({ action: 'user.updated', actorLabel: 'instance-b', details: { i } })
          ]))
          await Promise.all(appends)
          const rows = await everything(stores.audit)
          assert.deepEqual(rows.map((row) => row.id), Array.from({ length: 200 }, (_, i) => i + 1))
          assert.deepEqual(await verifyChain(rows, keys), { intact: true, count: 200 })
          assert.equal(await other.audit.size(), 200)
        } finally {
          await other.close()
        }
      })
    }
  })
}
