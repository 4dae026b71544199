import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import Database from 'better-sqlite3'
import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import { buildApp } from '../../server/app.ts'
import { loadConfig } from '../../server/config.ts'
import { hashPassword } from '../../server/domain/passwords.ts'
import { createServices, type Services } from '../../server/wiring.ts'

/**
 * One server for bench/pages.ts, run in its own process so the load generator does not share its event loop:
 * `app` (the real portal with one user: on a temporary SQLite file, or on the PostgreSQL database named by this
 * process's DATABASE_URL, which the parent made for it) or `bare` (Fastify returning a short string).
 * Reports where it listens over IPC and cleans up on SIGTERM or when the parent goes away.
 */
export interface ServerReady {
  port: number
  email?: string
  password?: string
}

/**
 * Asked for with the message 'cpu': this process's CPU time so far (user + system, and system alone), in microseconds, and how many
 * database statements it has run (SQLite statement executions, or queries sent to PostgreSQL).
 */
export interface CpuReport {
  cpuMicros: number
  /** The part of cpuMicros spent in the kernel (socket writes; on SQLite, its file locks). */
  systemMicros: number
  statements: number
}

let statements = 0

/** Counts every statement the portal runs, on either backend: a diagnostic tap on the drivers, not on the portal. */
function countStatements (): void {
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    statements++
    return query.apply(this, args)
  } as typeof pg.Client.prototype.query
  const scratch = new Database(':memory:')
  const prototype = Object.getPrototypeOf(scratch.prepare('SELECT 1')) as Record<string, (...args: unknown[]) => unknown>
  scratch.close()
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = prototype[method]
    prototype[method] = function (this: unknown, ...args: unknown[]) {
      statements++
      return original.apply(this, args)
    }
  }
}

const kind = process.argv[2]
let app: FastifyInstance
let services: Services | undefined
let dataDir: string | undefined
let ready: ServerReady

if (kind === 'app') {
  countStatements()
  dataDir = mkdtempSync(path.join(tmpdir(), 'mfa-bench-'))
  const databaseUrl = process.env.DATABASE_URL
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ...(databaseUrl === undefined || databaseUrl === '' ? {} : { DATABASE_URL: databaseUrl })
  })
  services = await createServices(config)
  const password = randomBytes(12).toString('base64url')
  const user = await services.userService.createUser({
    email: 'bench@bench.example',
    displayName: 'Bench User',
    role: 'user',
    privileged: false,
    passwordHash: await hashPassword(password)
  }, { id: null, label: 'bench' })
  app = await buildApp(services, { logger: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  ready = { port: portOf(app), email: user.email, password }
} else if (kind === 'bare') {
  app = Fastify({ logger: false })
  app.get('/', async () => 'hello world')
  await app.listen({ host: '127.0.0.1', port: 0 })
  ready = { port: portOf(app) }
} else {
  throw new Error(`pages-server: expected "app" or "bare", got ${String(kind)}`)
}

function portOf (server: FastifyInstance): number {
  const address = server.server.address()
  if (address === null || typeof address === 'string') throw new Error('server is not listening on a TCP port')
  return address.port
}

let stopping = false
async function stop (): Promise<void> {
  if (stopping) return
  stopping = true
  await app.close()
  await services?.close()
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true })
  // A normal exit, so --cpu-prof gets to write its profile.
  process.exit(0)
}
process.on('SIGTERM', () => { void stop() })
process.on('disconnect', () => { void stop() })
process.on('message', (message) => {
  if (message !== 'cpu') return
  const { user, system } = process.cpuUsage()
  process.send?.({ cpuMicros: user + system, systemMicros: system, statements } satisfies CpuReport)
})
process.send?.(ready)
