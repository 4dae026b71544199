import { test } from 'node:test'
import assert from 'node:assert/strict'
import { auditHash, canonicalJson, GENESIS_HASH, verifyChain, type AuditRecord } from '../../server/domain/audit.ts'

function chain (n: number): AuditRecord[] {
  const rows: AuditRecord[] = []
  let prevHash = GENESIS_HASH
  for (let id = 1; id <= n; id++) {
    const record = {
      id, at: `2026-11-25T09:00:0${id}.000Z`, action: 'signin.success', actorId: 'u1', actorLabel: 'a@b.example',
      subjectUserId: 'u1', details: canonicalJson({ method: 'password', n: id }), ip: '127.0.0.1', userAgent: 'test', prevHash
    }
    const row = { ...record, hash: auditHash(record) }
    rows.push(row)
    prevHash = row.hash
  }
  return rows
}

test('canonical JSON is the same whatever order the keys were written in', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }), canonicalJson({ a: { c: null, d: [1, { y: 2, z: 1 }] }, b: 1 }))
  assert.equal(canonicalJson({ b: 1, a: 2 }), '{"a":2,"b":1}')
})

test('an untouched chain verifies and counts every event', () => {
  assert.deepEqual(verifyChain(chain(5)), { intact: true, count: 5 })
  assert.deepEqual(verifyChain([]), { intact: true, count: 0 })
})

test('an altered event is named as the first broken row', () => {
  const rows = chain(5)
  rows[2] = { ...rows[2], details: canonicalJson({ method: 'password', n: 999 }) }
  const verdict = verifyChain(rows)
  assert.equal(verdict.intact, false)
  assert.equal(verdict.intact === false && verdict.brokenId, 3)
  assert.equal(verdict.count, 2)
})

test('a removed event breaks the chain at the row after the gap', () => {
  const rows = chain(5)
  rows.splice(1, 1)
  const verdict = verifyChain(rows)
  assert.equal(verdict.intact === false && verdict.brokenId, 3)
})

test('rewriting an event together with its own hash is still caught by the next row', () => {
  const rows = chain(4)
  const { hash: _old, ...forged } = { ...rows[1], action: 'signin.failure' }
  rows[1] = { ...forged, hash: auditHash(forged) }
  const verdict = verifyChain(rows)
  assert.equal(verdict.intact === false && verdict.brokenId, 3)
})
