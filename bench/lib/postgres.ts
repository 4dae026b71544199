import { randomBytes } from 'node:crypto'
import { drizzle } from 'drizzle-orm/node-postgres'
import pg from 'pg'
import { PgAccess } from '../../server/db/pg/access.ts'
import type { PgDb } from '../../server/db/pg/connection.ts'
import { PgEngineStore } from '../../server/db/pg/engine.ts'
import * as schema from '../../server/db/pg/schema.ts'

/**
 * Which database a benchmark runs on. PostgreSQL when DATABASE_URL is set (or `--backend postgresql`), else a
 * SQLite file in a temporary data directory, as before.
 *
 * On PostgreSQL, DATABASE_URL names a server and a maintenance database the bench may connect to (for example
 * postgres://postgres@127.0.0.1:5432/postgres): the bench creates a database of its own there with a random name
 * (mfa_bench_…), runs on it, and drops it at the end, so the database named in the URL is never written to. A run
 * stopped by force (SIGKILL) can leave an mfa_bench_… database behind; Ctrl-C drops it.
 */
export type BackendName = 'sqlite' | 'postgresql'

export interface Backend {
  name: BackendName
  /** PostgreSQL: the server (and maintenance database) from DATABASE_URL. */
  serverUrl?: string
}

/** `--backend` when given, else DATABASE_URL decides. */
export function chooseBackend (option: string | undefined, env: NodeJS.ProcessEnv = process.env): Backend {
  const serverUrl = env.DATABASE_URL === undefined || env.DATABASE_URL === '' ? undefined : env.DATABASE_URL
  const name = option ?? (serverUrl === undefined ? 'sqlite' : 'postgresql')
  if (name === 'sqlite') return { name }
  if (name !== 'postgresql') throw new Error(`--backend: expected sqlite or postgresql, got "${name}"`)
  if (serverUrl === undefined) throw new Error('--backend postgresql needs DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/postgres (the bench makes and drops a database of its own there)')
  return { name, serverUrl }
}

export interface BenchDatabase {
  /** postgres:// URL of the new, empty database. */
  readonly url: string
  readonly name: string
  /** Ends every connection to it and drops it (idempotent). */
  drop(): Promise<void>
}

/**
 * A new empty database with a random name on DATABASE_URL's server. Until drop() it is also dropped when the
 * process is interrupted (SIGINT, SIGTERM), so Ctrl-C during a long seeding leaves nothing behind.
 */
export async function createBenchDatabase (serverUrl: string): Promise<BenchDatabase> {
  const name = `mfa_bench_${randomBytes(6).toString('hex')}`
  await onServer(serverUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`))
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  let dropped: Promise<void> | undefined
  const drop = (): Promise<void> => {
    dropped ??= (async () => {
      process.off('SIGINT', interrupted)
      process.off('SIGTERM', interrupted)
      // FORCE (PostgreSQL 13+) ends the connections still open on it, such as a pool a failed child left behind.
      await onServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`))
    })()
    return dropped
  }
  const interrupted = (signal: NodeJS.Signals): void => {
    process.stderr.write(`${signal}: dropping database ${name}\n`)
    void drop().finally(() => process.exit(130))
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  return { url: url.toString(), name, drop }
}

async function onServer<T> (serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl, application_name: 'mfa-rollout bench' })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/** A single connection on the bench database, for seeding, counting and EXPLAIN; end() it when done. */
export async function connect (url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: 'mfa-rollout bench' })
  // A connection ended under it (the database dropped on Ctrl-C) fails its next query; it must not end the process.
  client.on('error', () => {})
  await client.connect()
  return client
}

export interface Statement {
  sql: string
  params: unknown[]
}

/** EXPLAIN with these options (e.g. 'COSTS OFF', 'ANALYZE, BUFFERS') of a statement, one line per plan line. */
export async function explain (client: pg.Client, statement: Statement, options: string): Promise<string[]> {
  const result = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (${options}) ${statement.sql}`, statement.params)
  return result.rows.map((row) => row['QUERY PLAN'])
}

/**
 * The statements the engine's PostgreSQL store sends while `work` runs, with their parameters: a store of its own on
 * one connection with drizzle's query log, so a plan shown (EXPLAIN) is of the SQL that runs, not a copy of it.
 * `work` runs for real on the database: give it calls that change nothing.
 */
export async function engineStatements (url: string, work: (store: PgEngineStore) => Promise<unknown>): Promise<Statement[]> {
  const statements: Statement[] = []
  const pool = new pg.Pool({ connectionString: url, max: 1, application_name: 'mfa-rollout bench' })
  try {
    const db = drizzle(pool, { schema, logger: { logQuery: (sql, params) => { statements.push({ sql, params }) } } }) as unknown as PgDb
    await work(new PgEngineStore(new PgAccess(db), { list: async () => [] }))
  } finally {
    await pool.end()
  }
  return statements
}
