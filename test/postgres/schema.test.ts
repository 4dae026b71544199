import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Column, getTableColumns, is, SQL, StringChunk } from 'drizzle-orm'
import { getTableConfig as pgTableConfig, PgTable } from 'drizzle-orm/pg-core'
import { getTableConfig as sqliteTableConfig, SQLiteTable } from 'drizzle-orm/sqlite-core'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { ROW_NUMBER } from '../../server/db/pg/schema.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'
import { postgresForTest } from '../helpers/postgres.ts'

const sqliteTables = Object.entries(sqliteSchema as Record<string, unknown>).filter((entry): entry is [string, SQLiteTable] => is(entry[1], SQLiteTable))
const pgTables = Object.entries(pgSchema as Record<string, unknown>).filter((entry): entry is [string, PgTable] => is(entry[1], PgTable))

// What a column promises to the code that reads and writes it, in words common to both dialects.
function describeColumn (column: Column, table: { primaryKeys: unknown[] }) {
  const rowId = column.columnType === 'SQLiteInteger' && column.primary && table.primaryKeys.length === 0
  return {
    name: column.name,
    value: column.dataType,
    notNull: column.notNull,
    primary: column.primary,
    enumValues: column.enumValues,
    // SQLite's INTEGER PRIMARY KEY hands out ids by itself, PostgreSQL's identity column does the same.
    assignedByDatabase: rowId || column.generatedIdentity !== undefined,
    default: describeDefault(column)
  }
}

function describeDefault (column: Column): unknown {
  if (column.generatedIdentity !== undefined || !column.hasDefault) return undefined
  return is(column.default, SQL) ? describeSql(column.default) : column.default
}

/** An SQL fragment written the same way in both schema files: its text with columns as "name". */
function describeSql (fragment: SQL | undefined): string | undefined {
  if (fragment === undefined) return undefined
  return fragment.queryChunks.map((chunk) => {
    if (is(chunk, StringChunk)) return chunk.value.join('')
    if (typeof chunk === 'object' && chunk !== null && 'name' in chunk) return `"${String(chunk.name)}"`
    throw new Error(`unexpected chunk in an SQL fragment: ${String(chunk)}`)
  }).join('')
}

/**
 * The row number a PostgreSQL table carries for SQLite's hidden rowid is not part of the comparison (SQLite's
 * indexes hold the rowid implicitly); its own test checks it.
 */
const sharedColumn = (column: { name: string }) => column.name !== ROW_NUMBER

function describeTable (config: ReturnType<typeof sqliteTableConfig> | ReturnType<typeof pgTableConfig>) {
  return {
    columns: config.columns.filter(sharedColumn).map((column) => describeColumn(column, config)),
    primaryKey: config.primaryKeys.map((key) => key.columns.map((column) => column.name)),
    indexes: config.indexes
      .map(({ config: index }) => ({
        name: index.name,
        unique: index.unique,
        columns: index.columns.filter((column) => sharedColumn(column as { name: string })).map((column) => (column as { name: string }).name),
        where: describeSql(index.where)
      }))
      .sort((a, b) => a.name!.localeCompare(b.name!)),
    foreignKeys: config.foreignKeys
      .map((key) => {
        const reference = key.reference()
        return {
          columns: reference.columns.map((column) => column.name),
          table: (reference.foreignColumns[0].table as unknown as { [name: symbol]: string })[Symbol.for('drizzle:Name')],
          foreignColumns: reference.foreignColumns.map((column) => column.name),
          onDelete: key.onDelete ?? 'no action'
        }
      })
      .sort((a, b) => a.columns.join().localeCompare(b.columns.join()))
  }
}

test('every SQLite table has a PostgreSQL twin with the same columns, keys, indexes and references', () => {
  assert.deepEqual(pgTables.map(([key]) => key).sort(), sqliteTables.map(([key]) => key).sort())
  for (const [key, sqliteTable] of sqliteTables) {
    const pgTable = pgSchema[key as keyof typeof pgSchema] as PgTable
    const sqliteConfig = sqliteTableConfig(sqliteTable)
    const pgConfig = pgTableConfig(pgTable)
    assert.equal(pgConfig.name, sqliteConfig.name, key)
    // Same property names: one row object fits both dialects.
    assert.deepEqual(Object.keys(getTableColumns(pgTable)).filter((name) => name !== ROW_NUMBER), Object.keys(getTableColumns(sqliteTable)), key)
    assert.deepEqual(describeTable(pgConfig), describeTable(sqliteConfig), `table ${sqliteConfig.name}`)
  }
})

