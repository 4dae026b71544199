import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { graphError, routeGraph, type GraphRequest, type GraphResponse, type RouteContext, type Version } from './graph-routes.ts'
import { FakeIdentity, type FakeApp } from './identity.ts'
import { FakeTenant, type PerUserMfaState } from './tenant.ts'

/** One Graph request the fake answered: plain, or an item of a $batch. */
export interface GraphCall {
  method: string
  version: Version
  path: string
  status: number
  inBatch: boolean
  /** The Graph client's RetryHandler marks its retries (contracts 1.1 pitfall 4). */
  retryAttempt: string | null
}

export interface FaultOptions {
  /** 429 (default), 503, 504 or 500. */
  status?: number
  /** Seconds in Retry-After (default 0); null to send none. */
  retryAfterSeconds?: number | null
  /** Which requests, tested against "METHOD /version/path" (batch items too); default all. */
  match?: RegExp
  /**
   * Carry the request out first, then answer with the fault: a gateway that lost Graph's answer. The client cannot
   * tell this from a request that never ran, which is why a create must not simply be sent again.
   */
  afterDoing?: boolean
}

export interface FakeEntraOptions {
  tenantId?: string
  app?: FakeApp
  now?: () => Date
  /** Keep every Graph call in `calls` (default true; the benchmark turns it off). */
  logCalls?: boolean
}

export interface FakeEntra {
  /** Base URL of both the authority and Graph: http://127.0.0.1:PORT */
  url: string
  tenant: FakeTenant
  identity: FakeIdentity
  app: FakeApp
  calls: GraphCall[]
  /** The next `count` matching requests fail with `status` (contracts Part 3 Graph 13). */
  failNext(count: number, options?: FaultOptions): void
  /**
   * An outage: after `afterRequests` more Graph requests (default 0), every request fails with `status` (default 503,
   * Retry-After as given, default 0) until `forMs` have passed on the fake's clock since the first one it failed.
   */
  outage(options: { forMs: number, afterRequests?: number, status?: number, retryAfterSeconds?: number | null }): void
  /** Admits at most `perSecond` Graph requests (batch items each count) per second; null lifts the limit. */
  setRateLimit(perSecond: number | null): void
  readonly stats: { admitted: number, throttled: number, faults: number }
  /** Successful requirement PATCHes for the user, and how many really changed the state. */
  requirementWrites(userId: string): { patches: number, changes: number }
  close(): Promise<void>
}

const JSON_TYPE = 'application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8'

/**
 * A wire-level stand-in for Entra's token endpoint and Microsoft Graph on 127.0.0.1, following contracts Part 3:
 * bearer tokens checked, paging with https next links, the error envelope, scriptable 429/5xx with Retry-After,
 * a rate limit, $batch with per-item statuses, and the directory state in `tenant` for arranging and asserting.
 */
