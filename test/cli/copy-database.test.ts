import assert from 'node:assert/strict'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import Sqlite from 'better-sqlite3'
import { count, eq, getTableColumns, getTableName, is, sql, type SQL } from 'drizzle-orm'
import { drizzle, type BetterSQLite3Database } from 'drizzle-orm/better-sqlite3'
import { PgTable } from 'drizzle-orm/pg-core'
import { SQLiteTable, type SQLiteColumn } from 'drizzle-orm/sqlite-core'
import * as sqliteSchema from '../../server/db/schema.ts'
import * as pgSchema from '../../server/db/pg/schema.ts'
import { ROW_NUMBER } from '../../server/db/pg/schema.ts'
import type { PostgresDatabase } from '../../server/db/pg/connection.ts'
import { applyPgMigrations } from '../../server/db/pg/migrate.ts'
import { DEMO_ACCOUNTS, seedSandbox } from '../../server/domain/sandbox.ts'
import { USER_STATES } from '../../server/domain/states.ts'
import { createServices, type Services } from '../../server/wiring.ts'
import {
  createTestUser, csrfFrom, FakeClock, readable, signIn, startTestApp, submitForm, testConfig, totpCode, type Agent, type TestApp, type TestAppOptions
} from '../helpers/app.ts'
import { campaignInput } from '../helpers/campaigns.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'
import { differences, sameBrowser, snapshot, type PageSnapshot } from '../helpers/page-snapshot.ts'
import { freshPostgresDatabase, postgresForTest } from '../helpers/postgres.ts'
import { seedPopulation, seedSnapshots } from '../helpers/rollout.ts'

const SQLITE_TABLES = Object.values(sqliteSchema).filter((value) => is(value, SQLiteTable))
const PG_TABLES = new Map<string, PgTable>(Object.values(pgSchema).filter((value) => is(value, PgTable)).map((table) => [getTableName(table), table]))

/** A portal's database as the running server leaves it, written through the services; closed before the copy reads it. */
async function portalDatabase (t: TestContext, fill: (services: Services, clock: FakeClock) => Promise<void>): Promise<string> {
  const dataDir = scratchDir(t)
  const clock = new FakeClock()
  const services = await createServices(testConfig({}, dataDir), { clock })
  try {
    await fill(services, clock)
  } finally {
    await services.close()
  }
  return dataDir
}

/** Enough audit events that the log is read and inserted in several batches. */
async function appendEvents (services: Services, events: number): Promise<void> {
  for (let n = 1; n <= events; n++) await services.audit.append({ action: 'signin.success', actorLabel: 'alice@sandbox.example', details: { n }, ip: '192.0.2.7' })
}

function openSource (dataDir: string): { db: BetterSQLite3Database<typeof sqliteSchema>, rows(table: SQLiteTable): number, close(): void } {
  const sqlite = new Sqlite(path.join(dataDir, 'mfa-rollout.db'), { readonly: true })
  const db = drizzle(sqlite, { schema: sqliteSchema })
  return { db, rows: (table) => db.select({ n: count() }).from(table).get()!.n, close: () => sqlite.close() }
}

/** Every row of every table, each table's rows in one order whatever the database's collation. */
async function everyRow (read: (name: string) => Promise<unknown[]> | unknown[]): Promise<Record<string, unknown[]>> {
  const tables: Record<string, unknown[]> = {}
  for (const table of SQLITE_TABLES) {
    const name = getTableName(table)
    tables[name] = (await read(name)).map((row) => JSON.stringify(row)).sort()
  }
  return tables
}

async function rowCounts (target: PostgresDatabase): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const [name, table] of PG_TABLES) counts[name] = await target.db.$count(table)
  return counts
}

const allEmpty = (): Record<string, number> => Object.fromEntries([...PG_TABLES.keys()].map((name) => [name, 0]))

