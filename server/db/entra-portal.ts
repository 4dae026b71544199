import { randomUUID } from 'node:crypto'
import type { Clock } from '../domain/clock.ts'
import type { EntraEnrollmentStore, OathCleanup, PendingOath } from '../domain/entra-enrollment.ts'
import type { EntraPhoneStore, EntraPhoneUser } from '../domain/entra-phones.ts'
import { providerSeedBinding } from './provider-enrollments.ts'
import type { Sealer } from './sealing.ts'
import type { SqliteAccess } from './sqlite-access.ts'

const KIND = 'entra_oath'
/** A token the portal set out to create, kept until it is seen activated or removed (device_id = its serial number). */
const CLEANUP_KIND = 'entra_oath_cleanup'

type PhoneUserRow = Omit<EntraPhoneUser, 'privileged'> & { privileged: number }

/** What the portal holds for a disabled Entra user (the Entra adapter's DisabledUserRecord). */
export interface DisabledUserRecord {
  methods: readonly string[]
  readAt: string | null
  unrecognisedMethods: string | null
}

/** Storage for the Entra portal flows: pending OATH seeds (provider_enrollments), users' Entra method kinds and phones. */
export class SqliteEntraPortalStore implements EntraEnrollmentStore, EntraPhoneStore {
  private readonly statements

