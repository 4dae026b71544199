import { DomainError } from '../domain/errors.ts'
import type { Command } from './main.ts'

export const rotateKey: Command = {
  name: 'rotate-key',
  summary: 'Re-seal every stored secret (authenticator apps, setups in progress) under ENCRYPTION_KEY, with the old key(s) in ENCRYPTION_KEYS_PREVIOUS ' +
    'for this run; all or nothing. Afterwards the old keys can be dropped.',
  async run (_input, services, io) {
    const keyId = services.config.encryptionKeyId
    let resealed: number
    try {
      // One IMMEDIATE transaction: a secret that cannot be opened leaves every row as it was, and the audit event
      // exists exactly when the re-sealing does.
      resealed = await services.atomically(async () => {
        const count = await services.methods.resealAll() + await services.pending.resealAll()
        await services.audit.append({ action: 'encryption.key_rotated', actorLabel: 'cli', details: { resealed: count, keyId } })
        return count
      })
    } catch (err) {
      throw new DomainError('reseal_failed', `nothing was re-sealed: ${(err as Error).message}. ` +
        'Every stored secret must open with ENCRYPTION_KEY or a key in ENCRYPTION_KEYS_PREVIOUS; fix that and run rotate-key again.',
        { problem: (err as Error).message })
    }
    io.out(`re-sealed ${resealed} secret${resealed === 1 ? '' : 's'} under key ${keyId}`)
    return 0
  }
}
