import { SettingsService, type MetadataBLOBPayloadEntry } from '@simplewebauthn/server'
import { convertCertBufferToPEM, validateCertificatePath, verifyMDSBlob } from '@simplewebauthn/server/helpers'

/** Why an attestation does not prove the authenticator's AAGUID (for the audit log). */
export type AttestationRefusal = 'aaguid_not_in_metadata' | 'authenticator_compromised' | 'attestation_untrusted'

// Status reports after which a model's attestation proves nothing (SimpleWebAuthn's MetadataService refuses the
// same four), or that the FIDO Alliance withdrew.
const COMPROMISED = new Set(['USER_VERIFICATION_BYPASS', 'ATTESTATION_KEY_COMPROMISE', 'USER_KEY_REMOTE_COMPROMISE', 'USER_KEY_PHYSICAL_COMPROMISE', 'REVOKED'])

// The FIDO Alliance's MDS roots as SimpleWebAuthn ships them, read before anything could change them.
const FIDO_MDS_ROOTS = SettingsService.getRootCertificates({ identifier: 'mds' })

/**
 * FIDO Metadata Service statements (MDS3) from a BLOB the operator downloaded, kept only after SimpleWebAuthn
 * verified the BLOB: its x5c chain up to the MDS root, and its signature. They say, per AAGUID, which root
 * certificates that model's attestation certificates chain to, and whether the model was reported compromised:
 * with them an AAGUID becomes something a key proves instead of something it claims.
 *
 * Why not SimpleWebAuthn's MetadataService: it is one process-wide instance consulted by every registration
 * (so one portal's statements would apply to all users and to every app a test process builds), and it
 * initialises from statements it does not verify or from URLs it downloads; a file checked here, per portal,
 * keeps the trust decision in one visible place.
 */
export class AuthenticatorMetadata {
  private constructor (
    private readonly entries: ReadonlyMap<string, MetadataBLOBPayloadEntry>,
    /** The BLOB's serial number (`no`). */
    readonly serial: number,
    /** When the FIDO Alliance publishes the next BLOB: a file older than that may miss compromise reports. */
    readonly nextUpdate: Date
  ) {}

  /**
   * Verifies an MDS3 BLOB with SimpleWebAuthn's verifyMDSBlob: its x5c chain must reach `rootPem` (a private
   * metadata service) or, by default, the FIDO Alliance's root, and its signature must match. Throws otherwise.
   */
  static async fromBlob (blob: string, rootPem?: string): Promise<AuthenticatorMetadata> {
    // verifyMDSBlob reads its trust anchors from SimpleWebAuthn's process-wide SettingsService, synchronously
    // before its first await: ours are set for that call only and the defaults put back at once, so one
    // portal's root never reaches another's verification. (The tests with a locally generated root fail if a
    // future version reads them later.)
    SettingsService.setRootCertificates({ identifier: 'mds', certificates: rootPem === undefined ? FIDO_MDS_ROOTS : [rootPem] })
    let verifying: ReturnType<typeof verifyMDSBlob>
    try {
      verifying = verifyMDSBlob(blob.trim())
    } finally {
      SettingsService.setRootCertificates({ identifier: 'mds', certificates: FIDO_MDS_ROOTS })
    }
    const { payload, parsedNextUpdate } = await verifying
    const entries = new Map<string, MetadataBLOBPayloadEntry>()
    for (const entry of payload.entries) {
      if (entry.aaguid !== undefined && entry.metadataStatement !== undefined) entries.set(entry.aaguid.toLowerCase(), entry)
    }
    return new AuthenticatorMetadata(entries, payload.no, parsedNextUpdate)
  }

  /**
   * Why the attestation certificates `x5c` (leaf first, as the attestation statement carries them) do not prove
   * `aaguid`, or null when they do: the model must be described, not reported compromised, and the chain must
   * reach a root its statement lists. (The caller has already checked, through SimpleWebAuthn, that the leaf
   * signed this registration.)
   */
  async refusal (aaguid: string, x5c: ReadonlyArray<Uint8Array<ArrayBuffer>>): Promise<AttestationRefusal | null> {
    const entry = this.entries.get(aaguid.toLowerCase())
    const statement = entry?.metadataStatement
    if (entry === undefined || statement === undefined) return 'aaguid_not_in_metadata'
    if (entry.statusReports.some((report) => COMPROMISED.has(report.status))) return 'authenticator_compromised'
    const roots = statement.attestationRootCertificates.map((root) => convertCertBufferToPEM(root))
    // With no roots, validateCertificatePath would accept anything: no roots means nothing can be proven.
    const fullAttestation = statement.attestationTypes.some((type) => type === 'basic_full' || type === 'attca')
    if (roots.length === 0 || !fullAttestation || x5c.length === 0) return 'attestation_untrusted'
    const chain = x5c.map((certificate) => convertCertBufferToPEM(certificate))
    // A model may attest with exactly the certificate its statement lists (MDS calls it self-referencing).
    if (chain.length === 1 && roots.includes(chain[0])) return null
    try {
      await validateCertificatePath(chain, roots)
      return null
    } catch {
      return 'attestation_untrusted'
    }
  }
}
