import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { rmSync } from 'node:fs'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { runHousekeeping } from '../../server/jobs/housekeeping.ts'
import { createServices } from '../../server/wiring.ts'
import { FakeClock, portalDatabase, tempDir, testConfig } from '../helpers/app.ts'
import { runCli } from '../helpers/cli.ts'

/** A collector (a SIEM's HTTP input) on this machine that keeps what it is sent. */
async function startCollector (): Promise<{ url: string, received: Array<Record<string, unknown>>, close(): Promise<void> }> {
  const received: Array<Record<string, unknown>> = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => { body += chunk.toString() })
    req.on('end', () => { received.push({ ...JSON.parse(body) as Record<string, unknown>, contentType: req.headers['content-type'] }); res.end() })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/anchors`, received, close: async () => await new Promise((resolve) => server.close(() => resolve(undefined))) }
}

async function until (check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
}

test('the chain\'s head leaves the database every N events and hourly: one log line each and a POST to AUDIT_ANCHOR_URL, which audit verify then accepts', async (t) => {
  const collector = await startCollector()
  const dataDir = tempDir()
  const database = await portalDatabase()
  t.after(async () => { await collector.close(); await database.release(); rmSync(dataDir, { recursive: true, force: true }) })
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }))
  const clock = new FakeClock()
  const env = { AUDIT_ANCHOR_URL: collector.url, AUDIT_ANCHOR_EVERY: '3' }
  const services = await createServices(testConfig({ ...database.env, ...env }, dataDir), { clock, log })

  for (let i = 1; i <= 7; i++) await services.audit.append({ action: 'user.created', actorLabel: 'cli', details: { n: i } })
  await until(() => collector.received.length === 2)
  const hashOf = async (seq: number) => await services.audit.find(seq) as { hash: string }
  assert.deepEqual(collector.received.map((a) => [a.type, a.seq, a.hash, a.contentType]), [
    ['mfa-rollout.audit-anchor', 3, (await hashOf(3)).hash, 'application/json'],
    ['mfa-rollout.audit-anchor', 6, (await hashOf(6)).hash, 'application/json']
  ])
  const anchorLines = lines.filter((line) => line.includes('"auditAnchor"'))
  assert.equal(anchorLines.length, 2)
  assert.match(anchorLines[0], new RegExp(`"msg":"audit anchor 3:${(await hashOf(3)).hash}"`))

  // The hourly anchor: the head (event 7) moved since the last anchor.
  clock.advance(61 * 60_000)
  await runHousekeeping(services, pino({ level: 'silent' }))
  await until(() => collector.received.length === 3)
  assert.equal(collector.received[2].seq, 7)
  await runHousekeeping(services, pino({ level: 'silent' }))
  assert.equal(lines.filter((line) => line.includes('"auditAnchor"')).length, 3, 'nothing new, no new anchor')
  await services.close()

  const verified = await runCli(['audit', 'verify', '--anchor', `7:${String(collector.received[2].hash)}`], { dataDir, env: database.env })
  assert.equal(verified.code, 0, verified.stdout)
})

test('a collector that is down costs an anchor nothing but a warning: the log line stands and events keep being written', async (t) => {
  const dataDir = tempDir()
  const database = await portalDatabase()
  t.after(async () => { await database.release(); rmSync(dataDir, { recursive: true, force: true }) })
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }))
  const services = await createServices(testConfig({ ...database.env, AUDIT_ANCHOR_URL: 'http://127.0.0.1:9/down', AUDIT_ANCHOR_EVERY: '1' }, dataDir), { log })
  await services.audit.append({ action: 'user.created', actorLabel: 'cli' })
  await until(() => lines.some((line) => line.includes('could not be sent')))
  assert.ok(lines.some((line) => line.includes('"auditAnchor"')))
  assert.match(lines.find((line) => line.includes('could not be sent'))!, /"level":40/)
  await services.audit.append({ action: 'user.created', actorLabel: 'cli' })
  assert.equal(await services.audit.size(), 2)
  await services.close()
})
