import { randomUUID } from 'node:crypto'
import type Sqlite from 'better-sqlite3'
import { adoptionRefusal, type DirectoryRecord, type DirectorySyncStore, type SyncRun, type UpsertResult } from '../domain/directory-sync.ts'

/** Directory sync's storage: users keyed by (provider, external id), and one row per run. */
export class SqliteDirectorySyncStore implements DirectorySyncStore {
  private readonly statements

  constructor (private readonly sqlite: Sqlite.Database) {
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      begin: s("INSERT INTO directory_syncs (provider, started_at, status) VALUES (?, ?, 'running')"),
      finish: s(`UPDATE directory_syncs SET status = @status, finished_at = @now, seen = @seen, created = @created, updated = @updated,
        skipped = @skipped, registration_source = @registrationSource, error = @error WHERE id = @id`),
      latest: s(`SELECT id, provider, started_at AS startedAt, finished_at AS finishedAt, status, seen, created, updated, skipped,
        registration_source AS registrationSource, error FROM directory_syncs WHERE provider = ? ORDER BY id DESC LIMIT 1`),
      byExternal: s('SELECT id FROM users WHERE provider = ? AND external_id = ?').pluck(),
      // Whether the account ever signed in comes from the audit log (signin.success names the user as subject).
      byEmail: s(`SELECT id, provider, external_id AS externalId, role,
        EXISTS (SELECT 1 FROM audit_events WHERE subject_user_id = users.id AND action = 'signin.success') AS signedIn
        FROM users WHERE email = ?`),
      insert: s(`INSERT INTO users (id, email, display_name, role, privileged, provider, external_id, disabled, phone, provider_methods, provider_attributes,
        synced_at, first_seen_at, created_at, updated_at)
        VALUES (@id, @email, @displayName, 'user', @privileged, @provider, @externalId, @disabled, @phone, @methods, @attributes, @now, @now, @now, @now)`),
      update: s(`UPDATE users SET email = @email, display_name = @displayName, privileged = @privileged, provider = @provider, external_id = @externalId,
        disabled = @disabled, phone = coalesce(@phone, phone), provider_methods = @methods, provider_attributes = @attributes, synced_at = @now, updated_at = @now
        WHERE id = @id`),
      clearGroups: s('DELETE FROM user_groups WHERE user_id = ?'),
      addGroup: s('INSERT OR IGNORE INTO user_groups (user_id, group_name) VALUES (?, ?)'),
      unseen: s('SELECT id FROM users WHERE provider = ? AND disabled = 0 AND (synced_at IS NULL OR synced_at < ?)').pluck(),
      disable: s('UPDATE users SET disabled = 1, updated_at = ? WHERE id = ?')
    }
  }

  begin (provider: string, now: Date): number {
    return Number(this.statements.begin.run(provider, now.getTime()).lastInsertRowid)
  }

  exists (provider: string, externalId: string): boolean {
    return this.statements.byExternal.get(provider, externalId) !== undefined
  }

  upsert (provider: string, record: DirectoryRecord, now: Date): UpsertResult {
    return this.sqlite.transaction((): UpsertResult => {
      let id = this.statements.byExternal.get(provider, record.externalId) as string | undefined
      let adopted = false
      if (id === undefined) {
        const sameEmail = this.statements.byEmail.get(record.email) as { id: string, provider: string, externalId: string | null, role: string, signedIn: number } | undefined
        if (sameEmail !== undefined) {
          const refusal = adoptionRefusal(sameEmail)
          if (refusal !== null) return { conflict: `email ${record.email} ${refusal}`, existingUserId: sameEmail.id }
          id = sameEmail.id
          adopted = true
        }
      }
      const values = {
        email: record.email, displayName: record.displayName, privileged: record.privileged ? 1 : 0, provider, externalId: record.externalId,
        disabled: record.disabled ? 1 : 0, phone: record.phone, methods: JSON.stringify(record.methods), attributes: JSON.stringify(record.attributes), now: now.getTime()
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
  }

  disableUnseen (provider: string, since: Date): string[] {
    const ids = this.statements.unseen.all(provider, since.getTime()) as string[]
    this.sqlite.transaction(() => { for (const id of ids) this.statements.disable.run(since.getTime(), id) }).immediate()
    return ids
  }

  finish (id: number, result: Pick<SyncRun, 'status' | 'seen' | 'created' | 'updated' | 'skipped' | 'registrationSource' | 'error'>, now: Date): void {
    this.statements.finish.run({ id, now: now.getTime(), ...result })
  }

  latest (provider: string): SyncRun | undefined {
    const row = this.statements.latest.get(provider) as (Omit<SyncRun, 'startedAt' | 'finishedAt'> & { startedAt: number, finishedAt: number | null }) | undefined
    return row === undefined ? undefined : { ...row, startedAt: new Date(row.startedAt), finishedAt: row.finishedAt === null ? null : new Date(row.finishedAt) }
  }
}
