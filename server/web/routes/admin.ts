import type { FastifyPluginAsync } from 'fastify'
import { requireRole } from '../plugins/auth.ts'

/** Registered under /admin; the guard covers every route added here. */
const adminRoutes: FastifyPluginAsync = async (app) => {
  app.addHook('preHandler', requireRole('admin'))

  app.get('/', async (_request, reply) => reply.page('admin/index', { title: 'Administration' }))
}

export default adminRoutes
