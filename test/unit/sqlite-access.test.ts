import assert from 'node:assert/strict'
import { test } from 'node:test'
import Sqlite from 'better-sqlite3'
import { drizzle } from 'drizzle-orm/better-sqlite3'
import { SqliteAccess } from '../../server/db/sqlite-access.ts'

function access (): SqliteAccess {
  const sqlite = new Sqlite(':memory:')
  sqlite.exec('CREATE TABLE t (n INTEGER)')
  return new SqliteAccess(sqlite, drizzle(sqlite))
}

const count = (a: SqliteAccess) => a.sqlite.prepare('SELECT count(*) FROM t').pluck().get() as number
const tick = async () => { await new Promise((resolve) => setImmediate(resolve)) }

test('a statement from outside waits for an open transaction, and is not lost if that transaction rolls back', async () => {
  const a = access()
  const order: string[] = []
  let release!: () => void
  const held = new Promise<void>((resolve) => { release = resolve })
  const failing = a.transaction(async () => {
    a.sqlite.prepare('INSERT INTO t VALUES (1)').run()
    await held
    throw new Error('rolled back')
  })
  const outside = a.run(() => { order.push('outside'); a.sqlite.prepare('INSERT INTO t VALUES (2)').run() })
  await tick()
  assert.deepEqual(order, [], 'waits while the transaction is open')
  release()
  await assert.rejects(failing, /rolled back/)
  await outside
  assert.equal(count(a), 1, 'only the outside row is kept')
})

test('transactions one after another each know their own inside: nested work joins, effects wait for the commit', async () => {
  const a = access()
  for (const round of [1, 2, 3]) {
    const effects: string[] = []
    await a.transaction(async () => {
      await tick()
      // Nested and from inside (after awaits): joins the open transaction instead of waiting for it to end.
      await a.transaction(async () => { await a.run(() => a.sqlite.prepare('INSERT INTO t VALUES (?)').run(round)) })
      a.afterCommit(() => effects.push(`after ${round}`))
      assert.deepEqual(effects, [], 'not before the commit')
    })
    assert.deepEqual(effects, [`after ${round}`])
    // Outside any transaction, an effect runs at once.
    a.afterCommit(() => effects.push('now'))
    assert.deepEqual(effects, [`after ${round}`, 'now'])
  }
  assert.equal(count(a), 3)
})
