import { ProviderError } from '../../domain/provider.ts'
import { backoffMs, mapLimit, sleep } from './concurrency.ts'
import { graphFailure, retryAfterMs } from './errors.ts'
import { mayHaveHappened, type GraphApi, type GraphVersion } from './graph-client.ts'

/** Graph's limit per $batch request (contracts 1.12). */
export const MAX_BATCH = 20

/** One sub-request: `url` is relative and carries no version ("/users/{id}/…"; contracts 1.12, pitfall 5). */
export interface BatchRequest {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE'
  url: string
  body?: unknown
  /**
   * Safe to send again after a server fault. Default: every method but POST. A POST that creates something (a phone)
   * is sent once; one that is a read or answers "already exists" when repeated may say `idempotent: true`.
   */
  idempotent?: boolean
}

export type BatchOutcome =
  | { ok: true, status: number, body: unknown }
  /** `maybeApplied`: a write that may have been carried out although no success came back; read to find out. */
  | { ok: false, status: number | null, body: unknown, error: ProviderError, maybeApplied: boolean }

function idempotent (request: BatchRequest): boolean {
  return request.idempotent ?? request.method !== 'POST'
}

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
// 429 and 424 say the item did not run; after a server fault only idempotent items are sent again.
const RETRY_ITEM = new Set([424, 429, 500, 502, 503, 504])

function header (headers: Record<string, string> | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name)
  return key === undefined ? undefined : headers[key]
}

/**
 * Sends `requests` as hand-built JSON batches of at most 20, `concurrency` batches at a time, and answers one
 * outcome per request in the same order. The Graph client's RetryHandler only sees the outer status (contracts
 * 1.12), so items answered 429/5xx are collected and re-batched here after the longest Retry-After among them;
 * a non-idempotent item is re-sent only after a 429 (Graph refused it before acting), never after a 5xx.
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
    const safe = pending.every((index) => idempotent(requests[index]))
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
      }, options.version ?? 'v1.0', { idempotent: safe })
    } catch (err) {
      const error = err instanceof ProviderError ? err : new ProviderError(String(err), false)
      const uncertain = mayHaveHappened(error)
      if (!error.retryable || last) {
        for (const index of pending) outcomes[index] = { ok: false, status: null, body: null, error, maybeApplied: uncertain && !idempotent(requests[index]) }
        return
      }
      // The batch may have run before its answer was lost: its creates are not sent again.
      if (uncertain) {
        for (const index of pending) if (!idempotent(requests[index])) outcomes[index] = { ok: false, status: null, body: null, error, maybeApplied: true }
        pending = pending.filter((index) => idempotent(requests[index]))
      }
      await sleep(error.retryAfterMs ?? backoffMs(attempt))
      continue
    }
    const byId = new Map((answer.responses ?? []).map((r) => [String(r.id).toLowerCase(), r]))
    pending.forEach((index, k) => {
      const item = byId.get(String(k + 1))
      const what = `${requests[index].method} ${requests[index].url.split('?')[0]} (in $batch)`
      const safeItem = idempotent(requests[index])
      if (item === undefined) {
        // Not answered at all: a read or an idempotent write is sent again; a create may have run, so it is not.
        const error = new ProviderError(`${what}: no answer in the batch`, true, null, 'server_error')
        if (last || !safeItem) outcomes[index] = { ok: false, status: null, body: null, error, maybeApplied: !safeItem }
        else retry.push(index)
        return
      }
      if (item.status >= 200 && item.status < 300) {
        outcomes[index] = { ok: true, status: item.status, body: item.body ?? null }
        return
      }
      const retryAfter = header(item.headers, 'retry-after')
      if (RETRY_ITEM.has(item.status) && !last && (safeItem || item.status === 429 || item.status === 424)) {
        retry.push(index)
        waitMs = Math.max(waitMs, retryAfterMs(retryAfter) ?? backoffMs(attempt))
        return
      }
      const error = graphFailure(what, item.status, item.body, retryAfter)
      outcomes[index] = { ok: false, status: item.status, body: item.body ?? null, error, maybeApplied: !safeItem && mayHaveHappened(error) }
    })
    pending = retry
    if (pending.length > 0) await sleep(waitMs)
  }
}
