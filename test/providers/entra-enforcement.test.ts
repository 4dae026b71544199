import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ProviderError } from '../../server/domain/provider.ts'
import { entraFixture, subjectOf } from '../fakes/graph/harness.ts'

/** What an engine does with a retryable ProviderError: call again, a few times. */
async function withRetries<T> (call: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call()
    } catch (err) {
      if (!(err instanceof ProviderError) || !err.retryable || i >= attempts) throw err
    }
  }
}

test('enforcing sets enforced for a user with a method and enabled for one without, one PATCH each, despite throttling and 5xx', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const enrolled = fake.tenant.addUser({ methods: ['fido2'] })
    const bare = fake.tenant.addUser()
    // Throttling the RetryHandler absorbs, then server errors it does not retry: the engine's retries must not double-apply.
    fake.failNext(2, { status: 429, retryAfterSeconds: 0, match: /requirements$/ })
    fake.failNext(1, { status: 500, match: /^PATCH .*requirements$/ })
    fake.failNext(1, { status: 503, retryAfterSeconds: 0, match: /^PATCH .*requirements$/ })
    const first = await withRetries(async () => await provider.enforce(subjectOf(enrolled.id, true)))
    const second = await withRetries(async () => await provider.enforce(subjectOf(bare.id, false)))
    assert.deepEqual(first, { changed: true })
    assert.deepEqual(second, { changed: true })
    assert.equal(enrolled.requirement, 'enforced')
    assert.equal(bare.requirement, 'enabled')
    assert.deepEqual(fake.requirementWrites(enrolled.id), { patches: 1, changes: 1 })
    assert.deepEqual(fake.requirementWrites(bare.id), { patches: 1, changes: 1 })
    assert.ok(fake.calls.some((c) => c.retryAttempt === '1'), 'the Graph client retried throttled requests itself')
    // Idempotent on repeat: reads only.
    assert.deepEqual(await provider.enforce(subjectOf(enrolled.id, true)), { changed: false })
    assert.deepEqual(await provider.enforce(subjectOf(bare.id, false)), { changed: false })
    assert.equal(fake.requirementWrites(enrolled.id).patches, 1)
    assert.equal(fake.requirementWrites(bare.id).patches, 1)
  } finally {
    await close()
  }
})

test('a server error surfaces as a retryable ProviderError, throttling beyond the retries with its Retry-After', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    fake.failNext(1, { status: 502, match: /requirements$/ })
    await assert.rejects(provider.enforce(subjectOf(user.id, false)), (err: ProviderError) => err.retryable && err.code === 'server_error')
    fake.failNext(4, { status: 429, retryAfterSeconds: 0, match: /requirements$/ })
    await assert.rejects(provider.enforcementState(subjectOf(user.id, false)), (err: ProviderError) => err.retryable && err.code === 'throttled' && err.retryAfterMs === 0)
    assert.equal(user.requirement, 'disabled')
  } finally {
    await close()
  }
})

test('an unknown user is a non-retryable error naming Graph\'s code', async () => {
  const { provider, close } = await entraFixture()
  try {
    await assert.rejects(provider.enforce(subjectOf('00000000-0000-0000-0000-000000000000', true)), (err: ProviderError) => {
      assert.equal(err.retryable, false)
      assert.equal(err.code, 'Request_ResourceNotFound')
      assert.match(err.message, /404 Request_ResourceNotFound/)
      return true
    })
    await assert.rejects(provider.enforce({ userId: 'u1', externalId: null, email: 'new@contoso.example', enrolled: false }), (err: ProviderError) => err.code === 'no_external_id' && !err.retryable)
  } finally {
    await close()
  }
})

