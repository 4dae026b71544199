import { and, eq, sql } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { EnforcementRecord, EnforcementRecords, ProviderName } from '../../domain/provider.ts'
import type { PgAccess } from './access.ts'
import { directoryEnforcementRecords as records } from './schema.ts'

/**
 * What a directory's switch was before the portal first flipped it, per user and provider
 * (directory_enforcement_records): kept across restarts so relax restores exactly what was found.
 */
export class PgEnforcementRecords implements EnforcementRecords {
  constructor (private readonly access: PgAccess, private readonly clock: Clock) {}

  async get (provider: ProviderName, userId: string): Promise<EnforcementRecord | undefined> {
    const [row] = await this.access.current.select({ found: records.foundState, set: records.setState }).from(records)
      .where(and(eq(records.userId, userId), eq(records.provider, provider)))
    return row
  }

  async put (provider: ProviderName, userId: string, record: EnforcementRecord): Promise<void> {
    const now = this.clock.now().getTime()
    await this.access.current.insert(records).values({ userId, provider, foundState: record.found, setState: record.set, recordedAt: now, updatedAt: now })
      .onConflictDoUpdate({
        target: [records.userId, records.provider],
        set: { foundState: sql`excluded.found_state`, setState: sql`excluded.set_state`, updatedAt: sql`excluded.updated_at` }
      })
  }

  async forget (provider: ProviderName, userId: string): Promise<void> {
    await this.access.current.delete(records).where(and(eq(records.userId, userId), eq(records.provider, provider)))
  }
}
