import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ADMINISTRATOR_ACCESS } from '../fakes/iam/state.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { listAll, providerFor, subject, TEST_KEYS } from '../fakes/iam/harness.ts'
import { CREDENTIAL_REPORT_COLUMNS } from '../fakes/iam/credential-report.ts'
import { methodKindOf } from '../../server/providers/aws/directory.ts'
import type { AwsIamProvider } from '../../server/providers/aws/provider.ts'
import { ProviderError, type ProviderUser } from '../../server/domain/provider.ts'

const USERS = 1_200

/** An account of 1,200 users: every third has no console password, a few carry devices, tags, groups, admin rights. */
function seedAccount (fake: FakeIam): void {
  fake.state.addGroup('Admins')
  fake.state.addGroup('Developers')
  for (let i = 0; i < USERS; i++) {
    fake.state.addUser({
      userName: `user${String(i).padStart(4, '0')}`,
      createDate: new Date(Date.UTC(2023, 0, 1) + i * 60_000),
      consolePassword: i % 3 !== 0,
      tags: i % 2 === 0 ? { Email: `user${i}@example.org` } : { team: 'ops' },
      groups: i % 50 === 0 ? ['Admins'] : i % 7 === 0 ? ['Developers'] : [],
      policies: i % 100 === 1 ? [ADMINISTRATOR_ACCESS] : [],
      devices: i === 2 ? ['virtual', 'u2f'] : i === 4 ? ['hardware'] : []
    })
  }
}

