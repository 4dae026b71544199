import assert from 'node:assert/strict'
import { closeSync, openSync, writeSync } from 'node:fs'
import Sqlite from 'better-sqlite3'

/**
 * Overwrites one leaf page of the table, in the middle of the (closed) database file, with garbage, as a failing disk
 * or a bad restore would leave it; returns the ids that can no longer be read.
 */
export function damageMiddleLeaf (file: string, table: string): number[] {
  const sqlite = new Sqlite(file)
  sqlite.pragma('wal_checkpoint(TRUNCATE)')
  const pageSize = sqlite.pragma('page_size', { simple: true }) as number
  const leaves = sqlite.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").pluck().all(table) as number[]
  const ids = sqlite.prepare(`SELECT id FROM ${table} ORDER BY id`).pluck().all() as number[]
  sqlite.close()
  assert.ok(leaves.length > 4, `${table} has too few pages to damage one in the middle`)
  const fd = openSync(file, 'r+')
  writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (leaves[Math.floor(leaves.length / 2)] - 1) * pageSize)
  closeSync(fd)

  const damaged = new Sqlite(file, { readonly: true })
  const one = damaged.prepare(`SELECT * FROM ${table} WHERE id = ?`)
  const lost = ids.filter((id) => {
    try {
      one.get(id)
      return false
    } catch {
      return true
    }
  })
  damaged.close()
  assert.ok(lost.length > 0, 'the damaged page held rows')
  return lost
}
