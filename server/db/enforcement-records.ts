import type { Clock } from '../domain/clock.ts'
import type { EnforcementRecord, EnforcementRecords, ProviderName } from '../domain/provider.ts'
import type { SqliteAccess } from './sqlite-access.ts'

/**
 * What a directory's switch was before the portal first flipped it, per user and provider
 * (directory_enforcement_records): kept across restarts so relax restores exactly what was found.
 */
export class SqliteEnforcementRecords implements EnforcementRecords {
  private readonly statements

  constructor (private readonly access: SqliteAccess, private readonly clock: Clock) {
    const { sqlite } = access
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      get: s('SELECT found_state AS found, set_state AS "set" FROM directory_enforcement_records WHERE user_id = ? AND provider = ?'),
      put: s(`INSERT INTO directory_enforcement_records (user_id, provider, found_state, set_state, recorded_at, updated_at)
        VALUES (@userId, @provider, @found, @set, @now, @now)
        ON CONFLICT (user_id, provider) DO UPDATE SET found_state = excluded.found_state, set_state = excluded.set_state, updated_at = excluded.updated_at`),
      forget: s('DELETE FROM directory_enforcement_records WHERE user_id = ? AND provider = ?')
    }
  }

  async get (provider: ProviderName, userId: string): Promise<EnforcementRecord | undefined> {
    return await this.access.run(() => this.statements.get.get(userId, provider) as EnforcementRecord | undefined)
  }

  async put (provider: ProviderName, userId: string, record: EnforcementRecord): Promise<void> {
    return await this.access.run(() => {
      this.statements.put.run({ userId, provider, found: record.found, set: record.set, now: this.clock.now().getTime() })
    })
  }

  async forget (provider: ProviderName, userId: string): Promise<void> {
    return await this.access.run(() => {
      this.statements.forget.run(userId, provider)
    })
  }
}
