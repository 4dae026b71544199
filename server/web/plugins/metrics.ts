import { timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import { Registry, collectDefaultMetrics } from 'prom-client'
import { innerMap } from '../inner-map.ts'

/**
 * Prometheus text at /metrics: request counts and durations by route template and status (RequestMetrics), and
 * prom-client's process metrics. Routes are labelled by their template ("/users/:id"), never the raw URL, so label
 * sets stay bounded. With METRICS_TOKEN set, scrapers must send it as a bearer token. In production without one
 * there is no /metrics at all (404): request counts by route are for the operator, not for anyone who finds the portal.
 */
export default fp<{ token: string | undefined, production: boolean }>(async (app, { token, production }) => {
  if (production && token === undefined) return
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const requests = new RequestMetrics()

  app.addHook('onResponse', (request, reply, done) => {
    requests.record(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
    done()
  })

  const expected = token === undefined ? undefined : Buffer.from(`Bearer ${token}`)
  app.get('/metrics', async (request, reply) => {
    if (expected !== undefined) {
      const given = Buffer.from(request.headers.authorization ?? '')
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        return reply.code(401).send({ error: { code: 'unauthenticated', message: 'A metrics token is required.' } })
      }
    }
    return reply.type(registry.contentType).send(requests.text() + await registry.metrics())
  })
}, { name: 'metrics' })

/** The upper bounds of the duration buckets, in seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]

/** One label set's requests: how many, their durations' sum, and how many fell in each bucket (not cumulated). */
interface Tally {
  method: string
  route: string
  status: number
  count: number
  sum: number
  buckets: number[]
}

/**
 * `http_requests_total` and the histogram `http_request_duration_seconds`, by method, route and status, in the
 * Prometheus text format prom-client writes. Counted here, in a tally found by the route's template, the method and
 * the status (strings the request already holds and a number): prom-client's Counter and Histogram each joined the
 * three labels into a new text key and looked it up on every request, a thirtieth of the home page's instructions.
 */
export class RequestMetrics {
  private readonly byRoute = new Map<string, Map<string, Map<number, Tally>>>()

  record (method: string, route: string, status: number, seconds: number): void {
    const byStatus = innerMap(innerMap(this.byRoute, route), method)
    let tally = byStatus.get(status)
    if (tally === undefined) {
      tally = { method, route, status, count: 0, sum: 0, buckets: BUCKETS.map(() => 0) }
      byStatus.set(status, tally)
    }
    tally.count++
    tally.sum += seconds
    const bucket = BUCKETS.findIndex((bound) => seconds <= bound)
    if (bucket >= 0) tally.buckets[bucket]++
  }

  text (): string {
    const tallies = [...this.byRoute.values()].flatMap((byMethod) => [...byMethod.values()].flatMap((byStatus) => [...byStatus.values()]))
    const labelsOf = (tally: Tally): string => `method="${labelValue(tally.method)}",route="${labelValue(tally.route)}",status="${tally.status}"`
    const lines = [
      '# HELP http_requests_total HTTP requests answered, by method, route and status',
      '# TYPE http_requests_total counter',
      ...tallies.map((tally) => `http_requests_total{${labelsOf(tally)}} ${tally.count}`),
      '',
      '# HELP http_request_duration_seconds Time to answer HTTP requests, by method, route and status',
      '# TYPE http_request_duration_seconds histogram'
    ]
    for (const tally of tallies) {
      const labels = labelsOf(tally)
      let cumulated = 0
      BUCKETS.forEach((bound, i) => {
        cumulated += tally.buckets[i]
        lines.push(`http_request_duration_seconds_bucket{le="${bound}",${labels}} ${cumulated}`)
      })
      lines.push(`http_request_duration_seconds_bucket{le="+Inf",${labels}} ${tally.count}`)
      lines.push(`http_request_duration_seconds_sum{${labels}} ${tally.sum}`)
      lines.push(`http_request_duration_seconds_count{${labels}} ${tally.count}`)
    }
    return `${lines.join('\n')}\n\n`
  }
}

/** A label value as the text format writes it: backslash, double quote and line feed escaped. */
function labelValue (value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === '\n' ? '\\n' : `\\${c}`)
}
