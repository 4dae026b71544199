import { randomBytes } from 'node:crypto'
import cookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../config.ts'
import type { SessionRead, SessionStore } from '../../domain/users.ts'
import { storageFailureOf, type StorageMonitor } from '../../domain/storage.ts'
import { rememberingSigner, type CookieSigner } from './remembering-signer.ts'

/** What a session holds. Each part of the portal that keeps something in it adds its field here (declaration merging). */
export interface SessionData {}

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's session: null once destroyed (sign-out). */
    session: Session
  }
  interface FastifyContextConfig {
    /**
     * The session is read with the user's deadline facts and the live campaigns (SessionRead.signedIn.deadline): for
     * the page that shows them on every visit (home), one statement instead of two.
     */
    readsDeadline?: true
  }
}

const WITH_DEADLINE = { deadline: true } as const

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

const ID_BYTES = 32

interface CookieSettings {
  name: string
  secure: boolean
}

// Per-session bookkeeping, in a private field so that the session itself serialises to exactly its data.
interface Meta {
  store: SessionStore
  request: FastifyRequest
  /** The id, or null for a visitor who has none yet (one is made when there is something to keep). */
  id: string | null
  /** A row exists under `id`. */
  stored: boolean
  /** The data as it was read (JSON), to tell whether this request changed it. */
  loaded: string
  destroyed: boolean
  /** The user the row names and their state, read with it; null once the session has a new id (or none). */
  signedIn: SessionRead['signedIn']
}

/** A session's bookkeeping (set by the class below; throws for an object that is not a Session). */
let meta: (session: Session) => Meta

/**
 * A server-side session (DESIGN.md's security rules): the cookie holds only a signed random id; everything else is a
 * row in the database, read on every request (no copy is kept in the process, so a session ended on one instance
 * is ended on all of them). The session's own enumerable fields are its data; the controls below are not stored.
 */
export interface Session extends SessionData {}
export class Session {
  // Not in a WeakMap keyed by the session: V8's young-generation collections keep a WeakMap's entries (only a full
  // collection clears them), and this one's value reaches the request and through it everything the request made,
  // so every request's objects were copied into the old generation (on Node 20 this doubled the time of each young
  // collection). A private field is neither serialised nor enumerated, and dies with the session.
  readonly #meta: Meta

  constructor (meta: Meta) {
    this.#meta = meta
  }

  static {
    meta = (session) => session.#meta
  }

  /** The id under which this session is (or will be) stored: the CSRF tokens of a signed-in session are bound to it. */
  get sessionId (): string {
    const m = meta(this)
    m.id ??= newId()
    return m.id
  }

  /**
   * A new id for this session, and the row under the old one deleted at once (sign-in, step-up, a session that
   * ended): an id seen before (planted, over a shoulder) is worth nothing afterwards. Only the fields named in
   * `keep` come along.
   */
  async regenerate (keep: ReadonlyArray<keyof SessionData> = []): Promise<void> {
    const m = meta(this)
    const kept = new Set<string>(keep as string[])
    for (const key of Object.keys(this)) {
      if (!kept.has(key)) Reflect.deleteProperty(this, key)
    }
    if (m.stored && m.id !== null) await m.store.destroy(m.id)
    m.id = newId()
    m.stored = false
    m.loaded = '{}'
    m.signedIn = null
  }

  /** Ends the session: its row is deleted and the browser told to forget the cookie. */
  async destroy (): Promise<void> {
    const m = meta(this)
    if (m.stored && m.id !== null) await m.store.destroy(m.id)
    m.destroyed = true
    m.signedIn = null
    m.request.session = null as unknown as Session
  }
}

function newId (): string {
  return randomBytes(ID_BYTES).toString('base64url')
}

function sessionFor (request: FastifyRequest, store: SessionStore, id: string | null, read: SessionRead | null): Session {
  const m: Meta = { store, request, id, stored: read !== null, loaded: '{}', destroyed: false, signedIn: read?.signedIn ?? null }
  const session = new Session(m)
  if (read !== null) {
    // Rows written while the portal ran on @fastify/session also hold that plugin's cookie settings: not data.
    const { cookie: settings, ...fields } = read.data as Record<string, unknown>
    Object.assign(session, fields)
    // The row's own text is what JSON.stringify(session) gives (the store wrote it so, fields in this order): no need
    // to serialise the session again to tell later whether this request changed it.
    m.loaded = settings === undefined ? read.json : JSON.stringify(session)
  }
  return session
}

