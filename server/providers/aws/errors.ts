import { ProviderError } from '../../domain/provider.ts'

/** What the SDK's errors carry that we read (service exceptions, deserialisation errors, network errors). */
interface SdkErrorShape {
  name?: string
  Code?: string
  message?: string
  code?: string
  $fault?: 'client' | 'server'
  $metadata?: { httpStatusCode?: number }
  $response?: { headers?: Record<string, string | undefined> }
}

/** The IAM error code of an SDK error (`NoSuchEntity`, `Throttling`, …), or null when it is not a service error. */
export function iamCode (err: unknown): string | null {
  if (typeof err !== 'object' || err === null) return null
  const shape = err as SdkErrorShape
  if (typeof shape.Code === 'string') return shape.Code
  // Modelled exceptions are named `<Code>Exception`; the report ones differ from their wire codes (contracts §2.1).
  if (shape.$fault !== undefined && typeof shape.name === 'string') return shape.name.replace(/Exception$/, '')
  return null
}

/** Whether `err` (an SDK error, or the ProviderError made from it) is this ProviderError code. */
export function hasCode (err: unknown, code: string): boolean {
  return err instanceof ProviderError && err.code === code
}

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded'])
// Transient by nature: someone else is changing the same entity, or IAM is still settling a recent change.
const TRANSIENT: Record<string, string> = {
  ConcurrentModification: 'concurrent_modification',
  EntityTemporarilyUnmodifiable: 'temporarily_unmodifiable',
  ReportInProgress: 'report_in_progress',
  ServiceFailure: 'server_error',
  ServiceUnavailable: 'server_error',
  InternalFailure: 'server_error'
}
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET'])

/** Stable ProviderError codes for IAM's non-retryable answers, so the engine and admin pages can tell them apart. */
const PERMANENT: Record<string, string> = {
  NoSuchEntity: 'not_found',
  EntityAlreadyExists: 'already_exists',
  // IAM's LimitExceeded is a quota (policies per user, MFA devices), not a rate: retrying cannot help.
  LimitExceeded: 'limit_exceeded',
  InvalidAuthenticationCode: 'invalid_code',
  InvalidInput: 'invalid_input',
  ValidationError: 'invalid_input',
  MalformedPolicyDocument: 'invalid_policy',
  PolicyNotAttachable: 'invalid_policy',
  DeleteConflict: 'conflict',
  AccessDenied: 'access_denied',
  AccessDeniedException: 'access_denied',
  UnauthorizedOperation: 'access_denied',
  InvalidClientTokenId: 'bad_credentials',
  SignatureDoesNotMatch: 'bad_credentials',
  ExpiredToken: 'bad_credentials',
  MissingAuthenticationToken: 'bad_credentials',
  ReportExpired: 'report_expired',
  ReportNotPresent: 'report_missing'
}

/**
 * Turns anything an IAM call threw into a ProviderError the engine can act on: throttling, 5xx, timeouts and
 * dropped connections are retryable; IAM's refusals, unknown error codes and answers we cannot parse are not. The
 * message names the operation and IAM's own words, one line, never a stack or a request parameter.
 */
export function toProviderError (err: unknown, operation: string): ProviderError {
  if (err instanceof ProviderError) return err
  const shape = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape
  const status = shape.$metadata?.httpStatusCode
  const code = iamCode(err)
  const said = oneLine(shape.message ?? String(err))

  if (code !== null && (THROTTLING.has(code) || status === 429)) {
    return new ProviderError(`IAM ${operation} was throttled (${code}): ${said}`, true, retryAfter(shape), 'throttled')
  }
  if (status !== undefined && status >= 500) {
    return new ProviderError(`IAM ${operation} failed on the AWS side (HTTP ${status}${code === null ? '' : ` ${code}`})`, true, retryAfter(shape), 'server_error')
  }
  if (code !== null && Object.hasOwn(TRANSIENT, code)) {
    return new ProviderError(`IAM ${operation} failed for now (${code}): ${said}`, true, retryAfter(shape), TRANSIENT[code])
  }
  if (shape.name === 'TimeoutError' || shape.name === 'AbortError' || shape.code === 'ETIMEDOUT') {
    return new ProviderError(`IAM ${operation} timed out`, true, null, 'timeout')
  }
  if (shape.code !== undefined && NETWORK.has(shape.code)) {
    return new ProviderError(`IAM ${operation} could not reach IAM (${shape.code})`, true, null, 'network_error')
  }
  if (code !== null && Object.hasOwn(PERMANENT, code)) {
    return new ProviderError(`IAM ${operation} was refused (${code}): ${said}`, false, null, PERMANENT[code])
  }
  if (code !== null) {
    return new ProviderError(`IAM ${operation} answered an error this portal does not know (${code}${status === undefined ? '' : `, HTTP ${status}`}): ${said}`, false, null, 'unknown_error')
  }
  // The SDK's deserialiser says "XML parse error … Deserialization error: inspect the hidden field …": keep the first part.
  if (/XML parse error|Deserialization error|Unexpected token|unexpected content/i.test(said)) {
    return new ProviderError(`IAM ${operation} answered something that is not a valid IAM response (${said.split(/\s+Deserialization error/)[0].replace(/^@aws-sdk\s+/, '')})`, false, null, 'malformed_response')
  }
  if (shape.name === 'CredentialsProviderError') {
    return new ProviderError(`IAM ${operation}: no AWS credentials found (set AWS_IAM_ACCESS_KEY_ID/AWS_IAM_SECRET_ACCESS_KEY or configure the default chain)`, false, null, 'bad_credentials')
  }
  return new ProviderError(`IAM ${operation} failed: ${said}`, false, null, 'unknown_error')
}

/** An answer that parsed but lacks what the operation always returns (e.g. an HTML page with status 200). */
export function malformed (operation: string, missing: string): ProviderError {
  return new ProviderError(`IAM ${operation} answered something that is not a valid IAM response (no ${missing})`, false, null, 'malformed_response')
}

function retryAfter (shape: SdkErrorShape): number | null {
  const header = shape.$response?.headers?.['retry-after']
  if (header === undefined) return null
  const seconds = Number(header)
  return Number.isFinite(seconds) && seconds >= 0 ? Math.round(seconds * 1000) : null
}

function oneLine (text: string): string {
  const line = text.replace(/\s+/g, ' ').trim()
  return line.length > 300 ? `${line.slice(0, 297)}…` : line
}
