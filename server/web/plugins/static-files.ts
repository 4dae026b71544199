import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import fp from 'fastify-plugin'

export const STATIC_DIR = fileURLToPath(new URL('../../../static/', import.meta.url))

/**
 * The ES-module build of @simplewebauthn/browser, served from our own origin so `script-src 'self'` allows it.
 * The package exports no subpath for that folder, so walk up from the resolved entry to the package root.
 */
function simpleWebAuthnBrowserDir (): string {
  let dir = path.dirname(createRequire(import.meta.url).resolve('@simplewebauthn/browser'))
  for (;;) {
    // Its esm/ and script/ folders hold package.json files too, without a name.
    const manifest = path.join(dir, 'package.json')
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === '@simplewebauthn/browser') {
      return path.join(dir, 'esm')
    }
    const parent = path.dirname(dir)
    if (parent === dir) throw new Error('cannot find the @simplewebauthn/browser package folder')
    dir = parent
  }
}

export default fp(async (app) => {
  await app.register(fastifyStatic, { root: STATIC_DIR, prefix: '/static/', maxAge: '1h', index: false })
  // Only the modules themselves: the folder also holds type declarations and source maps nobody needs.
  await app.register(fastifyStatic, {
    root: simpleWebAuthnBrowserDir(),
    prefix: '/static/vendor/simplewebauthn/',
    maxAge: '1h',
    index: false,
    decorateReply: false,
    allowedPath: (pathName) => pathName.endsWith('.js')
  })
}, { name: 'static-files' })
