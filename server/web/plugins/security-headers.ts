import helmet from '@fastify/helmet'
import fp from 'fastify-plugin'
import type { Config } from '../../config.ts'

/** Strict CSP: our own scripts and styles only, no inline anything, no framing. */
export default fp<{ config: Config }>(async (app, { config }) => {
  const https = config.publicUrl.protocol === 'https:'
  await app.register(helmet, {
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
}, { name: 'security-headers' })
