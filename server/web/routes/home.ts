import type { FastifyPluginAsync } from 'fastify'
import { requireUser } from '../plugins/auth.ts'

const homeRoutes: FastifyPluginAsync = async (app) => {
  app.get('/', { preHandler: requireUser }, async (request, reply) => {
    return reply.page('home', { title: 'Your sign-in security' })
  })

  // For the portal's own scripts: who am I? Session-authenticated; JSON errors with stable codes.
  app.get('/api/v1/me', { preHandler: requireUser }, async (request) => {
    const user = request.user!
    return { id: user.id, email: user.email, displayName: user.displayName, role: user.role }
  })
}

export default homeRoutes
