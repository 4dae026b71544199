import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import cookie from '@fastify/cookie'
import Database from 'better-sqlite3'
import { Eta } from 'eta'
import Fastify, { type FastifyInstance } from 'fastify'
import pg from 'pg'
import { buildApp } from '../../server/app.ts'
import { loadConfig } from '../../server/config.ts'
import { DEFAULT_REMINDER_OFFSETS } from '../../server/domain/campaigns.ts'
import { hashPassword } from '../../server/domain/passwords.ts'
import { createServices, type Services } from '../../server/wiring.ts'

/**
 * One server for bench/pages.ts, run in its own process so the load generator does not share its event loop:
 * `app` (the real portal with one user: on a temporary SQLite file, or on the PostgreSQL database named by this
 * process's DATABASE_URL, which the parent made for it), `campaign` (the same with a campaign that targets the user,
 * see inCampaign), `bare` (Fastify returning a short string) or `floor` (the least a signed-in page costs on the
 * portal's stack, see floorServer).
 * Reports where it listens over IPC and cleans up on SIGTERM or when the parent goes away.
 */
export interface ServerReady {
  port: number
  /** app and campaign: the user to sign in as. */
  email?: string
  password?: string
  /** floor: the Cookie header of its one signed-in session. */
  cookie?: string
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

if (kind === 'app' || kind === 'campaign') {
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
  if (kind === 'campaign') await inCampaign(services, user.id)
  app = await buildApp(services, { logger: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  ready = { port: portOf(app), email: user.email, password }
} else if (kind === 'bare') {
  app = Fastify({ logger: false })
  app.get('/', async () => 'hello world')
  await app.listen({ host: '127.0.0.1', port: 0 })
  ready = { port: portOf(app) }
} else if (kind === 'floor') {
  countStatements()
  dataDir = mkdtempSync(path.join(tmpdir(), 'mfa-bench-floor-'))
  const floor = await floorServer(dataDir)
  app = floor.app
  await app.listen({ host: '127.0.0.1', port: 0 })
  ready = { port: portOf(app), cookie: floor.cookie }
} else {
  throw new Error(`pages-server: expected "app", "campaign", "bare" or "floor", got ${String(kind)}`)
}

/**
 * The user as most users are once a rollout runs: targeted by a campaign whose deadline is ten days away, with an
 * authenticator app set up and a saved time zone. Their home page reads and shows the campaign, the method (with its
 * rename and remove forms) and the deadline in their zone.
 */
async function inCampaign (services: Services, userId: string): Promise<void> {
  const now = Date.now()
  const day = 86_400_000
  await services.campaigns.create({
    name: 'Everyone', targetKind: 'all', targetValue: null, startsAt: new Date(now - 60 * day), deadline: new Date(now + 10 * day),
    privilegedDeadline: null, newUserWindowDays: 14, reminderOffsets: DEFAULT_REMINDER_OFFSETS, maxExtensionDays: 30,
    smsPolicy: 'counts', privilegedMethods: 'any', softBlockDays: null, driftPolicy: 'reapply', awsPolicyVariant: 'console_and_api'
  }, { id: null, label: 'bench' })
  await services.methods.addTotp(userId, 'Phone app', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', 0)
  await services.users.setPreferences(userId, { timeZone: 'Europe/Berlin' })
  await services.engine.refreshUser(userId)
}

/**
 * The same home page (its HTML, from bench/lib/floor-views, its 22 texts escaped into it), served with nothing of the
 * portal's: a signed session cookie checked by @fastify/cookie, one prepared read of the session row joined to its
 * user from a SQLite file in WAL mode, and one eta render with a layout and a partial. No CSRF token, security
 * headers, translations, timeouts, roles, campaigns or methods. What the portal's page costs beyond it is what the
 * portal does; what it costs itself is the floor any signed-in page on this stack stands on, on this machine.
 */
async function floorServer (dir: string): Promise<{ app: FastifyInstance, cookie: string }> {
  const sqlite = new Database(path.join(dir, 'floor.db'))
  sqlite.pragma('journal_mode = WAL')
  sqlite.pragma('synchronous = NORMAL')
  sqlite.exec(`CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL, display_name TEXT NOT NULL, role TEXT NOT NULL);
    CREATE TABLE sessions (sid TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id), data TEXT NOT NULL, expires_at INTEGER NOT NULL)`)
  const sid = randomBytes(32).toString('base64url')
  const now = Date.now()
  sqlite.prepare('INSERT INTO users VALUES (?, ?, ?, ?)').run('u1', 'bench@bench.example', 'Bench User', 'user')
  sqlite.prepare('INSERT INTO sessions VALUES (?, ?, ?, ?)').run(sid, 'u1', JSON.stringify({ auth: { userId: 'u1', createdAt: now, lastSeenAt: now } }), now + 3_600_000)
  const read = sqlite.prepare<[string], [data: string, expiresAt: number, id: string, email: string, displayName: string, role: string]>(
    'SELECT s.data, s.expires_at, u.id, u.email, u.display_name, u.role FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.sid = ?').raw(true)
  const views = fileURLToPath(new URL('./floor-views/', import.meta.url))
  const text = JSON.parse(readFileSync(path.join(views, 'texts.json'), 'utf8')) as string[]
  const eta = new Eta({ views, cache: true, autoEscape: true })
  const csrf = randomBytes(48).toString('base64url')

  const server = Fastify({ logger: false })
  await server.register(cookie, { secret: randomBytes(32) })
  server.get('/', async (request, reply) => {
    const presented = request.cookies.sid
    const unsigned = presented === undefined ? undefined : request.unsignCookie(presented)
    const row = unsigned?.valid === true ? read.get(unsigned.value) : undefined
    if (row === undefined || row[1] <= Date.now()) return await reply.code(401).send('not signed in')
    const session = JSON.parse(row[0]) as { auth: { userId: string } }
    const user = { id: row[2], email: row[3], displayName: row[4], role: row[5] }
    if (session.auth.userId !== user.id) return await reply.code(401).send('not signed in')
    return await reply.type('text/html; charset=utf-8').send(eta.render('page', { text, user, csrf }))
  })
  await server.ready()
  return { app: server, cookie: `sid=${server.signCookie(sid)}` }
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
