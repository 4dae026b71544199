import { canonicalJson, ChainKeyring, GENESIS_HASH, isKeyedHash, keyedAuditHash, type AuditEntry, type AuditFilter, type AuditRecord, type AuditSearch, type AuditSearchRow, type AuditStore, type UnreadableAuditEvent } from '../domain/audit.ts'
import type { Clock } from '../domain/clock.ts'
import { storageFailureOf } from '../domain/storage.ts'
import type { SqliteAccess } from './sqlite-access.ts'

const COLUMNS = `id, at, action, actor_id AS actorId, actor_label AS actorLabel, subject_user_id AS subjectUserId,
  details, ip, user_agent AS userAgent, prev_hash AS prevHash, hash`

// Rows read at a time by all(): few enough to hold in memory, many enough that reading stays one query per page or so.
const READ_BATCH = 500

/** What read() returns, or undefined when the file is damaged where it reads; other errors are thrown. */
function readable<T> (read: () => T): T | undefined {
  try {
    return read()
  } catch (err) {
    if (storageFailureOf(err) !== 'damaged') throw err
    return undefined
  }
}

export class SqliteAuditLog implements AuditStore {
  private readonly last
  private readonly insert
  private readonly appendTx

  /** Told of every event once it is committed (the anchors count events and publish the chain's head). */
  private readonly listeners: Array<(record: AuditRecord) => void> = []

