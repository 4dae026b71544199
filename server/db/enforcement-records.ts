import type Sqlite from 'better-sqlite3'
import type { Clock } from '../domain/clock.ts'
import type { EnforcementRecord, EnforcementRecords, ProviderName } from '../domain/provider.ts'

/**
 * What a directory's switch was before the portal first flipped it, per user and provider
 * (directory_enforcement_records): kept across restarts so relax restores exactly what was found.
 */
export class SqliteEnforcementRecords implements EnforcementRecords {
  private readonly statements

  constructor (sqlite: Sqlite.Database, private readonly clock: Clock) {
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      get: s('SELECT found_state AS found, set_state AS "set" FROM directory_enforcement_records WHERE user_id = ? AND provider = ?'),
      put: s(`INSERT INTO directory_enforcement_records (user_id, provider, found_state, set_state, recorded_at, updated_at)
        VALUES (@userId, @provider, @found, @set, @now, @now)
        ON CONFLICT (user_id, provider) DO UPDATE SET found_state = excluded.found_state, set_state = excluded.set_state, updated_at = excluded.updated_at`),
      forget: s('DELETE FROM directory_enforcement_records WHERE user_id = ? AND provider = ?')
    }
  }

  get (provider: ProviderName, userId: string): EnforcementRecord | undefined {
    return this.statements.get.get(userId, provider) as EnforcementRecord | undefined
  }

  put (provider: ProviderName, userId: string, record: EnforcementRecord): void {
    this.statements.put.run({ userId, provider, found: record.found, set: record.set, now: this.clock.now().getTime() })
  }

  forget (provider: ProviderName, userId: string): void {
    this.statements.forget.run(userId, provider)
  }
}