test('a sandbox portal copies into an empty PostgreSQL database row for row, and the copy verifies', async (t) => {
  const farFuture = Date.parse('2040-03-01T00:00:00Z')
  const dataDir = await portalDatabase(t, async (services, clock) => {
    await seedSandbox(services.users, services.userService)
    const { admin } = await seedPopulation(services, clock)
    seedSnapshots(services, clock)
    const actor = { id: admin.id, label: admin.email }
    await services.campaigns.create(campaignInput(clock.now(), { name: 'Next decade', deadline: new Date(farFuture) }), actor)
    const alice = (await services.users.findByEmail('alice@sandbox.example'))!
    await services.passes.issue(alice, { lifetimeMinutes: 60, oneTime: true }, actor)
    await services.outbox.add({ channel: 'email', recipient: 'alice@sandbox.example', subject: 'Welcome', bodyText: 'Hello', bodyHtml: null }, clock.now())
    await appendEvents(services, 1200)
  })
  const postgres = await postgresForTest(t)

  const { code, stdout, stderr } = await runCli(['copy-database', '--to', postgres.url], { dataDir })

  assert.equal(code, 0, stderr)
  const source = openSource(dataDir)
  t.after(() => source.close())
  const events = source.rows(sqliteSchema.auditEvents)
  const total = SQLITE_TABLES.reduce((sum, table) => sum + source.rows(table), 0)
  assert.ok(events > 1200)
  assert.equal(stdout.trimEnd().split('\n').at(-1), `copied ${total} rows in ${SQLITE_TABLES.length} tables; counts match; audit chain intact (${events} events)`)
  assert.match(stdout.split('\n')[0], /^copying \S+mfa-rollout\.db into postgres:\/\/\w+(:\*\*\*)?@[^@]+$/, 'the target is named, its password masked')
  assert.match(stdout, /^users +\d+ +\d+$/m, 'a line of counts per table')

  const target = await postgres.open()
  assert.deepEqual(
    await everyRow((name) => target.db.select().from(PG_TABLES.get(name)!)),
    // Where the twin carries a row number, it is the source's rowid: lists keep their order after the move.
    await everyRow((name) => {
      const table = SQLITE_TABLES.find((candidate) => getTableName(candidate) === name)!
      const fields: Record<string, SQLiteColumn | SQL> = { ...getTableColumns(table as SQLiteTable) }
      if (ROW_NUMBER in getTableColumns(PG_TABLES.get(name)!)) fields[ROW_NUMBER] = sql<number>`rowid`
      return source.db.select(fields).from(table).all()
    }))

  const user = async (email: string) => (await target.db.select().from(pgSchema.users).where(eq(pgSchema.users.email, email)))[0]
  assert.equal((await user('admin@sandbox.example')).privileged, true)
  assert.equal((await user('alice@sandbox.example')).privileged, false)
  assert.equal((await user('leaver@test.example')).disabled, true)
  const [totp] = await target.db.select().from(pgSchema.authMethods).where(eq(pgSchema.authMethods.kind, 'totp'))
  const [sourceTotp] = source.db.select().from(sqliteSchema.authMethods).where(eq(sqliteSchema.authMethods.id, totp.id)).all()
  assert.ok(totp.secretSealed !== null && totp.secretSealed.length > 0)
  assert.equal(totp.secretSealed, sourceTotp.secretSealed, 'the sealed secret is copied as it is, still bound to the same row id')
  const [later] = await target.db.select().from(pgSchema.campaigns).where(eq(pgSchema.campaigns.name, 'Next decade'))
  assert.equal(later.deadline, farFuture)

  // The portal's next inserts into tables that number their rows carry on after the copied ids.
  const [lastEvent] = await target.db.select({ id: pgSchema.auditEvents.id }).from(pgSchema.auditEvents).orderBy(sql`${pgSchema.auditEvents.id} DESC`).limit(1)
  const [nextEvent] = await target.db.insert(pgSchema.auditEvents).values({ at: new Date().toISOString(), action: 'test', prevHash: 'x', hash: 'y' }).returning({ id: pgSchema.auditEvents.id })
  assert.equal(nextEvent.id, lastEvent.id + 1)
  const [nextMessage] = await target.db.insert(pgSchema.outbox).values({ channel: 'sms', recipient: '+14155550100', bodyText: 'x', createdAt: 0 }).returning({ id: pgSchema.outbox.id })
  assert.equal(nextMessage.id, source.rows(sqliteSchema.outbox) + 1)
})

test('a target that holds any portal row is refused and left as it was', async (t) => {
  const dataDir = await portalDatabase(t, async (services) => {
    await createTestUser(services, { email: 'ann@example.org' })
  })
  const postgres = await postgresForTest(t)
  const target = await postgres.open()
  await applyPgMigrations(target)
  await target.db.insert(pgSchema.throttles).values({ key: 'signin:ann@example.org', failures: 2, windowStartedAt: 0 })

  const { code, stdout, stderr } = await runCli(['copy-database', '--to', postgres.url], { dataDir })

  assert.equal(code, 1)
  assert.equal(stderr.trim(), 'mfa-rollout copy-database: refused: the target already holds portal data (throttles: 1 row); copy into an empty database')
  assert.doesNotMatch(stdout, /copied/)
  assert.deepEqual(await rowCounts(target), { ...allEmpty(), throttles: 1 })
})

