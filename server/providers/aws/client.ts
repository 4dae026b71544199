import { IAMClient } from '@aws-sdk/client-iam'
import type { AwsConfig } from './config.ts'
import { malformed, toProviderError } from './errors.ts'

/**
 * The SDK client for IAM as the portal uses it.
 *
 * maxAttempts defaults to 2 (the SDK's own default is 3): one quiet SDK retry absorbs a lone throttle, 5xx or reset
 * connection without a job bouncing through the engine, while sustained throttling surfaces quickly to the engine,
 * whose backoff and bounded concurrency are the one place retries are planned (STYLE.md). Three SDK attempts inside
 * each of the engine's attempts multiply calls against an account that is already throttled, and the SDK counts
 * IAM's LimitExceeded (a quota, never cured by waiting) as throttling, so it would retry that too.
 */
export function createIamClient (config: AwsConfig): IAMClient {
  const keys = config.credentials
  return new IAMClient({
    region: config.region,
    endpoint: config.endpoint,
    credentials: keys === undefined
      ? undefined
      : { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey, sessionToken: keys.sessionToken },
    maxAttempts: config.maxAttempts,
    requestHandler: {
      connectionTimeout: Math.min(config.timeoutMs, 5_000),
      requestTimeout: config.timeoutMs,
      // Without this the SDK only logs a breached timeout and keeps waiting on the socket.
      throwOnRequestTimeout: true,
      // IamCalls never has more than `concurrency` calls in flight; kept-alive sockets spare a TLS handshake per call.
      httpAgent: { keepAlive: true, maxSockets: config.concurrency },
      httpsAgent: { keepAlive: true, maxSockets: config.concurrency }
    }
  })
}

/**
 * Every IAM call goes through here: at most `concurrency` in flight from this process (sync and enforcement share
 * the account's rate limit), and whatever the SDK throws comes out as a ProviderError.
 */
export class IamCalls {
  private active = 0
  private readonly waiting: Array<() => void> = []

  constructor (readonly client: IAMClient, private readonly concurrency: number) {}

  async run<T> (operation: string, call: (client: IAMClient) => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) await new Promise<void>((resolve) => this.waiting.push(resolve))
    else this.active++
    try {
      return await call(this.client)
    } catch (err) {
      throw toProviderError(err, operation)
    } finally {
      // Hand the slot straight to the next waiter, so a burst of new callers cannot overtake it.
      const next = this.waiting.shift()
      if (next === undefined) this.active--
      else next()
    }
  }
}

/** Every item of a Marker-paged IAM list (contracts §2.2: follow IsTruncated, never count items). */
export async function collectPages<T> (fetch: (marker: string | undefined) => Promise<{ items: T[] | undefined, IsTruncated?: boolean, Marker?: string }>): Promise<T[]> {
  const all: T[] = []
  let marker: string | undefined
  for (;;) {
    const page = await fetch(marker)
    all.push(...(page.items ?? []))
    if (page.IsTruncated !== true || page.Marker === undefined) return all
    marker = page.Marker
  }
}

/** Maps `items` through `work` with at most `limit` running at once, keeping order; the first failure rejects. */
export async function mapLimit<T, R> (items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  let failed = false
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++
      try {
        results[index] = await work(items[index])
      } catch (err) {
        failed = true
        throw err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

/**
 * A list answer's items. IAM always sends IsTruncated and the list element (empty when there is nothing); a 200
 * with neither is not an IAM answer (an HTML page from a proxy parses to an empty object), so it is not "no items".
 */
export function itemsOf<T> (operation: string, element: string, list: T[] | undefined, isTruncated: boolean | undefined): T[] {
  if (list === undefined && isTruncated === undefined) throw malformed(operation, element)
  return list ?? []
}
