import { Signer } from '@fastify/cookie'

/** What @fastify/cookie accepts as its `secret`, and what the session plugin signs its cookie with. */
export interface CookieSigner {
  sign(value: string): string
  unsign(signed: string): { valid: true, renew: boolean, value: string } | { valid: false, renew: false, value: null }
}

/**
 * @fastify/cookie's HMAC signer, remembering the cookies it has found genuine. The session and CSRF cookies come
 * back on every request, and a session is signed again whenever it is saved: with one key, the answer for a given
 * input never changes, so it is worked out once per cookie and looked up after that (a pure-function cache: nothing
 * about a session is kept, and a session deleted from the database is gone just the same).
 *
 * Only cookies a browser presented with a valid signature are remembered: forged cookies cannot push real ones out,
 * and the fresh ids of visitors who never keep a session (each anonymous request gets one) are not kept either. Once
 * `capacity` cookies are remembered, the memory starts again empty.
 */
export function rememberingSigner (secret: string | Buffer, capacity = 10_000): CookieSigner {
  const signer = new Signer(secret, 'sha256') as CookieSigner
  const signedFor = new Map<string, string>()
  const valueOf = new Map<string, string>()
  return {
    sign (value) {
      return signedFor.get(value) ?? signer.sign(value)
    },
    unsign (input) {
      const value = valueOf.get(input)
      if (value !== undefined) return { valid: true, renew: false, value }
      const result = signer.unsign(input)
      if (result.valid) {
        if (valueOf.size >= capacity) {
          valueOf.clear()
          signedFor.clear()
        }
        valueOf.set(input, result.value)
        signedFor.set(result.value, input)
      }
      return result
    }
  }
}
