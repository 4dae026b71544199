import { randomUUID } from 'node:crypto'
import { and, desc, eq, isNull, lt, ne, or, sql } from 'drizzle-orm'
import { adoptionRefusal, SYNC_NAMES_KEPT, type DirectoryRecord, type DirectorySyncStore, type SyncRun, type UpsertResult } from '../../domain/directory-sync.ts'
import { holderOf } from '../directory-sync.ts'
import type { PgAccess } from './access.ts'
import { directorySyncs, userGroups, users } from './schema.ts'

/** Directory sync's storage: users keyed by (provider, external id), and one row per run. */
export class PgDirectorySyncStore implements DirectorySyncStore {
  constructor (private readonly access: PgAccess) {}

  async begin (provider: string, now: Date): Promise<number> {
    const [run] = await this.access.current.insert(directorySyncs).values({ provider, startedAt: now.getTime(), status: 'running' }).returning({ id: directorySyncs.id })
    return run.id
  }

  async exists (provider: string, externalId: string): Promise<boolean> {
    return await this.userIdByExternal(provider, externalId) !== undefined
  }

  /**
   * One transaction holding a lock on the record's address and on each of its ids (taken in a fixed order, so two
   * upserts cannot deadlock): two instances syncing the same directory user, or two users claiming one address,
   * take turns, and the second sees what the first wrote (SQLite's single writer gave that for free).
   */
  async upsert (provider: string, record: DirectoryRecord, now: Date): Promise<UpsertResult> {
    return await this.access.transaction(async (): Promise<UpsertResult> => {
      const keys = [`email:${record.email}`, ...[record.externalId, ...record.formerExternalIds ?? []].map((id) => `external:${provider}:${id}`)]
      for (const key of [...new Set(keys)].sort()) {
        await this.access.current.execute(sql`SELECT pg_advisory_xact_lock(hashtextextended(${'directory-user:' + key}, 0))`)
      }
      let id = await this.userIdByExternal(provider, record.externalId)
      // A row from before the provider's ids changed (AWS: IAM user names, now user ids): the update rewrites its id.
      for (const former of record.formerExternalIds ?? []) {
        if (id !== undefined) break
        id = await this.userIdByExternal(provider, former)
      }
      let adopted = false
      if (id !== undefined) {
        // Who else holds an address: another directory user, or a portal account.
        const [holder] = await this.access.current.select({ id: users.id, provider: users.provider, externalId: users.externalId, displayName: users.displayName, role: users.role })
          .from(users).where(and(eq(users.email, record.email), ne(users.id, id)))
        if (holder !== undefined) {
          const [stored] = await this.access.current.select({ email: users.email }).from(users).where(eq(users.id, id))
          return { conflict: `email ${record.email} ${holderOf(holder)}`, existingUserId: holder.id, adoption: false, storedEmail: stored.email }
        }
      } else {
        // Whether the account ever signed in comes from the audit log (signin.success names the user as subject).
        const [sameEmail] = await this.access.current.select({
          id: users.id, provider: users.provider, externalId: users.externalId, displayName: users.displayName, role: users.role,
          signedIn: sql<boolean>`EXISTS (SELECT 1 FROM audit_events a WHERE a.subject_user_id = users.id AND a.action = 'signin.success')`
        }).from(users).where(eq(users.email, record.email))
        if (sameEmail !== undefined) {
          const refusal = adoptionRefusal(sameEmail)
          if (refusal !== null) return { conflict: `email ${record.email} ${refusal}`, existingUserId: sameEmail.id, adoption: sameEmail.externalId === null, storedEmail: null }
          id = sameEmail.id
          adopted = true
        }
      }
      const values = {
        email: record.email, displayName: record.displayName, privileged: record.privileged, provider, externalId: record.externalId,
        disabled: record.disabled, providerMethods: JSON.stringify(record.methods), providerAttributes: JSON.stringify(record.attributes),
        syncedAt: now.getTime(), updatedAt: now.getTime()
      }
      const created = id === undefined
      if (id === undefined) {
        id = randomUUID()
        await this.access.current.insert(users).values({
          id, ...values, role: 'user', phone: record.phone, firstSeenAt: now.getTime(), directoryCreatedAt: record.createdAt?.getTime() ?? null, createdAt: now.getTime()
        })
      } else {
        // A record without a phone or creation date keeps what the portal holds.
        await this.access.current.update(users).set({
          ...values,
          phone: sql`coalesce(${record.phone}::text, ${users.phone})`,
          directoryCreatedAt: sql`coalesce(${record.createdAt?.getTime() ?? null}::bigint, ${users.directoryCreatedAt})`
        }).where(eq(users.id, id))
      }
      await this.access.current.delete(userGroups).where(eq(userGroups.userId, id))
      const userId = id
      if (record.groups.length > 0) await this.access.current.insert(userGroups).values(record.groups.map((groupName) => ({ userId, groupName }))).onConflictDoNothing()
      return { userId: id, created, adopted }
    })
  }

  private async userIdByExternal (provider: string, externalId: string): Promise<string | undefined> {
    const [row] = await this.access.current.select({ id: users.id }).from(users).where(and(eq(users.provider, provider), eq(users.externalId, externalId)))
    return row?.id
  }

  /** One conditional UPDATE: the users it disables are the ones it names, whatever another instance does meanwhile. */
  async disableUnseen (provider: string, since: Date): Promise<string[]> {
    const disabled = await this.access.current.update(users).set({ disabled: true, updatedAt: since.getTime() })
      .where(and(eq(users.provider, provider), eq(users.disabled, false), or(isNull(users.syncedAt), lt(users.syncedAt, since.getTime()))))
      .returning({ id: users.id })
    return disabled.map((row) => row.id)
  }

  async finish (id: number, result: Pick<SyncRun, 'status' | 'seen' | 'created' | 'updated' | 'skipped' | 'registrationSource' | 'error' | 'adopted' | 'conflicts'>, now: Date): Promise<void> {
    const { status, seen, created, updated, skipped, registrationSource, error } = result
    await this.access.current.update(directorySyncs).set({
      status, finishedAt: now.getTime(), seen, created, updated, skipped, registrationSource, error,
      adopted: JSON.stringify(result.adopted.slice(0, SYNC_NAMES_KEPT)),
      conflicts: JSON.stringify(result.conflicts.slice(0, SYNC_NAMES_KEPT))
    }).where(eq(directorySyncs.id, id))
  }

  async latest (provider: string): Promise<SyncRun | undefined> {
    const [row] = await this.access.current.select().from(directorySyncs).where(eq(directorySyncs.provider, provider)).orderBy(desc(directorySyncs.id)).limit(1)
    return row === undefined
      ? undefined
      : {
          ...row,
          startedAt: new Date(row.startedAt),
          finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt),
          adopted: JSON.parse(row.adopted) as SyncRun['adopted'],
          conflicts: JSON.parse(row.conflicts) as SyncRun['conflicts']
        }
  }
}