  constructor (private readonly access: SqliteAccess, private readonly sealer: Sealer, private readonly clock: Clock) {
    const { sqlite } = access
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      dropUnfinished: s(`DELETE FROM provider_enrollments WHERE user_id = ? AND provider = 'entra' AND kind = '${KIND}' AND completed_at IS NULL`),
      insert: s(`INSERT INTO provider_enrollments (id, user_id, provider, kind, secret_sealed, created_at, expires_at) VALUES (?, ?, 'entra', '${KIND}', ?, ?, ?)`),
      pending: s(`SELECT id, user_id AS userId, secret_sealed AS sealed, expires_at AS expiresAt FROM provider_enrollments
        WHERE user_id = ? AND provider = 'entra' AND kind = '${KIND}' AND completed_at IS NULL AND secret_sealed IS NOT NULL ORDER BY created_at DESC LIMIT 1`),
      claim: s('UPDATE provider_enrollments SET completed_at = ? WHERE id = ? AND completed_at IS NULL'),
      release: s('UPDATE provider_enrollments SET completed_at = NULL, attempts = attempts + 1 WHERE id = ? AND device_id IS NULL'),
      complete: s('UPDATE provider_enrollments SET device_id = ?, secret_sealed = NULL WHERE id = ?'),
      setMethods: s('UPDATE users SET provider_methods = ?, updated_at = ? WHERE id = ?'),
      withPhones: s(`SELECT id AS userId, email, external_id AS externalId, phone, privileged, role FROM users
        WHERE provider = 'entra' AND external_id IS NOT NULL AND disabled = 0 AND phone IS NOT NULL ORDER BY email`),
      byExternal: s("SELECT id AS userId, email, external_id AS externalId, privileged, role FROM users WHERE provider = 'entra' AND external_id = ?"),
      insertCleanup: s(`INSERT INTO provider_enrollments (id, user_id, provider, kind, device_id, created_at, expires_at) VALUES (?, ?, 'entra', '${CLEANUP_KIND}', ?, ?, ?)`),
      forgetCleanup: s(`DELETE FROM provider_enrollments WHERE id = ? AND kind = '${CLEANUP_KIND}'`),
      dueCleanups: s(`SELECT p.id, p.user_id AS userId, u.external_id AS externalId, p.device_id AS serialNumber, p.expires_at AS dueAt
        FROM provider_enrollments p LEFT JOIN users u ON u.id = p.user_id AND u.provider = 'entra'
        WHERE p.kind = '${CLEANUP_KIND}' AND p.expires_at <= ? ORDER BY p.expires_at LIMIT ?`),
      postponeCleanup: s(`UPDATE provider_enrollments SET expires_at = ?, attempts = attempts + 1 WHERE id = ? AND kind = '${CLEANUP_KIND}' AND expires_at = ?`),
      purgeUnfinished: s(`DELETE FROM provider_enrollments WHERE provider = 'entra' AND kind = '${KIND}' AND secret_sealed IS NOT NULL AND expires_at < ?`),
      disabledUser: s(`SELECT provider_methods AS methods, json_extract(provider_attributes, '$.methodsReadWhileDisabled') AS readAt,
        json_extract(provider_attributes, '$.unrecognisedMethods') AS unrecognised FROM users WHERE provider = 'entra' AND external_id = ?`)
    }
  }

  async startOath (userId: string, secretBase32: string, expiresAt: Date): Promise<PendingOath> {
    return await this.access.run(() => {
      const id = randomUUID()
      this.access.sqlite.transaction(() => {
        this.statements.dropUnfinished.run(userId)
        this.statements.insert.run(id, userId, this.sealer.seal(secretBase32, providerSeedBinding(id)), this.clock.now().getTime(), expiresAt.getTime())
      }).immediate()
      return { id, userId, secret: secretBase32, expiresAt }
    })
  }

  async findOath (userId: string): Promise<PendingOath | undefined> {
    return await this.access.run(() => {
      const row = this.statements.pending.get(userId) as { id: string, userId: string, sealed: string, expiresAt: number } | undefined
      return row === undefined ? undefined : { id: row.id, userId: row.userId, secret: this.sealer.open(row.sealed, providerSeedBinding(row.id)), expiresAt: new Date(row.expiresAt) }
    })
  }

  async claimOath (id: string, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.statements.claim.run(at.getTime(), id).changes === 1
    })
  }

  async releaseOath (id: string): Promise<void> {
    return await this.access.run(() => {
      this.statements.release.run(id)
    })
  }

  async completeOath (id: string, deviceId: string): Promise<void> {
    return await this.access.run(() => {
      this.statements.complete.run(deviceId, id)
    })
  }

  async setProviderMethods (userId: string, kinds: readonly string[]): Promise<void> {
    return await this.access.run(() => {
      this.statements.setMethods.run(JSON.stringify(kinds), this.clock.now().getTime(), userId)
    })
  }

  async entraUsersWithPhones (): Promise<Array<EntraPhoneUser & { externalId: string, phone: string }>> {
    return await this.access.run(() => {
      return (this.statements.withPhones.all() as Array<PhoneUserRow & { externalId: string, phone: string }>).map((row) => ({ ...row, privileged: row.privileged === 1 }))
    })
  }

  async entraUsersByExternalId (externalIds: readonly string[]): Promise<Map<string, EntraPhoneUser>> {
    return await this.access.run(() => {
      const found = new Map<string, EntraPhoneUser>()
      for (const externalId of new Set(externalIds)) {
        const row = this.statements.byExternal.get(externalId) as PhoneUserRow | undefined
        if (row !== undefined) found.set(externalId, { userId: row.userId, email: row.email, privileged: row.privileged === 1, role: row.role })
      }
      return found
    })
  }

  async recordOathCleanup (userId: string, serialNumber: string, dueAt: Date): Promise<string> {
    return await this.access.run(() => {
      const id = randomUUID()
      this.statements.insertCleanup.run(id, userId, serialNumber, this.clock.now().getTime(), dueAt.getTime())
      return id
    })
  }

  async forgetOathCleanup (id: string): Promise<void> {
    return await this.access.run(() => {
      this.statements.forgetCleanup.run(id)
    })
  }

  async dueOathCleanups (now: Date, limit: number): Promise<OathCleanup[]> {
    return await this.access.run(() => {
      const rows = this.statements.dueCleanups.all(now.getTime(), limit) as Array<Omit<OathCleanup, 'dueAt'> & { dueAt: number }>
      return rows.map((row) => ({ ...row, dueAt: new Date(row.dueAt) }))
    })
  }

  async postponeOathCleanup (entry: OathCleanup, until: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.statements.postponeCleanup.run(until.getTime(), entry.id, entry.dueAt.getTime()).changes === 1
    })
  }

  async purgeUnfinishedOath (before: Date): Promise<number> {
    return await this.access.run(() => {
      return this.statements.purgeUnfinished.run(before.getTime()).changes
    })
  }

  /**
   * Disabled Entra users the portal knows, with the methods it holds for them and when those were read while the
   * account was disabled (users.provider_attributes), so a sync reads each of them once, not every run.
   */
  async disabledUserRecords (externalIds: readonly string[]): Promise<Map<string, DisabledUserRecord>> {
    return await this.access.run(() => {
      const found = new Map<string, DisabledUserRecord>()
      for (const externalId of new Set(externalIds)) {
        const row = this.statements.disabledUser.get(externalId) as { methods: string, readAt: unknown, unrecognised: unknown } | undefined
        if (row === undefined) continue
        found.set(externalId, {
          methods: JSON.parse(row.methods) as string[],
          readAt: typeof row.readAt === 'string' ? row.readAt : null,
          unrecognisedMethods: typeof row.unrecognised === 'string' ? row.unrecognised : null
        })
      }
      return found
    })
  }

  /** The portal user synced from Entra with this object id (the unique (provider, external_id) index). */
  async userIdByObjectId (objectId: string): Promise<string | undefined> {
    return await this.access.run(() => {
      return (this.statements.byExternal.get(objectId) as { userId: string } | undefined)?.userId
    })
  }
}
