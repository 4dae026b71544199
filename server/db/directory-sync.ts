import { randomUUID } from 'node:crypto'
import { adoptionRefusal, directoryUserName, SYNC_NAMES_KEPT, type DirectoryRecord, type DirectorySyncStore, type SyncRun, type UpsertResult } from '../domain/directory-sync.ts'
import type { SqliteAccess } from './sqlite-access.ts'

/** Directory sync's storage: users keyed by (provider, external id), and one row per run. */
export class SqliteDirectorySyncStore implements DirectorySyncStore {
  private readonly statements

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      begin: s("INSERT INTO directory_syncs (provider, started_at, status) VALUES (?, ?, 'running')"),
      finish: s(`UPDATE directory_syncs SET status = @status, finished_at = @now, seen = @seen, created = @created, updated = @updated,
        skipped = @skipped, registration_source = @registrationSource, error = @error, adopted = @adopted, conflicts = @conflicts WHERE id = @id`),
      latest: s(`SELECT id, provider, started_at AS startedAt, finished_at AS finishedAt, status, seen, created, updated, skipped,
        registration_source AS registrationSource, error, adopted, conflicts FROM directory_syncs WHERE provider = ? ORDER BY id DESC LIMIT 1`),
      byExternal: s('SELECT id FROM users WHERE provider = ? AND external_id = ?').pluck(),
      storedEmail: s('SELECT email FROM users WHERE id = ?').pluck(),
      // Who else holds an address: another directory user, or a portal account.
      emailHolder: s('SELECT id, provider, external_id AS externalId, display_name AS displayName, role FROM users WHERE email = ? AND id != ?'),
      // Whether the account ever signed in comes from the audit log (signin.success names the user as subject).
      byEmail: s(`SELECT id, provider, external_id AS externalId, display_name AS displayName, role,
        EXISTS (SELECT 1 FROM audit_events WHERE subject_user_id = users.id AND action = 'signin.success') AS signedIn
        FROM users WHERE email = ?`),
      insert: s(`INSERT INTO users (id, email, display_name, role, privileged, provider, external_id, disabled, phone, provider_methods, provider_attributes,
        synced_at, first_seen_at, directory_created_at, created_at, updated_at)
        VALUES (@id, @email, @displayName, 'user', @privileged, @provider, @externalId, @disabled, @phone, @methods, @attributes, @now, @now, @createdAt, @now, @now)`),
      update: s(`UPDATE users SET email = @email, display_name = @displayName, privileged = @privileged, provider = @provider, external_id = @externalId,
        disabled = @disabled, phone = coalesce(@phone, phone), provider_methods = @methods, provider_attributes = @attributes,
        directory_created_at = coalesce(@createdAt, directory_created_at), synced_at = @now, updated_at = @now
        WHERE id = @id`),
      clearGroups: s('DELETE FROM user_groups WHERE user_id = ?'),
      addGroup: s('INSERT OR IGNORE INTO user_groups (user_id, group_name) VALUES (?, ?)'),
      unseen: s('SELECT id FROM users WHERE provider = ? AND disabled = 0 AND (synced_at IS NULL OR synced_at < ?)').pluck(),
      disable: s('UPDATE users SET disabled = 1, updated_at = ? WHERE id = ?')
    }
  }

  async begin (provider: string, now: Date): Promise<number> {
    return await this.access.run(() => {
      return Number(this.statements.begin.run(provider, now.getTime()).lastInsertRowid)
    })
  }

  async exists (provider: string, externalId: string): Promise<boolean> {
    return await this.access.run(() => {
      return this.statements.byExternal.get(provider, externalId) !== undefined
    })
  }

  async upsert (provider: string, record: DirectoryRecord, now: Date): Promise<UpsertResult> {
    return await this.access.run(() => {
      return this.access.sqlite.transaction((): UpsertResult => {
        let id = this.statements.byExternal.get(provider, record.externalId) as string | undefined
        // A row from before the provider's ids changed (AWS: IAM user names, now user ids): the update rewrites its id.
        for (const former of record.formerExternalIds ?? []) {
          if (id !== undefined) break
          id = this.statements.byExternal.get(provider, former) as string | undefined
        }
        let adopted = false
        if (id !== undefined) {
          const holder = this.statements.emailHolder.get(record.email, id) as { id: string, provider: string, externalId: string | null, displayName: string, role: string } | undefined
          if (holder !== undefined) {
            return { conflict: `email ${record.email} ${holderOf(holder)}`, existingUserId: holder.id, adoption: false, storedEmail: this.statements.storedEmail.get(id) as string }
          }
        } else {
          const sameEmail = this.statements.byEmail.get(record.email) as { id: string, provider: string, externalId: string | null, displayName: string, role: string, signedIn: number } | undefined
          if (sameEmail !== undefined) {
            const refusal = adoptionRefusal(sameEmail)
            if (refusal !== null) return { conflict: `email ${record.email} ${refusal}`, existingUserId: sameEmail.id, adoption: sameEmail.externalId === null, storedEmail: null }
            id = sameEmail.id
            adopted = true
          }
        }
        const values = {
          email: record.email, displayName: record.displayName, privileged: record.privileged ? 1 : 0, provider, externalId: record.externalId,
          disabled: record.disabled ? 1 : 0, phone: record.phone, methods: JSON.stringify(record.methods), attributes: JSON.stringify(record.attributes), now: now.getTime(),
          createdAt: record.createdAt?.getTime() ?? null
        }
        const created = id === undefined
        if (id === undefined) {
          id = randomUUID()
          this.statements.insert.run({ id, ...values })
        } else {
          this.statements.update.run({ id, ...values })
        }
        this.statements.clearGroups.run(id)
        for (const group of record.groups) this.statements.addGroup.run(id, group)
        return { userId: id, created, adopted }
      }).immediate()
    })
  }

  async disableUnseen (provider: string, since: Date): Promise<string[]> {
    return await this.access.run(() => {
      const ids = this.statements.unseen.all(provider, since.getTime()) as string[]
      this.access.sqlite.transaction(() => { for (const id of ids) this.statements.disable.run(since.getTime(), id) }).immediate()
      return ids
    })
  }

  async finish (id: number, result: Pick<SyncRun, 'status' | 'seen' | 'created' | 'updated' | 'skipped' | 'registrationSource' | 'error' | 'adopted' | 'conflicts'>, now: Date): Promise<void> {
    return await this.access.run(() => {
      const { status, seen, created, updated, skipped, registrationSource, error } = result
      this.statements.finish.run({
        id, now: now.getTime(), status, seen, created, updated, skipped, registrationSource, error,
        adopted: JSON.stringify(result.adopted.slice(0, SYNC_NAMES_KEPT)),
        conflicts: JSON.stringify(result.conflicts.slice(0, SYNC_NAMES_KEPT))
      })
    })
  }

  async latest (provider: string): Promise<SyncRun | undefined> {
    return await this.access.run(() => {
      const row = this.statements.latest.get(provider) as (Omit<SyncRun, 'startedAt' | 'finishedAt' | 'adopted' | 'conflicts'> & { startedAt: number, finishedAt: number | null, adopted: string, conflicts: string }) | undefined
      return row === undefined
        ? undefined
        : {
            ...row,
            startedAt: new Date(row.startedAt),
            finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt),
            adopted: JSON.parse(row.adopted) as SyncRun['adopted'],
            conflicts: JSON.parse(row.conflicts) as SyncRun['conflicts']
          }
    })
  }
}

/** Who holds an address, in the words of a conflict's reason. */
export function holderOf (holder: { provider: string, externalId: string | null, displayName: string, role: string }): string {
  if (holder.externalId !== null) return `belongs to ${directoryUserName(holder.provider, holder.externalId, holder.displayName)}`
  return holder.role === 'user' ? 'belongs to a portal account' : `belongs to a portal ${holder.role} account`
}
