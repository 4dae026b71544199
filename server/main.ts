import 'dotenv/config'
import pino from 'pino'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { buildApp } from './app.ts'
import { explainDatabaseFailure } from './db/connection.ts'
import { simpleWebAuthn } from './domain/passkeys.ts'
import { seedSandbox } from './domain/sandbox.ts'
import { startHousekeeping } from './jobs/housekeeping.ts'
import { startScheduler } from './jobs/scheduler.ts'
import { loggerOptions } from './logging.ts'
import { createServices, type Services } from './wiring.ts'
import { hostname } from 'node:os'

let config: Config
try {
  config = loadConfig()
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`mfa-rollout: configuration error: ${err.message}\n`)
    process.exit(1)
  }
  throw err
}

const log = pino(loggerOptions(config))
if (config.warnings.length > 0) log.warn(config.warnings.join('; '))

/** How often an instance that does not lead asks to (and so how soon one takes over from a leader that died). */
const LEADER_RETRY_MS = 5_000

/** A start that cannot go on: one line naming what is wrong and what to do, exit 1 (no stack trace to read through). */
function refuseToStart (line: string): never {
  process.stderr.write(`mfa-rollout: ${line}\n`)
  process.exit(1)
}

let services: Services
try {
  services = await createServices(config)
  if (config.sandbox) {
    const seeded = await seedSandbox(services.users, services.userService)
    if (seeded > 0) log.info({ accounts: seeded }, 'sandbox: demo accounts created (see README for their passwords)')
  }
} catch (err) {
  const line = explainDatabaseFailure(err, config.databaseFile)
  if (line === undefined) throw err
  refuseToStart(line)
}
// Damage is reported (the log, and /readyz until it is repaired), not a reason to stop: what can be read stays readable.
services.storage.integrity(log)
// So is a database server set up to get slower (PostgreSQL without autovacuum): the log now, /readyz while it lasts.
try {
  for (const advice of await services.storage.advice()) log.warn({ database: services.stores.dialect }, advice)
} catch (err) {
  log.warn({ err: (err as Error).message }, 'the database server\'s settings could not be read')
}

// One instance runs the scheduler and housekeeping; on PostgreSQL another takes over within LEADER_RETRY_MS when it dies.
const leadership = services.stores.leadership(`${hostname()}:${process.pid}`, LEADER_RETRY_MS, log)
const app = await buildApp(services, { leadership })
const housekeeping = startHousekeeping(services, log, leadership)
const scheduler = startScheduler(services, config.sweepIntervalMs, log, leadership)

let closing = false
async function shutdown (signal: string): Promise<void> {
  if (closing) return
  closing = true
  log.info({ signal }, 'shutting down: finishing in-flight requests')
  housekeeping.stop()
  try {
    await app.close()
    // A sweep in progress finishes its current jobs; unfinished ones stay leased and are retried later.
    await scheduler.stop()
    await leadership.stop()
  } finally {
    await services.close()
    log.info('stopped')
  }
}
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
process.on('SIGINT', () => { void shutdown('SIGINT') })

try {
  await app.listen({ port: config.port, host: config.host })
} catch (err) {
  const code = (err as { code?: unknown }).code
  if (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL') throw err
  await services.close()
  refuseToStart(`cannot listen on ${config.host}:${config.port} (${code === 'EADDRINUSE' ? 'the port is in use' : code === 'EACCES' ? 'permission denied' : 'no such address here'}): set PORT or HOST`)
}
log.info(`mfa-rollout is ready at ${config.publicUrl.origin}${config.sandbox ? ' (sandbox: no cloud provider configured)' : ''}`)
// Passkey ceremonies load SimpleWebAuthn on first use (domain/passkeys.ts); a running portal loads it now, in the
// background, so the first person to use a passkey does not wait for it.
simpleWebAuthn().catch((err: Error) => { log.error({ err: err.message }, 'SimpleWebAuthn could not be loaded: passkeys will not work') })
