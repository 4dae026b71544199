import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import pg from 'pg'
import pino from 'pino'
import { loggerOptions } from '../../server/logging.ts'
import { anonymous, createTestUser, signIn, startTestApp, testConfig, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp
before(async () => { t = await startTestApp() })
after(async () => { await t.close() })

/**
 * Takes the database away from the running app: its SQLite handle closed, or the PostgreSQL server refusing
 * connections to it and ending the open ones (done from the server's maintenance database, as an operator would).
 */
async function cutOffDatabase (app: TestApp): Promise<void> {
  const url = app.config.databaseUrl
  if (url === undefined) {
    app.services.database.close()
    return
  }
  const maintenance = new URL(url)
  const name = decodeURIComponent(maintenance.pathname.slice(1))
  maintenance.pathname = '/postgres'
  const client = new pg.Client({ connectionString: maintenance.toString() })
  await client.connect()
  try {
    await client.query(`ALTER DATABASE ${client.escapeIdentifier(name)} ALLOW_CONNECTIONS false`)
    await client.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name])
  } finally {
    await client.end()
  }
}

test('/healthz answers while the process is up', async () => {
  const res = await anonymous(t).get('/healthz')
  assert.equal(res.status, 200)
  assert.deepEqual(res.body, { status: 'ok' })
})

test('/readyz is 200 on a migrated database and 503 when a migration is missing', async () => {
  const ready = await anonymous(t).get('/readyz')
  assert.equal(ready.status, 200)
  assert.equal(ready.body.status, 'ready')
  assert.equal(ready.body.migrations.applied, ready.body.migrations.expected)
  // An embedded file has no server settings to warn of (PostgreSQL's are test/postgres/instances.test.ts's).
  if (sqlOn(t.services).dialect === 'sqlite') assert.equal(ready.body.warnings, undefined)

  const other = await startTestApp()
  try {
    const db = sqlOn(other.services)
    const migrations = db.dialect === 'sqlite' ? '__drizzle_migrations' : 'drizzle.__drizzle_migrations'
    await db.run(`DELETE FROM ${migrations} WHERE created_at = (SELECT max(created_at) FROM ${migrations})`)
    const notReady = await anonymous(other).get('/readyz')
    assert.equal(notReady.status, 503)
    assert.equal(notReady.body.reason, 'database migrations are not current')
    await cutOffDatabase(other)
    const down = await anonymous(other).get('/readyz')
    assert.equal(down.status, 503)
    assert.equal(down.body.reason, 'database unreachable')
  } finally {
    await other.close()
  }
})

