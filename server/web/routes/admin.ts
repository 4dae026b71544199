import type { FastifyPluginAsync } from 'fastify'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'

/** Registered under /admin; the guard covers every route added here. */
const adminRoutes: FastifyPluginAsync = async (app) => {
  app.addHook('preHandler', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get('/', async (_request, reply) => reply.page('admin/index', { title: 'Administration' }))
}

export default adminRoutes