test('a copy that fails half-way leaves the target empty and says which table failed', async (t) => {
  const dataDir = await portalDatabase(t, async (services) => {
    await createTestUser(services, { email: 'ann@example.org' })
    await appendEvents(services, 1000)
  })
  const postgres = await postgresForTest(t)
  const target = await postgres.open()
  await applyPgMigrations(target)
  // The target refuses one row in the second batch of the audit log, after users and the first 500 events went in.
  await target.db.execute(sql`ALTER TABLE audit_events ADD CONSTRAINT refuses_event_700 CHECK (id <> 700)`)

  const { code, stdout, stderr } = await runCli(['copy-database', '--to', postgres.url], { dataDir })

  assert.equal(code, 1)
  assert.equal(stderr.trim(), 'mfa-rollout copy-database: could not copy audit_events: new row for relation "audit_events" violates check constraint "refuses_event_700"; nothing was copied (the transaction was rolled back)')
  assert.doesNotMatch(stdout, /copied/)
  assert.deepEqual(await rowCounts(target), allEmpty())
})

test('a target whose counts come out different from the source fails, naming the table', async (t) => {
  const dataDir = await portalDatabase(t, async (services) => {
    await createTestUser(services, { email: 'ann@example.org' })
  })
  const postgres = await postgresForTest(t)
  const target = await postgres.open()
  await applyPgMigrations(target)
  // Something on the target besides the copy writes a row: each copied user leaves a throttle row the source lacks.
  await target.db.execute(sql.raw(`CREATE FUNCTION stray_throttle() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO throttles (key, failures, window_started_at) VALUES (NEW.id, 0, 0); RETURN NEW; END $$`))
  await target.db.execute(sql.raw('CREATE TRIGGER stray_throttle AFTER INSERT ON users FOR EACH ROW EXECUTE FUNCTION stray_throttle()'))

  const { code, stdout } = await runCli(['copy-database', '--to', postgres.url], { dataDir })

  assert.equal(code, 1)
  assert.match(stdout, /^throttles +0 +1  differs$/m)
  assert.match(stdout.trimEnd().split('\n').at(-1)!, /^copied \d+ rows in \d+ tables; counts differ in throttles; audit chain intact \(\d+ events?\)$/)
})

