import type { FastifyPluginAsync } from 'fastify'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import type { Services } from '../../wiring.ts'

/** Registered under /admin; the guard covers every route added here. */
const adminRoutes: FastifyPluginAsync<{ outbox: Pick<Services['outbox'], 'latest'> }> = async (app, { outbox }) => {
  app.addHook('preHandler', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get('/', async (_request, reply) => reply.page('admin/index', { title: 'Administration' }))

  // Sandbox mail and text messages, newest first. Only the text part is shown: email HTML is never rendered here.
  app.get('/outbox', async (_request, reply) => reply.page('admin/outbox', { title: 'Outbox', messages: outbox.latest(100) }))
}

export default adminRoutes
