import { randomUUID } from 'node:crypto'
import { and, count, eq, gte, isNotNull, lte, sql } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { PendingEnrollment, PendingStore } from '../../domain/pending.ts'
import { providerSeedBinding } from '../provider-enrollments.ts'
import type { Sealer } from '../sealing.ts'
import type { PgAccess } from './access.ts'
import { pendingEnrollments, providerEnrollments, smsSends } from './schema.ts'

type Row = typeof pendingEnrollments.$inferSelect
type PendingKind = Row['kind']

export class PgPendingStore implements PendingStore {
  constructor (private readonly access: PgAccess, private readonly sealer: Sealer, private readonly clock: Clock) {}

  async startTotp (userId: string, secretBase32: string, expiresAt: Date): Promise<PendingEnrollment> {
    const id = randomUUID()
    return await this.replacePending(userId, 'totp', {
      id, userId, kind: 'totp', secretSealed: this.sealer.seal(secretBase32, `pending-totp:${id}`),
      expiresAt: expiresAt.getTime(), createdAt: this.clock.now().getTime()
    })
  }

  async findTotp (userId: string): Promise<(PendingEnrollment & { secret: string }) | undefined> {
    const [row] = await this.access.current.select().from(pendingEnrollments)
      .where(and(eq(pendingEnrollments.userId, userId), eq(pendingEnrollments.kind, 'totp'), isNotNull(pendingEnrollments.secretSealed)))
    return row === undefined ? undefined : { ...toPending(row), secret: this.sealer.open(row.secretSealed!, `pending-totp:${row.id}`) }
  }

  async startPhone (userId: string, kind: 'phone' | 'step_up_phone', phone: string, hashFor: (id: string) => string, sentAt: Date, expiresAt: Date): Promise<PendingEnrollment> {
    const id = randomUUID()
    return await this.replacePending(userId, kind, {
      id, userId, kind, phone, codeHash: hashFor(id), sentAt: sentAt.getTime(), expiresAt: expiresAt.getTime(), createdAt: this.clock.now().getTime()
    })
  }

  async findPhone (userId: string, kind: 'phone' | 'step_up_phone'): Promise<PendingEnrollment | undefined> {
    const [row] = await this.access.current.select().from(pendingEnrollments).where(and(eq(pendingEnrollments.userId, userId), eq(pendingEnrollments.kind, kind)))
    return row === undefined ? undefined : toPending(row)
  }

  async resendCode (id: string, codeHash: string, sentAt: Date, expiresAt: Date): Promise<void> {
    await this.access.current.update(pendingEnrollments).set({ codeHash, sentAt: sentAt.getTime(), expiresAt: expiresAt.getTime(), attempts: 0 }).where(eq(pendingEnrollments.id, id))
  }

  async addAttempt (id: string): Promise<number> {
    const [row] = await this.access.current.update(pendingEnrollments).set({ attempts: sql`${pendingEnrollments.attempts} + 1` })
      .where(eq(pendingEnrollments.id, id)).returning({ attempts: pendingEnrollments.attempts })
    return row?.attempts ?? Number.MAX_SAFE_INTEGER
  }

  async claim (id: string): Promise<boolean> {
    const claimed = await this.access.current.delete(pendingEnrollments).where(eq(pendingEnrollments.id, id))
    return claimed.rowCount === 1
  }

  /**
   * Re-seals the secrets of setups in progress not under the current key (key rotation); returns how many. The rows
   * are locked while they are read, so a rotation run on two instances at once re-seals each secret once.
   */
  async resealAll (): Promise<number> {
    return await this.access.transaction(async () => {
      const db = this.access.current
      const portalRows = await db.select({ id: pendingEnrollments.id, sealed: pendingEnrollments.secretSealed }).from(pendingEnrollments)
        .where(and(eq(pendingEnrollments.kind, 'totp'), isNotNull(pendingEnrollments.secretSealed))).for('update')
      const portal = await this.reseal(portalRows, (id) => `pending-totp:${id}`, async (id, sealed) => {
        await db.update(pendingEnrollments).set({ secretSealed: sealed }).where(eq(pendingEnrollments.id, id))
      })
      // Seeds of setups at a directory (AWS virtual MFA, Entra hardware OATH) until the device is confirmed.
      const providerRows = await db.select({ id: providerEnrollments.id, sealed: providerEnrollments.secretSealed }).from(providerEnrollments)
        .where(isNotNull(providerEnrollments.secretSealed)).for('update')
      const provider = await this.reseal(providerRows, providerSeedBinding, async (id, sealed) => {
        await db.update(providerEnrollments).set({ secretSealed: sealed }).where(eq(providerEnrollments.id, id))
      })
      return portal + provider
    })
  }

  /** Forgets setups and codes that expired, and send records older than a day (housekeeping). */
  async purgeExpired (now: Date): Promise<number> {
    const pending = await this.access.current.delete(pendingEnrollments).where(lte(pendingEnrollments.expiresAt, now.getTime()))
    const sends = await this.access.current.delete(smsSends).where(lte(smsSends.sentAt, now.getTime() - 24 * 3_600_000))
    return (pending.rowCount ?? 0) + (sends.rowCount ?? 0)
  }

  async recordSms (userId: string, phone: string, at: Date): Promise<void> {
    await this.access.current.insert(smsSends).values({ userId, phone, sentAt: at.getTime() })
  }

  async smsCountSince (userId: string, since: Date): Promise<number> {
    const [row] = await this.access.current.select({ n: count() }).from(smsSends).where(and(eq(smsSends.userId, userId), gte(smsSends.sentAt, since.getTime())))
    return row?.n ?? 0
  }

  /**
   * One pending setup per user and kind: the earlier one is deleted and the new one inserted under a lock on the
   * pair, so two starts at once on different instances leave one row, not two.
   */
  private async replacePending (userId: string, kind: PendingKind, values: typeof pendingEnrollments.$inferInsert): Promise<PendingEnrollment> {
    const row = await this.access.transaction(async () => {
      const db = this.access.current
      await db.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`pending:${kind}:${userId}`}, 0))`)
      await db.delete(pendingEnrollments).where(and(eq(pendingEnrollments.userId, userId), eq(pendingEnrollments.kind, kind)))
      const [inserted] = await db.insert(pendingEnrollments).values(values).returning()
      return inserted
    })
    return toPending(row)
  }

  /** resealRows writes synchronously and throws before returning if any secret will not open: nothing is written then. */
  private async reseal (rows: Array<{ id: string, sealed: string | null }>, boundTo: (id: string) => string, write: (id: string, sealed: string) => Promise<void>): Promise<number> {
    const writes: Array<{ id: string, sealed: string }> = []
    const resealed = this.sealer.resealRows(rows, boundTo, (id, sealed) => { writes.push({ id, sealed }) })
    for (const { id, sealed } of writes) await write(id, sealed)
    return resealed
  }
}

function toPending (row: Row): PendingEnrollment {
  return {
    id: row.id,
    userId: row.userId,
    kind: row.kind,
    phone: row.phone,
    codeHash: row.codeHash,
    attempts: row.attempts,
    sentAt: row.sentAt === null ? null : new Date(row.sentAt),
    expiresAt: new Date(row.expiresAt)
  }
}
