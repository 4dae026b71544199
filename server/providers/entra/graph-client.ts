import { Client, RetryHandler, RetryHandlerOptions, type Context, type Middleware } from '@microsoft/microsoft-graph-client'
import { ProviderError } from '../../domain/provider.ts'
import { rewriteOrigin, type TokenSource } from './auth.ts'
import { toProviderError } from './errors.ts'

export type GraphVersion = 'v1.0' | 'beta'

/** A Graph collection page (contracts 1.1). */
export interface GraphPage<T> {
  value: T[]
  '@odata.nextLink'?: string
}

export interface GraphClientOptions {
  /** Per attempt; a slow answer becomes a retryable 'timeout'. */
  requestTimeoutMs?: number
  /** RetryHandler: retries of 429/503/504 (Retry-After honoured) before the error surfaces. */
  maxRetries?: number
  /** RetryHandler's delay in seconds when a throttled answer carries no Retry-After. */
  retryDelaySeconds?: number
}

/**
 * The RetryHandler's decision (contracts 1.1 pitfall 4: 429/503/504): GET, PATCH, PUT and DELETE are sent again, as
 * a second one changes nothing more than the first. A POST creates (a phone, a pass, a token) and a 503 or 504 may
 * come after Graph did it, so it is sent again only when throttled (429: refused before acting); a POST that is
 * idempotent by design carries its own options (GraphApi.post).
 */
function mayResend (_delay: number, _attempt: number, _request: RequestInfo, options: { method?: string } | undefined, response: Response): boolean {
  return (options?.method ?? 'GET').toUpperCase() !== 'POST' || response.status === 429
}

/** Whether a failed write may nonetheless have been carried out: Graph's answer was lost or came from a gateway. */
export function mayHaveHappened (err: unknown): boolean {
  return err instanceof ProviderError && err.retryable && err.code !== 'throttled'
}

/** Sets a header whether the client built the headers as a plain object or a Headers instance. */
function setHeader (context: Context, name: string, value: string): void {
  context.options ??= {}
  const headers = context.options.headers
  if (headers instanceof Headers) headers.set(name, value)
  else context.options.headers = { ...(headers as Record<string, string> | undefined), [name]: value }
}

function urlOf (context: Context): string {
  return typeof context.request === 'string' ? context.request : context.request.url
}

/**
 * Attaches the app token to requests for the Graph origin only, whatever the scheme: the library's own handler
 * silently drops it for http URLs (contracts 1.1 pitfall 1), and a token must never follow a link to another host.
 */
class BearerMiddleware implements Middleware {
  private next: Middleware | undefined
  constructor (private readonly tokens: TokenSource, private readonly graphOrigin: string) {}

  async execute (context: Context): Promise<void> {
    const url = urlOf(context)
    if (url.startsWith(`${this.graphOrigin}/`)) setHeader(context, 'Authorization', `Bearer ${await this.tokens.get()}`)
    await this.next!.execute(context)
  }

  setNext (next: Middleware): void { this.next = next }
}

/**
 * The last hop: rewrites the logical Graph origin to the configured one (an emulator on http://127.0.0.1 in
 * tests; a no-op in production) and sends with a per-attempt timeout (contracts 1.1 pitfall 3).
 */
class SendMiddleware implements Middleware {
  constructor (private readonly origin: { logical: string, actual: string }, private readonly timeoutMs: number) {}

  async execute (context: Context): Promise<void> {
    const url = rewriteOrigin(urlOf(context), this.origin)
    context.response = await fetch(url, { ...context.options, signal: AbortSignal.timeout(this.timeoutMs) } as RequestInit)
  }
}

/**
 * Microsoft Graph through the official client with a chain of: bearer token → RetryHandler → send. Every failure
 * leaves as a ProviderError. Paths are relative to the version ("/users/…"); next links are absolute.
 */
export class GraphApi {
  readonly client: Client
  readonly origin: { logical: string, actual: string }
  private readonly retry: { delay: number, maxRetries: number }

