import type { FastifyPluginAsync } from 'fastify'
import { requireRole } from '../plugins/auth.ts'

/** Registered under /helpdesk; the guard covers every route added here. */
const helpdeskRoutes: FastifyPluginAsync = async (app) => {
  app.addHook('preHandler', requireRole('helpdesk'))

  app.get('/', async (_request, reply) => reply.page('helpdesk/index', { title: 'Helpdesk' }))
}

export default helpdeskRoutes
