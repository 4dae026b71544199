import { and, desc, eq, gt, lt, sql, type SQL } from 'drizzle-orm'
import { canonicalJson, GENESIS_HASH, isKeyedHash, keyedAuditHash, type AuditEntry, type AuditFilter, type AuditRecord, type AuditSearch, type AuditSearchRow, type AuditStore, type ChainKeyring } from '../../domain/audit.ts'
import type { Clock } from '../../domain/clock.ts'
import type { PgAccess } from './access.ts'
import { auditEvents, users } from './schema.ts'

/**
 * The advisory lock that serialises appends to the chain across instances ("MFAR" in the high 32 bits like
 * migrate.ts's MIGRATION_LOCK_KEY; purpose 2: the audit chain). Taken per transaction, so it ends with the commit
 * that makes the new tail visible to the next appender.
 */
export const AUDIT_CHAIN_LOCK_KEY = 0x4d464152_00000002n

// Rows read at a time by all(): few enough to hold in memory, many enough that reading stays one query per page or so.
const READ_BATCH = 500

const COLUMNS = {
  id: auditEvents.id,
  at: auditEvents.at,
  action: auditEvents.action,
  actorId: auditEvents.actorId,
  actorLabel: auditEvents.actorLabel,
  subjectUserId: auditEvents.subjectUserId,
  details: auditEvents.details,
  ip: auditEvents.ip,
  userAgent: auditEvents.userAgent,
  prevHash: auditEvents.prevHash,
  hash: auditEvents.hash
}

export class PgAuditLog implements AuditStore {
  /** Told of every event once it is committed (the anchors count events and publish the chain's head). */
  private readonly listeners: Array<(record: AuditRecord) => void> = []

  constructor (private readonly access: PgAccess, private readonly clock: Clock, readonly keys: ChainKeyring) {}

  /**
   * Reads the tail and inserts the next event under the chain's lock, so appends from every instance line up one
   * after the other and the chain never forks. Inside a caller's transaction the lock is held until that commits.
   */
  async append (entry: AuditEntry): Promise<AuditRecord> {
    const record = await this.access.transaction(async () => {
      await this.access.current.execute(sql`SELECT pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK_KEY.toString()}::bigint)`)
      const tail = await this.tail()
      const body: Omit<AuditRecord, 'hash'> = {
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
      const full = { ...body, hash: keyedAuditHash(body, this.keys.signing) }
      await this.access.current.insert(auditEvents).values(full)
      return full
    })
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
    const tail = await this.tail()
    return tail === undefined ? undefined : { seq: tail.id, hash: tail.hash }
  }

  private async tail (): Promise<{ id: number, hash: string } | undefined> {
    const [row] = await this.access.current.select({ id: auditEvents.id, hash: auditEvents.hash }).from(auditEvents).orderBy(desc(auditEvents.id)).limit(1)
    return row
  }

  /** One event by its number. PostgreSQL reports damage as an error of its own: no row is handed on as unreadable. */
  async find (id: number): Promise<AuditRecord | undefined> {
    const [row] = await this.access.current.select(COLUMNS).from(auditEvents).where(eq(auditEvents.id, id))
    return row
  }

  /** Keys a chain written before keyed hashes (see the SQLite store); whether it did anything. */
  async upgradeChain (): Promise<boolean> {
    const head = await this.head()
    if (head === undefined || isKeyedHash(head.hash)) return false
    await this.append({ action: 'audit.chain_keyed', actorLabel: 'system', details: { keyId: this.keys.signing.id, unkeyedEvents: head.seq } })
    return true
  }

  /** Every row in id order, keyset-paged (the log can be long). */
  async * all (): AsyncIterable<AuditRecord> {
    for (let after = 0; ;) {
      const rows = await this.access.current.select(COLUMNS).from(auditEvents).where(gt(auditEvents.id, after)).orderBy(auditEvents.id).limit(READ_BATCH)
      yield * rows
      if (rows.length < READ_BATCH) return
      after = rows[rows.length - 1].id
    }
  }

  /**
   * A page of the log for the admin viewer, newest first, keyset-paged by id (ids only grow, like the time).
   * `more` says whether another page lies beyond this one in the direction of travel (older, or newer for afterId).
   */
  async search (filter: AuditSearch): Promise<{ events: AuditSearchRow[], more: boolean }> {
    const limit = Math.min(filter.limit, 500)
    const where: SQL[] = []
    if (filter.actionPrefix !== undefined && filter.actionPrefix !== '') where.push(sql`starts_with(${auditEvents.action}, ${filter.actionPrefix})`)
    if (filter.actor !== undefined && filter.actor !== '') {
      // SQLite compares the label with COLLATE NOCASE; lower() on both sides does the same here.
      where.push(sql`(lower(${auditEvents.actorLabel}) = lower(${filter.actor}) OR ${auditEvents.actorId} IN (SELECT ${users.id} FROM ${users} WHERE ${users.email} = lower(${filter.actor})))`)
    }
    if (filter.subjectUserId !== undefined) where.push(eq(auditEvents.subjectUserId, filter.subjectUserId))
    // ISO instants compare as text, byte by byte as on SQLite, whatever the database's collation.
    if (filter.from !== undefined) where.push(sql`${auditEvents.at} COLLATE "C" >= ${filter.from}`)
    if (filter.until !== undefined) where.push(sql`${auditEvents.at} COLLATE "C" < ${filter.until}`)
    if (filter.beforeId !== undefined) where.push(lt(auditEvents.id, filter.beforeId))
    if (filter.afterId !== undefined) where.push(gt(auditEvents.id, filter.afterId))
    // Paging back towards newer events reads upwards from the cursor; the page is then turned newest first again.
    const upwards = filter.afterId !== undefined && filter.beforeId === undefined
    // One row more than the page, to know whether there is a next page without counting.
    const rows = await this.access.current.select({ ...COLUMNS, subjectEmail: users.email })
      .from(auditEvents).leftJoin(users, eq(users.id, auditEvents.subjectUserId))
      .where(and(...where)).orderBy(upwards ? auditEvents.id : desc(auditEvents.id)).limit(limit + 1)
    const events = rows.slice(0, limit)
    return { events: upwards ? events.reverse() : events, more: rows.length > limit }
  }

  /** How many events the log holds (its last id: rows are never deleted), without counting them. */
  async size (): Promise<number> {
    return (await this.tail())?.id ?? 0
  }

  /** Newest first, for pages and timelines. */
  async list (filter: AuditFilter = {}): Promise<AuditRecord[]> {
    const where: SQL[] = []
    if (filter.subjectUserId !== undefined) where.push(eq(auditEvents.subjectUserId, filter.subjectUserId))
    if (filter.action !== undefined) where.push(eq(auditEvents.action, filter.action))
    if (filter.beforeId !== undefined) where.push(lt(auditEvents.id, filter.beforeId))
    return await this.access.current.select(COLUMNS).from(auditEvents).where(and(...where))
      .orderBy(desc(auditEvents.id)).limit(Math.min(filter.limit ?? 50, 500))
  }
}
