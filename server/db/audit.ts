import type Sqlite from 'better-sqlite3'
import { auditHash, canonicalJson, GENESIS_HASH, type AuditEntry, type AuditLog, type AuditRecord } from '../domain/audit.ts'
import type { Clock } from '../domain/clock.ts'

const COLUMNS = `id, at, action, actor_id AS actorId, actor_label AS actorLabel, subject_user_id AS subjectUserId,
  details, ip, user_agent AS userAgent, prev_hash AS prevHash, hash`

export interface AuditFilter {
  subjectUserId?: string
  action?: string
  beforeId?: number
  limit?: number
}

export class SqliteAuditLog implements AuditLog {
  private readonly last
  private readonly insert
  private readonly appendTx

  constructor (private readonly sqlite: Sqlite.Database, private readonly clock: Clock) {
    this.last = sqlite.prepare('SELECT id, hash FROM audit_events ORDER BY id DESC LIMIT 1')
    this.insert = sqlite.prepare(`INSERT INTO audit_events (id, at, action, actor_id, actor_label, subject_user_id, details, ip, user_agent, prev_hash, hash)
      VALUES (@id, @at, @action, @actorId, @actorLabel, @subjectUserId, @details, @ip, @userAgent, @prevHash, @hash)`)
    // IMMEDIATE takes the write lock before reading the tail, so two processes cannot fork the chain.
    this.appendTx = sqlite.transaction((entry: AuditEntry): AuditRecord => {
      const tail = this.last.get() as { id: number, hash: string } | undefined
      const record: Omit<AuditRecord, 'hash'> = {
        id: (tail?.id ?? 0) + 1,
        at: this.clock.now().toISOString(),
        action: entry.action,
        actorId: entry.actorId ?? null,
        actorLabel: entry.actorLabel ?? null,
        subjectUserId: entry.subjectUserId ?? null,
        details: canonicalJson(entry.details ?? {}),
        ip: entry.ip ?? null,
        userAgent: entry.userAgent?.slice(0, 512) ?? null,
        prevHash: tail?.hash ?? GENESIS_HASH
      }
      const full = { ...record, hash: auditHash(record) }
      this.insert.run(full)
      return full
    })
  }

  append (entry: AuditEntry): AuditRecord {
    return this.appendTx.immediate(entry)
  }

  /** Every row in id order, streamed (the log can be long). */
  * all (): Iterable<AuditRecord> {
    yield * this.sqlite.prepare(`SELECT ${COLUMNS} FROM audit_events ORDER BY id`).iterate() as Iterable<AuditRecord>
  }

  /** Newest first, for pages and timelines. */
  list (filter: AuditFilter = {}): AuditRecord[] {
    const where: string[] = []
    const params: Record<string, unknown> = { limit: Math.min(filter.limit ?? 50, 500) }
    if (filter.subjectUserId !== undefined) { where.push('subject_user_id = @subjectUserId'); params.subjectUserId = filter.subjectUserId }
    if (filter.action !== undefined) { where.push('action = @action'); params.action = filter.action }
    if (filter.beforeId !== undefined) { where.push('id < @beforeId'); params.beforeId = filter.beforeId }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    return this.sqlite.prepare(`SELECT ${COLUMNS} FROM audit_events ${clause} ORDER BY id DESC LIMIT @limit`).all(params) as AuditRecord[]
  }
}
