import { randomUUID } from 'node:crypto'
import { and, asc, desc, eq, gt, isNull, lte, sql } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { ProviderEnrollment, ProviderEnrollmentStore } from '../../domain/virtual-mfa-enrollment.ts'
import { providerSeedBinding, toEnrollment } from '../provider-enrollments.ts'
import type { Sealer } from '../sealing.ts'
import type { PgAccess } from './access.ts'
import { providerEnrollments, users } from './schema.ts'

export class PgProviderEnrollmentStore implements ProviderEnrollmentStore {
  constructor (private readonly access: PgAccess, private readonly sealer: Sealer, private readonly clock: Clock) {}

  async start (entry: { userId: string, provider: string, kind: string, deviceId: string, secret: string, expiresAt: Date }): Promise<ProviderEnrollment> {
    const id = randomUUID()
    const row = await this.access.transaction(async () => {
      const db = this.access.current
      // Two setups started at once (two instances) would not see each other's new row and both stay open: they
      // take turns on a lock per user and kind, so the later one drops the earlier.
      await db.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${`provider-enrollment:${entry.userId}:${entry.kind}`}, 0))`)
      // One open setup per user and kind: IAM names the device after the user, so an older row names the same
      // serial number, and cleaning it up later would delete this new device.
      await db.delete(providerEnrollments).where(and(
        eq(providerEnrollments.userId, entry.userId), eq(providerEnrollments.kind, entry.kind), isNull(providerEnrollments.completedAt)
      ))
      const [inserted] = await db.insert(providerEnrollments).values({
        id,
        userId: entry.userId,
        provider: entry.provider,
        kind: entry.kind,
        deviceId: entry.deviceId,
        secretSealed: this.sealer.seal(entry.secret, providerSeedBinding(id)),
        createdAt: this.clock.now().getTime(),
        expiresAt: entry.expiresAt.getTime()
      }).returning()
      return inserted
    })
    return toEnrollment(row)
  }

  async findOpen (userId: string, kind: string, now: Date): Promise<(ProviderEnrollment & { secret: string }) | undefined> {
    const [row] = await this.access.current.select().from(providerEnrollments).where(and(
      eq(providerEnrollments.userId, userId), eq(providerEnrollments.kind, kind), isNull(providerEnrollments.completedAt),
      gt(providerEnrollments.expiresAt, now.getTime())
    )).orderBy(desc(providerEnrollments.createdAt)).limit(1)
    if (row === undefined || row.secretSealed === null || row.deviceId === null) return undefined
    return { ...toEnrollment(row), secret: this.sealer.open(row.secretSealed, providerSeedBinding(row.id)) }
  }

  async addAttempt (id: string): Promise<void> {
    await this.access.current.update(providerEnrollments).set({ attempts: sql`${providerEnrollments.attempts} + 1` }).where(eq(providerEnrollments.id, id))
  }

  async complete (id: string, methodKind: string, now: Date): Promise<boolean> {
    return await this.access.transaction(async () => {
      const db = this.access.current
      const [done] = await db.update(providerEnrollments)
        // The seed is no longer needed once AWS holds the device: nothing secret stays behind.
        .set({ completedAt: now.getTime(), secretSealed: null })
        .where(and(eq(providerEnrollments.id, id), isNull(providerEnrollments.completedAt)))
        .returning({ userId: providerEnrollments.userId })
      if (done === undefined) return false
      // Locked while read, changed and written back: a directory sync or another completion for the same user at
      // the same moment would otherwise overwrite the list without this method (or this one without theirs).
      const [user] = await db.select({ methods: users.providerMethods }).from(users).where(eq(users.id, done.userId)).for('no key update')
      const methods = user === undefined ? [] : JSON.parse(user.methods) as string[]
      if (!methods.includes(methodKind)) {
        await db.update(users).set({ providerMethods: JSON.stringify([...methods, methodKind]), updatedAt: now.getTime() }).where(eq(users.id, done.userId))
      }
      return true
    })
  }

  async setProviderMethods (userId: string, methods: string[]): Promise<void> {
    await this.access.current.update(users).set({ providerMethods: JSON.stringify([...new Set(methods)]), updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId))
  }

  async listAbandoned (kind: string, now: Date, limit: number): Promise<ProviderEnrollment[]> {
    const rows = await this.access.current.select().from(providerEnrollments).where(and(
      eq(providerEnrollments.kind, kind), isNull(providerEnrollments.completedAt), lte(providerEnrollments.expiresAt, now.getTime())
    )).orderBy(asc(providerEnrollments.expiresAt)).limit(limit)
    return rows.map(toEnrollment)
  }

  async remove (id: string): Promise<boolean> {
    const removed = await this.access.current.delete(providerEnrollments).where(and(eq(providerEnrollments.id, id), isNull(providerEnrollments.completedAt)))
    return removed.rowCount === 1
  }

  async restore (entry: ProviderEnrollment): Promise<void> {
    // Without its seed: an abandoned setup is only kept to delete its device, never shown again.
    await this.access.current.insert(providerEnrollments).values({
      id: entry.id, userId: entry.userId, provider: entry.provider, kind: entry.kind, deviceId: entry.deviceId,
      secretSealed: null, attempts: entry.attempts, createdAt: entry.createdAt.getTime(), expiresAt: entry.expiresAt.getTime()
    }).onConflictDoNothing()
  }

  async arnOf (userId: string): Promise<string | null> {
    const [row] = await this.access.current.select({ attributes: users.providerAttributes }).from(users).where(eq(users.id, userId))
    const arn = row === undefined ? undefined : (JSON.parse(row.attributes) as { arn?: unknown }).arn
    return typeof arn === 'string' ? arn : null
  }
}
