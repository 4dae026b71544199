import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type Sqlite from 'better-sqlite3'
import request from 'supertest'
import type { ApiScope } from '../../server/domain/api-tokens.ts'
import { automationServices } from '../../server/wiring-automation.ts'
import { anonymous, createTestUser, csrfFrom, sessionCookieOf, signIn, startTestApp, TEST_PASSWORD, type TestApp } from '../helpers/app.ts'

let t: (TestApp & { logLines: string[] }) | undefined
afterEach(async () => { await t?.close(); t = undefined })

/**
 * The real app with its log captured, to count what an operator would see. On SQLite in every mode: the full disk is
 * made by capping the SQLite file's size (a PostgreSQL server's disk is not the portal's to fill).
 */
async function startApp (): Promise<TestApp & { logLines: string[] }> {
  const logLines: string[] = []
  const app = { ...await startTestApp({}, { logLines, backend: 'sqlite' }), logLines }
  t = app
  return app
}

/**
 * Makes the data volume full as SQLite sees it: the file may not grow (max_page_count at its size), and every
 * write to any table also has to store more than the pages left, so each write fails with a real SQLITE_FULL,
 * as every write does on a full disk (in WAL mode even a delete needs room for its log frames).
 */
function fillTheDisk (sqlite: Sqlite.Database): void {
  sqlite.exec('CREATE TABLE IF NOT EXISTS disk_filler (b BLOB)')
  const pageSize = sqlite.pragma('page_size', { simple: true }) as number
  const free = sqlite.pragma('freelist_count', { simple: true }) as number
  sqlite.pragma(`max_page_count = ${sqlite.pragma('page_count', { simple: true }) as number}`)
  const tables = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN ('disk_filler', '__drizzle_migrations')").pluck().all() as string[]
  for (const table of tables) {
    for (const operation of ['INSERT', 'UPDATE', 'DELETE']) {
      sqlite.exec(`CREATE TEMP TRIGGER "full_${table}_${operation}" BEFORE ${operation} ON main."${table}"
        BEGIN INSERT INTO main.disk_filler VALUES (zeroblob(${(free + 2) * pageSize})); END`)
    }
  }
}

/** Space returns: the file may grow again (the triggers stay; their writes now fit). */
function freeSomeSpace (sqlite: Sqlite.Database): void {
  sqlite.pragma('max_page_count = 1073741823')
}

async function issueToken (testApp: TestApp, scopes: ApiScope[]): Promise<string> {
  return (await automationServices(testApp.services).tokens.create({ name: 'HR feed', scopes, expiresInDays: null }, { id: null, label: 'test' })).secret
}

function storageLogLines (testApp: { logLines: string[] }): string[] {
  return testApp.logLines.filter((line) => line.includes('"storage":"full"'))
}

test('with the disk full, a signed-in user\'s home page still opens: only the refresh of the idle timer is lost', async () => {
  const t = await startApp()
  const user = await createTestUser(t.services, { displayName: 'Grace Hopper' })
  const agent = await signIn(t, user.email)
  fillTheDisk(t.services.database.sqlite)
  // Past the touch interval, so this request would write the session's last-seen time.
  t.clock.advance(5 * 60_000)

  const home = await agent.get('/')
  assert.equal(home.status, 200)
  assert.match(home.text, /Grace Hopper/)
  // The session was not ended by the failed write: the next page still opens.
  assert.equal((await agent.get('/')).status, 200)
  // The write was tried and failed (and reported), not skipped.
  assert.equal(storageLogLines(t).length, 1)
})

test('with the disk full, signing in answers 503 with a plain page that says why, and no session cookie', async () => {
  const t = await startApp()
  const user = await createTestUser(t.services)
  const agent = anonymous(t)
  const form = await agent.get('/login')
  fillTheDisk(t.services.database.sqlite)

  const res = await agent.post('/login').type('form').send({ email: user.email, password: TEST_PASSWORD, _csrf: csrfFrom(form.text) })
  assert.equal(res.status, 503)
  assert.match(res.headers['content-type'], /text\/html/)
  assert.match(res.text, /storage is full/)
  assert.doesNotMatch(res.text, /SQLITE|database or disk/)
  assert.equal(sessionCookieOf(res), undefined)
})

