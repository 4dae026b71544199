import type { FastifyPluginAsync } from 'fastify'
import type { MigrationStatus } from '../../db/migrate.ts'
import type { StorageMonitor } from '../../domain/storage.ts'
import type { Leadership } from '../../domain/leadership.ts'

/**
 * Liveness and readiness for orchestrators. No session, no CSRF, no rate limit. /healthz says the process answers
 * (restarting it would not help a full or damaged disk); /readyz says whether it can serve: the database answers,
 * its migrations are current, writes work, and PRAGMA quick_check (every ten minutes at most) finds it intact; when
 * ready, `warnings` lists what the database server's settings make worse (PostgreSQL without autovacuum).
 */
const healthRoutes: FastifyPluginAsync<{ readiness: () => Promise<MigrationStatus>, storage: StorageMonitor, leadership: Leadership }> = async (app, { readiness, storage, leadership }) => {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (request, reply) => {
    let migrations: MigrationStatus
    try {
      migrations = await readiness()
    } catch (err) {
      request.log.error({ err }, 'readiness check failed')
      return reply.code(503).send({ status: 'not_ready', reason: 'database unreachable' })
    }
    if (!migrations.current) {
      return reply.code(503).send({ status: 'not_ready', reason: 'database migrations are not current', migrations })
    }
    const writes = storage.writes(request.log)
    if (!writes.ok) {
      const reason = writes.failure === 'full' ? 'the database cannot be written: its disk is full' : 'the database cannot be written: its volume refuses writes'
      return reply.code(503).send({ status: 'not_ready', reason, since: writes.since.toISOString() })
    }
    const integrity = storage.integrity(request.log)
    if (!integrity.ok) {
      return reply.code(503).send({ status: 'not_ready', reason: 'the database file is damaged (PRAGMA quick_check)', problems: integrity.problems, checkedAt: integrity.checkedAt.toISOString() })
    }
    // Which instance runs the scheduler: an operator looking at several instances sees which one leads. Advice on the
    // database server's settings comes as warnings: the portal serves, but the operator should act.
    const warnings = await storage.advice().catch((err: Error) => {
      request.log.warn({ err: err.message }, 'the database server\'s settings could not be read')
      return []
    })
    return { status: 'ready', migrations, instance: leadership.instance, leader: leadership.isLeader(), ...(warnings.length === 0 ? {} : { warnings }) }
  })
}

export default healthRoutes
