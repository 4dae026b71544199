import { randomBytes } from 'node:crypto'

/**
 * A CSRF token masked afresh for every response, as Rails and Django mask theirs: a random one-time pad the length
 * of the token, then the token shifted character by character by the pad, both written out. No two responses carry
 * the same token bytes, so a compression side channel (BREACH: an HTML page compressed by a proxy, with text an
 * attacker chose next to the token) cannot recover it one character at a time; unmasking gives the same token back.
 *
 * Works on tokens written in base64url's 64 characters (what @fastify/csrf makes); the pad is drawn from the same
 * alphabet, and a masked token is base64url again: `pad + shifted`, twice the token's length.
 */
const CODES = Uint8Array.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_', (c) => c.charCodeAt(0))
const INDEX = new Int8Array(128).fill(-1)
for (let i = 0; i < CODES.length; i++) INDEX[CODES[i]] = i

/** Longer than any token @fastify/csrf makes, masked (2 × 96 today); anything longer is not ours. */
export const MASKED_TOKEN_MAX_LENGTH = 512

/**
 * Pads come from one block of random bytes, drawn again when used up (as Node's randomUUID batches its entropy): a
 * call into OpenSSL per page costs far more than its few bytes, its code being cold by the time a page asks.
 * Each byte gives one character of the pad (256 is a multiple of 64, so every character is equally likely), and no
 * byte is used twice.
 */
const POOL_SIZE = 8192
let pool = Buffer.alloc(0)
let used = 0

/**
 * A token read once into its characters' places in the alphabet, which is what maskToken shifts: read from the
 * string on every page, it was more than half of masking's cost (the token @fastify/csrf makes is joined from
 * pieces, which each character read has to walk through). Throws for a token that is empty, too long to mask, or
 * not written in base64url: a programming error, never masked.
 */
export type PreparedToken = Uint8Array & { readonly prepared: unique symbol }

export function prepareToken (token: string): PreparedToken {
  const length = token.length
  if (length === 0 || length > MASKED_TOKEN_MAX_LENGTH / 2) throw new Error(`maskToken: a token of ${length} characters`)
  const values = new Uint8Array(length)
  for (let i = 0; i < length; i++) {
    const code = token.charCodeAt(i)
    const value = code < 128 ? INDEX[code] : -1
    if (value < 0) throw new Error('maskToken: the token is not written in base64url')
    values[i] = value
  }
  return values as PreparedToken
}

/** Where a masked token is written before it is read out as a string: one for all, as nothing else runs meanwhile. */
const written = Buffer.allocUnsafeSlow(MASKED_TOKEN_MAX_LENGTH)

export function maskToken (token: PreparedToken): string {
  const length = token.length
  if (used + length > pool.length) {
    pool = randomBytes(POOL_SIZE)
    used = 0
  }
  // The module's arrays taken into locals: read from the module in the loop, each use was checked again (about half of
  // the loop's instructions).
  const pad = pool
  const from = used
  const codes = CODES
  const out = written
  // Written into bytes and read as one string: a string built a character at a time is a chain of 2 × length pieces.
  for (let i = 0; i < length; i++) {
    const shift = pad[from + i] & 63
    out[i] = codes[shift]
    out[length + i] = codes[(token[i] + shift) & 63]
  }
  used = from + length
  return out.toString('latin1', 0, 2 * length)
}

/** The token a masked token stands for, or undefined when it is not a masked token (wrong length or characters). */
export function unmaskToken (masked: unknown): string | undefined {
  if (typeof masked !== 'string' || masked.length === 0 || masked.length % 2 !== 0 || masked.length > MASKED_TOKEN_MAX_LENGTH) return undefined
  const length = masked.length / 2
  const token = Buffer.allocUnsafe(length)
  for (let i = 0; i < length; i++) {
    const padCode = masked.charCodeAt(i)
    const shiftedCode = masked.charCodeAt(length + i)
    const shift = padCode < 128 ? INDEX[padCode] : -1
    const value = shiftedCode < 128 ? INDEX[shiftedCode] : -1
    if (shift < 0 || value < 0) return undefined
    token[i] = CODES[(value - shift) & 63]
  }
  return token.toString('latin1')
}
