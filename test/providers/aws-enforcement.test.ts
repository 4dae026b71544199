import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ProviderError, type ProviderSubject } from '../../server/domain/provider.ts'
import type { AwsIamProvider } from '../../server/providers/aws/provider.ts'
import { idOf, listAll, providerFor, subject, TEST_KEYS } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'

const POLICY_ARN = 'arn:aws:iam::123456789012:policy/mfa-rollout-force-mfa'

/** What the engine does with a retryable ProviderError: wait (Retry-After or a short backoff) and call again. */
async function withRetries<T> (call: () => Promise<T>, attempts = 30): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call()
    } catch (err) {
      if (!(err instanceof ProviderError) || !err.retryable || attempt >= attempts) throw err
      await new Promise((resolve) => setTimeout(resolve, err.retryAfterMs ?? 20 + Math.random() * 40 * attempt))
    }
  }
}

describe('AWS IAM enforcement (policy mode)', () => {
  let fake: FakeIam
  let provider: AwsIamProvider
  const users = Array.from({ length: 60 }, (_, i) => `person${i}`)

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    for (const userName of users) fake.state.addUser({ userName, consolePassword: true })
    for (const userName of ['drifter', 'leaver', 'rejoiner']) fake.state.addUser({ userName, consolePassword: true })
    provider = providerFor(fake)
  })
  after(async () => {
    provider.close()
    await fake.close()
  })

  test('under throttling the policy is created once and attached exactly once per user; enforcing again changes nothing', async () => {
    // A tight rate limit plus bursts of injected throttles: the SDK's one retry cannot hide them all. The injected
    // ones alone are enough for the test, however slowly a busy machine sends (the rate limit may never bind).
    fake.setRateLimit({ perSecond: 150, burst: 20 })
    fake.inject('throttle', { times: 4, action: 'CreatePolicy' })
    fake.inject('throttle', { times: 8, action: 'AttachUserPolicy' })
    try {
      const results = await Promise.all(users.map((u) => withRetries(() => provider.enforce(subject(fake, u)))))
      assert.ok(results.every((r) => r.changed), 'each user reports one change')
      assert.ok(fake.throttled() + fake.calls.filter((c) => c.injected === 'throttle').length > 10, 'throttling really happened')

      assert.equal(fake.callsTo('CreatePolicy', { ok: true }).length, 1)
      for (const u of users) {
        assert.equal(fake.callsTo('AttachUserPolicy', { ok: true }).filter((c) => c.params.UserName === u).length, 1, `${u} attached once`)
        assert.ok(fake.state.user(u).policies.has(POLICY_ARN))
      }
      assert.equal(fake.state.policy(POLICY_ARN).attachmentCount, users.length)

      const attachesBefore = fake.callsTo('AttachUserPolicy').length
      const again = await Promise.all(users.map((u) => withRetries(() => provider.enforce(subject(fake, u)))))
      assert.ok(again.every((r) => !r.changed))
      assert.equal(fake.callsTo('AttachUserPolicy').length, attachesBefore, 'no attach when already attached')
      assert.equal(fake.callsTo('CreatePolicy', { ok: true }).length, 1)
    } finally {
      fake.setRateLimit(null)
    }
  })

  test('the attached policy is AWS\'s documented deny-unless-MFA policy', () => {
    const document = JSON.parse(fake.state.policy(POLICY_ARN).document) as { Statement: Array<{ Sid: string, Effect: string, Condition?: unknown }> }
    const deny = document.Statement.find((s) => s.Effect === 'Deny')
    assert.equal(deny?.Sid, 'BlockMostAccessUnlessSignedInWithMFA')
    assert.deepEqual(deny?.Condition, { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } })
  })

  test('a restarted portal finds the existing policy instead of creating another', async () => {
    const restarted = providerFor(fake)
    const creates = fake.callsTo('CreatePolicy').length
    try {
      fake.state.addUser({ userName: 'newcomer', consolePassword: true })
      assert.deepEqual(await restarted.enforce(subject(fake, 'newcomer')), { changed: true })
      assert.equal(fake.callsTo('CreatePolicy').length, creates, 'no CreatePolicy call at all')
      assert.equal(fake.callsTo('GetPolicy', { ok: true }).at(-1)?.params.PolicyArn, POLICY_ARN)
      assert.ok(fake.state.user('newcomer').policies.has(POLICY_ARN))
    } finally {
      restarted.close()
    }
  })

  test('relax detaches the policy, and relaxing again calls no detach', async () => {
    await provider.enforce(subject(fake, 'leaver'))
    assert.deepEqual(await provider.relax(subject(fake, 'leaver')), { changed: true })
    assert.equal(fake.state.user('leaver').policies.has(POLICY_ARN), false)
    assert.equal(await provider.enforcementState(subject(fake, 'leaver')), 'not_enforced')
    const detaches = fake.callsTo('DetachUserPolicy').length
    assert.deepEqual(await provider.relax(subject(fake, 'leaver')), { changed: false })
    assert.equal(fake.callsTo('DetachUserPolicy').length, detaches)
  })

  test('a policy detached by hand shows as drift (state and sync) and the next enforce puts it back', async () => {
    await provider.enforce(subject(fake, 'drifter'))
    assert.equal(await provider.enforcementState(subject(fake, 'drifter')), 'enforced')
    fake.state.detachUserPolicy('drifter', POLICY_ARN)

    assert.equal(await provider.enforcementState(subject(fake, 'drifter')), 'not_enforced')
    const listed = (await provider.listUsers(null)).users.find((u) => u.displayName === 'drifter')
    assert.equal(listed?.attributes?.enforced, false)

    assert.deepEqual(await provider.enforce(subject(fake, 'drifter')), { changed: true })
    assert.equal(await provider.enforcementState(subject(fake, 'drifter')), 'enforced')
  })

  test('a policy deleted by hand is created again by the next enforce', async () => {
    for (const user of fake.state.users.values()) {
      if (user.policies.has(POLICY_ARN)) fake.state.detachUserPolicy(user.userName, POLICY_ARN)
    }
    fake.state.policies.delete(POLICY_ARN)
    assert.deepEqual(await provider.enforce(subject(fake, 'rejoiner')), { changed: true })
    assert.ok(fake.state.user('rejoiner').policies.has(POLICY_ARN))
    assert.equal(fake.callsTo('CreatePolicy', { ok: true }).length, 2)
  })

  test('enforcing an IAM user that does not exist fails for good, naming the cause', async () => {
    const gone = subject(fake, fake.state.addUser({ userName: 'nobody' }).userName)
    fake.state.deleteUser('nobody')
    await assert.rejects(provider.enforce(gone), (err: unknown) => {
      assert.ok(err instanceof ProviderError)
      assert.equal(err.retryable, false)
      assert.equal(err.code, 'not_found')
      assert.match(err.message, /IAM has no user with the id AIDA\w+ any more/)
      return true
    })
  })

  test('a portal user without an IAM user name is refused without calling IAM', async () => {
    const calls = fake.calls.length
    const orphan: ProviderSubject = { userId: 'u1', externalId: null, email: 'a@example.org', enrolled: false }
    await assert.rejects(provider.enforce(orphan), (err: unknown) => err instanceof ProviderError && !err.retryable && err.code === 'no_external_id')
    assert.equal(fake.calls.length, calls)
  })
})

