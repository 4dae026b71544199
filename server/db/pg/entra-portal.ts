import { randomUUID } from 'node:crypto'
import { and, asc, desc, eq, inArray, isNotNull, isNull, lt, lte, sql } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { EntraEnrollmentStore, OathCleanup, PendingOath } from '../../domain/entra-enrollment.ts'
import type { EntraPhoneStore, EntraPhoneUser } from '../../domain/entra-phones.ts'
import type { DisabledUserRecord } from '../entra-portal.ts'
import { providerSeedBinding } from '../provider-enrollments.ts'
import type { Sealer } from '../sealing.ts'
import type { PgAccess } from './access.ts'
import { providerEnrollments as enrollments, users } from './schema.ts'

const KIND = 'entra_oath'
/** A token the portal set out to create, kept until it is seen activated or removed (device_id = its serial number). */
const CLEANUP_KIND = 'entra_oath_cleanup'

const unfinishedOf = (userId: string) => and(eq(enrollments.userId, userId), eq(enrollments.provider, 'entra'), eq(enrollments.kind, KIND), isNull(enrollments.completedAt))

/** Storage for the Entra portal flows: pending OATH seeds (provider_enrollments), users' Entra method kinds and phones. */
export class PgEntraPortalStore implements EntraEnrollmentStore, EntraPhoneStore {
  constructor (private readonly access: PgAccess, private readonly sealer: Sealer, private readonly clock: Clock) {}

