import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { AwsIamProvider } from '../../server/providers/aws/provider.ts'
import type { VirtualMfaSetup } from '../../server/providers/aws/virtual-mfa.ts'
import { idOf, oathtool, providerFor, subject, TEST_KEYS } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'

const NOW = new Date('2026-03-02T10:00:00Z')

async function begun (fake: FakeIam, provider: AwsIamProvider, userName: string): Promise<VirtualMfaSetup> {
  const result = await provider.beginVirtualMfa(idOf(fake, userName))
  assert.ok(result.ok, `begin failed: ${result.ok ? '' : result.message}`)
  return result.setup
}

/** Two consecutive codes from oathtool, the way a user reads them off the app 30 s apart. */
function consecutiveCodes (seed: string): [string, string] {
  const epoch = Math.floor(Date.now() / 1000)
  return [oathtool(seed, epoch), oathtool(seed, epoch + 30)]
}

describe('AWS virtual MFA enrollment', () => {
  let fake: FakeIam
  let provider: AwsIamProvider

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    for (const userName of ['carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy']) fake.state.addUser({ userName, consolePassword: true })
    fake.state.addUser({ userName: 'mallory', consolePassword: true, devices: ['u2f', 'u2f', 'u2f', 'u2f', 'hardware', 'hardware', 'virtual', 'virtual'] })
    provider = providerFor(fake, { AWS_IAM_PENDING_MFA_MINUTES: '15' }, { clock: { now: () => NOW } })
  })
  after(async () => {
    provider.close()
    await fake.close()
  })

  test('an authenticator app proven with two consecutive codes becomes an enabled IAM device and one of the user\'s methods', async () => {
    const setup = await begun(fake, provider, 'carol')
    assert.equal(setup.serialNumber, 'arn:aws:iam::123456789012:mfa/carol')
    assert.match(setup.secret, /^[A-Z2-7]{32}$/)
    assert.equal(setup.groupedSecret.replace(/ /g, ''), setup.secret)
    assert.equal(setup.expiresAt.toISOString(), '2026-03-02T10:15:00.000Z')
    const uri = new URL(setup.otpauthUri)
    assert.equal(uri.protocol, 'otpauth:')
    assert.equal(uri.searchParams.get('secret'), setup.secret)
    assert.equal(uri.searchParams.get('issuer'), 'Amazon Web Services')
    assert.match(decodeURIComponent(uri.pathname), /carol@123456789012$/)
    assert.equal(await provider.enforcementState(subject(fake, 'carol')), 'not_enforced', 'enrolling changes no enforcement')

    const [code1, code2] = consecutiveCodes(setup.secret)
    const result = await provider.completeVirtualMfa(idOf(fake, 'carol'), setup.serialNumber, code1, code2)

    assert.deepEqual(result, { ok: true, serialNumber: setup.serialNumber, method: 'totp' })
    const device = fake.state.devices.get(setup.serialNumber)
    assert.equal(device?.userName, 'carol')
    assert.ok(device?.enableDate instanceof Date)
    assert.deepEqual((await provider.registrationStatus(subject(fake, 'carol'))).methods, ['totp'])
    const listed = (await provider.listUsers(null)).users.find((u) => u.displayName === 'carol')
    assert.deepEqual(listed?.methods, ['totp'])
    assert.equal(listed?.attributes?.mfaActive, true)
  })

  test('the QR code is drawn by the portal and scans back to the otpauth URI', async () => {
    const setup = await begun(fake, provider, 'dave')
    assert.match(setup.qrPngDataUrl, /^data:image\/png;base64,/)
    const dir = mkdtempSync(path.join(tmpdir(), 'aws-qr-'))
    try {
      const file = path.join(dir, 'qr.png')
      writeFileSync(file, Buffer.from(setup.qrPngDataUrl.split(',')[1], 'base64'))
      const scanned = execFileSync('zbarimg', ['-q', '--raw', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
      assert.equal(scanned, setup.otpauthUri)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('two codes that are not consecutive are refused with a message the user can act on, and the setup can be retried', async () => {
    const setup = await begun(fake, provider, 'erin')
    const epoch = Math.floor(Date.now() / 1000)
    const refused = await provider.completeVirtualMfa(idOf(fake, 'erin'), setup.serialNumber, oathtool(setup.secret, epoch), oathtool(setup.secret, epoch + 60))

    assert.equal(refused.ok, false)
    assert.ok(!refused.ok)
    assert.equal(refused.reason, 'codes_rejected')
    assert.equal(refused.retry, true)
    assert.match(refused.message, /did not accept those codes/)
    assert.equal(fake.state.devices.get(setup.serialNumber)?.enableDate, null)

    const [code1, code2] = consecutiveCodes(setup.secret)
    assert.equal((await provider.completeVirtualMfa(idOf(fake, 'erin'), setup.serialNumber, code1, code2)).ok, true)
  })

  test('codes that are not six digits are refused without asking IAM', async () => {
    const setup = await begun(fake, provider, 'frank')
    const enables = fake.callsTo('EnableMFADevice').length
    const result = await provider.completeVirtualMfa(idOf(fake, 'frank'), setup.serialNumber, '12345', 'abcdef')
    assert.deepEqual(result.ok ? null : [result.reason, result.retry], ['codes_malformed', true])
    assert.equal(fake.callsTo('EnableMFADevice').length, enables)
  })

  test('completing again after a lost answer is still a success, not an error', async () => {
    const setup = await begun(fake, provider, 'grace')
    const [code1, code2] = consecutiveCodes(setup.secret)
    assert.equal((await provider.completeVirtualMfa(idOf(fake, 'grace'), setup.serialNumber, code1, code2)).ok, true)
    assert.deepEqual(await provider.completeVirtualMfa(idOf(fake, 'grace'), setup.serialNumber, code1, code2), { ok: true, serialNumber: setup.serialNumber, method: 'totp' })
  })

  test('an abandoned device is deleted; deleting it again or deleting an enabled device changes nothing', async () => {
    const setup = await begun(fake, provider, 'heidi')
    assert.equal(await provider.deleteVirtualMfa(setup.serialNumber), 'deleted')
    assert.equal(fake.state.devices.has(setup.serialNumber), false)
    assert.equal(await provider.deleteVirtualMfa(setup.serialNumber), 'already_gone')

    const carols = 'arn:aws:iam::123456789012:mfa/carol'
    assert.equal(await provider.deleteVirtualMfa(carols), 'in_use')
    assert.equal(fake.state.devices.get(carols)?.userName, 'carol')
  })

  test('starting again replaces an unfinished device of the same name with a fresh seed', async () => {
    const first = await begun(fake, provider, 'ivan')
    const second = await begun(fake, provider, 'ivan')
    assert.equal(second.serialNumber, first.serialNumber)
    assert.notEqual(second.secret, first.secret)
    assert.equal([...fake.state.devices.keys()].filter((s) => s.endsWith(':mfa/ivan')).length, 1)
    const [code1, code2] = consecutiveCodes(first.secret)
    const stale = await provider.completeVirtualMfa(idOf(fake, 'ivan'), second.serialNumber, code1, code2)
    assert.equal(stale.ok ? null : stale.reason, 'codes_rejected', 'the old seed no longer works')
  })

  test('a user whose own app is already enabled under their name is told so instead of losing it', async () => {
    const result = await provider.beginVirtualMfa(idOf(fake, 'carol'))
    assert.equal(result.ok ? null : result.reason, 'virtual_mfa_exists')
    assert.equal(fake.state.devices.get('arn:aws:iam::123456789012:mfa/carol')?.userName, 'carol')
  })

  test('a user with eight MFA devices already is refused before any device is created', async () => {
    const creates = fake.callsTo('CreateVirtualMFADevice').length
    const result = await provider.beginVirtualMfa(idOf(fake, 'mallory'))
    assert.equal(result.ok ? null : result.reason, 'device_limit')
    assert.equal(fake.callsTo('CreateVirtualMFADevice').length, creates)
  })

  test('no device is created for an IAM user that does not exist', async () => {
    // The id of a user deleted since the portal last listed it.
    const gone = fake.state.addUser({ userName: 'nobody' }).userId
    fake.state.deleteUser('nobody')
    const result = await provider.beginVirtualMfa(gone)
    assert.equal(result.ok ? null : result.reason, 'user_not_found')
    assert.equal(fake.state.devices.has('arn:aws:iam::123456789012:mfa/nobody'), false)
  })

  test('a pending setup can be drawn again from the kept seed without calling IAM', async () => {
    const setup = await begun(fake, provider, 'judy')
    const calls = fake.calls.length
    const again = await provider.virtualMfaSetup(idOf(fake, 'judy'), setup.serialNumber, setup.secret, setup.expiresAt)
    assert.equal(again.otpauthUri, setup.otpauthUri)
    assert.equal(again.qrPngDataUrl, setup.qrPngDataUrl)
    assert.equal(fake.calls.length, calls)
  })
})
