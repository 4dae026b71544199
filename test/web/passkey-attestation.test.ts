import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import { ConfigError, loadConfig } from '../../server/config.ts'
import type { User } from '../../server/domain/users.ts'
import { createTestUser, signIn, startTestApp, tempDir, TEST_SECRETS, type TestApp } from '../helpers/app.ts'
import { createAttestationVendor, createMetadataService, metadataEntry, metadataFiles, metadataStatement, type AttestationVendor, type MetadataService } from '../helpers/fido-metadata.ts'
import { pageToken, postJson, SoftwareAuthenticator } from '../helpers/webauthn.ts'

// PRIVILEGED_AAGUIDS only means something if the AAGUID is proven: an authenticator can claim any AAGUID, so
// for privileged users the portal asks for attestation and believes the AAGUID only when the attestation
// certificate chains to a root that the FIDO Metadata Service (a BLOB the operator downloads, checked by its
// signature) lists for that very AAGUID. Here the metadata service and the vendors are generated per run.

const YUBIKEY_5 = 'cb69481e-8ff7-4039-93ec-0a2729a154a8'
const RECALLED = '2fc0579f-8113-47ea-b116-bb5a8db9202a'
const UNDESCRIBED = 'ee882879-721c-4913-9775-3dfcce97072a'

let mds: MetadataService
let vendor: AttestationVendor
let dir: string

before(async () => {
  mds = await createMetadataService()
  vendor = await createAttestationVendor('Yubico Test')
  dir = tempDir('mfa-mds-')
})
after(() => { rmSync(dir, { recursive: true, force: true }) })

/** A BLOB describing the YubiKey (certified) and a recalled model whose attestation key leaked, written to disk. */
function operatorFiles (name: string, blob = mds.blob([
  metadataEntry(metadataStatement(YUBIKEY_5, 'YubiKey 5 (test)', [vendor.root])),
  metadataEntry(metadataStatement(RECALLED, 'Recalled key (test)', [vendor.root]), ['FIDO_CERTIFIED', 'ATTESTATION_KEY_COMPROMISE'])
])) {
  const sub = path.join(dir, name)
  mkdirSync(sub, { recursive: true })
  return metadataFiles(sub, blob, mds.rootPem)
}

/** Signs `user` in and runs the enrollment page's ceremony with `authenticator`. */
async function register (t: TestApp, user: User, authenticator: SoftwareAuthenticator) {
  const agent = await signIn(t, user.email)
  const token = await pageToken(agent, '/enroll/passkey')
  const { body } = await postJson(agent, '/enroll/passkey/options', token, {})
  const res = await postJson(agent, '/enroll/passkey/verify', token, { challengeId: body.challengeId, response: authenticator.register(body.options, t.config.webauthn.origin), name: '' })
  return { res, options: body.options }
}

async function passkeysOf (t: TestApp, user: User) {
  return (await t.services.methods.listFor(user.id)).filter((m) => m.kind === 'passkey')
}

async function lastRefusal (t: TestApp, user: User): Promise<Record<string, unknown> | undefined> {
  const [row] = await t.services.audit.list({ subjectUserId: user.id, action: 'passkey.registration_rejected' })
  return row === undefined ? undefined : JSON.parse(row.details)
}

async function assertRefused (t: TestApp, user: User, res: { status: number, body: { error?: { code?: string, message?: string } } }, reason: string): Promise<void> {
  assert.equal(res.status, 403, JSON.stringify(res.body))
  assert.equal(res.body.error?.code, 'authenticator_not_allowed')
  assert.match(res.body.error?.message ?? '', /approved security key/)
  assert.deepEqual(await passkeysOf(t, user), [], 'nothing stored')
  assert.equal((await lastRefusal(t, user))?.reason, reason)
}

