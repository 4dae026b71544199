import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { ProviderError } from '../../server/domain/provider.ts'
import type { AwsIamProvider } from '../../server/providers/aws/provider.ts'
import { providerFor, subject, TEST_KEYS } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { ADMINISTRATOR_ACCESS } from '../fakes/iam/state.ts'

/** The call's ProviderError, checked to be one readable line without a stack trace or the secret key. */
async function providerError (call: Promise<unknown>): Promise<ProviderError> {
  try {
    await call
  } catch (err) {
    assert.ok(err instanceof ProviderError, `expected a ProviderError, got ${String(err)}`)
    assert.doesNotMatch(err.message, /\n|\s+at\s+\S+\s+\(|Deserialization error|\$response/)
    assert.ok(!err.message.includes(TEST_KEYS.secretAccessKey))
    return err
  }
  assert.fail('expected the call to fail')
}

describe('AWS IAM errors', () => {
  let fake: FakeIam
  let provider: AwsIamProvider

  before(async () => {
    fake = await startFakeIam({ accessKeyId: TEST_KEYS.accessKeyId })
    fake.state.addUser({ userName: 'alice', consolePassword: true })
    fake.state.addUser({ userName: 'bob', consolePassword: true })
    provider = providerFor(fake)
  })
  after(async () => {
    provider.close()
    await fake.close()
  })

  test('an error code IAM never documented fails for good with a reason naming it', async () => {
    fake.inject('unknown-error', { action: 'ListUsers' })
    const err = await providerError(provider.listUsers(null))
    assert.equal(err.retryable, false)
    assert.equal(err.code, 'unknown_error')
    assert.equal(err.message, 'IAM ListUsers answered an error this portal does not know (QuantumFluxDisrupted, HTTP 400): The flux capacitor is out of alignment.')
  })

  test('a cut-off XML answer fails for good as a malformed response', async () => {
    fake.inject('malformed-xml', { action: 'ListUsers' })
    const err = await providerError(provider.listUsers(null))
    assert.equal(err.retryable, false)
    assert.equal(err.code, 'malformed_response')
    assert.match(err.message, /^IAM ListUsers answered something that is not a valid IAM response \(XML parse error/)
  })

  test('a web page instead of XML is not mistaken for an empty account', async () => {
    fake.inject('html', { action: 'ListUsers' })
    const err = await providerError(provider.listUsers(null))
    assert.equal(err.code, 'malformed_response')
    assert.equal(err.retryable, false)
  })

  test('throttling that outlasts the SDK\'s two attempts is retryable for the engine', async () => {
    const before = fake.callsTo('ListAttachedUserPolicies').length
    fake.inject('throttle', { times: 2, action: 'ListAttachedUserPolicies' })
    const err = await providerError(provider.enforcementState(subject(fake, 'alice')))
    assert.equal(err.retryable, true)
    assert.equal(err.code, 'throttled')
    assert.equal(fake.callsTo('ListAttachedUserPolicies').length - before, 2, 'two attempts (AWS_IAM_MAX_ATTEMPTS default), no more')
    assert.equal(await provider.enforcementState(subject(fake, 'alice')), 'not_enforced', 'the next call goes through')
  })

  test('a single throttle is absorbed by the SDK\'s retry', async () => {
    fake.inject('throttle', { times: 1, action: 'ListAttachedUserPolicies' })
    assert.equal(await provider.enforcementState(subject(fake, 'alice')), 'not_enforced')
  })

  test('IAM server errors are retryable', async () => {
    fake.inject('server-error', { times: 2, action: 'ListMFADevices' })
    const err = await providerError(provider.registrationStatus(subject(fake, 'alice')))
    assert.equal(err.retryable, true)
    assert.equal(err.code, 'server_error')
    assert.match(err.message, /HTTP 500/)
  })

  test('a request that gets no answer times out and is retryable', async () => {
    const impatient = providerFor(fake, { AWS_IAM_TIMEOUT_SECONDS: '1', AWS_IAM_MAX_ATTEMPTS: '1' })
    fake.inject('hang', { action: 'ListMFADevices' })
    try {
      const err = await providerError(impatient.registrationStatus(subject(fake, 'alice')))
      assert.equal(err.retryable, true)
      assert.equal(err.code, 'timeout')
    } finally {
      impatient.close()
    }
  })

  test('an IAM that cannot be reached is retryable', async () => {
    const closed = await startFakeIam()
    await closed.close()
    const unreachable = providerFor(closed, { AWS_IAM_MAX_ATTEMPTS: '1' })
    try {
      const err = await providerError(unreachable.registrationStatus(subject(fake, 'alice')))
      assert.equal(err.retryable, true)
      assert.equal(err.code, 'network_error')
    } finally {
      unreachable.close()
    }
  })

  test('a user at the managed-policy quota (LimitExceeded) fails for good: waiting cannot fix a quota', async () => {
    for (let i = 0; i < 9; i++) fake.state.createPolicy(`filler${i}`, '/', '{"Version":"2012-10-17","Statement":[]}')
    fake.state.attachUserPolicy('bob', ADMINISTRATOR_ACCESS)
    for (let i = 0; i < 9; i++) fake.state.attachUserPolicy('bob', `arn:aws:iam::123456789012:policy/filler${i}`)
    const err = await providerError(provider.enforce(subject(fake, 'bob')))
    assert.equal(err.retryable, false)
    assert.equal(err.code, 'limit_exceeded')
    assert.match(err.message, /LimitExceeded/)
  })

  test('wrong access keys fail for good without repeating the secret', async () => {
    const wrong = providerFor(fake, { AWS_IAM_ACCESS_KEY_ID: 'AKIDWRONGWRONG000000' })
    try {
      const err = await providerError(wrong.listUsers(null))
      assert.equal(err.retryable, false)
      assert.equal(err.code, 'bad_credentials')
    } finally {
      wrong.close()
    }
  })

  test('every request is a signed Query-protocol POST with the configured access key', () => {
    assert.ok(fake.calls.length > 0)
    const signed = fake.calls.filter((c) => c.accessKeyId === TEST_KEYS.accessKeyId)
    assert.ok(signed.length >= fake.calls.length - 1, 'all but the wrong-key call used the configured key')
  })
})
