import { createHash, createHmac, hkdfSync } from 'node:crypto'

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
  append(entry: AuditEntry): Promise<AuditRecord>
}

export interface AuditFilter {
  subjectUserId?: string
  action?: string
  beforeId?: number
  limit?: number
}

/** The admin audit log viewer's filters; every one is optional and they combine with AND. */
export interface AuditSearch {
  /** Actions starting with this, e.g. "enforcement." or "campaign.armed". */
  actionPrefix?: string
  /** Who acted: matches the actor label (an email, "engine", "cli") or the user with that email. */
  actor?: string
  subjectUserId?: string
  /** ISO instants: from inclusive, until exclusive. */
  from?: string
  until?: string
  /** Keyset: events older than this id (the next page), or newer than it (the previous page). */
  beforeId?: number
  afterId?: number
  limit: number
}

export interface AuditSearchRow extends AuditRecord {
  subjectEmail: string | null
}

/** The whole log as the web layer, the jobs and the CLI use it: the chain's keys, its head, pages and every event. */
export interface AuditStore extends AuditLog {
  readonly keys: ChainKeyring
  /** Told of every event once it is committed (the anchors count events and publish the chain's head). */
  onAppend(listener: (record: AuditRecord) => void): void
  /** The newest event's number and hash (the chain's head), or undefined for an empty log. */
  head(): Promise<{ seq: number, hash: string } | undefined>
  /** One event by its number; unreadable when the storage is damaged there. */
  find(id: number): Promise<AuditRecord | UnreadableAuditEvent | undefined>
  /** Every event, oldest first, read in batches (verification, exports). */
  all(): AsyncIterable<AuditRecord | UnreadableAuditEvent>
  /** Keys a chain written before keyed hashes; whether it did anything. */
  upgradeChain(): Promise<boolean>
  search(filter: AuditSearch): Promise<{ events: AuditSearchRow[], more: boolean }>
  /** How many events the log holds. */
  size(): Promise<number>
  /** Newest first, for pages and timelines. */
  list(filter?: AuditFilter): Promise<AuditRecord[]>
}

export const GENESIS_HASH = '0'.repeat(64)

