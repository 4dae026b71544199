import { desc } from 'drizzle-orm'
import type { DriftCheckRun, DriftCheckStore } from '../../domain/drift-checks.ts'
import type { PgAccess } from './access.ts'
import { driftChecks } from './schema.ts'

/** One row per drift check (drift_checks); the dashboard reads the newest. */
export class PgDriftCheckStore implements DriftCheckStore {
  constructor (private readonly access: PgAccess) {}

  async record (run: DriftCheckRun): Promise<void> {
    await this.access.current.insert(driftChecks).values({ ...run, startedAt: run.startedAt.getTime(), finishedAt: run.finishedAt.getTime() })
  }

  async latest (): Promise<DriftCheckRun | undefined> {
    const [row] = await this.access.current.select({
      startedAt: driftChecks.startedAt, finishedAt: driftChecks.finishedAt, checked: driftChecks.checked, drifted: driftChecks.drifted, unchecked: driftChecks.unchecked, error: driftChecks.error
    }).from(driftChecks).orderBy(desc(driftChecks.id)).limit(1)
    return row === undefined ? undefined : { ...row, startedAt: new Date(row.startedAt), finishedAt: new Date(row.finishedAt) }
  }
}
