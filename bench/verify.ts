import { createHash, createHmac, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto'
import { verifyAuthenticationResponse } from '@simplewebauthn/server'
import { cose, isoBase64URL, isoCBOR } from '@simplewebauthn/server/helpers'
import { Secret } from 'otpauth'
import { matchTotp } from '../server/domain/totp.ts'

/**
 * `npm run bench -- verify [seconds]`: how fast one core checks what users send, against the bare crypto
 * underneath measured in the same run on the same inputs.
 *  - TOTP: the portal's check (otpauth, ±1 step window) vs the raw HMAC-SHA1 + truncation a ±1 window needs
 *    (three steps).
 *  - WebAuthn: @simplewebauthn/server's full assertion verification vs node:crypto's ECDSA P-256 verify of
 *    the same signature over the same data.
 */
export async function main (args: string[]): Promise<void> {
  const seconds = Number(args[0] ?? 3)
  const log = (line: string) => process.stderr.write(`${line}\n`)

  // ---- TOTP ----
  const secret = new Secret({ size: 20 })
  const at = new Date('2026-11-25T09:00:15Z')
  const step = Math.floor(at.getTime() / 30_000)
  const code = hotp(secret.bytes, step)
  if (matchTotp(secret.base32, code, at) !== step) throw new Error('TOTP self-check failed')
  const totp = measure(seconds, () => { matchTotp(secret.base32, code, at) })
  const totpCeiling = measure(seconds, () => {
    for (let s = step - 1; s <= step + 1; s++) if (hotp(secret.bytes, s) === code) break
  })
  log(`totp: ${totp.toFixed(0)} checks/s; raw HMAC-SHA1 window: ${totpCeiling.toFixed(0)}/s`)

  // ---- WebAuthn assertion ----
  const assertion = await softwareAssertion()
  const options = {
    response: assertion.response,
    expectedChallenge: assertion.challenge,
    expectedOrigin: 'https://mfa.example.org',
    expectedRPID: 'mfa.example.org',
    credential: { id: assertion.response.id, publicKey: assertion.cosePublicKey, counter: 0 },
    requireUserVerification: false
  }
  if (!(await verifyAuthenticationResponse(options)).verified) throw new Error('WebAuthn self-check failed')
  const webauthn = await measureAsync(seconds, async () => { await verifyAuthenticationResponse(options) })
  const webauthnCeiling = measure(seconds, () => { verify('sha256', assertion.signedData, assertion.publicKey, assertion.signature) })
  log(`webauthn: ${webauthn.toFixed(0)} verifications/s; raw crypto.verify: ${webauthnCeiling.toFixed(0)}/s`)

  process.stdout.write(`${JSON.stringify({
    bench: 'verify',
    seconds,
    totp_checks_per_s: Math.round(totp),
    totp_ceiling_per_s: Math.round(totpCeiling),
    totp_ratio: round(totp / totpCeiling),
    webauthn_verifications_per_s: Math.round(webauthn),
    webauthn_ceiling_per_s: Math.round(webauthnCeiling),
    webauthn_ratio: round(webauthn / webauthnCeiling)
  })}\n`)
}

/** RFC 4226 HOTP with HMAC-SHA1 and dynamic truncation: the bare work of one TOTP step. */
function hotp (key: Uint8Array, counter: number): string {
  const message = Buffer.alloc(8)
  message.writeBigUInt64BE(BigInt(counter))
  const mac = createHmac('sha1', key).update(message).digest()
  const offset = mac[mac.length - 1] & 0x0f
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0')
}

/** A P-256 authenticator in software: one signed assertion for rp mfa.example.org. */
async function softwareAssertion () {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' })
  const coseKey = new Map<number, number | Uint8Array>([
    [cose.COSEKEYS.kty, cose.COSEKTY.EC2], [cose.COSEKEYS.alg, cose.COSEALG.ES256], [cose.COSEKEYS.crv, cose.COSECRV.P256],
    [cose.COSEKEYS.x, isoBase64URL.toBuffer(jwk.x!)], [cose.COSEKEYS.y, isoBase64URL.toBuffer(jwk.y!)]
  ])
  const challenge = isoBase64URL.fromBuffer(crypto.getRandomValues(new Uint8Array(32)))
  const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.get', challenge, origin: 'https://mfa.example.org', crossOrigin: false }))
  const authenticatorData = Buffer.concat([createHash('sha256').update('mfa.example.org').digest(), Buffer.from([0x01]), Buffer.alloc(4)])
  const signedData = Buffer.concat([authenticatorData, createHash('sha256').update(clientDataJSON).digest()])
  const signature = sign('sha256', signedData, privateKey as KeyObject)
  const credentialId = isoBase64URL.fromBuffer(crypto.getRandomValues(new Uint8Array(16)))
  return {
    challenge,
    signedData,
    signature,
    publicKey,
    cosePublicKey: isoCBOR.encode(coseKey as never) as Uint8Array<ArrayBuffer>,
    response: {
      id: credentialId,
      rawId: credentialId,
      type: 'public-key' as const,
      clientExtensionResults: {},
      response: {
        clientDataJSON: isoBase64URL.fromBuffer(clientDataJSON),
        authenticatorData: isoBase64URL.fromBuffer(authenticatorData),
        signature: isoBase64URL.fromBuffer(signature)
      }
    }
  }
}

function measure (seconds: number, work: () => void): number {
  for (let i = 0; i < 200; i++) work()
  const end = performance.now() + seconds * 1000
  let n = 0
  const start = performance.now()
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) work()
    n += 50
  }
  return n / ((performance.now() - start) / 1000)
}

async function measureAsync (seconds: number, work: () => Promise<void>): Promise<number> {
  for (let i = 0; i < 200; i++) await work()
  const end = performance.now() + seconds * 1000
  let n = 0
  const start = performance.now()
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await work()
    n += 50
  }
  return n / ((performance.now() - start) / 1000)
}

function round (value: number): number {
  return Math.round(value * 1000) / 1000
}
