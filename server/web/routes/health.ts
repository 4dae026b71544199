import type { FastifyPluginAsync } from 'fastify'
import type Sqlite from 'better-sqlite3'
import { migrationStatus } from '../../db/migrate.ts'

/** Liveness and readiness for orchestrators. No session, no CSRF, no rate limit. */
const healthRoutes: FastifyPluginAsync<{ sqlite: Sqlite.Database }> = async (app, { sqlite }) => {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    try {
      sqlite.prepare('SELECT 1').get()
      const migrations = migrationStatus(sqlite)
      if (!migrations.current) {
        return reply.code(503).send({ status: 'not_ready', reason: 'database migrations are not current', migrations })
      }
      return { status: 'ready', migrations }
    } catch (err) {
      _request.log.error({ err }, 'readiness check failed')
      return reply.code(503).send({ status: 'not_ready', reason: 'database unreachable' })
    }
  })
}

export default healthRoutes
