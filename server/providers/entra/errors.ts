import { GraphError } from '@microsoft/microsoft-graph-client'
import { AuthError, ServerError } from '@azure/msal-node'
import { ProviderError } from '../../domain/provider.ts'

/** Statuses worth retrying: throttling, and server faults that say nothing about the request itself (contracts 1.13). */
const RETRYABLE_STATUS = new Set([408, 429, 500, 502, 503, 504])

/** Graph's error envelope body (contracts 1.1). */
export interface GraphErrorBody {
  error?: { code?: string, message?: string }
}

/**
 * Milliseconds from a Retry-After value (delta-seconds or an HTTP date), or null when absent or unreadable.
 */
export function retryAfterMs (value: string | null | undefined, now: number = Date.now()): number | null {
  if (value === null || value === undefined || value.trim() === '') return null
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000))
  const at = Date.parse(value)
  return Number.isNaN(at) ? null : Math.max(0, at - now)
}

/** A ProviderError that remembers Graph's HTTP status, for the few places that act on one (403 report, 404). */
export class GraphRequestError extends ProviderError {
  constructor (message: string, retryable: boolean, retryAfterMs: number | null, code: string, readonly status: number) {
    super(message, retryable, retryAfterMs, code)
  }
}

/** Whether `err` is Graph answering `status`. */
export function hasStatus (err: unknown, status: number): err is GraphRequestError {
  return err instanceof GraphRequestError && err.status === status
}

/** A ProviderError for one HTTP answer from Graph, from a plain request or one $batch item. */
export function graphFailure (what: string, status: number, body: unknown, retryAfter: string | null | undefined): GraphRequestError {
  const envelope = (typeof body === 'object' && body !== null ? body : {}) as GraphErrorBody
  const code = envelope.error?.code ?? `http_${status}`
  const detail = envelope.error?.message ?? ''
  const message = `${what} failed: ${status} ${code}${detail === '' ? '' : `: ${detail}`}`
  if (RETRYABLE_STATUS.has(status)) {
    return new GraphRequestError(message, true, retryAfterMs(retryAfter), status === 429 ? 'throttled' : status === 408 || status === 504 ? 'timeout' : 'server_error', status)
  }
  return new GraphRequestError(message, false, null, code, status)
}

/**
 * Turns whatever a Graph or MSAL call threw into a ProviderError, so the engine decides retries in one place.
 * Messages carry the Graph code and message or the MSAL error code, never a token or the client credential.
 */
export function toProviderError (what: string, err: unknown): ProviderError {
  if (err instanceof ProviderError) return err
  if (err instanceof GraphError) {
    // statusCode -1: the client could not read a response at all (connection refused, reset, aborted).
    if (err.statusCode <= 0) {
      const timedOut = err.code === 'TimeoutError' || err.code === 'AbortError'
      return new ProviderError(`${what} ${timedOut ? 'timed out' : `failed: ${err.message}`}`, true, null, timedOut ? 'timeout' : 'network')
    }
    const headers = err.headers as Headers | undefined
    return graphFailure(what, err.statusCode, { error: { code: err.code ?? undefined, message: err.message } }, headers?.get('retry-after'))
  }
  if (err instanceof ServerError) {
    // The token endpoint refused the app (bad secret, unknown tenant, missing consent): fixing it takes an operator.
    const status = (err as ServerError & { status?: number }).status
    const aadsts = /AADSTS\d+/.exec(err.errorMessage)?.[0]
    const detail = `${err.errorCode}${aadsts === undefined ? '' : ` (${aadsts})`}`
    if (status !== undefined && RETRYABLE_STATUS.has(status)) {
      return new ProviderError(`${what}: the Entra token endpoint answered ${status} ${detail}`, true, null, status === 429 ? 'throttled' : 'server_error')
    }
    if (err.errorCode === 'invalid_client' || err.errorCode === 'unauthorized_client') {
      return new ProviderError(`${what}: Entra ID refused the app's credentials: ${detail}`, false, null, 'entra_credentials_rejected')
    }
    return new ProviderError(`${what}: Entra ID refused the request: ${detail}`, false, null, err.errorCode)
  }
  if (err instanceof AuthError) {
    const network = err.errorCode === 'network_error' || /network|timeout/i.test(err.errorMessage)
    return new ProviderError(`${what}: ${err.errorCode}`, network, null, network ? 'network' : err.errorCode)
  }
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new ProviderError(`${what} timed out`, true, null, 'timeout')
  }
  if (err instanceof TypeError && /fetch failed/i.test(err.message)) {
    return new ProviderError(`${what} failed: ${err.message}`, true, null, 'network')
  }
  return new ProviderError(`${what} failed: ${err instanceof Error ? err.message : String(err)}`, false, null, 'provider_error')
}
