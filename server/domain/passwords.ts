import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

// scrypt parameters (OWASP: N=2^17, r=8, p=1). Stored with the hash, so they can be raised later and old
// hashes still verify under the parameters they were made with.
export const PASSWORD_PARAMS = { N: 2 ** 17, r: 8, p: 1 }
const KEY_LENGTH = 32
const MAX_MEMORY = 256 * 1024 * 1024

function derive (password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { ...options, maxmem: MAX_MEMORY }, (err, key) => {
      if (err) reject(err)
      else resolve(key)
    })
  })
}

export async function hashPassword (password: string, params: { N: number, r: number, p: number } = PASSWORD_PARAMS): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, params)
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

// Compared against when the account does not exist, so both answers take the same time.
let dummyHash: Promise<string> | undefined

/** Constant-time check; `stored` undefined means "no such user" and still costs one scrypt. */
export async function verifyPassword (password: string, stored: string | null | undefined): Promise<boolean> {
  const target = stored ?? await (dummyHash ??= hashPassword(randomBytes(16).toString('hex')))
  const parts = target.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [, n, r, p, saltText, keyText] = parts
  const expected = Buffer.from(keyText, 'base64')
  const actual = await derive(password, Buffer.from(saltText, 'base64'), { N: Number(n), r: Number(r), p: Number(p) })
  return timingSafeEqual(actual, expected) && stored != null
}

const PASSWORD_ALPHABET = 'abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789'

/** A random password for `create-user` when none is given: 20 characters from an unambiguous alphabet. */
export function generatePassword (length = 20): string {
  const bytes = randomBytes(length * 2)
  let out = ''
  for (const byte of bytes) {
    // Rejection sampling keeps the distribution uniform.
    if (byte < 256 - (256 % PASSWORD_ALPHABET.length)) out += PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length]
    if (out.length === length) return out
  }
  return out + generatePassword(length - out.length)
}

export const MIN_PASSWORD_LENGTH = 12
