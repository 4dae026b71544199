import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ProviderError, type ProviderSubject } from '../../server/domain/provider.ts'
import type { AwsIamProvider } from '../../server/providers/aws/provider.ts'
import { providerFor, subject, TEST_KEYS } from '../fakes/iam/harness.ts'
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
    // A tight rate limit plus bursts of injected throttles: the SDK's one retry cannot hide them all.
    fake.setRateLimit({ perSecond: 150, burst: 20 })
    fake.inject('throttle', { times: 3, action: 'CreatePolicy' })
    fake.inject('throttle', { times: 6, action: 'AttachUserPolicy' })
    try {
      const results = await Promise.all(users.map((u) => withRetries(() => provider.enforce(subject(u)))))
      assert.ok(results.every((r) => r.changed), 'each user reports one change')
      assert.ok(fake.throttled() + fake.calls.filter((c) => c.injected === 'throttle').length > 10, 'throttling really happened')

      assert.equal(fake.callsTo('CreatePolicy', { ok: true }).length, 1)
      for (const u of users) {
        assert.equal(fake.callsTo('AttachUserPolicy', { ok: true }).filter((c) => c.params.UserName === u).length, 1, `${u} attached once`)
        assert.ok(fake.state.user(u).policies.has(POLICY_ARN))
      }
      assert.equal(fake.state.policy(POLICY_ARN).attachmentCount, users.length)

      const attachesBefore = fake.callsTo('AttachUserPolicy').length
      const again = await Promise.all(users.map((u) => withRetries(() => provider.enforce(subject(u)))))
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
      assert.deepEqual(await restarted.enforce(subject('newcomer')), { changed: true })
      assert.equal(fake.callsTo('CreatePolicy').length, creates, 'no CreatePolicy call at all')
      assert.equal(fake.callsTo('GetPolicy', { ok: true }).at(-1)?.params.PolicyArn, POLICY_ARN)
      assert.ok(fake.state.user('newcomer').policies.has(POLICY_ARN))
    } finally {
      restarted.close()
    }
  })

  test('relax detaches the policy, and relaxing again calls no detach', async () => {
    await provider.enforce(subject('leaver'))
    assert.deepEqual(await provider.relax(subject('leaver')), { changed: true })
    assert.equal(fake.state.user('leaver').policies.has(POLICY_ARN), false)
    assert.equal(await provider.enforcementState(subject('leaver')), 'not_enforced')
    const detaches = fake.callsTo('DetachUserPolicy').length
    assert.deepEqual(await provider.relax(subject('leaver')), { changed: false })
    assert.equal(fake.callsTo('DetachUserPolicy').length, detaches)
  })

  test('a policy detached by hand shows as drift (state and sync) and the next enforce puts it back', async () => {
    await provider.enforce(subject('drifter'))
    assert.equal(await provider.enforcementState(subject('drifter')), 'enforced')
    fake.state.detachUserPolicy('drifter', POLICY_ARN)

    assert.equal(await provider.enforcementState(subject('drifter')), 'not_enforced')
    const listed = (await provider.listUsers(null)).users.find((u) => u.externalId === 'drifter')
    assert.equal(listed?.attributes?.enforced, false)

    assert.deepEqual(await provider.enforce(subject('drifter')), { changed: true })
    assert.equal(await provider.enforcementState(subject('drifter')), 'enforced')
  })

  test('a policy deleted by hand is created again by the next enforce', async () => {
    for (const user of fake.state.users.values()) {
      if (user.policies.has(POLICY_ARN)) fake.state.detachUserPolicy(user.userName, POLICY_ARN)
    }
    fake.state.policies.delete(POLICY_ARN)
    assert.deepEqual(await provider.enforce(subject('rejoiner')), { changed: true })
    assert.ok(fake.state.user('rejoiner').policies.has(POLICY_ARN))
    assert.equal(fake.callsTo('CreatePolicy', { ok: true }).length, 2)
  })

  test('enforcing an IAM user that does not exist fails for good, naming the cause', async () => {
    await assert.rejects(provider.enforce(subject('nobody')), (err: unknown) => {
      assert.ok(err instanceof ProviderError)
      assert.equal(err.retryable, false)
      assert.equal(err.code, 'not_found')
      assert.match(err.message, /NoSuchEntity/)
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
    assert.deepEqual(await provider.enforce(subject('alice')), { changed: true })
    assert.deepEqual(await provider.enforce(subject('alice')), { changed: false })
    assert.equal(fake.callsTo('AddUserToGroup').length, 1)
    assert.ok(fake.state.user('alice').groups.has('RequireMFA'))
    assert.equal(await provider.enforcementState(subject('alice')), 'enforced')

    fake.state.user('alice').groups.delete('RequireMFA')
    assert.equal(await provider.enforcementState(subject('alice')), 'not_enforced')

    await provider.enforce(subject('alice'))
    assert.deepEqual(await provider.relax(subject('alice')), { changed: true })
    assert.deepEqual(await provider.relax(subject('alice')), { changed: false })
    assert.equal(fake.state.user('alice').groups.has('RequireMFA'), false)
    assert.equal(fake.callsTo('CreatePolicy').length, 0, 'group mode leaves policies to the operator')
  })
})