  constructor (private readonly tokens: TokenSource, origin: { logical: string, actual: string }, options: GraphClientOptions = {}) {
    this.origin = origin
    this.retry = { delay: options.retryDelaySeconds ?? 3, maxRetries: options.maxRetries ?? 3 }
    const bearer = new BearerMiddleware(tokens, origin.logical)
    const retry = new RetryHandler(new RetryHandlerOptions(this.retry.delay, this.retry.maxRetries, mayResend))
    bearer.setNext(retry)
    retry.setNext(new SendMiddleware(origin, options.requestTimeoutMs ?? 30_000))
    this.client = Client.initWithMiddleware({ middleware: bearer, baseUrl: origin.logical, defaultVersion: 'v1.0' })
  }

  async get<T> (path: string, version: GraphVersion = 'v1.0'): Promise<T> {
    return await this.call(`GET ${path}`, async () => await this.client.api(path).version(version).get() as T)
  }

  /**
   * A POST. Unless `idempotent` (a read such as checkMemberGroups, a $batch of idempotent requests, a membership add
   * that answers "already exists"), it is sent once: after a 5xx or a timeout the caller must read to find out
   * whether it happened (see mayHaveHappened). Only a 429, which Graph answers before acting, is sent again.
   */
  async post<T> (path: string, body: unknown, version: GraphVersion = 'v1.0', options: { idempotent?: boolean } = {}): Promise<T> {
    const request = this.client.api(path).version(version)
    if (options.idempotent === true) request.middlewareOptions([new RetryHandlerOptions(this.retry.delay, this.retry.maxRetries, () => true)])
    return await this.call(`POST ${path}`, async () => await request.post(body) as T)
  }

  async patch (path: string, body: unknown, version: GraphVersion = 'v1.0'): Promise<void> {
    await this.call(`PATCH ${path}`, async () => await this.client.api(path).version(version).patch(body))
  }

  async delete (path: string, version: GraphVersion = 'v1.0'): Promise<void> {
    await this.call(`DELETE ${path}`, async () => await this.client.api(path).version(version).delete())
  }

  /** One page: `pathOrNextLink` is a first path ("/users?$top=…") or a previous page's `@odata.nextLink`. */
  async page<T> (pathOrNextLink: string, version: GraphVersion = 'v1.0'): Promise<{ items: T[], next: string | null }> {
    if (/^[a-z]+:/i.test(pathOrNextLink) && !this.isGraphLink(pathOrNextLink)) {
      // A cursor comes back from outside (the engine stores it): never let it point the token at another host.
      throw new ProviderError('A paging link does not point at Microsoft Graph', false, null, 'invalid_cursor')
    }
    const what = `GET ${pathOrNextLink.startsWith(this.origin.logical) ? new URL(pathOrNextLink).pathname : pathOrNextLink.split('?')[0]}`
    // A next link carries its own version; only a first path takes the requested one.
    const request = (): ReturnType<Client['api']> => this.isGraphLink(pathOrNextLink) ? this.client.api(pathOrNextLink) : this.client.api(pathOrNextLink).version(version)
    const body = await this.call(what, async () => await request().get() as GraphPage<T>)
    return { items: body.value ?? [], next: body['@odata.nextLink'] ?? null }
  }

  /** Every item of a collection, following next links. */
  async all<T> (path: string, version: GraphVersion = 'v1.0'): Promise<T[]> {
    const items: T[] = []
    let next: string | null = path
    while (next !== null) {
      const page: { items: T[], next: string | null } = await this.page<T>(next, version)
      items.push(...page.items)
      next = page.next
    }
    return items
  }

  isGraphLink (url: string): boolean {
    return url.startsWith(`${this.origin.logical}/`)
  }

  private async call<T> (what: string, run: () => Promise<T>): Promise<T> {
    // Acquire first so a token failure surfaces as itself: inside the chain the client would wrap it in a GraphError.
    await this.tokens.get()
    try {
      return await run()
    } catch (err) {
      throw toProviderError(what, err)
    }
  }
}
