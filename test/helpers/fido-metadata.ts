import 'reflect-metadata'
import { KeyObject, sign, webcrypto } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import * as x509 from '@peculiar/x509'
import type { MetadataBLOBPayloadEntry, MetadataStatement } from '@simplewebauthn/server'
import type { AttestationIdentity } from './webauthn.ts'

/**
 * A FIDO Metadata Service and authenticator vendors in miniature, generated at test time (nothing committed):
 * a metadata root CA that signs MDS3-shaped BLOBs (a JWT, RS256, x5c header) the way mds3.fidoalliance.org
 * does, and vendor CAs that issue packed attestation certificates to software authenticators. The certificates
 * are built with @peculiar/x509 (SimpleWebAuthn's own X.509 library) and signed with node:crypto keys.
 */

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const
// The FIDO extension that names the AAGUID in an attestation certificate (id-fido-gen-ce-aaguid).
const FIDO_GEN_CE_AAGUID = '1.3.6.1.4.1.45724.1.1.4'

const DAY = 86_400_000

function validity (): { notBefore: Date, notAfter: Date } {
  // Real time: certificate windows are checked against the system clock, not the tests' fake clock.
  return { notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 365 * DAY) }
}

async function keyPair (algorithm: typeof EC | typeof RSA): Promise<CryptoKeyPair> {
  return await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']) as CryptoKeyPair
}

async function certificateAuthority (name: string, algorithm: typeof EC | typeof RSA): Promise<{ certificate: x509.X509Certificate, keys: CryptoKeyPair }> {
  const keys = await keyPair(algorithm)
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    name,
    keys,
    signingAlgorithm: algorithm,
    ...validity(),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
    ]
  })
  return { certificate, keys }
}

/** An authenticator maker: its root CA goes into metadata statements, its attestation certificates into keys. */
export interface AttestationVendor {
  /** DER of the root, as a metadata statement's attestationRootCertificates carries it (base64). */
  root: Uint8Array
  /** A batch attestation certificate for `aaguid` (packed: OU "Authenticator Attestation", not a CA). */
  issue(aaguid: string): Promise<AttestationIdentity>
}

export async function createAttestationVendor (organisation: string): Promise<AttestationVendor> {
  const ca = await certificateAuthority(`CN=${organisation} Attestation Root, O=${organisation}, C=SE`, EC)
  return {
    root: new Uint8Array(ca.certificate.rawData),
    async issue (aaguid: string): Promise<AttestationIdentity> {
      const keys = await keyPair(EC)
      const leaf = await x509.X509CertificateGenerator.create({
        subject: `CN=${organisation} Batch, OU=Authenticator Attestation, O=${organisation}, C=SE`,
        issuer: ca.certificate.subject,
        publicKey: keys.publicKey,
        signingKey: ca.keys.privateKey,
        signingAlgorithm: EC,
        ...validity(),
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          // OCTET STRING (0x04, 16 bytes) holding the AAGUID.
          new x509.Extension(FIDO_GEN_CE_AAGUID, false, Buffer.concat([Buffer.from([0x04, 0x10]), Buffer.from(aaguid.replace(/-/g, ''), 'hex')]))
        ]
      })
      return { certificates: [new Uint8Array(leaf.rawData)], privateKey: KeyObject.from(keys.privateKey) }
    }
  }
}

/** A metadata statement as MDS3 publishes one, trimmed to what a relying party reads. */
export function metadataStatement (aaguid: string, description: string, roots: Uint8Array[]): MetadataStatement {
  return {
    legalHeader: 'Test metadata',
    aaguid,
    description,
    authenticatorVersion: 1,
    protocolFamily: 'fido2',
    schema: 3,
    upv: [{ major: 1, minor: 1 }],
    authenticationAlgorithms: ['secp256r1_ecdsa_sha256_raw'],
    publicKeyAlgAndEncodings: ['cose'],
    attestationTypes: ['basic_full'],
    userVerificationDetails: [[{ userVerificationMethod: 'passcode_external' }]],
    keyProtection: ['hardware', 'secure_element'],
    matcherProtection: ['on_chip'],
    attachmentHint: ['external', 'wired'],
    tcDisplay: [],
    attestationRootCertificates: roots.map((der) => Buffer.from(der).toString('base64'))
  } as MetadataStatement
}

/** One BLOB entry for `statement`, with its status history (FIDO_CERTIFIED unless told otherwise). */
export function metadataEntry (statement: MetadataStatement, statuses: string[] = ['FIDO_CERTIFIED']): MetadataBLOBPayloadEntry {
  return {
    aaguid: statement.aaguid,
    metadataStatement: statement,
    statusReports: statuses.map((status) => ({ status, effectiveDate: '2025-01-01' })),
    timeOfLastStatusChange: '2025-01-01'
  } as MetadataBLOBPayloadEntry
}

/** The metadata service: a root (PEM, what the operator would configure) and a signer of BLOBs under it. */
export interface MetadataService {
  rootPem: string
  /** An MDS3 BLOB: a JWT signed RS256 by a certificate issued by the root, carried in its x5c header. */
  blob(entries: MetadataBLOBPayloadEntry[], options?: { no?: number, nextUpdate?: Date }): string
}

export async function createMetadataService (name = 'Test FIDO Metadata'): Promise<MetadataService> {
  const root = await certificateAuthority(`CN=${name} Root, O=${name}, C=US`, RSA)
  const signerKeys = await keyPair(RSA)
  const signer = await x509.X509CertificateGenerator.create({
    subject: `CN=${name} BLOB Signer, O=${name}, C=US`,
    issuer: root.certificate.subject,
    publicKey: signerKeys.publicKey,
    signingKey: root.keys.privateKey,
    signingAlgorithm: RSA,
    ...validity(),
    extensions: [new x509.BasicConstraintsExtension(false, undefined, true)]
  })
  const signingKey = KeyObject.from(signerKeys.privateKey)
  return {
    rootPem: root.certificate.toString('pem'),
    blob (entries, options = {}) {
      const header = { alg: 'RS256', typ: 'JWT', x5c: [Buffer.from(signer.rawData).toString('base64')] }
      const nextUpdate = (options.nextUpdate ?? new Date(Date.now() + 30 * DAY)).toISOString().slice(0, 10)
      const payload = { legalHeader: 'Test metadata', no: options.no ?? 1, nextUpdate, entries }
      const signingInput = `${base64url(header)}.${base64url(payload)}`
      return `${signingInput}.${sign('sha256', Buffer.from(signingInput), signingKey).toString('base64url')}`
    }
  }
}

/** Writes a BLOB and the root to trust into `dir`, as an operator would, and returns the variables to set. */
export function metadataFiles (dir: string, blob: string, rootPem: string): { FIDO_MDS_FILE: string, FIDO_MDS_ROOT_CERT: string } {
  const blobFile = path.join(dir, 'mds-blob.jwt')
  const rootFile = path.join(dir, 'mds-root.pem')
  writeFileSync(blobFile, blob)
  writeFileSync(rootFile, rootPem)
  return { FIDO_MDS_FILE: blobFile, FIDO_MDS_ROOT_CERT: rootFile }
}

function base64url (value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}