test('/metrics counts requests by route template and status in Prometheus text', async () => {
  await anonymous(t).get('/login')
  await anonymous(t).get('/no-such-page')
  const res = await anonymous(t).get('/metrics')
  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'], /text\/plain/)
  assert.match(res.text, /http_requests_total\{method="GET",route="\/login",status="200"\} [1-9]/)
  assert.match(res.text, /http_requests_total\{method="GET",route="unmatched",status="404"\} [1-9]/)
  assert.match(res.text, /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/login",status="200"\}/)
  assert.match(res.text, /http_request_duration_seconds_count\{method="GET",route="\/login",status="200"\} [1-9]/)
  assert.match(res.text, /^process_cpu_user_seconds_total \d/m, 'and the process metrics')
  assert.doesNotMatch(res.text, /no-such-page/)
})

test('in production without METRICS_TOKEN, /metrics is not there (404), so nothing about the portal is public', async () => {
  const production = await startTestApp({ NODE_ENV: 'production', PUBLIC_URL: 'https://mfa.test.example' })
  try {
    const res = await anonymous(production).get('/metrics')
    assert.equal(res.status, 404)
    assert.doesNotMatch(res.text, /http_requests_total/)
  } finally {
    await production.close()
  }
  const scraped = await startTestApp({ NODE_ENV: 'production', PUBLIC_URL: 'https://mfa.test.example', METRICS_TOKEN: 'scrape-me-please' })
  try {
    assert.equal((await anonymous(scraped).get('/metrics')).status, 401)
    assert.equal((await anonymous(scraped).get('/metrics').set('authorization', 'Bearer scrape-me-please')).status, 200)
  } finally {
    await scraped.close()
  }
})

test('with METRICS_TOKEN set, /metrics needs it as a bearer token', async () => {
  const guarded = await startTestApp({ METRICS_TOKEN: 'scrape-me-please' })
  try {
    assert.equal((await anonymous(guarded).get('/metrics')).status, 401)
    assert.equal((await anonymous(guarded).get('/metrics').set('authorization', 'Bearer wrong-token-xx')).status, 401)
    assert.equal((await anonymous(guarded).get('/metrics').set('authorization', 'Bearer scrape-me-please')).status, 200)
  } finally {
    await guarded.close()
  }
})

test('the 404 page is friendly HTML for browsers and JSON for scripts', async () => {
  const page = await anonymous(t).get('/does/not/exist')
  assert.equal(page.status, 404)
  assert.match(page.text, /Page not found/)
  const json = await anonymous(t).get('/does/not/exist').set('accept', 'application/json')
  assert.deepEqual(json.body.error.code, 'not_found')
})

test('a server error shows a reference, never the error message or a stack trace', async () => {
  const other = await startTestApp()
  try {
    const user = await createTestUser(other.services)
    const agent = await signIn(other, user.email)
    // Make the database unusable under the running app: the home page's user lookup now throws.
    await cutOffDatabase(other)
    const res = await agent.get('/')
    assert.equal(res.status, 500)
    assert.match(res.text, /Something went wrong on our side/)
    assert.match(res.text, /Reference: <code>req-/)
    assert.doesNotMatch(res.text, /database connection is not open|at .*\.ts:\d+/)
  } finally {
    await other.close()
  }
})

test('every page carries a strict Content-Security-Policy and anti-framing headers', async () => {
  const res = await anonymous(t).get('/login')
  const csp = res.headers['content-security-policy']
  assert.match(csp, /default-src 'self'/)
  assert.match(csp, /script-src 'self'(;|$)/)
  assert.match(csp, /frame-ancestors 'none'/)
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/)
  assert.equal(res.headers['x-frame-options'], 'DENY')
  assert.equal(res.headers['x-content-type-options'], 'nosniff')
  // No inline script or style: only scripts from files, and data blocks (type="application/json") that never run.
  assert.doesNotMatch(res.text, /<script(?![^>]*\s(?:src=|type="application\/json"))[^>]*>|\sstyle="/)
})

test('oversized and malformed bodies get a clear 4xx and change nothing', async () => {
  const agent = anonymous(t)
  const big = await agent.post('/login').type('form').send({ email: 'a@b.example', password: 'x'.repeat(70_000) })
  assert.equal(big.status, 413)
  const wrongType = await agent.post('/login').set('content-type', 'application/xml').send('<x/>')
  assert.equal(wrongType.status, 415)
  assert.equal((await t.services.audit.list({ action: 'signin.failure' })).filter((r) => r.actorLabel === 'a@b.example').length, 0)
})

test('logs never contain passwords, cookies, authorization headers or secrets', () => {
  const lines: string[] = []
  const sink = new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } })
  const config = testConfig({ LOG_LEVEL: 'info' })
  const log = pino(loggerOptions(config), sink)
  log.info({
    req: { headers: { authorization: 'Bearer very-secret-token', cookie: 'mfa_session=abc' } },
    user: { password: 'hunter2-hunter2', passwordHash: 'scrypt$...', email: 'a@b.example' },
    config: { sessionSecret: config.sessionSecret, encryptionKey: config.encryptionKey.toString('base64') },
    body: { password: 'in-a-body' }
  }, 'something happened')
  const text = lines.join('')
  for (const secret of ['very-secret-token', 'mfa_session=abc', 'hunter2-hunter2', 'scrypt$', config.sessionSecret, config.encryptionKey.toString('base64'), 'in-a-body']) {
    assert.ok(!text.includes(secret), `log contains ${secret}`)
  }
  assert.match(text, /a@b\.example/)
  assert.match(text, /\[redacted\]/)
})
