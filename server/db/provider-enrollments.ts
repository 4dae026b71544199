import { randomUUID } from 'node:crypto'
import { and, asc, eq, gt, isNull, lte, sql } from 'drizzle-orm'
import type { Clock } from '../domain/clock.ts'
import type { ProviderEnrollment, ProviderEnrollmentStore } from '../domain/virtual-mfa-enrollment.ts'
import { providerEnrollments, users } from './schema.ts'
import type { Sealer } from './sealing.ts'
import type { SqliteAccess } from './sqlite-access.ts'

type Row = typeof providerEnrollments.$inferSelect

/** Seeds are sealed bound to their row, like pending TOTP secrets: a seed copied to another row will not open. */
export const providerSeedBinding = (id: string): string => `provider-enrollment:${id}`

export class SqliteProviderEnrollmentStore implements ProviderEnrollmentStore {
  constructor (private readonly access: SqliteAccess, private readonly sealer: Sealer, private readonly clock: Clock) {}

  async start (entry: { userId: string, provider: string, kind: string, deviceId: string, secret: string, expiresAt: Date }): Promise<ProviderEnrollment> {
    return await this.access.run(() => {
      const id = randomUUID()
      const row = this.access.db.transaction((tx) => {
        // One open setup per user and kind: IAM names the device after the user, so an older row names the same
        // serial number, and cleaning it up later would delete this new device.
        tx.delete(providerEnrollments).where(and(
          eq(providerEnrollments.userId, entry.userId), eq(providerEnrollments.kind, entry.kind), isNull(providerEnrollments.completedAt)
        )).run()
        return tx.insert(providerEnrollments).values({
          id,
          userId: entry.userId,
          provider: entry.provider,
          kind: entry.kind,
          deviceId: entry.deviceId,
          secretSealed: this.sealer.seal(entry.secret, providerSeedBinding(id)),
          createdAt: this.clock.now().getTime(),
          expiresAt: entry.expiresAt.getTime()
        }).returning().get()
      })
      return toEnrollment(row)
    })
  }

  async findOpen (userId: string, kind: string, now: Date): Promise<(ProviderEnrollment & { secret: string }) | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(providerEnrollments).where(and(
        eq(providerEnrollments.userId, userId), eq(providerEnrollments.kind, kind), isNull(providerEnrollments.completedAt),
        gt(providerEnrollments.expiresAt, now.getTime())
      )).orderBy(sql`${providerEnrollments.createdAt} DESC`).get()
      if (row === undefined || row.secretSealed === null || row.deviceId === null) return undefined
      return { ...toEnrollment(row), secret: this.sealer.open(row.secretSealed, providerSeedBinding(row.id)) }
    })
  }

  async addAttempt (id: string): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(providerEnrollments).set({ attempts: sql`${providerEnrollments.attempts} + 1` }).where(eq(providerEnrollments.id, id)).run()
    })
  }

  async complete (id: string, methodKind: string, now: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.transaction((tx) => {
        const done = tx.update(providerEnrollments)
          // The seed is no longer needed once AWS holds the device: nothing secret stays behind.
          .set({ completedAt: now.getTime(), secretSealed: null })
          .where(and(eq(providerEnrollments.id, id), isNull(providerEnrollments.completedAt)))
          .returning({ userId: providerEnrollments.userId }).get()
        if (done === undefined) return false
        const user = tx.select({ methods: users.providerMethods }).from(users).where(eq(users.id, done.userId)).get()
        const methods = user === undefined ? [] : JSON.parse(user.methods) as string[]
        if (!methods.includes(methodKind)) {
          tx.update(users).set({ providerMethods: JSON.stringify([...methods, methodKind]), updatedAt: now.getTime() }).where(eq(users.id, done.userId)).run()
        }
        return true
      })
    })
  }

  async setProviderMethods (userId: string, methods: string[]): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(users).set({ providerMethods: JSON.stringify([...new Set(methods)]), updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId)).run()
    })
  }

  async listAbandoned (kind: string, now: Date, limit: number): Promise<ProviderEnrollment[]> {
    return await this.access.run(() => {
      return this.access.db.select().from(providerEnrollments).where(and(
        eq(providerEnrollments.kind, kind), isNull(providerEnrollments.completedAt), lte(providerEnrollments.expiresAt, now.getTime())
      )).orderBy(asc(providerEnrollments.expiresAt)).limit(limit).all().map(toEnrollment)
    })
  }

  async remove (id: string): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.delete(providerEnrollments).where(and(eq(providerEnrollments.id, id), isNull(providerEnrollments.completedAt))).run().changes === 1
    })
  }

  async restore (entry: ProviderEnrollment): Promise<void> {
    return await this.access.run(() => {
      // Without its seed: an abandoned setup is only kept to delete its device, never shown again.
      this.access.db.insert(providerEnrollments).values({
        id: entry.id, userId: entry.userId, provider: entry.provider, kind: entry.kind, deviceId: entry.deviceId,
        secretSealed: null, attempts: entry.attempts, createdAt: entry.createdAt.getTime(), expiresAt: entry.expiresAt.getTime()
      }).onConflictDoNothing().run()
    })
  }

  async arnOf (userId: string): Promise<string | null> {
    return await this.access.run(() => {
      const row = this.access.db.select({ attributes: users.providerAttributes }).from(users).where(eq(users.id, userId)).get()
      const arn = row === undefined ? undefined : (JSON.parse(row.attributes) as { arn?: unknown }).arn
      return typeof arn === 'string' ? arn : null
    })
  }
}

export function toEnrollment (row: Row): ProviderEnrollment {
  return {
    id: row.id,
    userId: row.userId,
    provider: row.provider,
    kind: row.kind,
    deviceId: row.deviceId ?? '',
    attempts: row.attempts,
    createdAt: new Date(row.createdAt),
    expiresAt: new Date(row.expiresAt),
    completedAt: row.completedAt === null ? null : new Date(row.completedAt)
  }
}
