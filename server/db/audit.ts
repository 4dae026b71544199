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

  /**
   * A page of the log for the admin viewer, newest first, keyset-paged by id (ids only grow, like the time).
   * `more` says whether another page lies beyond this one in the direction of travel (older, or newer for afterId).
   */
  search (filter: AuditSearch): { events: AuditSearchRow[], more: boolean } {
    const where: string[] = []
    const limit = Math.min(filter.limit, 500)
    // One row more than the page, to know whether there is a next page without counting.
    const params: Record<string, unknown> = { limit: limit + 1 }
    if (filter.actionPrefix !== undefined && filter.actionPrefix !== '') {
      where.push('substr(a.action, 1, length(@actionPrefix)) = @actionPrefix')
      params.actionPrefix = filter.actionPrefix
    }
    if (filter.actor !== undefined && filter.actor !== '') {
      where.push('(a.actor_label = @actor COLLATE NOCASE OR a.actor_id IN (SELECT id FROM users WHERE email = lower(@actor)))')
      params.actor = filter.actor
    }
    if (filter.subjectUserId !== undefined) { where.push('a.subject_user_id = @subjectUserId'); params.subjectUserId = filter.subjectUserId }
    if (filter.from !== undefined) { where.push('a.at >= @from'); params.from = filter.from }
    if (filter.until !== undefined) { where.push('a.at < @until'); params.until = filter.until }
    if (filter.beforeId !== undefined) { where.push('a.id < @beforeId'); params.beforeId = filter.beforeId }
    if (filter.afterId !== undefined) { where.push('a.id > @afterId'); params.afterId = filter.afterId }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    // Paging back towards newer events reads upwards from the cursor; the page is then turned newest first again.
    const upwards = filter.afterId !== undefined && filter.beforeId === undefined
    const rows = this.sqlite.prepare(`SELECT a.id, a.at, a.action, a.actor_id AS actorId, a.actor_label AS actorLabel, a.subject_user_id AS subjectUserId,
        a.details, a.ip, a.user_agent AS userAgent, a.prev_hash AS prevHash, a.hash, su.email AS subjectEmail
      FROM audit_events a LEFT JOIN users su ON su.id = a.subject_user_id ${clause} ORDER BY a.id ${upwards ? 'ASC' : 'DESC'} LIMIT @limit`).all(params) as AuditSearchRow[]
    const events = rows.slice(0, limit)
    return { events: upwards ? events.reverse() : events, more: rows.length > limit }
  }

  /** How many events the log holds (its last id: rows are never deleted), without counting them. */
  size (): number {
    return (this.sqlite.prepare('SELECT coalesce(max(id), 0) FROM audit_events').pluck().get() as number)
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