test('a PostgreSQL row number stands for a rowid only where SQLite has one: a 64-bit identity, last in its table and its indexes', () => {
  const withRowNumber = pgTables.filter(([, table]) => ROW_NUMBER in getTableColumns(table))
  assert.deepEqual(withRowNumber.map(([key]) => key), ['userStates'], 'the tables whose lists page on the rowid')
  for (const [key, table] of withRowNumber) {
    const sqliteTable = sqliteSchema[key as keyof typeof sqliteSchema] as SQLiteTable
    assert.equal(sqliteTableConfig(sqliteTable).columns.some((column) => column.primary && column.columnType === 'SQLiteInteger'), false,
      `${key}: with an INTEGER PRIMARY KEY the rowid is a column already`)
    const config = pgTableConfig(table)
    const column = config.columns.find((c) => c.name === ROW_NUMBER)!
    assert.equal(column.getSQLType(), 'bigint')
    assert.notEqual(column.generatedIdentity, undefined)
    assert.equal(config.columns[config.columns.length - 1].name, ROW_NUMBER)
    for (const { config: index } of config.indexes) {
      const names = index.columns.map((c) => (c as { name: string }).name)
      assert.ok(!names.includes(ROW_NUMBER) || names[names.length - 1] === ROW_NUMBER, `${index.name}: the row number comes last, as SQLite's implicit rowid`)
    }
  }
})

test('times kept as milliseconds since the epoch are 64-bit on PostgreSQL', () => {
  const isTime = (name: string) => /_at$|_until$|^deadline$|^privileged_deadline$/.test(name)
  const times = pgTables.flatMap(([, table]) => pgTableConfig(table).columns.filter((column) => isTime(column.name)).map((column) => ({
    column: `${pgTableConfig(table).name}.${column.name}`,
    type: column.getSQLType()
  })))
  assert.ok(times.length > 80, `found only ${times.length} time columns`)
  assert.deepEqual(times.filter(({ type }) => type !== 'bigint'), [])
})

test('a migrated PostgreSQL database holds exactly the schema\'s tables, columns and indexes', async (t) => {
  const database = await (await postgresForTest(t)).open({ max: 2 })

  await applyPgMigrations(database)

  const { rows: columns } = await database.pool.query<{ table_name: string, column_name: string, data_type: string, is_nullable: string }>(
    `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
     WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`)
  const expectedColumns = pgTables.flatMap(([, table]) => {
    const config = pgTableConfig(table)
    return config.columns.map((column) => ({
      table_name: config.name,
      column_name: column.name,
      data_type: column.getSQLType(),
      is_nullable: column.notNull ? 'NO' : 'YES'
    }))
  })
  const byPlace = (a: { table_name: string, column_name: string }, b: { table_name: string, column_name: string }) =>
    a.table_name.localeCompare(b.table_name) || a.column_name.localeCompare(b.column_name)
  assert.deepEqual([...columns].sort(byPlace), expectedColumns.sort(byPlace))

  const { rows: indexes } = await database.pool.query<{ indexname: string }>(
    `SELECT index_class.relname AS indexname FROM pg_index
     JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid
     JOIN pg_namespace ON pg_namespace.oid = index_class.relnamespace
     WHERE pg_namespace.nspname = 'public' AND NOT pg_index.indisprimary ORDER BY 1`)
  const expectedIndexes = pgTables.flatMap(([, table]) => pgTableConfig(table).indexes.map((index) => index.config.name!)).sort()
  assert.deepEqual(indexes.map((row) => row.indexname), expectedIndexes)

  const { rows: keys } = await database.pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM information_schema.table_constraints WHERE table_schema = 'public' AND constraint_type = 'PRIMARY KEY'`)
  assert.equal(Number(keys[0].n), pgTables.length, 'every table has a primary key')
})