describe('AWS IAM enforcement (group mode)', () => {
  let fake: FakeIam
  let provider: AwsIamProvider

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    fake.state.addGroup('RequireMFA')
    fake.state.addUser({ userName: 'alice', consolePassword: true })
    provider = providerFor(fake, { AWS_IAM_ENFORCEMENT: 'group', AWS_IAM_ENFORCEMENT_GROUP: 'RequireMFA' })
  })
  after(async () => {
    provider.close()
    await fake.close()
  })

  test('enforce adds the user to the group once, relax removes it, and removal by hand reads as not enforced', async () => {
    assert.deepEqual(await provider.enforce(subject(fake, 'alice')), { changed: true })
    assert.deepEqual(await provider.enforce(subject(fake, 'alice')), { changed: false })
    assert.equal(fake.callsTo('AddUserToGroup').length, 1)
    assert.ok(fake.state.user('alice').groups.has('RequireMFA'))
    assert.equal(await provider.enforcementState(subject(fake, 'alice')), 'enforced')

    fake.state.user('alice').groups.delete('RequireMFA')
    assert.equal(await provider.enforcementState(subject(fake, 'alice')), 'not_enforced')

    await provider.enforce(subject(fake, 'alice'))
    assert.deepEqual(await provider.relax(subject(fake, 'alice')), { changed: true })
    assert.deepEqual(await provider.relax(subject(fake, 'alice')), { changed: false })
    assert.equal(fake.state.user('alice').groups.has('RequireMFA'), false)
    assert.equal(fake.callsTo('CreatePolicy').length, 0, 'group mode leaves policies to the operator')
  })
})

