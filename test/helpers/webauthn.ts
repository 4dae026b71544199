import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto'
import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON
} from '@simplewebauthn/server'
import { isoCBOR } from '@simplewebauthn/server/helpers'
import type { User } from '../../server/domain/users.ts'
import { anonymous, type Agent, type TestApp } from './app.ts'

/**
 * A software authenticator for supertest: it answers the portal's options as a CTAP2 authenticator would
 * (ES256 keys, WebAuthn authenticator data, CBOR attestation objects), so ceremonies run through the real
 * verifier without a browser. It can leave out user verification, claim any AAGUID, and attest with
 * `fmt: "none"`, with `packed` self attestation (signed by the new credential itself), or with a `packed`
 * statement signed by an attestation certificate it is given.
 */

/** A packed ("full") attestation: the certificate chain (leaf first, DER) and the leaf's private key. */
export interface AttestationIdentity {
  certificates: Uint8Array[]
  privateKey: KeyObject
}

export interface SoftwareCredential {
  /** base64url, as the portal stores it. */
  credentialId: string
  /** COSE_Key bytes, as the portal stores them. */
  publicKey: Uint8Array
  privateKey: KeyObject
  rpId: string
  userHandle: string | undefined
  counter: number
}

// Authenticator data flags (WebAuthn §6.1).
const USER_PRESENT = 0x01
const USER_VERIFIED = 0x04
const ATTESTED_CREDENTIAL = 0x40

export class SoftwareAuthenticator {
  /** Whether the next ceremonies report user verification (a PIN or fingerprint was checked). */
  userVerification: boolean
  readonly credentials: SoftwareCredential[] = []
  private readonly aaguid: Uint8Array
  private readonly attestation: AttestationIdentity | 'self' | undefined

  constructor (options: { aaguid?: string, attestation?: AttestationIdentity | 'self', userVerification?: boolean } = {}) {
    this.aaguid = Buffer.from((options.aaguid ?? '00000000-0000-0000-0000-000000000000').replace(/-/g, ''), 'hex')
    this.attestation = options.attestation
    this.userVerification = options.userVerification ?? true
  }

  /** A key pair for `rpId`, without a ceremony: for storing straight into the portal's method table. */
  createCredential (rpId: string, userHandle?: string): SoftwareCredential {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = publicKey.export({ format: 'jwk' })
    const cose = isoCBOR.encode(new Map<number, number | Uint8Array>([
      [1, 2], [3, -7], [-1, 1],
      [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))],
      [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))]
    ]))
    const credential: SoftwareCredential = { credentialId: randomBytes(16).toString('base64url'), publicKey: cose, privateKey, rpId, userHandle, counter: 0 }
    this.credentials.push(credential)
    return credential
  }

  /** navigator.credentials.create(), answered. */
  register (options: PublicKeyCredentialCreationOptionsJSON, origin: string): RegistrationResponseJSON {
    const rpId = options.rp.id ?? new URL(origin).hostname
    const credential = this.createCredential(rpId, options.user.id)
    const id = Buffer.from(credential.credentialId, 'base64url')
    const attested = Buffer.concat([Buffer.from(this.aaguid), u16(id.length), id, Buffer.from(credential.publicKey)])
    const authData = this.authenticatorData(rpId, ATTESTED_CREDENTIAL, 0, attested)
    const clientDataJSON = clientData('webauthn.create', options.challenge, origin)
    const attStmt = new Map<string, unknown>()
    let fmt = 'none'
    if (this.attestation !== undefined) {
      fmt = 'packed'
      const signer = this.attestation === 'self' ? credential.privateKey : this.attestation.privateKey
      attStmt.set('alg', -7)
      attStmt.set('sig', new Uint8Array(sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), signer)))
      if (this.attestation !== 'self') attStmt.set('x5c', this.attestation.certificates.map((c) => new Uint8Array(c)))
    }
    const attestationObject = isoCBOR.encode(new Map<string, unknown>([['fmt', fmt], ['attStmt', attStmt], ['authData', new Uint8Array(authData)]]) as never)
    return {
      id: credential.credentialId,
      rawId: credential.credentialId,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        attestationObject: Buffer.from(attestationObject).toString('base64url'),
        transports: ['usb']
      },
      authenticatorAttachment: 'cross-platform',
      clientExtensionResults: {}
    }
  }

  /** navigator.credentials.get(), answered with this authenticator's credential for the RP (an allowed one, if listed). */
  authenticate (options: PublicKeyCredentialRequestOptionsJSON, origin: string): AuthenticationResponseJSON {
    const rpId = options.rpId ?? new URL(origin).hostname
    const allowed = new Set((options.allowCredentials ?? []).map((c) => c.id))
    const credential = this.credentials.find((c) => c.rpId === rpId && (allowed.size === 0 || allowed.has(c.credentialId)))
    if (credential === undefined) throw new Error(`no credential for ${rpId}`)
    credential.counter++
    const authData = this.authenticatorData(rpId, 0, credential.counter)
    const clientDataJSON = clientData('webauthn.get', options.challenge, origin)
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), credential.privateKey)
    return {
      id: credential.credentialId,
      rawId: credential.credentialId,
      type: 'public-key',
      response: {
        clientDataJSON: clientDataJSON.toString('base64url'),
        authenticatorData: authData.toString('base64url'),
        signature: signature.toString('base64url'),
        ...(credential.userHandle === undefined ? {} : { userHandle: credential.userHandle })
      },
      clientExtensionResults: {}
    }
  }

  private authenticatorData (rpId: string, extraFlags: number, counter: number, attested: Buffer = Buffer.alloc(0)): Buffer {
    const flags = USER_PRESENT | (this.userVerification ? USER_VERIFIED : 0) | extraFlags
    const count = Buffer.alloc(4)
    count.writeUInt32BE(counter)
    return Buffer.concat([sha256(Buffer.from(rpId)), Buffer.from([flags]), count, attested])
  }
}

