import { verifyChain } from '../domain/audit.ts'
import { migrationStatus } from '../db/migrate.ts'
import type { PostgresDatabase } from '../db/pg/connection.ts'
import type { TableCount, TablePair } from '../db/pg/copy-from-sqlite.ts'
import type { Services } from '../wiring.ts'
import type { Command, Io } from './main.ts'

export const copyDatabase: Command = {
  name: 'copy-database',
  summary: 'Copy the portal\'s SQLite database into an empty PostgreSQL database in one transaction (a failed copy leaves it empty), then check every table\'s row count and the audit chain on the copy. Refuses a database that already holds portal data.',
  options: {
    to: { type: 'string', value: 'URL', required: true, help: 'the PostgreSQL database to fill, postgres://user:password@host:port/database (its schema is created; the password is never printed)' }
  },
  // The SQLite database is only read: the copy can be taken from a read-only file or a backup.
  readOnly: true,
  async run ({ options }, services, io) {
    const url = String(options.to)
    const fail = (line: string): number => { io.err(`mfa-rollout copy-database: ${withoutPassword(line, url)}`); return 1 }

    // The PostgreSQL driver and the copy are loaded by this command only: the rest of the CLI does not pay for them.
    const [{ openPostgres, PostgresConnectionError }, copy, { applyPgMigrations }] =
      await Promise.all([import('../db/pg/connection.ts'), import('../db/pg/copy-from-sqlite.ts'), import('../db/pg/migrate.ts')])
    const { copyPlan, copyTables, CopyPlanError, problemOf, TableCopyError, TargetNotEmptyError, withinReadSnapshot } = copy
    const status = migrationStatus(services.database.sqlite)
    if (!status.current) return fail(`the SQLite database has ${status.applied} of ${status.expected} migrations: run mfa-rollout migrate first, then copy`)
    let plan: TablePair[]
    try {
      plan = copyPlan()
    } catch (err) {
      if (err instanceof CopyPlanError) return fail(err.message)
      throw err
    }

    let target: PostgresDatabase
    try {
      target = await openPostgres(url, { max: 2, applicationName: 'mfa-rollout copy-database' })
    } catch (err) {
      if (err instanceof PostgresConnectionError) return fail(err.message.replace(/^DATABASE_URL/, '--to'))
      throw err
    }
    try {
      io.out(`copying ${services.config.databaseFile} into ${maskedUrl(url)}`)
      try {
        await applyPgMigrations(target)
      } catch (err) {
        return fail(`cannot create the portal's schema on the target: ${problemOf(err)}`)
      }
      return await withinReadSnapshot(services.database.sqlite, async () => {
        try {
          await copyTables(services.database.db, target, plan)
        } catch (err) {
          if (err instanceof TargetNotEmptyError) return fail(`refused: ${err.message}; copy into an empty database`)
          if (err instanceof TableCopyError) return fail(`${err.message}; nothing was copied (the transaction was rolled back)`)
          // Such as the connection lost at the commit, when only the target can tell whether it went through.
          return fail(`the copy did not complete: ${problemOf(err)}`)
        }
        return await verifyCopy(copy, services, target, plan, io)
      })
    } finally {
      await target.close()
    }
  }
}

/** After the commit, from the target as the portal will read it: the same rows per table, and an audit chain that holds. */
async function verifyCopy (
  { countSource, countTarget, auditRecordsOf }: typeof import('../db/pg/copy-from-sqlite.ts'), services: Services, target: PostgresDatabase, plan: readonly TablePair[], io: Io
): Promise<number> {
  const source = countSource(services.database.db, plan)
  const copied = await countTarget(target.db, plan)
  const differing = printCounts(source, copied, io)
  const total = copied.reduce((sum, { rows }) => sum + rows, 0)

  const verdict = await verifyChain(await auditRecordsOf(target.db), services.audit.keys)
  const chain = verdict.intact
    ? `audit chain intact (${verdict.count} event${verdict.count === 1 ? '' : 's'})`
    : `audit chain broken at event #${verdict.brokenId} on the target: ${verdict.reason}${await sourceChainNote(services)}`
  const counts = differing.length === 0 ? 'counts match' : `counts differ in ${differing.join(', ')}`
  io.out(`copied ${total} rows in ${plan.length} tables; ${counts}; ${chain}`)
  return differing.length === 0 && verdict.intact ? 0 : 1
}

/** Prints one line per table, SQLite beside PostgreSQL; returns the tables whose counts differ. */
function printCounts (source: readonly TableCount[], target: readonly TableCount[], io: Io): string[] {
  const width = Math.max(...source.map(({ table }) => table.length))
  io.out(`${'table'.padEnd(width)}  ${'SQLite'.padStart(10)}  ${'PostgreSQL'.padStart(10)}`)
  const differing: string[] = []
  source.forEach(({ table, rows }, i) => {
    const copied = target[i].rows
    if (copied !== rows) differing.push(table)
    io.out(`${table.padEnd(width)}  ${String(rows).padStart(10)}  ${String(copied).padStart(10)}${copied === rows ? '' : '  differs'}`)
  })
  return differing
}

/** Whether the break came with the source: an operator then repairs the original, not the copy. */
async function sourceChainNote (services: Services): Promise<string> {
  const source = await verifyChain(services.audit.all(), services.audit.keys)
  return source.intact ? ' (the SQLite log verifies: the copy differs from it)' : ` (the SQLite log is broken too, at event #${source.brokenId}: see mfa-rollout audit verify)`
}

/** The URL with its password replaced by ***, for naming the target in output. */
function maskedUrl (url: string): string {
  const parsed = new URL(url)
  if (parsed.password !== '') parsed.password = '***'
  return parsed.toString()
}

/** A line with the URL's password, should a library have echoed it, replaced by ***. */
function withoutPassword (line: string, url: string): string {
  let password = ''
  try {
    password = new URL(url).password
  } catch {
    return line
  }
  if (password === '') return line
  let decoded = password
  try {
    decoded = decodeURIComponent(password)
  } catch {
    // A stray % that is no escape: the password is then spelled as written.
  }
  return line.replaceAll(password, '***').replaceAll(decoded, '***')
}