describe('AWS IAM drift in the policy\'s content', () => {
  const WITHOUT_DENY = JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: 'AllowListActions', Effect: 'Allow', Action: ['iam:ListUsers'], Resource: '*' }] })
  let fake: FakeIam
  let now = new Date('2026-11-25T09:00:00Z').getTime()
  const clock = { now: () => new Date(now) }

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    for (const userName of ['alice', 'bob', 'carol']) fake.state.addUser({ userName, consolePassword: true })
  })
  after(async () => { await fake.close() })

  test('a default version without the Deny reads as drift; enforce sets a correct version as default, pruning the oldest of five', async () => {
    const provider = providerFor(fake, {}, { clock })
    try {
      await provider.enforce(subject(fake, 'alice'))
      assert.equal(await provider.enforcementState(subject(fake, 'alice')), 'enforced')
      const shipped = fake.state.policy(POLICY_ARN).document
      // Someone edits the policy in the console four times, the last edit (now in force) without the Deny.
      for (let n = 2; n <= 4; n++) fake.state.createPolicyVersion(POLICY_ARN, shipped.replace('"AllowListActions"', `"Edit${n}"`), false)
      fake.state.createPolicyVersion(POLICY_ARN, WITHOUT_DENY, true)
      now += 10 * 60_000

      assert.equal(await provider.enforcementState(subject(fake, 'alice')), 'not_enforced', 'attached, but no longer denies anything')

      assert.deepEqual(await provider.enforce(subject(fake, 'alice')), { changed: true })
      const policy = fake.state.policy(POLICY_ARN)
      assert.deepEqual(JSON.parse(policy.document), JSON.parse(shipped), 'the version in force is the shipped document again')
      assert.equal(policy.defaultVersionId, 'v6')
      assert.deepEqual(policy.versions.map((v) => v.versionId), ['v2', 'v3', 'v4', 'v5', 'v6'], 'the oldest version made room')
      assert.equal(fake.callsTo('CreatePolicyVersion').filter((c) => c.code === 'LimitExceeded').length, 0, 'pruned before creating, never refused')
      assert.equal(await provider.enforcementState(subject(fake, 'alice')), 'enforced')
      assert.deepEqual(await provider.enforce(subject(fake, 'alice')), { changed: false })
      assert.equal(fake.callsTo('CreatePolicyVersion', { ok: true }).length, 1)
    } finally {
      provider.close()
    }
  })

  test('a restarted portal that finds its policy without the Deny repairs it before attaching, never deleting the default version', async () => {
    // Five versions again, the one in force (v5, without the Deny) not the oldest: the oldest not in force goes.
    fake.state.deletePolicyVersion(POLICY_ARN, 'v2')
    fake.state.createPolicyVersion(POLICY_ARN, WITHOUT_DENY, false)
    fake.state.setDefaultPolicyVersion(POLICY_ARN, 'v5')
    assert.deepEqual(fake.state.policy(POLICY_ARN).versions.map((v) => v.versionId), ['v3', 'v4', 'v5', 'v6', 'v7'])
    const restarted = providerFor(fake, {}, { clock })
    try {
      assert.deepEqual(await restarted.enforce(subject(fake, 'bob')), { changed: true })
      const policy = fake.state.policy(POLICY_ARN)
      assert.deepEqual(policy.versions.map((v) => v.versionId), ['v4', 'v5', 'v6', 'v7', 'v8'])
      assert.equal(policy.defaultVersionId, 'v8')
      assert.equal(JSON.parse(policy.document).Statement.at(-1).Effect, 'Deny')
      assert.ok(fake.state.user('bob').policies.has(POLICY_ARN))
    } finally {
      restarted.close()
    }
  })
})

