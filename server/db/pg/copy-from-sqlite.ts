import type Sqlite from 'better-sqlite3'
import { count, DrizzleQueryError, getTableColumns, getTableName, gt, is, sql, type SQL } from 'drizzle-orm'
import type { NodePgQueryResultHKT } from 'drizzle-orm/node-postgres'
import { getTableConfig as pgTableConfig, PgTable, type PgDatabase } from 'drizzle-orm/pg-core'
import { getTableConfig as sqliteTableConfig, SQLiteTable, type SQLiteColumn } from 'drizzle-orm/sqlite-core'
import type { AuditRecord } from '../../domain/audit.ts'
import type { Db } from '../connection.ts'
import * as sqliteSchema from '../schema.ts'
import type { PostgresDatabase } from './connection.ts'
import * as pgSchema from './schema.ts'
import { ROW_NUMBER } from './schema.ts'

// Moving a portal from SQLite to PostgreSQL: every table of ../schema.ts into its twin of ./schema.ts (same table
// and property names), parents before children, in one transaction, so a failed copy leaves the target empty.

/**
 * Rows read from the source and inserted per statement: no statement grows with the table, and the widest table
 * (campaigns, about 35 columns) stays far below PostgreSQL's 65,535 parameters per statement.
 */
const BATCH = 500

/** The pool or an open transaction on it. */
type PgQueries = PgDatabase<NodePgQueryResultHKT, typeof pgSchema>

type Row = Record<string, unknown>

/** One table of the SQLite schema and its PostgreSQL twin. */
export interface TablePair {
  readonly name: string
  readonly source: SQLiteTable
  readonly target: PgTable
  /** The primary key, as columns of the source and the property names rows carry: the order rows are read in. */
  readonly key: ReadonlyArray<{ property: string, column: SQLiteColumn }>
  /** Columns the target numbers itself (identity): their sequences must move past the copied ids. */
  readonly identity: readonly string[]
  /** The target's stand-in for SQLite's rowid (ROW_NUMBER), when it has one: filled from the source's rowid. */
  readonly rowNumber: string | null
}

export interface TableCount {
  table: string
  rows: number
}

/** The two schema files do not fit together (a table or column without its twin, foreign keys that cannot be ordered). */
export class CopyPlanError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'CopyPlanError'
  }
}

/** The target already holds portal rows: copying into it would mix two portals. */
export class TargetNotEmptyError extends Error {
  constructor (readonly occupied: readonly TableCount[]) {
    super(`the target already holds portal data (${occupied.map(({ table, rows }) => `${table}: ${rows} row${rows === 1 ? '' : 's'}`).join(', ')})`)
    this.name = 'TargetNotEmptyError'
  }
}

/** A table could not be read or written; the transaction was rolled back. The message is the database's, without row contents. */
export class TableCopyError extends Error {
  constructor (readonly table: string, problem: string) {
    super(`could not copy ${table}: ${problem}`)
    this.name = 'TableCopyError'
  }
}

/** Every table of the SQLite schema paired with its PostgreSQL twin, parents before the tables whose foreign keys point at them. */
export function copyPlan (): TablePair[] {
  const targets = new Map(Object.values(pgSchema).filter((value) => is(value, PgTable)).map((table) => [getTableName(table), table]))
  const pairs = Object.values(sqliteSchema).filter((value) => is(value, SQLiteTable)).map((source) => pairOf(source, targets))
  return parentsFirst(pairs.sort((a, b) => a.name.localeCompare(b.name)))
}

function pairOf (source: SQLiteTable, targets: ReadonlyMap<string, PgTable>): TablePair {
  const name = getTableName(source)
  const target = targets.get(name)
  if (target === undefined) throw new CopyPlanError(`table ${name} has no PostgreSQL twin in server/db/pg/schema.ts`)
  const sourceColumns = getTableColumns(source)
  const targetProperties = new Set(Object.keys(getTableColumns(target)))
  // A column without a twin would be dropped from every row without a word.
  const unmatched = Object.keys(sourceColumns).filter((property) => !targetProperties.has(property))
  if (unmatched.length > 0) throw new CopyPlanError(`table ${name}: ${unmatched.join(', ')} ha${unmatched.length === 1 ? 's' : 've'} no twin in server/db/pg/schema.ts`)

  const config = sqliteTableConfig(source)
  const keyColumns: SQLiteColumn[] = config.primaryKeys[0]?.columns ?? config.columns.filter((column) => column.primary)
  if (keyColumns.length === 0) throw new CopyPlanError(`table ${name} has no primary key to read it in order`)
  const propertyOf = new Map(Object.entries(sourceColumns).map(([property, column]) => [column as SQLiteColumn, property]))
  return {
    name,
    source,
    target,
    key: keyColumns.map((column) => ({ property: propertyOf.get(column)!, column })),
    identity: pgTableConfig(target).columns.filter((column) => column.generatedIdentity !== undefined).map((column) => column.name),
    rowNumber: targetProperties.has(ROW_NUMBER) && !(ROW_NUMBER in sourceColumns) ? ROW_NUMBER : null
  }
}

/** A stable topological order: among the tables whose parents are all placed, the first in the given order goes next. */
function parentsFirst (pairs: readonly TablePair[]): TablePair[] {
  const parents = new Map(pairs.map((pair) => [pair.name, pgTableConfig(pair.target).foreignKeys
    .map((key) => getTableName(key.reference().foreignTable))
    .filter((parent) => parent !== pair.name)]))
  const ordered: TablePair[] = []
  const placed = new Set<string>()
  while (ordered.length < pairs.length) {
    const next = pairs.find((pair) => !placed.has(pair.name) && parents.get(pair.name)!.every((parent) => placed.has(parent)))
    if (next === undefined) {
      const left = pairs.filter((pair) => !placed.has(pair.name)).map((pair) => pair.name)
      throw new CopyPlanError(`cannot order ${left.join(', ')}: their foreign keys point at each other or at a table the SQLite schema lacks`)
    }
    ordered.push(next)
    placed.add(next.name)
  }
  return ordered
}

