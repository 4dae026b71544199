import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Writable } from 'node:stream'
import type { FastifyInstance } from 'fastify'
import { Secret, TOTP } from 'otpauth'
import request from 'supertest'
import { buildApp } from '../../server/app.ts'
import { loadConfig, type Config } from '../../server/config.ts'
import type { Clock } from '../../server/domain/clock.ts'
import { hashPassword } from '../../server/domain/passwords.ts'
import type { Role, User } from '../../server/domain/users.ts'
import { createServices, type ServiceOverrides, type Services } from '../../server/wiring.ts'
import { pooledPostgresDatabase } from './postgres.ts'
import { closeRowsOn } from './sql.ts'

/** A clock tests move by hand. Starts at a fixed instant so runs are repeatable. */
export class FakeClock implements Clock {
  private current: number
  constructor (start: Date | string = '2026-11-25T09:00:00Z') { this.current = new Date(start).getTime() }
  now (): Date { return new Date(this.current) }
  advance (ms: number): void { this.current += ms }
  set (at: Date | string): void { this.current = new Date(at).getTime() }
}

export const TEST_SECRETS = {
  SESSION_SECRET: 'test-session-secret-test-session-secret-0123456789',
  ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64')
}

export function tempDir (prefix = 'mfa-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix))
}

/** Config as the process would load it, on a fresh temporary data directory. */
export function testConfig (env: Record<string, string> = {}, dataDir = tempDir()): Config {
  return loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, ...TEST_SECRETS, ...env })
}

/**
 * The database the web tests' portals run on: an empty PostgreSQL database with TEST_WEB_BACKEND=postgresql (CI runs
 * the web suite once so), else the SQLite file in the data directory.
 */
export type TestBackend = 'sqlite' | 'postgresql'

export function testBackend (): TestBackend {
  return process.env.TEST_WEB_BACKEND === 'postgresql' ? 'postgresql' : 'sqlite'
}

/** Where a test's portal (or several portals, as instances of one deployment) keeps its data, besides DATA_DIR. */
export interface PortalDatabase {
  /** Settings to add to the portal's environment: DATABASE_URL on PostgreSQL, none on SQLite (the file is in DATA_DIR). */
  readonly env: Record<string, string>
  /** Gives the PostgreSQL database back to the pool, emptied (after the portals on it are closed); nothing on SQLite. */
  release(): Promise<void>
}

/**
 * An empty, migrated database of the backend (on PostgreSQL, from this process's pool: pooledPostgresDatabase), for
 * tests that build their services (or run the CLI) without startTestApp.
 */
export async function portalDatabase (backend: TestBackend = testBackend()): Promise<PortalDatabase> {
  if (backend === 'sqlite') return { env: {}, release: async () => {} }
  const database = await pooledPostgresDatabase()
  return {
    env: { DATABASE_URL: database.url },
    release: async () => {
      await closeRowsOn(database.url)
      await database.release()
    }
  }
}

export interface TestApp {
  app: FastifyInstance
  services: Services
  config: Config
  clock: FakeClock
  dataDir: string
  /** The database settings the app runs on (DATABASE_URL on PostgreSQL), for a CLI run or another instance on its data. */
  databaseEnv: Record<string, string>
  close(): Promise<void>
}

export interface TestAppOptions {
  /** A data directory prepared beforehand (a database made or damaged before the start); default: a fresh one. */
  dataDir?: string
  /** The clock the app runs on, when a fake provider must share it; default: a new FakeClock. */
  clock?: FakeClock
  /** Service overrides (scripted providers, a logger) besides the clock. */
  overrides?: Omit<ServiceOverrides, 'clock'>
  /** Collects every request log line the app writes (at LOG_LEVEL, default info here); default: no logger. */
  logLines?: string[]
  /**
   * 'sqlite' for a test of the SQLite file itself (damaged, full, backed up), which runs on SQLite in every mode;
   * default: testBackend(). A DATABASE_URL in the environment wins over both (that database is the caller's).
   */
  backend?: TestBackend
}

