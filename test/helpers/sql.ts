import pg from 'pg'
import type { Services } from '../../server/wiring.ts'

/** A parameter of a statement: booleans are written as 1/0 on SQLite and as booleans on PostgreSQL. */
export type SqlParam = string | number | boolean | null

/**
 * Rows read or written past the stores, to arrange a test or to see what the portal left behind, with SQL both
 * dialects speak. Read back, they look the same on both: booleans as 1/0 (as SQLite stores them), 64-bit integers
 * (times, count(*)) as numbers, camelCase aliases (`AS actorId`) in their case.
 */
export interface DirectSql {
  readonly dialect: 'sqlite' | 'postgresql'
  /** Runs a statement; resolves to the number of rows it changed. */
  run(sql: string, ...params: SqlParam[]): Promise<number>
  /** The first row, if any. */
  get<T = Record<string, unknown>>(sql: string, ...params: SqlParam[]): Promise<T | undefined>
  all<T = Record<string, unknown>>(sql: string, ...params: SqlParam[]): Promise<T[]>
  /** The first column of the first row, if any. */
  value<T = unknown>(sql: string, ...params: SqlParam[]): Promise<T | undefined>
  /** The first column of every row. */
  values<T = unknown>(sql: string, ...params: SqlParam[]): Promise<T[]>
}

/** The rows of the database `services` run on: the SQLite file, or the PostgreSQL database at DATABASE_URL. */
export function sqlOn (services: Pick<Services, 'config' | 'database'>): DirectSql {
  const url = services.config.databaseUrl
  return url === undefined ? sqliteRows(services) : postgresRows(poolOn(url))
}

function sqliteRows (services: Pick<Services, 'database'>): DirectSql {
  const statement = (sql: string) => services.database.sqlite.prepare(sql)
  const bind = (params: SqlParam[]) => params.map((p) => typeof p === 'boolean' ? (p ? 1 : 0) : p)
  return {
    dialect: 'sqlite',
    run: async (sql, ...params) => statement(sql).run(...bind(params)).changes,
    get: async <T>(sql: string, ...params: SqlParam[]) => statement(sql).get(...bind(params)) as T | undefined,
    all: async <T>(sql: string, ...params: SqlParam[]) => statement(sql).all(...bind(params)) as T[],
    value: async <T>(sql: string, ...params: SqlParam[]) => statement(sql).pluck().get(...bind(params)) as T | undefined,
    values: async <T>(sql: string, ...params: SqlParam[]) => statement(sql).pluck().all(...bind(params)) as T[]
  }
}

function postgresRows (pool: pg.Pool): DirectSql {
  const query = async (sql: string, params: SqlParam[]) => await pool.query({ text: forPostgres(sql), values: params, rowMode: 'array' })
  const all = async <T>(sql: string, params: SqlParam[]): Promise<T[]> => {
    const result = await query(sql, params)
    const names = result.fields.map((f) => f.name)
    return (result.rows as unknown[][]).map((row) => Object.fromEntries(row.map((v, i) => [names[i], asSqlite(v)])) as T)
  }
  const values = async <T>(sql: string, params: SqlParam[]): Promise<T[]> => ((await query(sql, params)).rows as unknown[][]).map((row) => asSqlite(row[0]) as T)
  return {
    dialect: 'postgresql',
    run: async (sql, ...params) => (await query(sql, params)).rowCount ?? 0,
    get: async <T>(sql: string, ...params: SqlParam[]) => (await all<T>(sql, params))[0],
    all: async <T>(sql: string, ...params: SqlParam[]) => await all<T>(sql, params),
    value: async <T>(sql: string, ...params: SqlParam[]) => (await values<T>(sql, params))[0],
    values: async <T>(sql: string, ...params: SqlParam[]) => await values<T>(sql, params)
  }
}

function asSqlite (value: unknown): unknown {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value
}

// The tokens of a statement the translation looks at; quoted text and identifiers are matched to be left alone.
const TOKENS = /'(?:[^']|'')*'|"(?:[^"]|"")*"|\?|\bAS\s+([A-Za-z_][A-Za-z0-9_]*)/gi

/** `?` placeholders become $1..$n; an unquoted camelCase alias is quoted, so PostgreSQL keeps its case as SQLite does. */
export function forPostgres (sql: string): string {
  let n = 0
  return sql.replace(TOKENS, (token, alias: string | undefined) => {
    if (token === '?') return `$${++n}`
    if (alias !== undefined && alias !== alias.toLowerCase() && alias !== alias.toUpperCase()) return token.slice(0, token.length - alias.length) + `"${alias}"`
    return token
  })
}

// int8 (times in ms, count(*)) and numeric (sum of bigints) as numbers, as SQLite gives them.
const NUMBERS = new Set([pg.types.builtins.INT8, pg.types.builtins.NUMERIC])
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => NUMBERS.has(oid)
    ? (text: string) => Number(text)
    : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser
}

// One small pool per database, shared by every DirectSql on it, ended before the database is dropped.
const pools = new Map<string, pg.Pool>()

function poolOn (url: string): pg.Pool {
  let pool = pools.get(url)
  if (pool === undefined) {
    pool = new pg.Pool({ connectionString: url, max: 2, types, application_name: 'mfa-rollout test rows' })
    // A connection ended under the pool (the database dropped at the end of a test) must not end the process.
    pool.on('error', () => {})
    pools.set(url, pool)
  }
  return pool
}

/** Ends the pool the rows of the database at `url` were read through, if any (before it is dropped). */
export async function closeRowsOn (url: string | undefined): Promise<void> {
  if (url === undefined) return
  const pool = pools.get(url)
  pools.delete(url)
  await pool?.end()
}
