import { Signer } from '@fastify/cookie'

/** What @fastify/cookie and @fastify/session accept as their `secret`: something that signs and checks a value. */
export interface CookieSigner {
  sign(value: string): string
  unsign(signed: string): { valid: true, renew: boolean, value: string } | { valid: false, renew: false, value: null }
}

/**
 * @fastify/cookie's HMAC signer, remembering its recent answers. The session and CSRF cookies come back on every
 * request, and @fastify/session signs the session id again each time it restores a session: with one key, the
 * answer for a given input never changes, so it is computed once and looked up after that (a pure-function cache:
 * nothing about a session is kept, and a session deleted from the database is gone just the same).
 *
 * Only valid signatures are remembered, so a stream of forged cookies cannot push real ones out; the oldest entry
 * goes once `capacity` is reached.
 */
export function rememberingSigner (secret: string | Buffer, capacity = 10_000): CookieSigner {
  const signer = new Signer(secret, 'sha256') as CookieSigner
  const signed = new Map<string, string>()
  const checked = new Map<string, string>()
  function remember (memory: Map<string, string>, key: string, value: string): void {
    if (memory.size >= capacity) memory.delete(memory.keys().next().value as string)
    memory.set(key, value)
  }
  return {
    sign (value) {
      let result = signed.get(value)
      if (result === undefined) {
        result = signer.sign(value)
        remember(signed, value, result)
        remember(checked, result, value)
      }
      return result
    },
    unsign (input) {
      const value = checked.get(input)
      if (value !== undefined) return { valid: true, renew: false, value }
      const result = signer.unsign(input)
      if (result.valid) {
        remember(checked, input, result.value)
        remember(signed, result.value, input)
      }
      return result
    }
  }
}
