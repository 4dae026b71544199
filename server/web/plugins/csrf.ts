import csrf from '@fastify/csrf-protection'
import fp from 'fastify-plugin'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Routes authenticated by a bearer token (no cookie) opt out of CSRF checks. */
    csrf?: false
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

/**
 * Every state-changing request carries a token tied to the session: forms send `_csrf`, scripts the
 * `x-csrf-token` header. Checked in preValidation: the body is parsed by then, and a forged request is refused
 * before anything looks at what it sent (the body's schema, the step-up that holds console actions).
 */
export default fp(async (app) => {
  await app.register(csrf, { sessionPlugin: '@fastify/session' })
  app.addHook('preValidation', (request, reply, done) => {
    if (SAFE_METHODS.has(request.method) || request.routeOptions.config.csrf === false) {
      done()
      return
    }
    app.csrfProtection(request, reply, done)
  })
}, { name: 'csrf', dependencies: ['session'] })
