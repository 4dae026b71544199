import type { FastifyPluginAsync } from 'fastify'
import type { Config } from '../../config.ts'
import { enrollmentStatus, type MethodStore } from '../../domain/methods.ts'
import { requireUser } from '../plugins/auth.ts'

export const KIND_LABELS = { passkey: 'Passkey or security key', totp: 'Authenticator app', phone: 'Phone (text message)' } as const

/** The home page: where the user stands, their methods, and the ways to add one. */
const homeRoutes: FastifyPluginAsync<{ methods: MethodStore, config: Config }> = async (app, { methods, config }) => {
  app.get('/', { preHandler: requireUser, config: { passSession: true } }, async (request, reply) => {
    return reply.page('home', homeModel(request.user!, methods, config))
  })

  // For the portal's own scripts: who am I? Session-authenticated; JSON errors with stable codes.
  app.get('/api/v1/me', { preHandler: requireUser }, async (request) => {
    const user = request.user!
    return { id: user.id, email: user.email, displayName: user.displayName, role: user.role }
  })
}

export function homeModel (user: { id: string, privileged: boolean }, methods: MethodStore, config: Config, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const list = methods.listFor(user.id)
  return {
    title: 'Your sign-in security',
    methods: list.map((m) => ({ ...m, kindLabel: KIND_LABELS[m.kind] })),
    status: enrollmentStatus(user, list, { smsCounts: config.smsCounts }),
    error: null,
    ...extra
  }
}

export default homeRoutes
