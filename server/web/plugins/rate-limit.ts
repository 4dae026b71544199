import rateLimit from '@fastify/rate-limit'
import fp from 'fastify-plugin'

/**
 * Coarse per-address limits on routes that opt in (`config.rateLimit`). Registered before any route,
 * or per-route limits are silently ignored. Account lockouts live in the domain's Regulator.
 */
export default fp(async (app) => {
  await app.register(rateLimit, { global: false })
}, { name: 'rate-limit' })