function clientData (type: string, challenge: string, origin: string): Buffer {
  return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }))
}

function sha256 (data: Buffer): Buffer {
  return createHash('sha256').update(data).digest()
}

function u16 (n: number): Buffer {
  const b = Buffer.alloc(2)
  b.writeUInt16BE(n)
  return b
}

/** Gives `user` a passkey held by `authenticator`, stored as a registration would store it. */
export function addSoftwarePasskey (testApp: TestApp, user: User, authenticator: SoftwareAuthenticator) {
  const credential = authenticator.createCredential(testApp.config.webauthn.rpId)
  return testApp.services.methods.addPasskey(user.id, {
    name: 'Security key', credentialId: credential.credentialId, publicKey: credential.publicKey, counter: 0, transports: ['usb'], aaguid: '00000000-0000-0000-0000-000000000000', backedUp: false
  })
}

/** The token static/js/passkey.js sends, read where it reads it (pages with a script carry it). */
export async function pageToken (agent: Agent, path: string): Promise<string> {
  const page = await agent.get(path)
  const match = /<meta name="csrf-token" content="([^"]+)">/.exec(page.text)
  if (match === null) throw new Error(`no csrf-token meta on ${path} (status ${page.status})`)
  return match[1]
}

/** A POST as static/js/passkey.js makes it: JSON in, JSON out, CSRF token in the header. */
export function postJson (agent: Agent, path: string, token: string, body: unknown) {
  return agent.post(path).set('accept', 'application/json').set('x-csrf-token', token).send(body as object)
}

/** "Sign in with a passkey" as static/js/passkey.js does it, answered by `authenticator`, from a fresh browser. */
export async function passkeySignIn (testApp: TestApp, authenticator: SoftwareAuthenticator, next = '/') {
  const agent = anonymous(testApp)
  const token = await pageToken(agent, '/login')
  const { body } = await postJson(agent, '/login/passkey/options', token, {})
  const res = await postJson(agent, '/login/passkey/verify', token, { challengeId: body.challengeId, response: authenticator.authenticate(body.options, testApp.config.webauthn.origin), next })
  return { agent, res, options: body.options }
}

/** "Use my passkey" on the step-up page, answered by `authenticator`. */
export async function passkeyStepUp (testApp: TestApp, agent: Agent, authenticator: SoftwareAuthenticator, next = '/') {
  const token = await pageToken(agent, `/step-up?next=${encodeURIComponent(next)}`)
  const { body } = await postJson(agent, '/step-up/passkey/options', token, {})
  const res = await postJson(agent, '/step-up/passkey/verify', token, { challengeId: body.challengeId, response: authenticator.authenticate(body.options, testApp.config.webauthn.origin), next })
  return { res, options: body.options }
}
