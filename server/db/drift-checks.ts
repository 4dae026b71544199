import type { DriftCheckRun, DriftCheckStore } from '../domain/drift-checks.ts'
import type { SqliteAccess } from './sqlite-access.ts'

/** One row per drift check (drift_checks); the dashboard reads the newest. */
export class SqliteDriftCheckStore implements DriftCheckStore {
  private readonly statements

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    const s = (sql: string) => sqlite.prepare(sql)
    this.statements = {
      insert: s(`INSERT INTO drift_checks (started_at, finished_at, checked, drifted, unchecked, error)
        VALUES (@startedAt, @finishedAt, @checked, @drifted, @unchecked, @error)`),
      latest: s(`SELECT started_at AS startedAt, finished_at AS finishedAt, checked, drifted, unchecked, error
        FROM drift_checks ORDER BY id DESC LIMIT 1`)
    }
  }

  async record (run: DriftCheckRun): Promise<void> {
    return await this.access.run(() => {
      this.statements.insert.run({ ...run, startedAt: run.startedAt.getTime(), finishedAt: run.finishedAt.getTime() })
    })
  }

  async latest (): Promise<DriftCheckRun | undefined> {
    return await this.access.run(() => {
      const row = this.statements.latest.get() as (Omit<DriftCheckRun, 'startedAt' | 'finishedAt'> & { startedAt: number, finishedAt: number }) | undefined
      return row === undefined ? undefined : { ...row, startedAt: new Date(row.startedAt), finishedAt: new Date(row.finishedAt) }
    })
  }
}
