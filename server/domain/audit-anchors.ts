import type { AuditAnchor, AuditRecord } from './audit.ts'

/** A head of the chain as it leaves the database: the event's number, its hash, and when it was sent. */
export interface PublishedAnchor extends AuditAnchor {
  at: string
}

/** Where anchors go besides the log: a SIEM or log collector (AUDIT_ANCHOR_URL). */
export interface AnchorPublisher {
  publish(anchor: PublishedAnchor): Promise<void>
}

export interface AnchorLog {
  info(fields: object, message: string): void
  warn(fields: object, message: string): void
}

export interface AnchorSettings {
  /** An anchor every this many events. */
  every: number
  /** And at least this often while new events arrive (the timer calls anchorIfDue). */
  intervalMs: number
}

/**
 * Anchors the audit chain outside the database (DESIGN.md security rules). Whoever can write the database file can
 * cut its newest events, and nothing inside the file could show it; a head written to the log stream and sent to
 * a collector can: `mfa-rollout audit verify --anchor SEQ:HASH` proves the log still holds that event, with that
 * hash, and everything before it. Each anchor is one log line `audit anchor SEQ:HASH` (field `auditAnchor`).
 */
export class AuditAnchors {
  private lastSeq = 0
  private lastAt = Number.NEGATIVE_INFINITY

  constructor (
    private readonly log: AnchorLog,
    private readonly publisher: AnchorPublisher | undefined,
    private readonly now: () => Date,
    private readonly settings: AnchorSettings
  ) {}

  /** After every event: each `every`-th one is anchored at once. */
  afterAppend (record: AuditRecord): void {
    if (record.id % this.settings.every === 0) this.anchor({ seq: record.id, hash: record.hash })
  }

  /** On a timer: anchors the head when it moved since the last anchor and that one is older than the interval. */
  anchorIfDue (head: AuditAnchor | undefined): PublishedAnchor | undefined {
    if (head === undefined || head.seq === this.lastSeq) return undefined
    if (this.now().getTime() - this.lastAt < this.settings.intervalMs) return undefined
    return this.anchor(head)
  }

  private anchor (head: AuditAnchor): PublishedAnchor {
    const anchor: PublishedAnchor = { seq: head.seq, hash: head.hash, at: this.now().toISOString() }
    this.lastSeq = anchor.seq
    this.lastAt = this.now().getTime()
    this.log.info({ auditAnchor: anchor }, `audit anchor ${anchor.seq}:${anchor.hash}`)
    this.publisher?.publish(anchor).catch((err: unknown) => {
      // The log line stands; the next anchor is sent again in full, so a collector that was down misses none for good.
      this.log.warn({ seq: anchor.seq, error: err instanceof Error ? err.message : String(err) }, 'audit anchor could not be sent to AUDIT_ANCHOR_URL')
    })
    return anchor
  }
}