/**
 * The real app with a fake clock, on a real temporary SQLite file, or on an empty PostgreSQL database (given back to
 * the pool on close) when the backend is PostgreSQL. Call close() in an after hook.
 */
export async function startTestApp (env: Record<string, string> = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = options.dataDir ?? tempDir()
  const { logLines } = options
  const database = env.DATABASE_URL === undefined ? await portalDatabase(options.backend ?? testBackend()) : undefined
  const databaseEnv = database?.env ?? { DATABASE_URL: env.DATABASE_URL }
  const config = testConfig(logLines === undefined ? { ...databaseEnv, ...env } : { LOG_LEVEL: 'info', ...databaseEnv, ...env }, dataDir)
  const clock = options.clock ?? new FakeClock()
  let services: Services | undefined
  try {
    services = await createServices(config, { ...options.overrides, clock })
    const logStream = logLines === undefined ? undefined : new Writable({ write (chunk, _encoding, done) { logLines.push(String(chunk)); done() } })
    const app = await buildApp(services, logStream === undefined ? { logger: false } : { logStream })
    await app.ready()
    const started = services
    return {
      app,
      services: started,
      config,
      clock,
      dataDir,
      databaseEnv,
      close: async () => {
        await app.close()
        await started.close()
        await closeRowsOn(config.databaseUrl)
        await database?.release()
        rmSync(dataDir, { recursive: true, force: true })
      }
    }
  } catch (err) {
    await services?.close()
    await database?.release()
    throw err
  }
}

export const TEST_PASSWORD = 'correct horse battery staple'
let fixtureHash: Promise<string> | undefined

/**
 * The hash of TEST_PASSWORD that test users get (to give another account the same password). It uses a cheap scrypt
 * cost (the cost is stored in the hash and honoured by verifyPassword), so the many sign-ins of the suite stay fast;
 * production hashes use the full cost.
 */
export async function testPasswordHash (): Promise<string> {
  fixtureHash ??= hashPassword(TEST_PASSWORD, { N: 2 ** 10, r: 8, p: 1 })
  return await fixtureHash
}

let userCounter = 0
/** A user with TEST_PASSWORD (testPasswordHash). */
export async function createTestUser (services: Services, fields: { role?: Role, email?: string, displayName?: string, privileged?: boolean } = {}): Promise<User> {
  userCounter++
  return services.userService.createUser({
    email: fields.email ?? `user${userCounter}-${fields.role ?? 'user'}@test.example`,
    displayName: fields.displayName ?? `Test User ${userCounter}`,
    role: fields.role ?? 'user',
    privileged: fields.privileged ?? false,
    passwordHash: await testPasswordHash()
  }, { id: null, label: 'test' })
}

/** The CSRF token of the first form on a page. */
export function csrfFrom (html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html)
  if (match === null) throw new Error('no _csrf field on the page')
  return match[1]
}

/**
 * A page's HTML with the characters beyond Latin-1 read back as a browser shows them: the portal writes them as
 * numeric character references (“ as &#8220;, — as &#8212;; domain/i18n.ts escapeHtml says why). The rest is left
 * as it is.
 */
