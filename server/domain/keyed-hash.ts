import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

/**
 * Keyed hashes for short secrets (SMS codes, passes, link tokens): a database copy alone cannot be brute-forced
 * offline, because the key lives only in configuration. The key is derived from ENCRYPTION_KEY for this purpose.
 */
export class KeyedHasher {
  private readonly key: Buffer

  constructor (encryptionKey: Buffer) {
    this.key = Buffer.from(hkdfSync('sha256', encryptionKey, Buffer.alloc(0), 'mfa-rollout keyed hash v1', 32))
  }

  /** `context` binds the hash to where it is used (a row id, a purpose), so hashes cannot be swapped. */
  hash (value: string, context: string): string {
    return createHmac('sha256', this.key).update(context).update('\0').update(value).digest('base64url')
  }

  matches (value: string, context: string, expected: string): boolean {
    const actual = Buffer.from(this.hash(value, context))
    const wanted = Buffer.from(expected)
    return actual.length === wanted.length && timingSafeEqual(actual, wanted)
  }
}
