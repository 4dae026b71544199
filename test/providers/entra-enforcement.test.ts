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

test('a user with nothing registered at Entra is set to enabled even when the portal counts them enrolled; enforced once Entra reports a method', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    // A passkey in the portal protects the portal only: Entra has nothing for this user yet.
    const portalOnly = fake.tenant.addUser()
    assert.deepEqual(await provider.enforce(subjectOf(portalOnly.id, true)), { changed: true })
    assert.equal(portalOnly.requirement, 'enabled', 'enforced without a method would leave the user no way to sign in')
    // Registered at Entra since: the next enforce moves the user on, once.
    fake.tenant.addMethod(portalOnly, 'microsoftAuthenticator')
    assert.deepEqual(await provider.enforce(subjectOf(portalOnly.id, false)), { changed: true })
    assert.equal(portalOnly.requirement, 'enforced', 'what Entra reports decides, not what the portal believes')
    const bulk = [fake.tenant.addUser(), fake.tenant.addUser({ methods: [{ phone: '+1 2065550100' }] })]
    await provider.enforceMany([subjectOf(bulk[0].id, true), subjectOf(bulk[1].id, false)])
    assert.deepEqual(bulk.map((u) => u.requirement), ['enabled', 'enforced'])
    // Back where it was found before the first flip, not at the intermediate `enabled`.
    assert.deepEqual(await provider.relax(subjectOf(portalOnly.id, false)), { changed: true })
    assert.equal(portalOnly.requirement, 'disabled')
  } finally {
    await close()
  }
})

test('relax restores exactly the per-user state found before the portal\'s first flip', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    // An administrator had already set this user to `enabled` before the campaign; the portal then enforces.
    const user = fake.tenant.addUser({ methods: ['fido2'], requirement: 'enabled' })
    assert.deepEqual(await provider.enforce(subjectOf(user.id, true)), { changed: true })
    assert.equal(user.requirement, 'enforced')
    assert.deepEqual(await provider.relax(subjectOf(user.id, true)), { changed: true })
    assert.equal(user.requirement, 'enabled', 'the administrator\'s own setting comes back, not `disabled`')
    // Entra moving a registered user from `enabled` to `enforced` by itself is still the portal's doing.
    const registering = fake.tenant.addUser()
    await provider.enforce(subjectOf(registering.id, false))
    fake.tenant.setRequirementByHand(registering.id, 'enforced')
    assert.deepEqual(await provider.relax(subjectOf(registering.id, false)), { changed: true })
    assert.equal(registering.requirement, 'disabled')
  } finally {
    await close()
  }
})

test('relax leaves a per-user state an administrator changed after the portal\'s flip, and says why', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const changedByHand = fake.tenant.addUser({ methods: ['softwareOath'] })
    const neverFlipped = fake.tenant.addUser({ methods: ['softwareOath'], requirement: 'enforced' })
    await provider.enforce(subjectOf(changedByHand.id, true))
    await provider.enforce(subjectOf(neverFlipped.id, true))
    fake.tenant.setRequirementByHand(changedByHand.id, 'enabled')
    const patches = fake.requirementWrites(changedByHand.id).patches

    const relaxed = await provider.relax(subjectOf(changedByHand.id, true))
    assert.equal(relaxed.changed, false)
    assert.match(relaxed.note ?? '', /an administrator changed it after the portal set "enforced"/)
    assert.equal(changedByHand.requirement, 'enabled')
    assert.equal(fake.requirementWrites(changedByHand.id).patches, patches, 'no PATCH at all')

    // Enforced by an administrator before the portal came: the portal set nothing, so it lifts nothing.
    const untouched = await provider.relaxMany([subjectOf(neverFlipped.id, true)])
    assert.equal(neverFlipped.requirement, 'enforced')
    assert.ok('changed' in untouched[0] && !untouched[0].changed && /no record of setting it/.test(untouched[0].note ?? ''))
    assert.equal(fake.requirementWrites(neverFlipped.id).patches, 0)
  } finally {
    await close()
  }
})

test('group mode removes on relax only a membership the portal added', async () => {
  const groupId = 'a1b2c3d4-0000-4000-8000-000000000002'
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_ENFORCEMENT: 'group', ENTRA_ENFORCEMENT_GROUP_ID: groupId } })
  try {
    const addedByAdmin = fake.tenant.addUser()
    fake.tenant.addGroup(groupId, [addedByAdmin.id])
    assert.deepEqual(await provider.enforce(subjectOf(addedByAdmin.id, false)), { changed: false })
    const relaxed = await provider.relax(subjectOf(addedByAdmin.id, false))
    assert.equal(relaxed.changed, false)
    assert.match(relaxed.note ?? '', /the portal did not add this user/)
    assert.ok(fake.tenant.groups.get(groupId)!.has(addedByAdmin.id))
  } finally {
    await close()
  }
})

test('group mode: a user the portal added who is also in the group through a nested group is not reported relaxed: the portal removes its own membership and says the nesting keeps MFA required', async () => {
  const groupId = 'a1b2c3d4-0000-4000-8000-000000000003'
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_ENFORCEMENT: 'group', ENTRA_ENFORCEMENT_GROUP_ID: groupId } })
  try {
    fake.tenant.addGroup(groupId)
    const single = fake.tenant.addUser()
    const bulk = fake.tenant.addUser()
    for (const user of [single, bulk]) assert.deepEqual(await provider.enforce(subjectOf(user.id, false)), { changed: true })
    // An administrator later puts both into a group that is itself a member of the enforcement group.
    fake.tenant.groups.get(groupId)!.add(fake.tenant.addGroup(undefined, [single.id, bulk.id]))

    await assert.rejects(provider.relax(subjectOf(single.id, false)), (err: ProviderError) => {
      assert.equal(err.code, 'entra_group_nested_membership')
      assert.equal(err.retryable, false, 'a person must act: retrying cannot change it')
      assert.match(err.message, /through a nested group/)
      return true
    })
    assert.equal(fake.tenant.groups.get(groupId)!.has(single.id), false, 'the membership the portal added is removed')
    const [result] = await provider.relaxMany([subjectOf(bulk.id, false)])
    assert.ok('error' in result && result.error.code === 'entra_group_nested_membership', JSON.stringify(result))
    assert.equal(fake.tenant.groups.get(groupId)!.has(bulk.id), false)
  } finally {
    await close()
  }
})

test('group mode: when the portal\'s membership was replaced by a nested one, relax reports that the portal cannot lift it instead of success', async () => {
  const groupId = 'a1b2c3d4-0000-4000-8000-000000000004'
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_ENFORCEMENT: 'group', ENTRA_ENFORCEMENT_GROUP_ID: groupId } })
  try {
    fake.tenant.addGroup(groupId)
    const user = fake.tenant.addUser()
    assert.deepEqual(await provider.enforce(subjectOf(user.id, false)), { changed: true })
    // An administrator moves the user: out of the group directly, into a nested group.
    fake.tenant.groups.get(groupId)!.delete(user.id)
    fake.tenant.groups.get(groupId)!.add(fake.tenant.addGroup(undefined, [user.id]))
    await assert.rejects(provider.relax(subjectOf(user.id, false)), (err: ProviderError) => err.code === 'entra_group_nested_membership' && !err.retryable)
    assert.equal(await provider.enforcementState(subjectOf(user.id, false)), 'enforced')
  } finally {
    await close()
  }
})