/** JSON with object keys sorted at every depth, so the same value always serialises to the same bytes. */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value as object).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`
}

/** The row's body as hashed: every column but the hash itself, in a fixed order, and the previous row's hash. */
function auditBody (record: Omit<AuditRecord, 'hash'>): string {
  return canonicalJson([
    record.id, record.at, record.action, record.actorId, record.actorLabel, record.subjectUserId,
    record.details, record.ip, record.userAgent, record.prevHash
  ])
}

/**
 * The unkeyed hash of the first chains (plain SHA-256, 64 hex digits). Rows written before the chain was keyed keep
 * it and stay verifiable; nothing new is written with it, since anyone holding the file could recompute it.
 */
export function auditHash (record: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256').update(auditBody(record)).digest('hex')
}

/** A key of the audit chain, named by an id that says which key it is without revealing it. */
export interface ChainKey {
  id: string
  key: Buffer
}

const KEYED = /^hmac-sha256:([0-9a-f]{8}):([0-9a-f]{64})$/

/** The keys the chain may be signed with: the one new rows are signed with, and every one that may have signed old rows. */
export class ChainKeyring {
  private readonly byId: Map<string, ChainKey>

  constructor (readonly signing: ChainKey, others: readonly ChainKey[] = []) {
    this.byId = new Map([signing, ...others].map((k) => [k.id, k]))
  }

  /**
   * From configuration, never the database: AUDIT_KEY when set, else a key derived from ENCRYPTION_KEY. Keys
   * derived from earlier encryption keys (ENCRYPTION_KEYS_PREVIOUS) still verify the rows they signed.
   */
  static fromSecrets (auditKey: Buffer | undefined, encryptionKey: Buffer, previousEncryptionKeys: readonly Buffer[] = []): ChainKeyring {
    const derived = [encryptionKey, ...previousEncryptionKeys].map((k) => chainKey(Buffer.from(hkdfSync('sha256', k, Buffer.alloc(0), 'mfa-rollout audit chain', 32))))
    return auditKey === undefined ? new ChainKeyring(derived[0], derived.slice(1)) : new ChainKeyring(chainKey(auditKey), derived)
  }

  find (id: string): ChainKey | undefined {
    return this.byId.get(id)
  }
}

export function chainKey (key: Buffer): ChainKey {
  return { id: createHash('sha256').update('audit chain key id').update(key).digest('hex').slice(0, 8), key }
}

/** The keyed hash new rows carry: HMAC-SHA-256 under a key held outside the database, named by its id. */
export function keyedAuditHash (record: Omit<AuditRecord, 'hash'>, key: ChainKey): string {
  return `hmac-sha256:${key.id}:${createHmac('sha256', key.key).update(auditBody(record)).digest('hex')}`
}

export function isKeyedHash (hash: string): boolean {
  return KEYED.test(hash)
}

/** A row the storage could not read (a damaged page of the database file): its id and what the storage said. */
export interface UnreadableAuditEvent {
  id: number
  unreadable: string
}

export type ChainVerdict =
  | { intact: true, count: number }
  | { intact: false, count: number, brokenId: number, reason: string }

/**
 * Walks the rows in id order; stops at the first row whose links or hash do not hold, or that cannot be read (a row
 * nobody can read proves nothing, so the chain is broken there).
 *
 * Rows written before the chain was keyed carry plain SHA-256 and are checked as such; from the first keyed row on,
 * every row must carry an HMAC under a key of the keyring. So a row rewritten by someone holding the file but not
 * the key shows: its keyed hash no longer matches, or it (and every row after it, whose links it changed) carries an
 * unkeyed hash where a keyed one belongs. The newest row must be keyed too: otherwise the whole log may have been
 * rewritten without the key.
 */
export async function verifyChain (rows: Iterable<AuditRecord | UnreadableAuditEvent> | AsyncIterable<AuditRecord | UnreadableAuditEvent>, keys: ChainKeyring): Promise<ChainVerdict> {
  let prevHash = GENESIS_HASH
  let count = 0
  let keyedFrom: number | null = null
  let last: AuditRecord | null = null
  for await (const row of rows) {
    if ('unreadable' in row) {
      return { intact: false, count, brokenId: row.id, reason: `it cannot be read: the database file is damaged there (${row.unreadable})` }
    }
    if (row.prevHash !== prevHash) {
      return { intact: false, count, brokenId: row.id, reason: 'its previous-hash link does not match the row before it (a row was removed, inserted or reordered)' }
    }
    const { hash, ...rest } = row
    const keyed = KEYED.exec(hash)
    if (keyed === null) {
      if (keyedFrom !== null) {
        return { intact: false, count, brokenId: row.id, reason: `it carries an unkeyed hash although the chain is keyed from event #${keyedFrom} on (rewritten by someone without the key)` }
      }
      if (auditHash(rest) !== hash) {
        return { intact: false, count, brokenId: row.id, reason: 'its contents do not match its hash (the row was altered)' }
      }
    } else {
      const key = keys.find(keyed[1])
      if (key === undefined) {
        return { intact: false, count, brokenId: row.id, reason: `it is signed with a key this configuration does not hold (key id ${keyed[1]}): set AUDIT_KEY, or list the ENCRYPTION_KEY it was written under in ENCRYPTION_KEYS_PREVIOUS` }
      }
      if (keyedAuditHash(rest, key) !== hash) {
        return { intact: false, count, brokenId: row.id, reason: 'its contents do not match its keyed hash (the row was altered)' }
      }
      keyedFrom ??= row.id
    }
    prevHash = hash
    last = row
    count++
  }
  if (last !== null && keyedFrom === null) {
    return { intact: false, count: count - 1, brokenId: last.id, reason: 'the newest event is not keyed: the log was rewritten by someone without the key, or it was never upgraded (run mfa-rollout migrate)' }
  }
  return { intact: true, count }
}

/** A head of the chain recorded outside the database: the event's number and its hash. */
export interface AuditAnchor {
  seq: number
  hash: string
}

/** Reads "SEQ:HASH" as printed in the anchor log line; undefined when it is not one. */
export function parseAnchor (text: string): AuditAnchor | undefined {
  const match = /^(\d{1,15}):(hmac-sha256:[0-9a-f]{8}:[0-9a-f]{64}|[0-9a-f]{64})$/.exec(text.trim())
  return match === null ? undefined : { seq: Number(match[1]), hash: match[2] }
}

/**
 * Whether the log still holds an anchored head: the event numbered `seq` exists with that hash (the chain up to it
 * is checked by verifyChain). Cutting the newest events, or rewriting the chain wholesale, cannot hide from it.
 */
export function checkAnchor (anchor: AuditAnchor, event: AuditRecord | UnreadableAuditEvent | undefined, lastId: number): { holds: true } | { holds: false, reason: string } {
  if (event === undefined) {
    return { holds: false, reason: lastId < anchor.seq
      ? `the log ends at event #${lastId}, before the anchored event #${anchor.seq}: newer events were cut`
      : `event #${anchor.seq} is missing from the log` }
  }
  if ('unreadable' in event) return { holds: false, reason: `event #${anchor.seq} cannot be read: the database file is damaged there` }
  if (event.hash !== anchor.hash) return { holds: false, reason: `event #${anchor.seq} does not carry the anchored hash: the log was rewritten` }
  return { holds: true }
}