// Issue #14 item 9: an IAM user is its user id. A name is reused after a delete, and changed by a rename.
describe('AWS IAM users are known by their user id', () => {
  let fake: FakeIam
  let provider: AwsIamProvider
  let now = new Date('2026-11-25T09:00:00Z').getTime()

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    for (const userName of ['olga', 'piet']) fake.state.addUser({ userName, consolePassword: true })
    provider = providerFor(fake, {}, { clock: { now: () => new Date(now) } })
  })
  after(async () => {
    provider.close()
    await fake.close()
  })

  test('a renamed IAM user keeps its identity: enforcement follows it to its new name', async () => {
    const olga = subject(fake, 'olga')
    const listed = (await listAll(provider)).users.find((u) => u.displayName === 'olga')!
    assert.equal(listed.externalId, olga.externalId)
    fake.state.renameUser('olga', 'olga.new')

    assert.deepEqual(await provider.enforce(olga), { changed: true })
    assert.ok(fake.state.user('olga.new').policies.has(POLICY_ARN), 'the renamed user holds the policy')
    assert.equal(await provider.enforcementState(olga), 'enforced')
  })

  test('a user deleted and created again under the same name is someone else: the old identity is gone', async () => {
    const piet = subject(fake, 'piet')
    await provider.enforce(piet)
    fake.state.deleteUser('piet')
    fake.state.addUser({ userName: 'piet', consolePassword: true })
    // Minutes later (the sweep after a sync): a name is never trusted for long without asking who holds it now.
    now += 10 * 60_000

    await assert.rejects(provider.enforcementState(piet), (err: unknown) => err instanceof ProviderError && err.code === 'not_found' && !err.retryable)
    await assert.rejects(provider.enforce(piet), (err: unknown) => err instanceof ProviderError && err.code === 'not_found')
    assert.equal(fake.state.user('piet').policies.size, 0, 'the newcomer with the old name was not touched')
    const relisted = (await listAll(provider)).users.find((u) => u.displayName === 'piet')!
    assert.notEqual(relisted.externalId, piet.externalId)
  })

  test('an id stored by a portal from before the upgrade (a user name) waits for the next sync instead of being acted on', async () => {
    const legacy: ProviderSubject = { userId: 'u-old', externalId: 'olga.new', email: '', enrolled: false }
    const calls = fake.calls.length
    await assert.rejects(provider.enforce(legacy), (err: unknown) => err instanceof ProviderError && err.code === 'not_synced' && err.retryable)
    assert.equal(fake.calls.length, calls, 'no IAM call made under a name')
  })
})