test('a copy of a tampered audit log is not called intact, and the message says the original is broken too', async (t) => {
  const dataDir = await portalDatabase(t, async (services) => {
    await appendEvents(services, 3)
  })
  const raw = new Sqlite(path.join(dataDir, 'mfa-rollout.db'))
  raw.exec('DROP TRIGGER audit_events_no_update')
  raw.prepare('UPDATE audit_events SET details = ? WHERE id = 2').run('{"n":99}')
  raw.close()
  const postgres = await postgresForTest(t)

  const { code, stdout } = await runCli(['copy-database', '--to', postgres.url], { dataDir })

  assert.equal(code, 1)
  assert.match(stdout.trimEnd().split('\n').at(-1)!, /^copied \d+ rows in \d+ tables; counts match; audit chain broken at event #2 on the target: its contents do not match its keyed hash .*\(the SQLite log is broken too, at event #2: see mfa-rollout audit verify\)$/)
})

test('--to is required: without it the command is a usage error and touches nothing', async (t) => {
  const dataDir = scratchDir(t)

  const { code, stderr } = await runCli(['copy-database'], { dataDir })

  assert.equal(code, 2)
  assert.match(stderr, /--to is required/)
  assert.match(stderr, /^Usage: mfa-rollout copy-database --to URL/m)
})

test('a target that cannot be reached or opened fails with one line that does not show the password', async (t) => {
  const dataDir = await portalDatabase(t, async (services) => {
    await createTestUser(services, { email: 'ann@example.org' })
  })
  const password = 'Sup3r-secret-pw'
  const server = await freshPostgresDatabase()
  t.after(() => server.drop())
  const missing = new URL(server.url)
  missing.password = password
  missing.pathname = '/no_such_portal_db'

  for (const url of [missing.toString(), `postgres://portal:${password}@127.0.0.1:1/portal`, `not a url ${password}`]) {
    const { code, stdout, stderr } = await runCli(['copy-database', '--to', url], { dataDir })
    assert.equal(code, 1, url)
    assert.equal(stderr.trimEnd().split('\n').length, 1, stderr)
    assert.match(stderr, /^mfa-rollout copy-database: (cannot connect to PostgreSQL database "\w+" on 127\.0\.0\.1:\d+ as "\w+": |--to is not a valid URL)/)
    assert.doesNotMatch(stdout + stderr, new RegExp(password))
  }
})

const MINUTE = 60_000
const PEOPLE = ['admin', 'helpdesk', 'alice', 'bob', 'carol'] as const
type Person = typeof PEOPLE[number]
const emailOf = (person: Person): string => `${person}@sandbox.example`
const passwordOf = (person: Person): string => DEMO_ACCOUNTS.find((account) => account.email === emailOf(person))!.password

interface SandboxDay {
  browsers: Record<Person, Agent>
  ids: Record<Person, string>
  campaignUrl: string
}

/**
 * The sandbox as `npm start` seeds it, then a morning of use through the web forms: the admin adds an authenticator
 * app, sets up a campaign and arms it; the helpdesk adds an app and gives Bob more time and a temporary access pass;
 * Alice adds an app, Bob a phone; the admin asks for a pass for Carol (privileged: it awaits a second admin's
 * approval), exempts Bob and makes an API token. Everyone stays signed in.
 */
async function sandboxDay (portal: TestApp): Promise<SandboxDay> {
  const { services, clock } = portal
  assert.equal(await seedSandbox(services.users, services.userService), DEMO_ACCOUNTS.length)
  const ids = {} as Record<Person, string>
  for (const person of PEOPLE) ids[person] = (await services.users.findByEmail(emailOf(person)))!.id
  // Each person's authenticator app and the last time step it showed a code for (a code works only once).
  const apps = new Map<Person, { key: string, methodId: string, step: number }>()
  const enrollApp = async (person: Person, agent: Agent, name: string): Promise<void> => {
    const setup = await agent.get('/enroll/totp')
    const key = /<code id="totp-key">([A-Z2-7 ]+)<\/code>/.exec(setup.text)![1].replace(/ /g, '')
    const step = Math.floor(clock.now().getTime() / 30_000)
    const done = await agent.post('/enroll/totp').type('form').send({ _csrf: csrfFrom(setup.text), code: totpCode(key, step * 30_000), name })
    assert.equal(done.headers.location, '/', done.text)
    const [method] = (await services.methods.listFor(ids[person])).filter((m) => m.kind === 'totp')
    apps.set(person, { key, methodId: method.id, step })
  }
  // Staff confirm it's them with their app before console actions (the next time step's code, still accepted).
  const confirm = async (person: Person, agent: Agent): Promise<void> => {
    const app = apps.get(person)!
    app.step = Math.max(Math.floor(clock.now().getTime() / 30_000), app.step + 1)
    const res = await submitForm(agent, '/step-up', '/step-up/totp', { methodId: app.methodId, code: totpCode(app.key, app.step * 30_000), next: '/' })
    assert.equal(res.status, 303, res.text)
  }
  const userPage = (person: Person): string => `/helpdesk/users/${ids[person]}`

  const admin = await signIn(portal, emailOf('admin'), passwordOf('admin'))
  await enrollApp('admin', admin, 'Admin phone')
  await confirm('admin', admin)
  const created = await submitForm(admin, '/admin/campaigns/new', '/admin/campaigns', {
    name: 'MFA for everyone', targetKind: 'all', targetValue: '', startsAt: '2026-11-25', deadline: '2027-01-31', privilegedDeadline: '2026-12-15',
    newUserWindowDays: '14', reminderOffsets: '30, 14, 7, 3, 1', maxExtensionDays: '30', softBlockDays: '', smsPolicy: 'counts',
    privilegedMethods: 'any', driftPolicy: 'reapply'
  })
  assert.equal(created.status, 303, created.text)
  const campaignUrl = String(created.headers.location)
  clock.advance(MINUTE)
  assert.equal((await submitForm(admin, campaignUrl, `${campaignUrl}/arm`)).headers.location, campaignUrl)
  clock.advance(2 * MINUTE)

  const helpdesk = await signIn(portal, emailOf('helpdesk'), passwordOf('helpdesk'))
  await enrollApp('helpdesk', helpdesk, 'Helpdesk phone')
  await confirm('helpdesk', helpdesk)
  const extended = await submitForm(helpdesk, userPage('bob'), `${userPage('bob')}/extend`, { days: '7', reason: 'Travelling until next week' })
  assert.equal(extended.status, 303, extended.text)
  clock.advance(MINUTE)
  const bobPass = await submitForm(helpdesk, userPage('bob'), `${userPage('bob')}/pass`, { lifetimeMinutes: '240', oneTime: 'on', reason: 'New phone arrives today' })
  assert.match(bobPass.text, /<code id="pass-value">/)
  clock.advance(2 * MINUTE)

  const alice = await signIn(portal, emailOf('alice'), passwordOf('alice'))
  await enrollApp('alice', alice, 'Work phone')
  clock.advance(2 * MINUTE)

  const bob = await signIn(portal, emailOf('bob'), passwordOf('bob'))
  assert.equal((await submitForm(bob, '/enroll/phone', '/enroll/phone', { phone: '+1 202 555 0143' })).headers.location, '/enroll/phone')
  const text = (await services.outbox.latest(10)).find((message) => message.channel === 'sms')!.bodyText
  const verified = await submitForm(bob, '/enroll/phone', '/enroll/phone/verify', { code: /\b(\d{6})\b/.exec(text)![1] })
  assert.equal(verified.headers.location, '/', verified.text)
  clock.advance(2 * MINUTE)

  await confirm('admin', admin)
  // Carol's account is privileged: her pass waits for a second administrator's approval (the two-person rule).
  const carolPass = await submitForm(admin, userPage('carol'), `${userPage('carol')}/pass`, { lifetimeMinutes: '60', reason: 'New laptop, no phone yet' })
  assert.equal(carolPass.headers.location, userPage('carol'), carolPass.text)
  clock.advance(MINUTE)
  const exempted = await submitForm(admin, '/admin/exemptions', '/admin/exemptions', { email: emailOf('bob'), kind: 'other', reason: 'Shared lab account until March', owner: 'Ada Admin', expiresAt: '2027-03-01' })
  assert.equal(exempted.status, 303, exempted.text)
  clock.advance(MINUTE)
  const token = await submitForm(admin, '/admin/tokens/new', '/admin/tokens', { name: 'Status board', scopes: 'status:read', expiresInDays: '90' })
  assert.equal(token.status, 200, token.text)
  clock.advance(MINUTE)

  const carol = await signIn(portal, emailOf('carol'), passwordOf('carol'))
  return { browsers: { admin, helpdesk, alice, bob, carol }, ids, campaignUrl }
}

/**
 * Every page of the portal that shows stored data, as who sees it, in one fixed order. Downloads that are audited
 * come last, then the audit log's page of their events.
 */
function pagesOf ({ ids, campaignUrl }: SandboxDay): Array<[Person, string]> {
  const pages: Array<[Person, string]> = []
  for (const person of ['alice', 'bob', 'carol'] as const) {
    for (const path of ['/', '/preferences', '/recovery-codes', '/api/v1/me']) pages.push([person, path])
  }
  // Bob is exempt: he has no deadline to put in a calendar.
  pages.push(['alice', '/deadline.ics'], ['carol', '/deadline.ics'])
  pages.push(['helpdesk', '/helpdesk?q=example'], ['helpdesk', '/helpdesk?q=ha'])
  for (const person of PEOPLE) pages.push(['helpdesk', `/helpdesk/users/${ids[person]}`])
  pages.push(['admin', '/admin'])
  for (const state of USER_STATES) pages.push(['admin', `/admin/states/${state}`])
  for (const path of [
    '/admin/outbox', '/admin/campaigns', campaignUrl, `${campaignUrl}/edit`, '/admin/exemptions', '/admin/tokens', '/admin/approvals',
    '/admin/compliance', `/helpdesk/users/${ids.alice}`, '/admin/audit', '/admin/audit?verify=1', `/admin/audit?subject=${emailOf('carol')}`,
    '/admin/compliance.csv', '/admin/compliance.json', '/admin/audit/export.csv', '/admin/audit/export.json', '/admin/audit?action=audit.exported'
  ]) pages.push(['admin', path])
  return pages
}

/**
 * Each page as the browsers that used the portal before see it on `portal` now, keyed "person path". Lists keep
 * their order too: the users of one state come in the order they were first assessed (SQLite's rowid, copied into
 * user_states.seq on PostgreSQL).
 */
async function capture (portal: TestApp, day: SandboxDay): Promise<Record<string, PageSnapshot>> {
  const browsers = Object.fromEntries(PEOPLE.map((person) => [person, sameBrowser(day.browsers[person], portal)])) as Record<Person, Agent>
  const pages: Record<string, PageSnapshot> = {}
  for (const [person, path] of pagesOf(day)) pages[`${person} ${path}`] = await snapshot(browsers[person], path)
  return pages
}

async function closeKeepingData (portal: TestApp): Promise<void> {
  await portal.app.close()
  await portal.services.close()
}

test('a sandbox portal with a campaign and enrollments shows every page the same after its copy to PostgreSQL, and audit verify passes there', async (t) => {
  const dataDir = scratchDir(t)
  const clock = new FakeClock()
  const postgres = await freshPostgresDatabase()
  const running: TestApp[] = []
  t.after(async () => {
    for (const portal of running) await closeKeepingData(portal)
    await postgres.drop()
  })
  const start = async (env: Record<string, string>, options: TestAppOptions): Promise<TestApp> => {
    const portal = await startTestApp(env, { ...options, clock })
    running.push(portal)
    return portal
  }
  const stop = async (portal: TestApp): Promise<void> => {
    running.splice(running.indexOf(portal), 1)
    await closeKeepingData(portal)
  }

  const used = await start({}, { dataDir, backend: 'sqlite' })
  const day = await sandboxDay(used)
  await stop(used)

  const copied = await runCli(['copy-database', '--to', postgres.url], { dataDir })
  assert.equal(copied.code, 0, copied.stdout + copied.stderr)
  assert.match(copied.stdout, /counts match; audit chain intact/)

  // The file the copy read, reopened, and its copy: the same browsers ask both for the same pages at the same instant.
  // Their sessions were copied with the rest, so nobody signs in again (which would add events to the pages).
  const onSqlite = await start({}, { dataDir, backend: 'sqlite' })
  const sqlitePages = await capture(onSqlite, day)
  await stop(onSqlite)
  const onPostgres = await start({ DATABASE_URL: postgres.url }, { dataDir: scratchDir(t) })
  const postgresPages = await capture(onPostgres, day)

  assert.deepEqual(Object.entries(sqlitePages).filter(([, page]) => page.status !== 200).map(([page, { status }]) => `${page}: ${status}`), [], 'every page opens')
  const seen = (page: string): string => sqlitePages[page].lines.join('\n')
  assert.match(seen('alice /'), /Work phone/)
  assert.match(readable(seen('bob /')), /Mobile •••• 0143/)
  assert.match(seen('admin /admin/campaigns'), /MFA for everyone/)
  assert.match(seen('admin /admin/exemptions'), /bob@sandbox\.example/)
  assert.match(seen('admin /admin/tokens'), /Status board/)
  assert.match(seen(`helpdesk /helpdesk/users/${day.ids.bob}`), /pass\.issued/)
  assert.match(seen('admin /admin/approvals'), /New laptop, no phone yet/)
  assert.match(seen('admin /admin/audit'), /Chain intact:<\/strong> all \d+ events/)
  assert.equal(seen('admin /admin/audit?action=audit.exported').match(/<code class="event-name">audit\.exported<\/code>/g)?.length, 2)
  for (const person of ['alice', 'bob', 'carol'] as const) assert.match(seen('helpdesk /helpdesk?q=example'), new RegExp(emailOf(person)))
  assert.deepEqual(differences(sqlitePages, postgresPages), [])

  // A new sign-in works there too: the copied password hash and session store.
  await signIn(onPostgres, emailOf('alice'), passwordOf('alice'))

  const onFile = await runCli(['audit', 'verify'], { dataDir })
  const there = await runCli(['audit', 'verify'], { dataDir: scratchDir(t), env: { DATABASE_URL: postgres.url } })
  assert.equal(there.code, 0, there.stdout + there.stderr)
  assert.match(there.stdout, /^chain intact \(\d+ events\)\n$/)
  assert.equal(onFile.code, 0)
  const events = (stdout: string): number => Number(/\((\d+) events\)/.exec(stdout)![1])
  assert.equal(events(there.stdout), events(onFile.stdout) + 1, 'every event of the file, and the sign-in just made')
})
