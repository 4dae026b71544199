import type { FastifyPluginAsync } from 'fastify'
import type { EnforcementEngine } from '../../domain/engine.ts'
import { enrollmentStatus, type MethodStore } from '../../domain/methods.ts'
import { requireUser } from '../plugins/auth.ts'

export const KIND_LABELS = { passkey: 'Passkey or security key', totp: 'Authenticator app', phone: 'Phone (text message)' } as const

/** The home page: where the user stands, their methods, and the ways to add one. */
const homeRoutes: FastifyPluginAsync<HomeDeps> = async (app, deps) => {
  app.get('/', { preHandler: requireUser, config: { passSession: true } }, async (request, reply) => {
    return reply.page('home', homeModel(request.user!, deps))
  })

  // For the portal's own scripts: who am I? Session-authenticated; JSON errors with stable codes.
  app.get('/api/v1/me', { preHandler: requireUser }, async (request) => {
    const user = request.user!
    return { id: user.id, email: user.email, displayName: user.displayName, role: user.role }
  })
}

export interface HomeDeps {
  methods: MethodStore
  engine: Pick<EnforcementEngine, 'methodPolicy'>
}

export function homeModel (user: { id: string, privileged: boolean }, { methods, engine }: HomeDeps, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const list = methods.listFor(user.id)
  return {
    title: 'Your sign-in security',
    methods: list.map((m) => ({ ...m, kindLabel: KIND_LABELS[m.kind] })),
    // The campaign behind the user's deadline decides what counts (text messages, privileged users' passkeys).
    status: enrollmentStatus(user, list.map((m) => m.kind), engine.methodPolicy(user.id)),
    error: null,
    ...extra
  }
}

export default homeRoutes
