/**
 * How the engine treats a provider call that failed (DESIGN.md "Enforcement engine"): transient failures heal by
 * themselves on a slower schedule once the fast retries run out; a user deleted at the directory ends its jobs; only
 * what a person must fix stays in `attention`, with what to do in words. Pure rules, no storage.
 */
import { ProviderError } from './provider.ts'

const HOUR = 3_600_000

/** After the fast attempts, a transient failure waits 1 h, then 6 h, then 24 h, and every 24 h after that. */
export const LONG_RETRY_SCHEDULE_MS: readonly number[] = [HOUR, 6 * HOUR, 24 * HOUR]

/** The wait before long-schedule attempt `step` (0 for the first after the fast ones); the last step repeats. */
export function longRetryDelay (schedule: readonly number[], step: number): number {
  return schedule[Math.min(Math.max(0, step), schedule.length - 1)]
}

/** Throttling, 5xx, timeouts, dropped connections: worth trying again. Anything not a ProviderError is treated so too. */
export function isTransient (err: unknown): boolean {
  return !(err instanceof ProviderError) || err.retryable
}

/**
 * Codes with which the adapters report that the user does not exist at the directory: IAM's NoSuchEntity
 * (`not_found`) and Graph's 404 envelope code (contracts 1.1). The engine confirms with a second read before it
 * believes it, since the same codes can name a missing policy or group.
 */
const NOT_FOUND_CODES: ReadonlySet<string> = new Set(['not_found', 'Request_ResourceNotFound', 'ResourceNotFound', 'user_not_found'])

export function saysNotFound (err: unknown): boolean {
  return err instanceof ProviderError && !err.retryable && NOT_FOUND_CODES.has(err.code)
}

/** The code a stored error starts with ("access_denied: IAM AttachUserPolicy was refused …"), or ''. */
export function errorCode (stored: string): string {
  return /^([A-Za-z0-9_.-]+): /.exec(stored)?.[1] ?? ''
}

const ACCESS_DENIED: ReadonlySet<string> = new Set(['access_denied', 'Authorization_RequestDenied', 'accessDenied', 'Forbidden', 'http_403'])
const CREDENTIALS: ReadonlySet<string> = new Set(['bad_credentials', 'entra_credentials_rejected', 'invalid_client', 'unauthorized_client'])

/** Code of the failure recorded when the portal itself stopped during every attempt (never the provider's). */
export const PROCESS_STOPPED = 'process_stopped'

/** Which advice fits a failure that will not heal by itself, from its stored error (the catalogue's `reasons.advice`). */
export type FailureAdvice = 'access_denied' | 'credentials' | 'not_found' | 'no_external_id' | 'provider_not_configured' | 'process_stopped' | 'other'

export function failureAdviceCode (stored: string): FailureAdvice {
  const code = errorCode(stored)
  if (ACCESS_DENIED.has(code)) return 'access_denied'
  if (CREDENTIALS.has(code)) return 'credentials'
  if (NOT_FOUND_CODES.has(code)) return 'not_found'
  if (code === 'no_external_id') return 'no_external_id'
  if (code === 'provider_not_configured') return 'provider_not_configured'
  if (code === PROCESS_STOPPED) return 'process_stopped'
  return 'other'
}

const ADVICE: Readonly<Record<FailureAdvice, string>> = {
  access_denied: 'The portal is not allowed to do this at the provider: grant the permission the message names to the portal\'s AWS IAM user or Entra app, then press Retry on the dashboard.',
  credentials: 'The provider refused the portal\'s credentials: correct them in the configuration, restart the portal, then press Retry on the dashboard.',
  not_found: 'The provider did not find something the portal needs (the enforcement policy or group): check that it exists, then press Retry on the dashboard.',
  no_external_id: 'The portal does not know this user\'s directory id: run a directory sync, then press Retry on the dashboard.',
  provider_not_configured: 'This user\'s directory is no longer connected to the portal: connect it again, or exempt the user.',
  process_stopped: 'The portal stopped during every attempt: look for the crash in the server log, then press Retry on the dashboard.',
  other: 'Fix the cause at the provider, then press Retry on the dashboard; or exempt the user.'
}

/** What an admin should do about a failure that will not heal by itself, in English (logs, the API, the stored record). */
export function failureAdvice (stored: string): string {
  return ADVICE[failureAdviceCode(stored)]
}

/** "14:05 UTC on 2026-12-06": when a waiting job is tried again, as pages and reasons say it. */
export function retryTime (at: Date): string {
  const iso = at.toISOString()
  return `${iso.slice(11, 16)} UTC on ${iso.slice(0, 10)}`
}
