import { timingSafeEqual } from 'node:crypto'
import fp from 'fastify-plugin'
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/**
 * Prometheus text at /metrics: request counts and durations by route template and status.
 * Routes are labelled by their template ("/users/:id"), never the raw URL, so label sets stay bounded.
 * With METRICS_TOKEN set, scrapers must send it as a bearer token. In production without one there is no
 * /metrics at all (404): request counts by route are for the operator, not for anyone who finds the portal.
 */
export default fp<{ token: string | undefined, production: boolean }>(async (app, { token, production }) => {
  if (production && token === undefined) return
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests answered, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry]
  })
  const durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer HTTP requests, by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry]
  })

  app.addHook('onResponse', (request, reply, done) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) }
    requests.inc(labels)
    durations.observe(labels, reply.elapsedTime / 1000)
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
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}, { name: 'metrics' })
