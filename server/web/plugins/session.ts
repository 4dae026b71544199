import cookie from '@fastify/cookie'
import session, { type SessionStore } from '@fastify/session'
import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.ts'
import type { SessionStore as PortalSessions } from '../../domain/users.ts'
import { rememberingSigner } from './remembering-signer.ts'
import { storageFailureOf, type StorageMonitor } from '../../domain/storage.ts'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

type Callback = (err?: Error | null) => void

/**
 * Server-side sessions. The cookie holds only a signed random id; it has no Max-Age (the browser forgets it
 * when closed) and the server enforces the idle and absolute timeouts (see plugins/auth.ts).
 * Sessions are written only when they change (rolling off, uninitialised sessions not saved).
 */
export default fp<{ config: Config, store: PortalSessions, storage: StorageMonitor }>(async (app, { config, store, storage }) => {
  // One signer for the CSRF cookie (plugins/csrf.ts, through @fastify/cookie) and the session cookie.
  const signer = rememberingSigner(config.sessionSecret)
  await app.register(cookie, { secret: signer })

  // Which response a session is saved for: @fastify/session saves in its own onSend hook, added after this one.
  const savedFor = new WeakMap<object, FastifyReply>()
  app.addHook('onSend', (request, reply, payload, done) => {
    if (typeof request.session === 'object' && request.session !== null) savedFor.set(request.session, reply)
    done(null, payload)
  })

  await app.register(session, {
    secret: signer,
    cookieName: config.session.cookieName,
    // The store keeps sessions as JSON and hands back plain objects, which is what the plugin restores from.
    store: storeThatSurvivesAFullDisk(store, storage, savedFor) as unknown as SessionStore,
    rolling: false,
    saveUninitialized: false,
    cookie: {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: config.session.secureCookie
    }
  })
}, { name: 'session' })

/**
 * The store, except for what a response's session save does when the disk is full (or the file damaged). Reading a page does not depend
 * on its session write (what is lost is a refresh of the idle timer, or a message already shown), so the page is
 * still sent. A request that changes something (a sign-in, a sign-out) must not look done when its session was not
 * stored: the error goes on to the error pages (503). Their own save then fails the same way and is let go, so the
 * error page is what the user sees, not Fastify's raw 500.
 */
function storeThatSurvivesAFullDisk (store: PortalSessions, storage: StorageMonitor, savedFor: WeakMap<object, FastifyReply>) {
  return {
    get: store.get.bind(store),
    destroy: store.destroy.bind(store),
    set (sid: string, changed: object, callback: Callback): void {
      store.set(sid, changed, (err) => {
        const failure = err == null ? undefined : storageFailureOf(err)
        const reply = savedFor.get(changed)
        if (failure === undefined || reply === undefined) {
          callback(err)
          return
        }
        if (reply.statusCode < 400 && !SAFE_METHODS.has(reply.request.method)) {
          reply.removeHeader('location')
          callback(err)
          return
        }
        if (failure === 'damaged') storage.damageSeen(reply.request.log, err)
        else storage.writeFailed(failure, reply.request.log)
        callback()
      })
    }
  }
}
