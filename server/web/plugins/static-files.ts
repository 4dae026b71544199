import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'

export const STATIC_DIR = fileURLToPath(new URL('../../../static/', import.meta.url))

export default fp(async (app) => {
  await app.register(fastifyStatic, { root: STATIC_DIR, prefix: '/static/', maxAge: '1h', index: false })
}, { name: 'static-files' })
