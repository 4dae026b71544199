import type { FastifyPluginAsync } from 'fastify'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'

/** Registered under /helpdesk; the guard covers every route added here. */
const helpdeskRoutes: FastifyPluginAsync = async (app) => {
  app.addHook('preHandler', requireRole('helpdesk'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get('/', async (_request, reply) => reply.page('helpdesk/index', { title: 'Helpdesk' }))
}

export default helpdeskRoutes
