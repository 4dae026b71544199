import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'

/**
 * AES-256-GCM for secrets at rest. A sealed value names the key it was sealed under (so keys can rotate) and is
 * bound to where it lives through the additional data (e.g. the row id): copied to another row, it will not open.
 * Format: v1.<keyId>.<iv>.<ciphertext>.<tag>, base64url parts.
 */
export class Sealer {
  private readonly keys = new Map<string, Buffer>()
  readonly currentKeyId: string

  constructor (current: Buffer, previous: readonly Buffer[] = []) {
    this.currentKeyId = keyId(current)
    this.keys.set(this.currentKeyId, current)
    for (const key of previous) this.keys.set(keyId(key), key)
  }

  seal (plaintext: string, boundTo: string): string {
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentKeyId)!, iv)
    cipher.setAAD(Buffer.from(boundTo))
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return ['v1', this.currentKeyId, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
  }

  /** Throws when the key is unknown, the value was altered, or it is bound to something else. */
  open (sealed: string, boundTo: string): string {
    const [version, id, iv, ciphertext, tag] = sealed.split('.')
    const key = this.keys.get(id)
    if (version !== 'v1' || key === undefined) throw new Error(`sealed with an unknown key (${id}); set ENCRYPTION_KEYS_PREVIOUS`)
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'))
    decipher.setAAD(Buffer.from(boundTo))
    decipher.setAuthTag(Buffer.from(tag, 'base64url'))
    return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8')
  }

  isCurrent (sealed: string): boolean {
    return sealed.split('.')[1] === this.currentKeyId
  }

  /**
   * Key rotation for one table: every value not under the current key is opened (with its binding) and sealed
   * again through `write`. Returns how many were re-sealed; throws on the first value that will not open, so the
   * caller's transaction changes nothing.
   */
  resealRows (rows: Iterable<{ id: string, sealed: string | null }>, boundTo: (id: string) => string, write: (id: string, sealed: string) => void): number {
    let resealed = 0
    for (const { id, sealed } of rows) {
      if (sealed === null || this.isCurrent(sealed)) continue
      write(id, this.seal(this.open(sealed, boundTo(id)), boundTo(id)))
      resealed++
    }
    return resealed
  }
}

export function keyId (key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8)
}