test('with the disk full, the API answers 503 with its documented error shape (storage_full)', async () => {
  const t = await startApp()
  const user = await createTestUser(t.services)
  const secret = await issueToken(t, ['phones:write'])
  fillTheDisk(t.services.database.sqlite)

  const res = await request(t.app.server).put(`/api/v1/users/${user.id}/phone`).set('authorization', `Bearer ${secret}`).send({ phone: '+49 151 1234 5678' })
  assert.equal(res.status, 503)
  assert.equal(res.body.error.code, 'storage_full')
  assert.equal(typeof res.body.error.message, 'string')
  assert.doesNotMatch(res.text, /SQLITE/)
})

test('with the disk full, a script posting JSON to a page gets the JSON error, not a page', async () => {
  const t = await startApp()
  const user = await createTestUser(t.services)
  const agent = anonymous(t)
  const form = await agent.get('/login')
  fillTheDisk(t.services.database.sqlite)

  const res = await agent.post('/login').set('content-type', 'application/json').set('x-csrf-token', csrfFrom(form.text))
    .send(JSON.stringify({ email: user.email, password: TEST_PASSWORD }))
  assert.equal(res.status, 503)
  assert.deepEqual(Object.keys(res.body), ['error'])
  assert.equal(res.body.error.code, 'storage_full')
})

test('/readyz reports failing writes (503 with a reason) until space returns, /healthz stays up, and the portal recovers on its own', async () => {
  const t = await startApp()
  const user = await createTestUser(t.services)
  assert.equal((await anonymous(t).get('/readyz')).status, 200)
  fillTheDisk(t.services.database.sqlite)
  const visitor = anonymous(t)
  const form = await visitor.get('/login')
  const failed = await visitor.post('/login').type('form').send({ email: user.email, password: TEST_PASSWORD, _csrf: csrfFrom(form.text) })
  assert.equal(failed.status, 503)

  const notReady = await anonymous(t).get('/readyz')
  assert.equal(notReady.status, 503)
  assert.equal(notReady.body.status, 'not_ready')
  assert.match(notReady.body.reason, /cannot be written/)
  assert.equal((await anonymous(t).get('/healthz')).status, 200)
  // Still full: asking again does not make it ready.
  assert.equal((await anonymous(t).get('/readyz')).status, 503)

  freeSomeSpace(t.services.database.sqlite)
  const ready = await anonymous(t).get('/readyz')
  assert.equal(ready.status, 200)
  assert.equal(ready.body.status, 'ready')
  const agent = await signIn(t, user.email)
  assert.equal((await agent.get('/')).status, 200)
})

test('a full disk is logged once a minute while it lasts, not once per request, and its end is logged', async () => {
  const t = await startApp()
  const user = await createTestUser(t.services)
  const agent = await signIn(t, user.email)
  fillTheDisk(t.services.database.sqlite)

  const attempt = async () => {
    const res = await agent.post('/logout').type('form').send({ _csrf: csrfFrom((await agent.get('/')).text) })
    assert.equal(res.status, 503)
  }
  for (let i = 0; i < 5; i++) await attempt()
  assert.equal(storageLogLines(t).length, 1, t.logLines.join(''))
  t.clock.advance(61_000)
  await attempt()
  assert.equal(storageLogLines(t).length, 2)
  assert.doesNotMatch(t.logLines.join(''), /"msg":"unhandled error"/)

  freeSomeSpace(t.services.database.sqlite)
  assert.equal((await anonymous(t).get('/readyz')).status, 200)
  assert.ok(t.logLines.some((line) => line.includes('"storage":"writable"')), 'the recovery is logged')
})
