import { stdSerializers, type LoggerOptions } from 'pino'
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

// Query parameters that carry one-time secrets: "This wasn't me" tokens, the Microsoft callback's code and state.
const SECRET_PARAMS = ['token', 'code', 'state', 'session_state', 'id_token', 'pass']
// Path segments that are secrets themselves: the invitation link's token.
const SECRET_PATHS = /^(\/invite\/)[^/?#]+/

/** The request URL as it may be logged: secret query values and invitation tokens replaced by [redacted]. */
export function redactUrl (url: string): string {
  const query = url.indexOf('?')
  const pathPart = (query === -1 ? url : url.slice(0, query)).replace(SECRET_PATHS, '$1[redacted]')
  if (query === -1) return pathPart
  const params = url.slice(query + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=')
    let name = eq === -1 ? pair : pair.slice(0, eq)
    try { name = decodeURIComponent(name.replace(/\+/g, ' ')) } catch {}
    return eq !== -1 && SECRET_PARAMS.includes(name.toLowerCase()) ? `${pair.slice(0, eq)}=[redacted]` : pair
  })
  return `${pathPart}?${params.join('&')}`
}

interface LoggedRequest {
  method: string
  url: string
  ip?: string
  host?: string
  socket?: { remotePort?: number }
}

export function loggerOptions (config: Pick<Config, 'logLevel'>): LoggerOptions {
  return {
    level: config.logLevel,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: {
      err: serializeError,
      // Fastify's own request fields, with the URL cleaned of secrets.
      req: (request: LoggedRequest) => ({
        method: request.method,
        url: typeof request.url === 'string' ? redactUrl(request.url) : request.url,
        host: request.host,
        remoteAddress: request.ip,
        remotePort: request.socket?.remotePort
      })
    }
  }
}

/**
 * An error as logged. A failed PostgreSQL statement comes wrapped by drizzle with the statement's parameters in its
 * message and fields: password hashes, sealed secrets, codes. Only the statement and the database's own words are
 * kept.
 */
export function serializeError (err: Error): object {
  if (!isFailedQuery(err)) return stdSerializers.err(err)
  const cause = err.cause instanceof Error ? err.cause : undefined
  const message = `Failed query: ${err.query}${cause === undefined ? '' : ` (${cause.message})`}`
  return { type: 'DrizzleQueryError', message, stack: message }
}

/** drizzle's DrizzleQueryError, recognised by its shape (only db/ imports the driver's and ORM's modules). */
function isFailedQuery (err: Error): err is Error & { query: string, params: unknown[] } {
  return typeof (err as { query?: unknown }).query === 'string' && Array.isArray((err as { params?: unknown }).params) && err.message.startsWith('Failed query:')
}
