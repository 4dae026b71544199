import { randomBytes } from 'node:crypto'
import type { KeyedHasher } from './keyed-hash.ts'

/** Signs a value and checks a signed one: the wiring hands in @fastify/cookie's Signer (an HMAC). */
export interface TokenSigner {
  sign (value: string): string
  unsign (signed: string): { valid: boolean, value: string | null }
}

/** What a browser keeps to be known next time; the web layer stores it as an HttpOnly, SameSite=Lax cookie. */
export interface DeviceToken {
  name: string
  value: string
  maxAgeSeconds: number
  /** Send it over https only (the portal is served over https). */
  secure: boolean
}

export interface KnownDevicesOptions {
  lifetimeMs: number
  secure: boolean
}

const DEVICE_ID = /^[0-9a-f]{32}$/

/**
 * Browsers that have signed in to an account before (OWASP's "device cookies"): after a successful sign-in the
 * browser gets a signed token naming the account by a keyed hash (never the address itself) and a random device
 * id. Sign-in counts that browser's failures on its own, so a stranger's guesses elsewhere cannot lock it out.
 */
export class KnownDevices {
  constructor (
    private readonly signer: TokenSigner,
    private readonly hasher: KeyedHasher,
    private readonly now: () => Date,
    private readonly options: KnownDevicesOptions
  ) {}

  /** The device id a browser proves for this account with the cookies it sent, or null (none, tampered, another account's, expired). */
  recognise (email: string, cookies: Readonly<Record<string, string | undefined>>): string | null {
    const account = this.account(email)
    const presented = cookies[cookieName(account)]
    if (presented === undefined) return null
    const { valid, value } = this.signer.unsign(presented)
    if (!valid || value === null) return null
    const [forAccount, device, issuedAt, extra] = value.split('.')
    if (forAccount !== account || !DEVICE_ID.test(device ?? '') || !/^\d+$/.test(issuedAt ?? '') || extra !== undefined) return null
    if (this.now().getTime() - Number(issuedAt) >= this.options.lifetimeMs) return null
    return device
  }

  /** A fresh token for this browser: its known device id, or a new one. Re-issued at each sign-in, so it lasts while used. */
  issue (email: string, device: string | null): DeviceToken {
    const account = this.account(email)
    const id = device ?? randomBytes(16).toString('hex')
    return {
      name: cookieName(account),
      value: this.signer.sign(`${account}.${id}.${this.now().getTime()}`),
      maxAgeSeconds: Math.floor(this.options.lifetimeMs / 1000),
      secure: this.options.secure
    }
  }

  private account (email: string): string {
    return this.hasher.hash(email, 'device-cookie account')
  }
}

// One cookie per account, so that two people sharing a browser each keep theirs.
function cookieName (account: string): string {
  return `mfa_device_${account.slice(0, 16)}`
}