// Issue #14 item 11: AWS's documented policy denies long-term access keys too; "console only" is a policy of its own.
describe('AWS IAM policy variants', () => {
  const CONSOLE_ONLY_ARN = 'arn:aws:iam::123456789012:policy/mfa-rollout-force-mfa-console-only'
  let fake: FakeIam
  let provider: AwsIamProvider
  const consoleOnly = { awsPolicyVariant: 'console_only' as const }

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    for (const userName of ['keyholder', 'switcher', 'editor']) fake.state.addUser({ userName, consolePassword: true, accessKeys: [{}] })
    provider = providerFor(fake)
  })
  after(async () => {
    provider.close()
    await fake.close()
  })

  test('"console only" attaches a separate policy whose Deny uses Bool, so requests without the MFA key (long-term access keys) are not denied', async () => {
    assert.deepEqual(await provider.enforce(subject(fake, 'keyholder', consoleOnly)), { changed: true })
    const user = fake.state.user('keyholder')
    assert.deepEqual([...user.policies], [CONSOLE_ONLY_ARN], 'only the console-only policy, not AWS\'s documented one')
    const document = JSON.parse(fake.state.policy(CONSOLE_ONLY_ARN).document) as { Statement: Array<{ Sid: string, Effect: string, Condition?: unknown }> }
    const deny = document.Statement.find((s) => s.Effect === 'Deny')!
    assert.deepEqual(deny.Condition, { Bool: { 'aws:MultiFactorAuthPresent': 'false' } })
    assert.equal(fake.state.policies.has(POLICY_ARN), false, 'the documented policy was not even created')
    assert.equal(await provider.enforcementState(subject(fake, 'keyholder', consoleOnly)), 'enforced')
    assert.equal(await provider.enforcementState(subject(fake, 'keyholder')), 'not_enforced', 'a campaign on "console and API" would see drift')
  })

  test('enforcing the other variant swaps the policies, and relax takes off whichever is attached', async () => {
    await provider.enforce(subject(fake, 'switcher', consoleOnly))
    assert.deepEqual(await provider.enforce(subject(fake, 'switcher')), { changed: true })
    assert.deepEqual([...fake.state.user('switcher').policies], [POLICY_ARN])
    assert.deepEqual(await provider.enforce(subject(fake, 'switcher', consoleOnly)), { changed: true })
    assert.deepEqual([...fake.state.user('switcher').policies], [CONSOLE_ONLY_ARN])
    assert.deepEqual(await provider.relax(subject(fake, 'switcher')), { changed: true })
    assert.equal(fake.state.user('switcher').policies.size, 0)
  })

  test('drift checks the chosen variant\'s content: the console-only policy edited back to BoolIfExists is drift', async () => {
    let now = new Date('2026-11-25T09:00:00Z').getTime()
    const timed = providerFor(fake, {}, { clock: { now: () => new Date(now) } })
    try {
      await timed.enforce(subject(fake, 'editor', consoleOnly))
      assert.equal(await timed.enforcementState(subject(fake, 'editor', consoleOnly)), 'enforced')
      const policy = fake.state.policy(CONSOLE_ONLY_ARN)
      fake.state.createPolicyVersion(CONSOLE_ONLY_ARN, policy.document.replace('"Bool"', '"BoolIfExists"'), true)
      now += 10 * 60_000
      assert.equal(await timed.enforcementState(subject(fake, 'editor', consoleOnly)), 'not_enforced')
      assert.deepEqual(await timed.enforce(subject(fake, 'editor', consoleOnly)), { changed: true })
      assert.match(fake.state.policy(CONSOLE_ONLY_ARN).document, /"Bool":/)
    } finally {
      timed.close()
    }
  })

  test('a user\'s active access keys are listed with their last use; inactive ones are left out', async () => {
    const used = new Date('2026-09-30T12:00:00Z')
    const robot = fake.state.addUser({ userName: 'robot', accessKeys: [{ createDate: new Date('2025-01-05T10:00:00Z'), lastUsed: { date: used, serviceName: 'ec2', region: 'us-east-1' } }, { status: 'Inactive' }] })
    assert.deepEqual(await provider.activeAccessKeys(robot.userId), [{
      accessKeyId: robot.accessKeys[0].accessKeyId, createdAt: robot.accessKeys[0].createDate, lastUsedAt: used, lastUsedService: 'ec2', lastUsedRegion: 'us-east-1'
    }])
    const [never] = await provider.activeAccessKeys(idOf(fake, 'keyholder'))
    assert.deepEqual({ ...never, createdAt: null }, { accessKeyId: fake.state.user('keyholder').accessKeys[0].accessKeyId, createdAt: null, lastUsedAt: null, lastUsedService: null, lastUsedRegion: null }, 'never used: no date, no service')
  })
})