/**
 * The user this request's session row names, and where they stand, as the store read them with the session (one
 * statement for all three); null for a visitor's session, and once the session was given a new id or ended.
 */
export function signedInRead (request: FastifyRequest): SessionRead['signedIn'] {
  const session = request.session as Session | null
  return session === null ? null : meta(session).signedIn
}

/**
 * Server-side sessions, written only when they change: an anonymous visitor who has nothing to keep gets neither a
 * row nor a cookie. The cookie has no Max-Age (the browser forgets it when closed) and the server enforces the idle
 * and absolute timeouts (see plugins/auth.ts).
 */
export default fp<{ config: Config, store: SessionStore, storage: StorageMonitor }>(async (app, { config, store, storage }) => {
  // One signer for the CSRF cookie (plugins/csrf.ts, through @fastify/cookie) and the session cookie.
  const signer = rememberingSigner(config.sessionSecret)
  await app.register(cookie, { secret: signer })
  const settings: CookieSettings = { name: config.session.cookieName, secure: config.session.secureCookie }

  app.decorateRequest('session', null as unknown as Session)

  app.addHook('onRequest', (request, reply, done) => {
    const presented = request.cookies[settings.name]
    const id = presented === undefined ? null : idFrom(signer, presented)
    if (id === null) {
      request.session = sessionFor(request, store, null, null)
      done()
      return
    }
    store.get(id, request.routeOptions.config.readsDeadline === true ? WITH_DEADLINE : undefined).then((read) => {
      // An unknown id (ended, or never issued) is not taken over: the visitor starts afresh under a new one.
      request.session = read === null ? sessionFor(request, store, null, null) : sessionFor(request, store, id, read)
      done()
    }, done)
  })

  app.addHook('onSend', (request, reply, payload, done) => {
    save(request, reply).then(() => { done(null, payload) }, (err: Error) => { done(err) })
  })

  /** Stores what changed and sets or clears the cookie to match; a full disk is answered as plugins/storage-failures.ts says. */
  async function save (request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const presented = request.cookies[settings.name]
    const session = request.session as Session | null
    if (session === null || meta(session).destroyed) {
      if (presented !== undefined) clearCookie(reply, settings)
      return
    }
    const m = meta(session)
    const data = JSON.stringify(session)
    const changed = data !== m.loaded
    if (!changed || (!m.stored && data === '{}')) {
      // Nothing to keep: a cookie that names no session we hold (forged, ended, replaced) is cleared.
      if (presented !== undefined && !m.stored) clearCookie(reply, settings)
      return
    }
    const id = session.sessionId
    try {
      await m.store.set(id, session)
    } catch (err) {
      if (!survive(err, request, reply, storage)) throw err
      return
    }
    m.stored = true
    m.loaded = data
    const signed = signer.sign(id)
    if (presented !== signed) {
      reply.setCookie(settings.name, signed, { path: '/', httpOnly: true, sameSite: 'lax', secure: settings.secure })
    }
  }
}, { name: 'session' })

function idFrom (signer: CookieSigner, presented: string): string | null {
  const unsigned = signer.unsign(presented)
  return unsigned.valid ? unsigned.value : null
}

function clearCookie (reply: FastifyReply, settings: CookieSettings): void {
  reply.clearCookie(settings.name, { path: '/', httpOnly: true, sameSite: 'lax', secure: settings.secure })
}

/**
 * What a response does when its session could not be stored because the disk is full (or the file damaged).
 * Reading a page does not depend on its session write (what is lost is a refresh of the idle timer, or a message
 * already shown), so the page is still sent. A request that changes something (a sign-in, a sign-out) must not look
 * done when its session was not stored: the error goes on to the error pages (503). Their own save then fails the
 * same way and is let go, so the error page is what the user sees, not Fastify's raw 500.
 * True when the response goes on without the write.
 */
function survive (err: unknown, request: FastifyRequest, reply: FastifyReply, storage: StorageMonitor): boolean {
  const failure = storageFailureOf(err)
  if (failure === undefined) return false
  if (reply.statusCode < 400 && !SAFE_METHODS.has(request.method)) {
    reply.removeHeader('location')
    return false
  }
  if (failure === 'damaged') storage.damageSeen(request.log, err)
  else storage.writeFailed(failure, request.log)
  return true
}