/**
 * Reads the source inside one read transaction, so every table (and the counts taken afterwards) comes from the
 * same moment even while a server still writes to the file.
 */
export async function withinReadSnapshot<T> (sqlite: Sqlite.Database, work: () => Promise<T>): Promise<T> {
  sqlite.exec('BEGIN')
  try {
    return await work()
  } finally {
    sqlite.exec('COMMIT')
  }
}

/**
 * Copies every table in plan order in one transaction, after checking inside it that the target holds no portal
 * row; any failure rolls everything back. Returns the rows copied per table.
 */
export async function copyTables (source: Db, target: PostgresDatabase, plan: readonly TablePair[]): Promise<TableCount[]> {
  return await target.db.transaction(async (tx) => {
    const occupied = (await countTarget(tx, plan)).filter(({ rows }) => rows > 0)
    if (occupied.length > 0) throw new TargetNotEmptyError(occupied)
    const copied: TableCount[] = []
    for (const pair of plan) copied.push({ table: pair.name, rows: await copyTable(source, tx, pair) })
    // Last, once every insert went through: setval is not undone by a rollback.
    for (const pair of plan) {
      for (const column of pair.identity) await movePastCopiedIds(tx, pair, column)
    }
    return copied
  })
}

async function copyTable (source: Db, tx: PgQueries, pair: TablePair): Promise<number> {
  let copied = 0
  try {
    for (const rows of batchesInKeyOrder(source, pair)) {
      await tx.insert(pair.target).values(rows)
      copied += rows.length
    }
  } catch (err) {
    throw new TableCopyError(pair.name, problemOf(err))
  }
  return copied
}

/**
 * Drizzle selects (SQLite's 0/1 read back as booleans), ordered by the primary key and resumed after the last key
 * read; with the rowid as the target's row number where it has one, so its lists keep their order.
 */
function * batchesInKeyOrder (source: Db, pair: TablePair): Generator<Row[]> {
  const columns = pair.rowNumber === null ? getTableColumns(pair.source) : { ...getTableColumns(pair.source), [pair.rowNumber]: sql<number>`rowid` }
  let after: SQL | undefined
  for (;;) {
    const rows = source.select(columns).from(pair.source).where(after).orderBy(...pair.key.map(({ column }) => column)).limit(BATCH).all() as Row[]
    if (rows.length > 0) yield rows
    if (rows.length < BATCH) return
    after = beyond(pair, rows[rows.length - 1])
  }
}

/** Rows whose whole primary key sorts after the given row's: a row-value comparison, which SQLite answers from the key's index. */
function beyond (pair: TablePair, row: Row): SQL {
  const columns = pair.key.map(({ column }) => column)
  const values = pair.key.map(({ property, column }) => sql.param(row[property], column))
  return sql`(${sql.join(columns, sql`, `)}) > (${sql.join(values, sql`, `)})`
}

/** Copied rows kept their ids; the identity must now hand out ids after them, or the portal's next insert collides. */
async function movePastCopiedIds (tx: PgQueries, pair: TablePair, column: string): Promise<void> {
  // max() of an empty table is NULL, and setval ignores it (the function is strict): the sequence stays at its start.
  await tx.execute(sql`SELECT setval(pg_get_serial_sequence(${pair.name}, ${column}), max(${sql.identifier(column)})) FROM ${pair.target}`)
}

export function countSource (source: Db, plan: readonly TablePair[]): TableCount[] {
  return plan.map((pair) => ({ table: pair.name, rows: source.select({ rows: count() }).from(pair.source).get()!.rows }))
}

export async function countTarget (target: PgQueries, plan: readonly TablePair[]): Promise<TableCount[]> {
  const counts: TableCount[] = []
  for (const pair of plan) {
    const [{ rows }] = await target.select({ rows: count() }).from(pair.target)
    counts.push({ table: pair.name, rows })
  }
  return counts
}

/**
 * The target's audit log, oldest first, for verifyChain. Held in memory whole: verifyChain takes a synchronous
 * iterable, which rows fetched from PostgreSQL cannot feed batch by batch.
 */
export async function auditRecordsOf (target: PgQueries): Promise<AuditRecord[]> {
  const { auditEvents } = pgSchema
  const records: AuditRecord[] = []
  for (;;) {
    const last = records.at(-1)?.id
    const rows = await target.select().from(auditEvents).where(last === undefined ? undefined : gt(auditEvents.id, last)).orderBy(auditEvents.id).limit(BATCH)
    for (const row of rows) {
      records.push({
        id: row.id,
        at: row.at,
        action: row.action,
        actorId: row.actorId,
        actorLabel: row.actorLabel,
        subjectUserId: row.subjectUserId,
        details: row.details,
        ip: row.ip,
        userAgent: row.userAgent,
        prevHash: row.prevHash,
        hash: row.hash
      })
    }
    if (rows.length < BATCH) return records
  }
}

/**
 * The database's own message, on one line. Drizzle's wrapper spells out the statement with its parameters (the rows'
 * password hashes and sealed secrets), and PostgreSQL's detail quotes the failing row: neither is printed.
 */
export function problemOf (err: unknown): string {
  const cause = err instanceof DrizzleQueryError && err.cause !== undefined ? err.cause : err
  return (cause instanceof Error ? cause.message : String(cause)).replace(/\s*\n\s*/g, ' ')
}
