import { ProviderError } from '../../domain/provider.ts'
import { backoffMs, mapLimit, sleep } from './concurrency.ts'
import { graphFailure, retryAfterMs } from './errors.ts'
import type { GraphApi, GraphVersion } from './graph-client.ts'

/** Graph's limit per $batch request (contracts 1.12). */
export const MAX_BATCH = 20

/** One sub-request: `url` is relative and carries no version ("/users/{id}/…"; contracts 1.12, pitfall 5). */
export interface BatchRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  url: string
  body?: unknown
}

export type BatchOutcome =
  | { ok: true, status: number, body: unknown }
  | { ok: false, status: number | null, body: unknown, error: ProviderError }

export interface BatchOptions {
  version?: GraphVersion
  /** $batch requests in flight at once. */
  concurrency?: number
  /** Tries per item, counting the first; throttled and failed-by-server items are re-batched until then. */
  maxAttempts?: number
}

interface BatchItemResponse {
  id: string
  status: number
  headers?: Record<string, string>
  body?: unknown
}

// Item statuses worth re-sending: throttling and server faults (contracts 1.12, 1.13), and 424 should a dependency fail.
const RETRY_ITEM = new Set([424, 429, 500, 502, 503, 504])

function header (headers: Record<string, string> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name)
  return key === undefined ? undefined : headers[key]
}

/**
 * Sends `requests` as hand-built JSON batches of at most 20, `concurrency` batches at a time, and answers one
 * outcome per request in the same order. The Graph client's RetryHandler only sees the outer status (contracts
 * 1.12), so items answered 429/5xx are collected and re-batched here after the longest Retry-After among them.
 */
export async function runBatch (graph: GraphApi, requests: readonly BatchRequest[], options: BatchOptions = {}): Promise<BatchOutcome[]> {
  const outcomes = new Array<BatchOutcome>(requests.length)
  const chunks: number[][] = []
  for (let i = 0; i < requests.length; i += MAX_BATCH) chunks.push(Array.from({ length: Math.min(MAX_BATCH, requests.length - i) }, (_, k) => i + k))
  await mapLimit(chunks, options.concurrency ?? 4, async (chunk) => {
    await runChunk(graph, requests, chunk, outcomes, options)
  })
  return outcomes
}

async function runChunk (graph: GraphApi, requests: readonly BatchRequest[], chunk: number[], outcomes: BatchOutcome[], options: BatchOptions): Promise<void> {
  const maxAttempts = options.maxAttempts ?? 6
  let pending = chunk
  for (let attempt = 1; pending.length > 0; attempt++) {
    const last = attempt >= maxAttempts
    const retry: number[] = []
    let waitMs = 0
    let answer: { responses?: BatchItemResponse[] }
    try {
      answer = await graph.post<{ responses?: BatchItemResponse[] }>('/$batch', {
        requests: pending.map((index, k) => {
          const r = requests[index]
          return {
            id: String(k + 1),
            method: r.method,
            url: r.url,
            ...(r.body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: r.body })
          }
        })
      }, options.version ?? 'v1.0')
    } catch (err) {
      const error = err instanceof ProviderError ? err : new ProviderError(String(err), false)
      if (!error.retryable || last) {
        for (const index of pending) outcomes[index] = { ok: false, status: null, body: null, error }
        return
      }
      await sleep(error.retryAfterMs ?? backoffMs(attempt))
      continue
    }
    const byId = new Map((answer.responses ?? []).map((r) => [String(r.id).toLowerCase(), r]))
    pending.forEach((index, k) => {
      const item = byId.get(String(k + 1))
      const what = `${requests[index].method} ${requests[index].url.split('?')[0]} (in $batch)`
      if (item === undefined) {
        // Not answered at all: nothing says it ran, so it is sent again.
        if (last) outcomes[index] = { ok: false, status: null, body: null, error: new ProviderError(`${what}: no answer in the batch`, true, null, 'server_error') }
        else retry.push(index)
        return
      }
      if (item.status >= 200 && item.status < 300) {
        outcomes[index] = { ok: true, status: item.status, body: item.body ?? null }
        return
      }
      const retryAfter = header(item.headers, 'retry-after')
      if (RETRY_ITEM.has(item.status) && !last) {
        retry.push(index)
        waitMs = Math.max(waitMs, retryAfterMs(retryAfter) ?? backoffMs(attempt))
        return
      }
      outcomes[index] = { ok: false, status: item.status, body: item.body ?? null, error: graphFailure(what, item.status, item.body, retryAfter) }
    })
    pending = retry
    if (pending.length > 0) await sleep(waitMs)
  }
}