  constructor (private readonly access: SqliteAccess, private readonly clock: Clock, readonly keys: ChainKeyring) {
    const { sqlite } = access
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
      const full = { ...record, hash: keyedAuditHash(record, this.keys.signing) }
      this.insert.run(full)
      return full
    })
  }

  async append (entry: AuditEntry): Promise<AuditRecord> {
    return await this.access.run(() => this.appendNow(entry))
  }

  private appendNow (entry: AuditEntry): AuditRecord {
    const record = this.appendTx.immediate(entry)
    // Once the event is durable (after the caller's transaction when there is one): an anchor of an event that was
    // rolled back would never verify.
    this.access.afterCommit(() => { for (const listener of this.listeners) listener(record) })
    return record
  }

  onAppend (listener: (record: AuditRecord) => void): void {
    this.listeners.push(listener)
  }

  /** The newest event's number and hash (the chain's head), or undefined for an empty log. */
  async head (): Promise<{ seq: number, hash: string } | undefined> {
    return await this.access.run(() => this.headNow())
  }

  private headNow (): { seq: number, hash: string } | undefined {
    const tail = this.last.get() as { id: number, hash: string } | undefined
    return tail === undefined ? undefined : { seq: tail.id, hash: tail.hash }
  }

  /** One event by its number; unreadable when the file is damaged there. */
  async find (id: number): Promise<AuditRecord | UnreadableAuditEvent | undefined> {
    return await this.access.run(() => {
      try {
        return this.access.sqlite.prepare(`SELECT ${COLUMNS} FROM audit_events WHERE id = ?`).get(id) as AuditRecord | undefined
      } catch (err) {
        if (storageFailureOf(err) !== 'damaged') throw err
        return { id, unreadable: (err as Error).message }
      }
    })
  }

  /**
   * Keys a chain written before keyed hashes (plain SHA-256, which anyone holding the file can recompute): one
   * keyed event is appended after the old head, so everything before it keeps its old, still verifiable hashes and
   * everything from it on is signed. Run with the migrations (at start and by \`mfa-rollout migrate\`); returns
   * whether it did anything.
   */
  async upgradeChain (): Promise<boolean> {
    return await this.access.run(() => {
      const head = this.headNow()
      if (head === undefined || isKeyedHash(head.hash)) return false
      this.appendNow({ action: 'audit.chain_keyed', actorLabel: 'system', details: { keyId: this.keys.signing.id, unkeyedEvents: head.seq } })
      return true
    })
  }

  /**
   * Every row in id order, in batches (the log can be long). A damaged page of the file hides only the rows on it:
   * a batch that cannot be read is read again row by row, and each row that still cannot be read is handed on as
   * unreadable, with its id, for the verdict to name, instead of an error that ends the walk (ids run 1, 2, 3, …).
   */
  async * all (): AsyncIterable<AuditRecord | UnreadableAuditEvent> {
    const rows = this.allNow()
    while (true) {
      const next = await this.access.run(() => rows.next())
      if (next.done === true) return
      yield next.value
    }
  }

  private * allNow (): Generator<AuditRecord | UnreadableAuditEvent> {
    const batch = this.access.sqlite.prepare(`SELECT ${COLUMNS} FROM audit_events WHERE id >= ? AND id < ? ORDER BY id`)
    const one = this.access.sqlite.prepare(`SELECT ${COLUMNS} FROM audit_events WHERE id = ?`)
    const last = readable(() => this.sizeNow())
    for (let from = 1; last === undefined || from <= last; from += READ_BATCH) {
      const rows = readable(() => batch.all(from, from + READ_BATCH) as AuditRecord[])
      if (rows !== undefined) {
        yield * rows
        if (last === undefined && rows.length === 0) return
        continue
      }
      let found = 0
      for (let id = from; id < from + READ_BATCH && (last === undefined || id <= last); id++) {
        try {
          const row = one.get(id) as AuditRecord | undefined
          if (row === undefined) continue
          found++
          yield row
        } catch (err) {
          if (storageFailureOf(err) !== 'damaged') throw err
          yield { id, unreadable: (err as Error).message }
        }
      }
      // The end of the log is damaged too (its last id cannot be read): a batch with no readable row is taken as the end.
      if (last === undefined && found === 0) return
    }
  }

  /**
   * A page of the log for the admin viewer, newest first, keyset-paged by id (ids only grow, like the time).
   * `more` says whether another page lies beyond this one in the direction of travel (older, or newer for afterId).
   */
  async search (filter: AuditSearch): Promise<{ events: AuditSearchRow[], more: boolean }> {
    return await this.access.run(() => {
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
      const rows = this.access.sqlite.prepare(`SELECT a.id, a.at, a.action, a.actor_id AS actorId, a.actor_label AS actorLabel, a.subject_user_id AS subjectUserId,
          a.details, a.ip, a.user_agent AS userAgent, a.prev_hash AS prevHash, a.hash, su.email AS subjectEmail
        FROM audit_events a LEFT JOIN users su ON su.id = a.subject_user_id ${clause} ORDER BY a.id ${upwards ? 'ASC' : 'DESC'} LIMIT @limit`).all(params) as AuditSearchRow[]
      const events = rows.slice(0, limit)
      return { events: upwards ? events.reverse() : events, more: rows.length > limit }
    })
  }

  /** How many events the log holds (its last id: rows are never deleted), without counting them. */
  async size (): Promise<number> {
    return await this.access.run(() => this.sizeNow())
  }

  private sizeNow (): number {
    return (this.access.sqlite.prepare('SELECT coalesce(max(id), 0) FROM audit_events').pluck().get() as number)
  }

  /** Newest first, for pages and timelines. */
  async list (filter: AuditFilter = {}): Promise<AuditRecord[]> {
    return await this.access.run(() => {
      const where: string[] = []
      const params: Record<string, unknown> = { limit: Math.min(filter.limit ?? 50, 500) }
      if (filter.subjectUserId !== undefined) { where.push('subject_user_id = @subjectUserId'); params.subjectUserId = filter.subjectUserId }
      if (filter.action !== undefined) { where.push('action = @action'); params.action = filter.action }
      if (filter.beforeId !== undefined) { where.push('id < @beforeId'); params.beforeId = filter.beforeId }
      const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
      return this.access.sqlite.prepare(`SELECT ${COLUMNS} FROM audit_events ${clause} ORDER BY id DESC LIMIT @limit`).all(params) as AuditRecord[]
    })
  }
}