export function readable (html: string): string {
  return html.replace(/&#(\d+);/g, (reference, code: string) => Number(code) > 0xff ? String.fromCodePoint(Number(code)) : reference)
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'" }

/** The hidden fields of the page's form posting to `action` (as a browser would send them), entities decoded. */
export function hiddenFields (html: string, action: string): Record<string, string | string[]> {
  const form = html.split('<form ').find((part) => part.startsWith(`method="post" action="${action}"`))?.split('</form>')[0]
  if (form === undefined) throw new Error(`no form posting to ${action} on the page`)
  const fields: Record<string, string | string[]> = {}
  for (const [, name, raw] of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    const value = raw.replace(/&(amp|lt|gt|quot|#39);/g, (entity) => ENTITIES[entity])
    const seen = fields[name]
    fields[name] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value]
  }
  return fields
}

export type Agent = ReturnType<typeof request.agent>

/** A cookie-carrying client, not signed in. */
export function anonymous (testApp: TestApp): Agent {
  return request.agent(testApp.app.server)
}

/** The `mfa_session=…` pair a response sets, if any. */
export function sessionCookieOf (res: { headers: Record<string, unknown> }): string | undefined {
  const cookies = (res.headers['set-cookie'] as string[] | undefined) ?? []
  return cookies.find((c) => c.startsWith('mfa_session='))?.split(';')[0]
}

/**
 * Signs in through the real form (GET /login for the token, then POST) and returns the cookie-carrying
 * agent, with the session cookie it was given for tests that replay it.
 */
export async function signIn (testApp: TestApp, email: string, password = TEST_PASSWORD): Promise<Agent & { sessionCookie: string }> {
  const agent = anonymous(testApp)
  const form = await agent.get('/login')
  const res = await agent.post('/login').type('form').send({ email, password, _csrf: csrfFrom(form.text) })
  const cookie = sessionCookieOf(res)
  if (res.status !== 303 || cookie === undefined) throw new Error(`sign-in as ${email} failed with ${res.status}`)
  return Object.assign(agent, { sessionCookie: cookie })
}

/** GETs a page and returns its CSRF token, for a following POST from the same agent. */
export async function csrfFor (agent: Agent, pagePath: string): Promise<string> {
  const page = await agent.get(pagePath)
  return csrfFrom(page.text)
}

/**
 * Opens `pagePath` for its CSRF token, then posts `fields` to `action` as a form. (Fetch the token before
 * building the POST: supertest attaches the agent's cookies when the request is created.)
 */
export async function submitForm (agent: Agent, pagePath: string, action: string, fields: Record<string, string> = {}) {
  const token = await csrfFor(agent, pagePath)
  return agent.post(action).type('form').send({ ...fields, _csrf: token })
}

/** The code an authenticator app with `secret` shows at `at` (ms). */
export function totpCode (secret: string, at: number): string {
  return new TOTP({ secret: Secret.fromBase32(secret) }).generate({ timestamp: at })
}

// Each staff account's test authenticator app, and the last time step it used (a code works only once).
const staffApps = new Map<string, { secret: string, methodId: string, lastStep: number }>()

/**
 * Confirms it's `user` on `agent` (a fresh step-up through the real TOTP form), as helpdesk and admin actions
 * require. The first call gives the account an authenticator app; calling again within one 30-second step
 * uses the next step's code, which the portal still accepts.
 */
export async function stepUp (testApp: TestApp, agent: Agent, user: User): Promise<void> {
  let app = staffApps.get(user.id)
  if (app === undefined) {
    const secret = new Secret({ size: 20 }).base32
    app = { secret, methodId: (await testApp.services.methods.addTotp(user.id, 'Test authenticator', secret, 0)).id, lastStep: -1 }
    staffApps.set(user.id, app)
  }
  const now = Math.floor(testApp.clock.now().getTime() / 30_000)
  const step = Math.max(now, app.lastStep + 1)
  if (step > now + 1) throw new Error(`${user.email} stepped up more than twice in one 30-second step: advance the clock first`)
  const code = totpCode(app.secret, step * 30_000)
  const res = await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.methodId, code, next: '/' })
  if (res.status !== 303) throw new Error(`step-up as ${user.email} failed with ${res.status}`)
  app.lastStep = step
}

/** Signs a helpdesk or admin account in and confirms it's them, ready to act in the consoles. */
export async function signInStaff (testApp: TestApp, user: User): Promise<Agent & { sessionCookie: string }> {
  const agent = await signIn(testApp, user.email)
  await stepUp(testApp, agent, user)
  return agent
}
