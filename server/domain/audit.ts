import { createHash } from 'node:crypto'

/** What happened, by whom, to whom. Written once, never changed. */
export interface AuditEntry {
  action: string
  actorId?: string | null
  /** Who acted when there is no user id: "cli", "system", an email that did not match, … */
  actorLabel?: string | null
  subjectUserId?: string | null
  details?: Record<string, unknown>
  ip?: string | null
  userAgent?: string | null
}

export interface AuditRecord {
  id: number
  at: string
  action: string
  actorId: string | null
  actorLabel: string | null
  subjectUserId: string | null
  details: string
  ip: string | null
  userAgent: string | null
  prevHash: string
  hash: string
}

/** The storage port. `append` must read the previous hash and insert atomically. */
export interface AuditLog {
  append(entry: AuditEntry): AuditRecord
}

export const GENESIS_HASH = '0'.repeat(64)

/** JSON with object keys sorted at every depth, so the same value always serialises to the same bytes. */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value as object).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`
}

/** The row's hash covers every column but itself, in a fixed order, and the previous row's hash. */
export function auditHash (record: Omit<AuditRecord, 'hash'>): string {
  const body = canonicalJson([
    record.id, record.at, record.action, record.actorId, record.actorLabel, record.subjectUserId,
    record.details, record.ip, record.userAgent, record.prevHash
  ])
  return createHash('sha256').update(body).digest('hex')
}

export type ChainVerdict =
  | { intact: true, count: number }
  | { intact: false, count: number, brokenId: number, reason: string }

/** Walks the rows in id order; stops at the first row whose links or hash do not hold. */
export function verifyChain (rows: Iterable<AuditRecord>): ChainVerdict {
  let prevHash = GENESIS_HASH
  let count = 0
  for (const row of rows) {
    if (row.prevHash !== prevHash) {
      return { intact: false, count, brokenId: row.id, reason: 'its previous-hash link does not match the row before it (a row was removed, inserted or reordered)' }
    }
    const { hash, ...rest } = row
    if (auditHash(rest) !== hash) {
      return { intact: false, count, brokenId: row.id, reason: 'its contents do not match its hash (the row was altered)' }
    }
    prevHash = hash
    count++
  }
  return { intact: true, count }
}