test('a hand-made change at Entra (drift) shows in enforcementState, and relaxing sets disabled once', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser({ methods: ['softwareOath'] })
    await provider.enforce(subjectOf(user.id, true))
    assert.equal(await provider.enforcementState(subjectOf(user.id, true)), 'enforced')
    fake.tenant.setRequirementByHand(user.id, 'disabled')
    assert.equal(await provider.enforcementState(subjectOf(user.id, true)), 'not_enforced')
    fake.tenant.setRequirementByHand(user.id, 'enforced')
    assert.deepEqual(await provider.relax(subjectOf(user.id, true)), { changed: true })
    assert.deepEqual(await provider.relax(subjectOf(user.id, true)), { changed: false })
    assert.equal(user.requirement, 'disabled')
    assert.equal(await provider.enforcementState(subjectOf(user.id, true)), 'not_enforced')
  } finally {
    await close()
  }
})

test('bulk enforcement goes through $batch, re-sends throttled items, and writes each user exactly once', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const users = Array.from({ length: 45 }, (_, i) => fake.tenant.addUser({ methods: i % 2 === 0 ? ['fido2'] : [] }))
    users[3].requirement = 'enforced' // already done: read, not written
    fake.failNext(7, { status: 429, retryAfterSeconds: 0, match: /^PATCH .*requirements$/ })
    fake.failNext(3, { status: 503, retryAfterSeconds: 0, match: /^GET .*requirements$/ })
    fake.failNext(1, { status: 500, match: /^PATCH .*requirements$/ })
    const results = await provider.enforceMany([...users.map((u, i) => subjectOf(u.id, i % 2 === 0)), { userId: 'x', externalId: null, email: 'x@contoso.example', enrolled: false }])
    assert.equal(results.length, 46)
    assert.deepEqual(results[3], { changed: false })
    assert.equal(results.filter((r) => 'changed' in r && r.changed).length, 44)
    assert.ok('error' in results[45] && results[45].error.code === 'no_external_id')
    users.forEach((u, i) => {
      assert.equal(u.requirement, i % 2 === 0 || i === 3 ? 'enforced' : 'enabled')
      assert.equal(fake.requirementWrites(u.id).patches, i === 3 ? 0 : 1)
    })
    assert.equal(fake.calls.filter((c) => c.path.endsWith('/requirements')).every((c) => c.inBatch && c.version === 'beta'), true)
    // Idempotent on repeat.
    const again = await provider.enforceMany(users.map((u, i) => subjectOf(u.id, i % 2 === 0)))
    assert.equal(again.every((r) => 'changed' in r && !r.changed), true)
  } finally {
    await close()
  }
})

test('group mode adds the user to the Conditional Access group instead, and only once', async () => {
  const groupId = 'a1b2c3d4-0000-4000-8000-000000000001'
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_ENFORCEMENT: 'group', ENTRA_ENFORCEMENT_GROUP_ID: groupId } })
  try {
    fake.tenant.addGroup(groupId)
    const user = fake.tenant.addUser()
    const member = fake.tenant.addUser()
    fake.tenant.groups.get(groupId)!.add(member.id)
    assert.equal(await provider.enforcementState(subjectOf(user.id, false)), 'not_enforced')
    assert.deepEqual(await provider.enforce(subjectOf(user.id, false)), { changed: true })
    assert.deepEqual(await provider.enforce(subjectOf(user.id, false)), { changed: false })
    assert.deepEqual(await provider.enforce(subjectOf(member.id, true)), { changed: false })
    assert.equal(await provider.enforcementState(subjectOf(user.id, false)), 'enforced')
    assert.equal(user.requirement, 'disabled', 'per-user MFA is left alone in group mode')
    assert.equal(fake.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/members/$ref')).length, 1)
    assert.deepEqual(await provider.relax(subjectOf(user.id, false)), { changed: true })
    assert.deepEqual(await provider.relax(subjectOf(user.id, false)), { changed: false })
    assert.equal(fake.tenant.groups.get(groupId)!.has(user.id), false)
    const bulk = await provider.enforceMany([subjectOf(user.id, false), subjectOf(member.id, true)])
    assert.deepEqual(bulk, [{ changed: true }, { changed: false }])
    assert.equal(fake.tenant.groups.get(groupId)!.has(user.id), true)
  } finally {
    await close()
  }
})