describe('AWS IAM sync', () => {
  let fake: FakeIam
  let perUser: AwsIamProvider
  // Listing 1,200 users through the SDK takes seconds on this machine: one GetLoginProfile-mode sync, shared.
  let listing: Promise<{ users: ProviderUser[], pages: number }> | undefined
  const perUserListing = async (): Promise<{ users: ProviderUser[], pages: number }> => {
    listing ??= listAll(perUser)
    return listing
  }
  before(async () => {
    // Pages capped below MaxItems: the adapter must follow IsTruncated/Marker, not count items.
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId, maxPageSize: 90, reportDelayMs: 30 })
    seedAccount(fake)
    perUser = providerFor(fake, { AWS_IAM_PRIVILEGED_GROUPS: 'Admins' })
  })
  after(async () => {
    perUser.close()
    await fake.close()
  })

  test('a sync walks all 1,200 IAM users across pages, each once, with console password, methods, groups and privilege', async () => {
    const loginProfilesBefore = fake.callsTo('GetLoginProfile').length
    const { users, pages } = await perUserListing()
    assert.equal(fake.callsTo('GetLoginProfile').length - loginProfilesBefore, USERS, 'one GetLoginProfile per user')
    assert.equal(users.length, USERS)
    assert.equal(new Set(users.map((u) => u.externalId)).size, USERS)
    assert.ok(pages >= Math.ceil(USERS / 90), `expected at least ${Math.ceil(USERS / 90)} pages, got ${pages}`)

    const byName = new Map(users.map((u) => [u.displayName, u]))
    const withKeys = byName.get('user0002')!
    assert.deepEqual([...withKeys.methods!].sort(), ['passkey', 'totp'])
    assert.equal(withKeys.attributes?.mfaActive, true)
    assert.equal(withKeys.attributes?.consolePassword, true)
    assert.equal(withKeys.email, 'user2@example.org', 'the e-mail tag is read whatever the case of its key')
    assert.equal(withKeys.targetable, true)
    assert.equal(withKeys.enabled, true)
    assert.equal(withKeys.attributes?.userName, 'user0002', 'the name IAM calls and the console use is kept beside the id')
    assert.equal(withKeys.externalId, fake.state.user('user0002').userId)
    assert.match(String(withKeys.attributes?.arn), /^arn:aws:iam::123456789012:user\/user0002$/)
    assert.equal(withKeys.attributes?.createdAt, new Date(Date.UTC(2023, 0, 1) + 2 * 60_000).toISOString())

    assert.deepEqual(byName.get('user0004')!.methods, ['hardware_totp'])
    assert.deepEqual(byName.get('user0005')!.methods, [])
    assert.equal(byName.get('user0005')!.attributes?.mfaActive, false)
    assert.equal(byName.get('user0001')!.email, '', 'no e-mail tag: the address is empty, for the portal to handle')

    assert.equal(byName.get('user0050')!.privileged, true, 'members of a configured admin group are privileged')
    assert.deepEqual(byName.get('user0050')!.groups, ['Admins'])
    assert.equal(byName.get('user0101')!.privileged, true, 'a user with AdministratorAccess attached is privileged')
    assert.equal(byName.get('user0007')!.privileged, false)
    assert.deepEqual(byName.get('user0007')!.groups, ['Developers'])
  })

  test('IAM users without a console password are listed but not targetable', async () => {
    const { users } = await perUserListing()
    const untargetable = users.filter((u) => u.targetable === false)
    assert.equal(untargetable.length, USERS / 3)
    assert.ok(untargetable.every((u) => u.attributes?.consolePassword === false))
    assert.ok(untargetable.every((u) => Number(u.displayName.slice(4)) % 3 === 0))
  })

  test('the credential-report path gives the same users as the per-user GetLoginProfile path, without a call per user for the password', async () => {
    const viaReport = providerFor(fake, { AWS_IAM_PRIVILEGED_GROUPS: 'Admins', AWS_IAM_SYNC: 'credential-report' })
    // Columns in another order: the report is read by column name.
    fake.report.columns = [...CREDENTIAL_REPORT_COLUMNS].reverse()
    fake.report.discard()
    try {
      const expected = (await perUserListing()).users
      const loginProfilesBefore = fake.callsTo('GetLoginProfile').length
      const actual = (await listAll(viaReport)).users
      assert.deepEqual(actual, expected)
      assert.equal(fake.callsTo('GetLoginProfile').length, loginProfilesBefore, 'the report replaces GetLoginProfile entirely')
      assert.ok(fake.callsTo('GetCredentialReport', { ok: true }).length >= 1)
    } finally {
      fake.report.columns = CREDENTIAL_REPORT_COLUMNS
      viaReport.close()
    }
  })

  test('a user created after the report was made still gets its console password from IAM', async () => {
    const provider = providerFor(fake, { AWS_IAM_SYNC: 'credential-report', AWS_IAM_USER_PATH: '/late/' })
    fake.report.discard()
    try {
      await provider.credentialReportRows()
      fake.state.addUser({ userName: 'latecomer', path: '/late/', consolePassword: true })
      const { users } = await listAll(provider)
      assert.deepEqual(users.map((u) => [u.displayName, u.targetable]), [['latecomer', true]])
    } finally {
      provider.close()
    }
  })

  test('registration status lists the kinds of device IAM knows for the user', async () => {
    const provider = providerFor(fake)
    try {
      const status = await provider.registrationStatus(subject(fake, 'user0002'))
      assert.deepEqual(status.methods.sort(), ['passkey', 'totp'])
      assert.equal(status.source, 'ListMFADevices')
    } finally {
      provider.close()
    }
  })

  test('the credential report export has every user\'s password and MFA state and creation time (CIS 1.10)', async () => {
    const provider = providerFor(fake)
    fake.report.discard()
    try {
      const report = await provider.credentialReportRows()
      const users = report.rows.filter((r) => !r.isRoot)
      assert.equal(users.length >= USERS, true)
      const row = users.find((r) => r.user === 'user0002')!
      assert.deepEqual({ ...row }, {
        user: 'user0002', arn: 'arn:aws:iam::123456789012:user/user0002', passwordEnabled: true, mfaActive: true,
        userCreationTime: '2023-01-01T00:02:00+00:00', isRoot: false
      })
      assert.equal(users.find((r) => r.user === 'user0003')!.passwordEnabled, false)
      const root = report.rows.find((r) => r.isRoot)!
      assert.equal(root.passwordEnabled, null, 'the root account\'s not_supported is neither yes nor no')
      assert.ok(fake.callsTo('GenerateCredentialReport').length >= 2, 'generation was polled until COMPLETE')
    } finally {
      provider.close()
    }
  })

  test('a credential report IAM never finishes gives up after the configured time with a retryable timeout, even when the clock stands still', { timeout: 60_000 }, async () => {
    const pauses: number[] = []
    const stopped = { now: () => new Date('2026-11-25T09:00:00Z') }
    const provider = providerFor(fake, {}, {
      clock: stopped,
      reportPolling: { intervalMs: 2_000, timeoutMs: 10_000 },
      sleep: async (ms) => { pauses.push(ms) }
    })
    const delay = fake.report.delayMs
    fake.report.discard()
    fake.report.delayMs = 24 * 3_600_000
    const generatesBefore = fake.callsTo('GenerateCredentialReport').length
    try {
      await assert.rejects(provider.credentialReportRows(), (err: unknown) => {
        assert.ok(err instanceof ProviderError)
        assert.equal(err.code, 'timeout')
        assert.equal(err.retryable, true)
        assert.match(err.message, /IAM credential report was not ready after 10 s/)
        return true
      })
      assert.deepEqual(pauses, [2_000, 2_000, 2_000, 2_000, 2_000], 'five pauses of the interval make the 10 s')
      assert.equal(fake.callsTo('GenerateCredentialReport').length - generatesBefore, 6, 'asked once more after each pause')
    } finally {
      fake.report.delayMs = delay
      fake.report.discard()
      provider.close()
    }
  })

  test('device serial numbers map to method kinds: virtual → totp, FIDO/U2F → passkey, others → hardware_totp', () => {
    assert.equal(methodKindOf('arn:aws:iam::123456789012:mfa/alice'), 'totp')
    assert.equal(methodKindOf('arn:aws-cn:iam::123456789012:mfa/team/alice'), 'totp')
    assert.equal(methodKindOf('arn:aws:iam::123456789012:u2f/user/alice/yubikey-ABCDEF'), 'passkey')
    assert.equal(methodKindOf('GAHT12345678'), 'hardware_totp')
  })
})

