import cookie from '@fastify/cookie'
import session, { type SessionStore } from '@fastify/session'
import fp from 'fastify-plugin'
import type { Config } from '../../config.ts'
import type { SqliteSessionStore } from '../../db/sessions.ts'

/**
 * Server-side sessions. The cookie holds only a signed random id; it has no Max-Age (the browser forgets it
 * when closed) and the server enforces the idle and absolute timeouts (see plugins/auth.ts).
 * Sessions are written only when they change (rolling off, uninitialised sessions not saved).
 */
export default fp<{ config: Config, store: SqliteSessionStore }>(async (app, { config, store }) => {
  // The cookie secret signs the CSRF cookie (plugins/csrf.ts); the session plugin signs its own cookie.
  await app.register(cookie, { secret: config.sessionSecret })
  await app.register(session, {
    secret: config.sessionSecret,
    cookieName: config.session.cookieName,
    // The store keeps sessions as JSON and hands back plain objects, which is what the plugin restores from.
    store: store as unknown as SessionStore,
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
