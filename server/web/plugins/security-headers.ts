import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'
import type { Config } from '../../config.ts'

/**
 * Strict CSP: our own scripts and styles only, no inline anything, no framing; plus helmet's other headers.
 * Helmet decides the headers, once, at start: none of them depends on the request (no per-request CSP nonce), so
 * every response gets the same list, set the way helmet sets them. Running helmet's middleware chain on each
 * request cost a noticeable share of a small page.
 */
export default fp<{ config: Config }>(async (app, { config }) => {
  const headers = headersOf({
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
        upgradeInsecureRequests: config.publicUrl.protocol === 'https:' ? [] : null
      }
    },
    strictTransportSecurity: config.publicUrl.protocol === 'https:' ? { maxAge: 15552000, includeSubDomains: true } : false,
    referrerPolicy: { policy: 'same-origin' },
    frameguard: { action: 'deny' },
    crossOriginEmbedderPolicy: false
  })
  // Through the reply, not reply.raw.setHeader: while no header is set on the raw response, Node takes the reply's
  // headers as they are when it writes them; one raw header makes it set every header again, one by one
  // (measured: 7 µs of the home page's 100).
  const asObject = Object.fromEntries(headers.map(([name, value]) => [name.toLowerCase(), value]))
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(asObject)
    done()
  })
}, { name: 'security-headers' })

/**
 * The headers helmet sets with these options, recorded from one run of its middleware. (The one header it removes,
 * X-Powered-By, is never set by Fastify.)
 */
function headersOf (options: HelmetOptions): Array<[string, string]> {
  const headers: Array<[string, string]> = []
  const recorder = {
    setHeader (name: string, value: string | number | readonly string[]) { headers.push([name, String(value)]) },
    removeHeader () {}
  }
  let failure: unknown
  helmet(options)({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => { failure = err })
  if (failure !== undefined) throw failure
  return headers
}
