import { test } from 'node:test'
import assert from 'node:assert/strict'
import {
  auditHash, canonicalJson, chainKey, ChainKeyring, checkAnchor, GENESIS_HASH, keyedAuditHash, parseAnchor, verifyChain, type AuditRecord
} from '../../server/domain/audit.ts'

const KEY = chainKey(Buffer.alloc(32, 3))
const KEYS = new ChainKeyring(KEY)

/** n events; the first `unkeyed` carry plain SHA-256 as chains written before keying did, the rest the keyed hash. */
function chain (n: number, unkeyed = 0, key = KEY): AuditRecord[] {
  const rows: AuditRecord[] = []
  let prevHash = GENESIS_HASH
  for (let id = 1; id <= n; id++) {
    const record = {
      id, at: `2026-11-25T09:00:0${id}.000Z`, action: 'signin.success', actorId: 'u1', actorLabel: 'a@b.example',
      subjectUserId: 'u1', details: canonicalJson({ method: 'password', n: id }), ip: '127.0.0.1', userAgent: 'test', prevHash
    }
    const row = { ...record, hash: id <= unkeyed ? auditHash(record) : keyedAuditHash(record, key) }
    rows.push(row)
    prevHash = row.hash
  }
  return rows
}

/** What someone holding the file but not the key can do: rewrite from `index` on, recomputing plain SHA-256 hashes. */
function rewriteWithoutKey (rows: AuditRecord[], index: number, change: Partial<AuditRecord>): AuditRecord[] {
  const out = rows.slice(0, index)
  let prevHash = index === 0 ? GENESIS_HASH : rows[index - 1].hash
  for (let i = index; i < rows.length; i++) {
    const { hash: _old, ...rest } = { ...rows[i], ...(i === index ? change : {}), prevHash }
    const row = { ...rest, hash: auditHash(rest) }
    out.push(row)
    prevHash = row.hash
  }
  return out
}

test('canonical JSON is the same whatever order the keys were written in', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }), canonicalJson({ a: { c: null, d: [1, { y: 2, z: 1 }] }, b: 1 }))
  assert.equal(canonicalJson({ b: 1, a: 2 }), '{"a":2,"b":1}')
})

test('an untouched keyed chain verifies and counts every event; the hash names its key', async () => {
  assert.deepEqual(await verifyChain(chain(5), KEYS), { intact: true, count: 5 })
  assert.deepEqual(await verifyChain([], KEYS), { intact: true, count: 0 })
  assert.match(chain(1)[0].hash, new RegExp(`^hmac-sha256:${KEY.id}:[0-9a-f]{64}$`))
})

test('a chain keyed after an upgrade verifies: the old unkeyed events keep their hashes', async () => {
  assert.deepEqual(await verifyChain(chain(6, 3), KEYS), { intact: true, count: 6 })
})

test('an altered event is named as the first broken row', async () => {
  const rows = chain(5)
  rows[2] = { ...rows[2], details: canonicalJson({ method: 'password', n: 999 }) }
  const verdict = await verifyChain(rows, KEYS)
  assert.equal(verdict.intact === false && verdict.brokenId, 3)
  assert.equal(verdict.count, 2)
  assert.match(verdict.intact === false ? verdict.reason : '', /do not match its keyed hash/)
})

test('a removed event breaks the chain at the row after the gap', async () => {
  const rows = chain(5)
  rows.splice(1, 1)
  const verdict = await verifyChain(rows, KEYS)
  assert.equal(verdict.intact === false && verdict.brokenId, 3)
})

test('an event rewritten with a recomputed unkeyed hash is caught, however far the rewrite goes', async () => {
  const forged = rewriteWithoutKey(chain(5, 2), 3, { action: 'signin.failure' })
  const verdict = await verifyChain(forged, KEYS)
  assert.equal(verdict.intact === false && verdict.brokenId, 4)
  assert.match(verdict.intact === false ? verdict.reason : '', /unkeyed hash although the chain is keyed from event #3/)
})

test('a whole log rewritten without the key (no keyed event left) is caught at its newest event', async () => {
  const forged = rewriteWithoutKey(chain(4), 0, { action: 'signin.failure' })
  const verdict = await verifyChain(forged, KEYS)
  assert.equal(verdict.intact === false && verdict.brokenId, 4)
  assert.match(verdict.intact === false ? verdict.reason : '', /newest event is not keyed/)
})

test('an unkeyed event rewritten before the upgrade point is caught by the first keyed event after it', async () => {
  const rows = chain(5, 3)
  const { hash: _old, ...forged } = { ...rows[1], action: 'signin.failure' }
  rows[1] = { ...forged, hash: auditHash(forged) }
  const verdict = await verifyChain(rows, KEYS)
  assert.equal(verdict.intact === false && verdict.brokenId, 3)
})

test('events signed with a key the configuration does not hold are reported with the key id, not as intact', async () => {
  const other = chainKey(Buffer.alloc(32, 9))
  const verdict = await verifyChain(chain(3, 0, other), KEYS)
  assert.equal(verdict.intact === false && verdict.brokenId, 1)
  assert.match(verdict.intact === false ? verdict.reason : '', new RegExp(`key id ${other.id}`))
  assert.deepEqual(await verifyChain(chain(3, 0, other), new ChainKeyring(KEY, [other])), { intact: true, count: 3 })
})

test('the keyring signs with AUDIT_KEY when set and still verifies rows keyed under the derived key', () => {
  const encryptionKey = Buffer.alloc(32, 1)
  const derived = ChainKeyring.fromSecrets(undefined, encryptionKey)
  const withAuditKey = ChainKeyring.fromSecrets(Buffer.alloc(32, 2), encryptionKey)
  assert.notEqual(derived.signing.id, withAuditKey.signing.id)
  assert.ok(withAuditKey.find(derived.signing.id), 'rows written before AUDIT_KEY was set still verify')
  assert.notDeepEqual(derived.signing.key, encryptionKey, 'the chain key is derived, never the encryption key itself')
})

test('an anchor holds while the log has that event with that hash, and names a cut or a rewrite otherwise', () => {
  const rows = chain(5)
  const anchor = parseAnchor(`4:${rows[3].hash}`)!
  assert.deepEqual(anchor, { seq: 4, hash: rows[3].hash })
  assert.deepEqual(checkAnchor(anchor, rows[3], 5), { holds: true })
  const cut = checkAnchor(anchor, undefined, 3)
  assert.match(cut.holds ? '' : cut.reason, /ends at event #3, before the anchored event #4: newer events were cut/)
  const rewritten = checkAnchor(anchor, { ...rows[3], hash: auditHash(rows[3]) }, 5)
  assert.match(rewritten.holds ? '' : rewritten.reason, /does not carry the anchored hash/)
  assert.equal(parseAnchor('4:nothex'), undefined)
})