export async function startFakeEntra (options: FakeEntraOptions = {}): Promise<FakeEntra> {
  const now = options.now ?? (() => new Date())
  const tenant = new FakeTenant(options.tenantId ?? randomUUID(), now)
  const app = options.app ?? { clientId: randomUUID(), clientSecret: `secret-${randomUUID()}` }
  const identity = new FakeIdentity(tenant, app, now)
  const calls: GraphCall[] = []
  const logCalls = options.logCalls ?? true
  const faults: Array<{ match: RegExp, remaining: number, status: number, retryAfterSeconds: number | null, afterDoing: boolean }> = []
  const stats = { admitted: 0, throttled: 0, faults: 0 }
  const writes = new Map<string, { patches: number, changes: number }>()
  let bucket: { perSecond: number, tokens: number, at: number } | null = null
  let outage: { requestsLeft: number, forMs: number, status: number, retryAfterSeconds: number | null, endsAt: number | null } | null = null
  function outageFault (): GraphResponse | null {
    if (outage === null) return null
    if (outage.requestsLeft > 0) { outage.requestsLeft--; return null }
    const at = now().getTime()
    outage.endsAt ??= at + outage.forMs
    if (at >= outage.endsAt) { outage = null; return null }
    stats.faults++
    return throttled(outage.status, outage.retryAfterSeconds)
  }

  const ctx: RouteContext = {
    tenant,
    now,
    onRequirementPatched: (userId: string, from: PerUserMfaState, to: PerUserMfaState) => {
      const w = writes.get(userId) ?? { patches: 0, changes: 0 }
      w.patches++
      if (from !== to) w.changes++
      writes.set(userId, w)
    }
  }

  // A continuous token bucket holding one second's allowance; Retry-After in whole seconds as Graph sends it.
  function admit (): GraphResponse | null {
    if (bucket === null) return null
    const t = performance.now()
    bucket.tokens = Math.min(bucket.perSecond, bucket.tokens + (t - bucket.at) / 1000 * bucket.perSecond)
    bucket.at = t
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return null
    }
    stats.throttled++
    const wait = Math.max(1, Math.ceil((1 - bucket.tokens) / bucket.perSecond))
    return throttled(429, wait)
  }

  function throttled (status: number, retryAfter: number | null): GraphResponse {
    const headers: Record<string, string> = retryAfter === null ? {} : { 'Retry-After': String(retryAfter) }
    if (status === 429) {
      headers['x-ms-throttle-scope'] = `Tenant_Application/ReadWrite/${app.clientId}/${tenant.tenantId}`
      headers['x-ms-throttle-information'] = 'ResourceUnitLimitExceeded'
      return graphError(429, 'TooManyRequests', 'Too many requests.', headers)
    }
    return graphError(status, status === 503 ? 'serviceNotAvailable' : status === 504 ? 'gatewayTimeout' : 'generalException', 'The service is temporarily unavailable.', headers)
  }

  function serve (req: GraphRequest, inBatch: boolean, retryAttempt: string | null): GraphResponse {
    const label = `${req.method} /${req.version}${req.path}`
    const fault = faults.find((f) => f.remaining > 0 && f.match.test(label))
    let response: GraphResponse
    const down = outageFault()
    if (down !== null) {
      response = down
    } else if (fault !== undefined) {
      fault.remaining--
      stats.faults++
      if (fault.afterDoing) routeGraph(ctx, req)
      response = throttled(fault.status, fault.retryAfterSeconds)
    } else {
      response = admit() ?? routeGraph(ctx, req)
      if (response.status !== 429) stats.admitted++
    }
    if (logCalls) calls.push({ method: req.method, version: req.version, path: req.path, status: response.status, inBatch, retryAttempt })
    return response
  }

  function batch (version: Version, body: unknown): GraphResponse {
    const requests = (body as { requests?: unknown } | null)?.requests
    if (!Array.isArray(requests) || requests.length === 0) return graphError(400, 'BadRequest', 'Invalid batch payload format.')
    if (requests.length > 20) return graphError(400, 'BadRequest', 'The number of batch requests exceeds the limit of 20.')
    const ids = requests.map((r: { id?: unknown }) => String(r.id ?? '').toLowerCase())
    if (ids.some((id) => id === '') || new Set(ids).size !== ids.length) return graphError(400, 'BadRequest', 'Batch request ids must be present and unique.')
    const statusById = new Map<string, number>()
    const responses = requests.map((r: { id: string, method?: string, url?: string, headers?: Record<string, string>, body?: unknown, dependsOn?: string[] }) => {
      const failedDependency = (r.dependsOn ?? []).some((d) => { const s = statusById.get(String(d).toLowerCase()); return s === undefined || s >= 400 })
      let answer: GraphResponse
      const url = String(r.url ?? '')
      const hasContentType = Object.keys(r.headers ?? {}).some((k) => k.toLowerCase() === 'content-type')
      if (failedDependency) {
        answer = graphError(424, 'FailedDependency', 'A request this one depends on failed.')
      } else if (!url.startsWith('/') || /^\/(v1\.0|beta)\//.test(url)) {
        // Real Graph refuses versioned sub-URLs (contracts 1.12, pitfall 5); so does the fake, to catch the bug.
        answer = graphError(400, 'BadRequest', `Resource not found for the segment '${url.split('/')[1] ?? url}'.`)
      } else if (r.body !== undefined && !hasContentType) {
        answer = graphError(400, 'BadRequest', 'Content-Type header is required when a body is present.')
      } else {
        const parsed = new URL(url, 'https://graph.invalid')
        answer = serve({ method: String(r.method ?? 'GET').toUpperCase(), version, path: decodeURIComponent(parsed.pathname), query: parsed.searchParams, body: r.body }, true, null)
      }
      statusById.set(String(r.id).toLowerCase(), answer.status)
      return { id: String(r.id), status: answer.status, headers: { ...(answer.body === undefined ? {} : { 'Content-Type': 'application/json' }), ...answer.headers }, ...(answer.body === undefined ? {} : { body: answer.body }) }
    })
    // Items may come back in any order (contracts 1.12): answer last-first so clients must match on id.
    return { status: 200, body: { responses: responses.reverse() } }
  }

  const server = createServer((req, res) => {
    readBody(req).then((raw) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1')
      const graph = /^\/(v1\.0|beta)(\/.*)$/.exec(url.pathname)
      if (graph === null) {
        const form = Object.fromEntries(new URLSearchParams(raw))
        const answer = identity.handle(req.method ?? 'GET', url.pathname, url.searchParams, form)
        return send(res, req, answer ?? { status: 404, body: { error: 'not_found' } }, 'application/json; charset=utf-8')
      }
      const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
      if (token === undefined || !identity.accessTokens.has(token)) {
        return send(res, req, graphError(401, 'InvalidAuthenticationToken', token === undefined ? 'Access token is empty.' : 'Access token validation failure.'), JSON_TYPE)
      }
      let body: unknown
      try {
        body = raw === '' ? undefined : JSON.parse(raw)
      } catch {
        return send(res, req, graphError(400, 'BadRequest', 'Unable to read JSON request payload.'), JSON_TYPE)
      }
      const version = graph[1] as Version
      const path = decodeURIComponent(graph[2])
      const retryAttempt = typeof req.headers['retry-attempt'] === 'string' ? req.headers['retry-attempt'] : null
      if (path === '/$batch' && req.method === 'POST') {
        const label = `POST /${version}/$batch`
        const fault = faults.find((f) => f.remaining > 0 && f.match.test(label))
        if (fault !== undefined) {
          fault.remaining--
          stats.faults++
          if (fault.afterDoing) batch(version, body)
          return send(res, req, throttled(fault.status, fault.retryAfterSeconds), JSON_TYPE)
        }
        return send(res, req, batch(version, body), JSON_TYPE)
      }
      return send(res, req, serve({ method: req.method ?? 'GET', version, path, query: url.searchParams, body }, false, retryAttempt), JSON_TYPE)
    }).catch((err: unknown) => send(res, req, graphError(500, 'generalException', String(err)), JSON_TYPE))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    tenant,
    identity,
    app,
    calls,
    failNext: (count, o = {}) => { faults.push({ match: o.match ?? /./, remaining: count, status: o.status ?? 429, retryAfterSeconds: o.retryAfterSeconds === undefined ? 0 : o.retryAfterSeconds, afterDoing: o.afterDoing === true }) },
    outage: ({ forMs, afterRequests = 0, status = 503, retryAfterSeconds = 0 }) => { outage = { requestsLeft: afterRequests, forMs, status, retryAfterSeconds, endsAt: null } },
    setRateLimit: (perSecond) => { bucket = perSecond === null ? null : { perSecond, tokens: perSecond, at: performance.now() } },
    stats,
    requirementWrites: (userId) => writes.get(userId) ?? { patches: 0, changes: 0 },
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve, reject) => server.close((err) => err === undefined ? resolve() : reject(err)))
    }
  }
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function send (res: ServerResponse, req: IncomingMessage, answer: GraphResponse, contentType: string): void {
  const clientRequestId = req.headers['client-request-id']
  const headers: Record<string, string> = {
    'request-id': randomUUID(),
    'client-request-id': typeof clientRequestId === 'string' ? clientRequestId : randomUUID(),
    ...answer.headers
  }
  if (answer.body === undefined) {
    res.writeHead(answer.status, headers)
    res.end()
    return
  }
  res.writeHead(answer.status, { ...headers, 'content-type': contentType })
  res.end(JSON.stringify(answer.body))
}