describe('with an AAGUID allow-list and the operator\'s metadata file', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp({ PRIVILEGED_AAGUIDS: [YUBIKEY_5, RECALLED, UNDESCRIBED].join(','), ...operatorFiles('good') })
  })
  after(async () => { await t.close() })

  const privileged = async () => await createTestUser(t.services, { role: 'admin', privileged: true })

  test('registration for a privileged user asks the authenticator for direct attestation', async () => {
    const { options } = await register(t, await privileged(), new SoftwareAuthenticator({ aaguid: YUBIKEY_5 }))
    assert.equal(options.attestation, 'direct')
  })

  test('a software key without attestation ("none") that claims to be a YubiKey is refused for a privileged user', async () => {
    const admin = await privileged()
    const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: YUBIKEY_5 }))
    await assertRefused(t, admin, res, 'attestation_missing')
    assert.equal((await lastRefusal(t, admin))?.aaguid, YUBIKEY_5)
  })

  test('a key that attests itself (packed, no certificate) is refused for a privileged user', async () => {
    const admin = await privileged()
    const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: YUBIKEY_5, attestation: 'self' }))
    await assertRefused(t, admin, res, 'attestation_missing')
  })

  test('a key whose attestation certificate comes from a CA the metadata does not name is refused, whatever AAGUID it claims', async () => {
    const impostor = await createAttestationVendor('Impostor')
    const admin = await privileged()
    const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: YUBIKEY_5, attestation: await impostor.issue(YUBIKEY_5) }))
    await assertRefused(t, admin, res, 'attestation_untrusted')
  })

  test('a key of a model whose attestation key the metadata reports compromised is refused', async () => {
    const admin = await privileged()
    const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: RECALLED, attestation: await vendor.issue(RECALLED) }))
    await assertRefused(t, admin, res, 'authenticator_compromised')
  })

  test('an allowed AAGUID that the metadata file does not describe cannot be proven, so it is refused', async () => {
    const admin = await privileged()
    const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: UNDESCRIBED, attestation: await vendor.issue(UNDESCRIBED) }))
    await assertRefused(t, admin, res, 'aaguid_not_in_metadata')
  })

  test('a key not on the allow-list is refused before anything else, as before', async () => {
    const admin = await privileged()
    const other = '00000000-1111-2222-3333-444444444444'
    const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: other, attestation: await vendor.issue(other) }))
    await assertRefused(t, admin, res, 'aaguid_not_allowed')
  })

  test('a key whose packed attestation chains to the root in the YubiKey\'s metadata statement is accepted', async () => {
    const admin = await privileged()
    const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: YUBIKEY_5, attestation: await vendor.issue(YUBIKEY_5) }))
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.deepEqual((await passkeysOf(t, admin)).map((m) => [m.name, m.aaguid]), [['YubiKey 5', YUBIKEY_5]])
  })

  test('ordinary users are not asked for attestation and register any passkey as before', async () => {
    const user = await createTestUser(t.services)
    const { res, options } = await register(t, user, new SoftwareAuthenticator())
    assert.equal(options.attestation, 'none')
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal((await passkeysOf(t, user)).length, 1)
  })
})

describe('when the metadata cannot be trusted or is missing', () => {
  test('a metadata file whose signature does not verify is not used: privileged registration is refused', async () => {
    const [head, payload, signature] = mds.blob([metadataEntry(metadataStatement(YUBIKEY_5, 'YubiKey 5 (test)', [vendor.root]))]).split('.')
    // Someone edits the downloaded file to vouch for their own CA: the signature no longer matches.
    const impostor = await createAttestationVendor('Impostor')
    const edited = JSON.parse(Buffer.from(payload, 'base64url').toString())
    edited.entries[0].metadataStatement.attestationRootCertificates = [Buffer.from(impostor.root).toString('base64')]
    const tampered = `${head}.${Buffer.from(JSON.stringify(edited)).toString('base64url')}.${signature}`
    const t = await startTestApp({ PRIVILEGED_AAGUIDS: YUBIKEY_5, ...operatorFiles('tampered', tampered) })
    try {
      const admin = await createTestUser(t.services, { role: 'admin', privileged: true })
      const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: YUBIKEY_5, attestation: await impostor.issue(YUBIKEY_5) }))
      await assertRefused(t, admin, res, 'metadata_unavailable')
    } finally {
      await t.close()
    }
  })

  test('a metadata file signed under another root than the configured one is not used', async () => {
    const elsewhere = await createMetadataService('Unknown Metadata')
    const blob = elsewhere.blob([metadataEntry(metadataStatement(YUBIKEY_5, 'YubiKey 5 (test)', [vendor.root]))])
    const t = await startTestApp({ PRIVILEGED_AAGUIDS: YUBIKEY_5, ...operatorFiles('elsewhere', blob) })
    try {
      const admin = await createTestUser(t.services, { role: 'admin', privileged: true })
      const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: YUBIKEY_5, attestation: await vendor.issue(YUBIKEY_5) }))
      await assertRefused(t, admin, res, 'metadata_unavailable')
    } finally {
      await t.close()
    }
  })

  test('in the sandbox without FIDO_MDS_FILE, privileged registration with an allow-list is refused and says why', async () => {
    const t = await startTestApp({ PRIVILEGED_AAGUIDS: YUBIKEY_5 })
    try {
      const admin = await createTestUser(t.services, { role: 'admin', privileged: true })
      const { res } = await register(t, admin, new SoftwareAuthenticator({ aaguid: YUBIKEY_5, attestation: await vendor.issue(YUBIKEY_5) }))
      await assertRefused(t, admin, res, 'metadata_unavailable')
    } finally {
      await t.close()
    }
  })

  test('outside the sandbox PRIVILEGED_AAGUIDS needs FIDO_MDS_FILE, and the file must exist', () => {
    const production = { NODE_ENV: 'production', PUBLIC_URL: 'https://mfa.example.org', DATA_DIR: dir, ...TEST_SECRETS, PRIVILEGED_AAGUIDS: YUBIKEY_5 }
    assert.throws(() => loadConfig(production), (err: Error) => err instanceof ConfigError && /FIDO_MDS_FILE/.test(err.message))
    assert.throws(() => loadConfig({ ...production, FIDO_MDS_FILE: path.join(dir, 'missing.jwt') }), (err: Error) => err instanceof ConfigError && /FIDO_MDS_FILE/.test(err.message))
    const files = operatorFiles('config')
    assert.equal(loadConfig({ ...production, ...files }).webauthn.metadataFile, files.FIDO_MDS_FILE)
  })
})
