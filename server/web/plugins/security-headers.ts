import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { Config } from '../../config.ts'

/**
 * Strict CSP: our own scripts and styles only, no inline anything, no framing; plus helmet's other headers.
 * helmet's middleware is built once here and applied to every response. (@fastify/helmet rebuilds it, and
 * re-parses the CSP, on every request — a large share of a small page's cost.)
 */
export default fp<{ config: Config }>(async (app, { config }) => {
  const https = config.publicUrl.protocol === 'https:'
  const applyHeaders = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        fontSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        // Over plain http (local sandbox) this would send form posts to https://localhost and break them.
        upgradeInsecureRequests: https ? [] : null
      }
    },
    strictTransportSecurity: https ? { maxAge: 15552000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'same-origin' },
    frameguard: { action: 'deny' },
    crossOriginEmbedderPolicy: false
  })
  app.addHook('onRequest', (request, reply, done) => {
    applyHeaders(request.raw, reply.raw, (err?: unknown) => done(err as Error | undefined))
  })
}, { name: 'security-headers' })
