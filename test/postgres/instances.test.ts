import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import request from 'supertest'
import { createServices, type Services } from '../../server/wiring.ts'
import { DEMO_ACCOUNTS, seedSandbox } from '../../server/domain/sandbox.ts'
import { createTestUser, csrfFrom, sessionCookieOf, tempDir, testConfig, TEST_PASSWORD, TEST_SECRETS } from '../helpers/app.ts'
import { freshPostgresDatabase, type TestDatabase } from '../helpers/postgres.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

interface Instance {
  url: string
  child: ChildProcess
  /** What it has logged so far (standard output and error). */
  lines: string[]
}

/** One portal process (server/main.ts) on the shared database, on a port of its own; resolves once it listens. */
async function startInstance (databaseUrl: string): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'test', ...TEST_SECRETS, DATA_DIR: tempDir('mfa-instance-'), DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  return await new Promise<Instance>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`the instance did not start:\n${lines.join('\n')}`)) }, 30_000)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the instance exited with ${code}:\n${lines.join('\n')}`)) })
    createInterface({ input: child.stderr! }).on('line', (line) => { lines.push(line) })
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line)
      const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
      if (listening !== null) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve({ url: listening[1], child, lines })
      }
    })
  })
}

async function stopInstance (instance: Instance | undefined): Promise<void> {
  if (instance === undefined || instance.child.exitCode !== null || instance.child.signalCode !== null) return
  const exited = new Promise((resolve) => instance.child.once('exit', resolve))
  instance.child.kill('SIGTERM')
  await exited
}

async function waitUntil (condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  assert.fail(`waited 20 s for ${what}`)
}

/** Signs in through the real form on one instance; the session cookie it was given. */
async function signInOn (instance: Instance, email: string): Promise<string> {
  const form = await request(instance.url).get('/login')
  const csrfCookies = (form.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ')
  const res = await request(instance.url).post('/login').set('cookie', csrfCookies).type('form').send({ email, password: TEST_PASSWORD, _csrf: csrfFrom(form.text) })
  const cookie = sessionCookieOf(res)
  assert.equal(res.status, 303, `sign-in as ${email} on ${instance.url}`)
  assert.ok(cookie !== undefined)
  return cookie
}

describe('two portal instances on one PostgreSQL', () => {
  let database: TestDatabase
  let services: Services
  let a: Instance | undefined
  let b: Instance | undefined

  before(async () => {
    database = await freshPostgresDatabase()
    // The test's own view of the shared database: migrated and seeded once, before the instances start.
    services = await createServices(testConfig({ DATABASE_URL: database.url }))
    await seedSandbox(services.users, services.userService)
    ;[a, b] = await Promise.all([startInstance(database.url), startInstance(database.url)])
  })

  after(async () => {
    await Promise.all([stopInstance(a), stopInstance(b)])
    await services?.close()
    await database?.drop()
  })

  test('a session made on A is valid on B, and signing out on A ends it on B at once', async () => {
    const user = await createTestUser(services, { email: 'traveller@test.example' })
    const cookie = await signInOn(a!, user.email)
    const onB = await request(b!.url).get('/').set('cookie', cookie)
    assert.equal(onB.status, 200, 'B knows the session A made')
    assert.match(onB.text, /traveller@test\.example|Test User/)

    const home = await request(a!.url).get('/').set('cookie', cookie)
    const withCsrf = [cookie, ...((home.headers['set-cookie'] as unknown as string[] | undefined) ?? []).map((c) => c.split(';')[0])].join('; ')
    const out = await request(a!.url).post('/logout').set('cookie', withCsrf).type('form').send({ _csrf: csrfFrom(home.text) })
    assert.equal(out.status, 303)
    const afterOut = await request(b!.url).get('/').set('cookie', cookie)
    assert.equal(afterOut.status, 303, 'B sends the signed-out cookie to sign in again')
    assert.match(String(afterOut.headers.location), /^\/login/)
  })

  test('50 sign-ins with one one-time pass spread over A and B: exactly one gets in', async () => {
    const user = await createTestUser(services, { email: 'pass-holder@test.example' })
    const helpdesk = await createTestUser(services, { role: 'helpdesk' })
    const { pass } = await services.passes.issue(user, { lifetimeMinutes: 60, oneTime: true }, { id: helpdesk.id, label: helpdesk.email })
    // Every attempt first opens the form on its instance (its own CSRF cookie), then all post at once.
    const attempts = await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const instance = i % 2 === 0 ? a! : b!
      const form = await request(instance.url).get('/login/pass')
      const cookies = (form.headers['set-cookie'] as unknown as string[]).map((c) => c.split(';')[0]).join('; ')
      return { instance, cookies, csrf: csrfFrom(form.text) }
    }))
    const results = await Promise.all(attempts.map(async ({ instance, cookies, csrf }) =>
      await request(instance.url).post('/login/pass').set('cookie', cookies).type('form').send({ email: user.email, pass, _csrf: csrf })))
    const inside = results.filter((res) => res.status === 303 && !/\/login/.test(String(res.headers.location)))
    assert.equal(inside.length, 1, `statuses: ${results.map((r) => r.status).join(',')}`)
    assert.equal((await services.audit.list({ subjectUserId: user.id, action: 'signin.success' })).length, 1)
  })
  test('exactly one instance leads the scheduler, and when it is killed the other takes over', async () => {
    const leaders = async (): Promise<boolean[]> => await Promise.all([a!, b!].filter((i) => i.child.exitCode === null && i.child.signalCode === null)
      .map(async (i) => (await request(i.url).get('/readyz')).body.leader as boolean))
    await waitUntil(async () => (await leaders()).filter(Boolean).length === 1, 'one leader')
    const [aLeads] = await leaders()
    const leader = aLeads ? a! : b!
    const other = aLeads ? b! : a!
    const ready = await request(other.url).get('/readyz')
    assert.equal(ready.status, 200)
    assert.equal(ready.body.leader, false)
    assert.match(String(ready.body.instance), /:\d+$/, 'the instance names its host and process')

    const exited = new Promise((resolve) => leader.child.once('exit', resolve))
    leader.child.kill('SIGKILL')
    await exited
    // The dead leader's connection is gone, and its lock with it: the other asks again within 5 seconds.
    await waitUntil(async () => (await request(other.url).get('/readyz')).body.leader === true, 'the other instance to lead')
  })
})

test('an instance on a server that does not vacuum says so when it starts and in /readyz while it lasts; one on a server that does says nothing', async (t) => {
  const database = await freshPostgresDatabase()
  // track_counts can be turned off for one connection (autovacuum, only for the whole server): the instance's own
  // connections are then those of a server whose autovacuum cannot run.
  const unvacuumed = new URL(database.url)
  unvacuumed.searchParams.set('options', '-c track_counts=off')
  const [off, plain] = await Promise.all([startInstance(unvacuumed.toString()), startInstance(database.url)])
  t.after(async () => { await Promise.all([stopInstance(off), stopInstance(plain)]); await database.drop() })

  const ready = await request(off.url).get('/readyz')
  assert.equal(ready.status, 200, 'it still serves')
  assert.equal(ready.body.status, 'ready')
  assert.equal(ready.body.warnings.length, 1)
  assert.match(ready.body.warnings[0], /^PostgreSQL's autovacuum does not run on this server \((autovacuum = off, )?track_counts = off\): the portal vacuums its job queue itself .* \(vacuumdb --analyze\)\.$/)
  const logged = off.lines.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((line) => line.msg === ready.body.warnings[0])
  assert.equal(logged.length, 1, 'the log said it once, at start')
  assert.equal(logged[0].level, 40, 'as a warning')

  // The same database through the server's own settings: a warning only if the server itself runs without autovacuum.
  const client = new pg.Client({ connectionString: database.url })
  await client.connect()
  const { rows: [server] } = await client.query<{ autovacuum: string }>("SELECT current_setting('autovacuum') AS autovacuum")
  await client.end()
  const plainReady = await request(plain.url).get('/readyz')
  assert.equal(plainReady.status, 200)
  if (server.autovacuum === 'on') assert.equal(plainReady.body.warnings, undefined)
  else assert.match(plainReady.body.warnings[0], /\(autovacuum = off\)/)
  assert.equal(plain.lines.some((line) => line.includes('track_counts')), false)
})

test('two sandbox instances starting on one empty database at the same moment make each demo account once, and both start', async (t) => {
  const database = await freshPostgresDatabase()
  t.after(async () => { await database.drop() })
  // Migrated first: the instances' own starts take the migration lock one after the other.
  const [one, two] = await Promise.all([createServices(testConfig({ DATABASE_URL: database.url })), createServices(testConfig({ DATABASE_URL: database.url }))])
  try {
    const seeded = await Promise.all([seedSandbox(one.users, one.userService), seedSandbox(two.users, two.userService)])
    assert.equal(seeded[0] + seeded[1], DEMO_ACCOUNTS.length, `created ${seeded.join(' and ')}`)
    assert.equal(await one.users.count(), DEMO_ACCOUNTS.length)
    for (const account of DEMO_ACCOUNTS) assert.equal((await two.users.findByEmail(account.email))?.role, account.role)
    assert.equal((await one.audit.list({ action: 'user.created' })).length, DEMO_ACCOUNTS.length, 'one creation recorded per account')
  } finally {
    await Promise.all([one.close(), two.close()])
  }
})