  /** A lock per user (to the end of the transaction): of two setups started at once, the later replaces the earlier. */
  async startOath (userId: string, secretBase32: string, expiresAt: Date): Promise<PendingOath> {
    const id = randomUUID()
    await this.access.transaction(async () => {
      await this.access.current.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${'entra-oath:' + userId}, 0))`)
      await this.access.current.delete(enrollments).where(unfinishedOf(userId))
      await this.access.current.insert(enrollments).values({
        id, userId, provider: 'entra', kind: KIND, secretSealed: this.sealer.seal(secretBase32, providerSeedBinding(id)), createdAt: this.clock.now().getTime(), expiresAt: expiresAt.getTime()
      })
    })
    return { id, userId, secret: secretBase32, expiresAt }
  }

  async findOath (userId: string): Promise<PendingOath | undefined> {
    const [row] = await this.access.current.select({ id: enrollments.id, userId: enrollments.userId, sealed: enrollments.secretSealed, expiresAt: enrollments.expiresAt })
      .from(enrollments).where(and(unfinishedOf(userId), isNotNull(enrollments.secretSealed))).orderBy(desc(enrollments.createdAt)).limit(1)
    return row === undefined ? undefined : { id: row.id, userId: row.userId, secret: this.sealer.open(row.sealed as string, providerSeedBinding(row.id)), expiresAt: new Date(row.expiresAt) }
  }

  async claimOath (id: string, at: Date): Promise<boolean> {
    const claimed = await this.access.current.update(enrollments).set({ completedAt: at.getTime() }).where(and(eq(enrollments.id, id), isNull(enrollments.completedAt)))
    return claimed.rowCount === 1
  }

  async releaseOath (id: string): Promise<void> {
    await this.access.current.update(enrollments).set({ completedAt: null, attempts: sql`${enrollments.attempts} + 1` }).where(and(eq(enrollments.id, id), isNull(enrollments.deviceId)))
  }

  async completeOath (id: string, deviceId: string): Promise<void> {
    await this.access.current.update(enrollments).set({ deviceId, secretSealed: null }).where(eq(enrollments.id, id))
  }

  async setProviderMethods (userId: string, kinds: readonly string[]): Promise<void> {
    await this.access.current.update(users).set({ providerMethods: JSON.stringify(kinds), updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId))
  }

  async entraUsersWithPhones (): Promise<Array<EntraPhoneUser & { externalId: string, phone: string }>> {
    const rows = await this.access.current.select({ userId: users.id, email: users.email, externalId: users.externalId, phone: users.phone, privileged: users.privileged, role: users.role })
      .from(users).where(and(eq(users.provider, 'entra'), isNotNull(users.externalId), eq(users.disabled, false), isNotNull(users.phone))).orderBy(asc(users.email))
    return rows as Array<EntraPhoneUser & { externalId: string, phone: string }>
  }

  async entraUsersByExternalId (externalIds: readonly string[]): Promise<Map<string, EntraPhoneUser>> {
    const found = new Map<string, EntraPhoneUser>()
    if (externalIds.length === 0) return found
    const rows = await this.access.current.select({ externalId: users.externalId, userId: users.id, email: users.email, privileged: users.privileged, role: users.role })
      .from(users).where(and(eq(users.provider, 'entra'), inArray(users.externalId, [...new Set(externalIds)])))
    for (const { externalId, ...user } of rows) found.set(externalId as string, user)
    return found
  }

  async recordOathCleanup (userId: string, serialNumber: string, dueAt: Date): Promise<string> {
    const id = randomUUID()
    await this.access.current.insert(enrollments).values({ id, userId, provider: 'entra', kind: CLEANUP_KIND, deviceId: serialNumber, createdAt: this.clock.now().getTime(), expiresAt: dueAt.getTime() })
    return id
  }

  async forgetOathCleanup (id: string): Promise<void> {
    await this.access.current.delete(enrollments).where(and(eq(enrollments.id, id), eq(enrollments.kind, CLEANUP_KIND)))
  }

  async dueOathCleanups (now: Date, limit: number): Promise<OathCleanup[]> {
    const rows = await this.access.current.select({ id: enrollments.id, userId: enrollments.userId, externalId: users.externalId, serialNumber: enrollments.deviceId, dueAt: enrollments.expiresAt })
      .from(enrollments).leftJoin(users, and(eq(users.id, enrollments.userId), eq(users.provider, 'entra')))
      .where(and(eq(enrollments.kind, CLEANUP_KIND), lte(enrollments.expiresAt, now.getTime()))).orderBy(asc(enrollments.expiresAt)).limit(limit)
    return rows.map((row) => ({ ...row, serialNumber: row.serialNumber as string, dueAt: new Date(row.dueAt) }))
  }

  async postponeOathCleanup (entry: OathCleanup, until: Date): Promise<boolean> {
    const moved = await this.access.current.update(enrollments).set({ expiresAt: until.getTime(), attempts: sql`${enrollments.attempts} + 1` })
      .where(and(eq(enrollments.id, entry.id), eq(enrollments.kind, CLEANUP_KIND), eq(enrollments.expiresAt, entry.dueAt.getTime())))
    return moved.rowCount === 1
  }

  async purgeUnfinishedOath (before: Date): Promise<number> {
    const purged = await this.access.current.delete(enrollments)
      .where(and(eq(enrollments.provider, 'entra'), eq(enrollments.kind, KIND), isNotNull(enrollments.secretSealed), lt(enrollments.expiresAt, before.getTime())))
    return purged.rowCount ?? 0
  }

  /**
   * Disabled Entra users the portal knows, with the methods it holds for them and when those were read while the
   * account was disabled (users.provider_attributes), so a sync reads each of them once, not every run.
   */
  async disabledUserRecords (externalIds: readonly string[]): Promise<Map<string, DisabledUserRecord>> {
    const found = new Map<string, DisabledUserRecord>()
    if (externalIds.length === 0) return found
    // -> keeps JSON's types (a string comes back a string), as SQLite's json_extract does.
    const rows = await this.access.current.select({
      externalId: users.externalId,
      methods: users.providerMethods,
      readAt: sql<unknown>`${users.providerAttributes}::jsonb -> 'methodsReadWhileDisabled'`,
      unrecognised: sql<unknown>`${users.providerAttributes}::jsonb -> 'unrecognisedMethods'`
    }).from(users).where(and(eq(users.provider, 'entra'), inArray(users.externalId, [...new Set(externalIds)])))
    for (const row of rows) {
      found.set(row.externalId as string, {
        methods: JSON.parse(row.methods) as string[],
        readAt: typeof row.readAt === 'string' ? row.readAt : null,
        unrecognisedMethods: typeof row.unrecognised === 'string' ? row.unrecognised : null
      })
    }
    return found
  }

  /** The portal user synced from Entra with this object id (the unique (provider, external_id) index). */
  async userIdByObjectId (objectId: string): Promise<string | undefined> {
    const [row] = await this.access.current.select({ userId: users.id }).from(users).where(and(eq(users.provider, 'entra'), eq(users.externalId, objectId)))
    return row?.userId
  }
}