describe('AWS IAM privilege as IAM grants it', () => {
  const CUSTOM_ADMIN = 'arn:aws:iam::123456789012:policy/OrgAdmin'
  let fake: FakeIam

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    fake.state.createPolicy('OrgAdmin', '/', JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] }))
    for (const group of ['Ops', 'Platform', 'Readers']) fake.state.addGroup(group)
    fake.state.attachGroupPolicy('Ops', ADMINISTRATOR_ACCESS)
    fake.state.attachGroupPolicy('Platform', CUSTOM_ADMIN)
    fake.state.addUser({ userName: 'via-ops', consolePassword: true, groups: ['Ops'] })
    fake.state.addUser({ userName: 'via-platform', consolePassword: true, groups: ['Readers', 'Platform'] })
    fake.state.addUser({ userName: 'reader', consolePassword: true, groups: ['Readers'] })
    fake.state.addUser({ userName: 'direct', consolePassword: true, policies: [ADMINISTRATOR_ACCESS] })
  })
  after(async () => { await fake.close() })

  test('AdministratorAccess attached through a group makes its members privileged without naming the group in config', async () => {
    const provider = providerFor(fake)
    try {
      const privileged = Object.fromEntries((await listAll(provider)).users.map((u) => [u.displayName, u.privileged]))
      assert.deepEqual(privileged, { 'via-ops': true, 'via-platform': false, reader: false, direct: true })
      // One listing per group per sync, however many members share it.
      assert.equal(fake.callsTo('ListAttachedGroupPolicies').filter((c) => c.params.GroupName === 'Readers').length, 1)
    } finally {
      provider.close()
    }
  })

  test('a policy listed in AWS_IAM_ADMIN_POLICY_ARNS counts through a group too; "none" turns policy-based privilege off', async () => {
    const custom = providerFor(fake, { AWS_IAM_ADMIN_POLICY_ARNS: `${ADMINISTRATOR_ACCESS},${CUSTOM_ADMIN}` })
    const none = providerFor(fake, { AWS_IAM_ADMIN_POLICY_ARNS: 'none', AWS_IAM_PRIVILEGED_GROUPS: 'Readers' })
    try {
      const byCustom = Object.fromEntries((await listAll(custom)).users.map((u) => [u.displayName, u.privileged]))
      assert.deepEqual(byCustom, { 'via-ops': true, 'via-platform': true, reader: false, direct: true })
      const byNone = Object.fromEntries((await listAll(none)).users.map((u) => [u.displayName, u.privileged]))
      assert.deepEqual(byNone, { 'via-ops': false, 'via-platform': true, reader: true, direct: false })
    } finally {
      custom.close()
      none.close()
    }
  })
})
