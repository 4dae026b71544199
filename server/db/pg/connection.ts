import pg from 'pg'
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres'
import * as schema from './schema.ts'

export type PgDb = NodePgDatabase<typeof schema>

export interface PostgresDatabase {
  readonly pool: pg.Pool
  readonly db: PgDb
  close(): Promise<void>
}

export interface PostgresOptions {
  /** Most connections this process keeps open (pg's default: 10). */
  max?: number
  /** Shown in pg_stat_activity, so an operator can tell the portal's connections (and its instances) apart. */
  applicationName?: string
}

/** The database cannot be reached or refused us. The message is one line naming the server and database, never the password. */
export class PostgresConnectionError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'PostgresConnectionError'
  }
}

// Long enough for a server that is starting or failing over, short enough that a start against a wrong or
// unreachable host ends with a clear line instead of hanging.
const CONNECT_TIMEOUT_MS = 10_000

/**
 * Opens a connection pool on DATABASE_URL (postgres://user:password@host:port/database) and checks that one
 * connection can be made, so a wrong URL or an unreachable server stops the start at once.
 */
export async function openPostgres (url: string, options: PostgresOptions = {}): Promise<PostgresDatabase> {
  const target = describeTarget(url)
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max,
    application_name: options.applicationName ?? 'mfa-rollout',
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS
  })
  // A pooled connection that breaks while idle (server restart, failover) is dropped by the pool and replaced on
  // the next query; without a listener pg would turn it into an uncaught error that ends the process.
  pool.on('error', (err) => {
    process.emitWarning(`an idle connection to ${target} was lost: ${oneLine(err.message)}`, 'PostgresConnectionWarning')
  })
  try {
    await pool.query('SELECT 1')
  } catch (err) {
    await pool.end()
    throw new PostgresConnectionError(`cannot connect to ${target}: ${oneLine(messageOf(err))}`)
  }
  return {
    pool,
    db: drizzle(pool, { schema }),
    close: () => pool.end()
  }
}

/** "PostgreSQL database "mfa" on db.example:5432 as "portal"": what an operator needs to fix the URL, without the password. */
function describeTarget (url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    // Not echoed: a URL that does not parse may still hold the password.
    throw new PostgresConnectionError('DATABASE_URL is not a valid URL: expected postgres://user:password@host:port/database')
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new PostgresConnectionError(`DATABASE_URL must start with postgres:// (it starts with ${parsed.protocol}//)`)
  }
  const user = decodeURIComponent(parsed.username)
  const database = decodeURIComponent(parsed.pathname.slice(1)) || user
  // ?host=/run/postgresql names a socket directory in place of a host name.
  const host = parsed.searchParams.get('host') ?? (parsed.hostname === '' ? 'localhost' : parsed.hostname)
  const port = parsed.port === '' ? '5432' : parsed.port
  return `PostgreSQL database "${database}" on ${host}:${port}${user === '' ? '' : ` as "${user}"`}`
}

function messageOf (err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return messageOf(err.errors[0])
  if (err instanceof Error) return err.message === '' ? err.name : err.message
  return String(err)
}

function oneLine (text: string): string {
  return text.replace(/\s*\n\s*/g, ' ')
}
