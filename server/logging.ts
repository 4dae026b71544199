import type { LoggerOptions } from 'pino'
import type { Config } from './config.ts'

/** Never log credentials: these paths are replaced by "[redacted]" wherever they appear. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.passwordHash',
  '*.secret',
  '*.clientSecret',
  '*.sessionSecret',
  '*.encryptionKey',
  '*.token',
  '*.code',
  '*._csrf',
  'body',
  'config.sessionSecret',
  'config.encryptionKey'
]

export function loggerOptions (config: Config): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }
}
