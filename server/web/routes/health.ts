import type { FastifyPluginAsync } from 'fastify'
import type { MigrationStatus } from '../../db/migrate.ts'

/** Liveness and readiness for orchestrators. No session, no CSRF, no rate limit. */
const healthRoutes: FastifyPluginAsync<{ readiness: () => MigrationStatus }> = async (app, { readiness }) => {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (request, reply) => {
    let migrations: MigrationStatus
    try {
      migrations = readiness()
    } catch (err) {
      request.log.error({ err }, 'readiness check failed')
      return reply.code(503).send({ status: 'not_ready', reason: 'database unreachable' })
    }
    if (!migrations.current) {
      return reply.code(503).send({ status: 'not_ready', reason: 'database migrations are not current', migrations })
    }
    return { status: 'ready', migrations }
  })
}

export default healthRoutes
