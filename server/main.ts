import 'dotenv/config'
import pino from 'pino'
import { ConfigError, loadConfig, type Config } from './config.ts'
import { buildApp } from './app.ts'
import { seedSandbox } from './domain/sandbox.ts'
import { startHousekeeping } from './jobs/housekeeping.ts'
import { startScheduler } from './jobs/scheduler.ts'
import { loggerOptions } from './logging.ts'
import { createServices } from './wiring.ts'

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

const services = createServices(config)
if (config.sandbox) {
  const seeded = await seedSandbox(services.users, services.userService)
  if (seeded > 0) log.info({ accounts: seeded }, 'sandbox: demo accounts created (see README for their passwords)')
}

const app = await buildApp(services)
const housekeeping = startHousekeeping(services, log)
const scheduler = startScheduler(services, config.sweepIntervalMs, log)

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
  } finally {
    services.close()
    log.info('stopped')
  }
}
process.on('SIGTERM', () => { void shutdown('SIGTERM') })
process.on('SIGINT', () => { void shutdown('SIGINT') })

await app.listen({ port: config.port, host: config.host })
log.info(`mfa-rollout is ready at ${config.publicUrl.origin}${config.sandbox ? ' (sandbox: no cloud provider configured)' : ''}`)
