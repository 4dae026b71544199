import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ProviderError } from '../../server/domain/provider.ts'
import { entraFixture, listAll } from '../fakes/graph/harness.ts'

const MOBILE_ID = '3179e48a-750b-4051-897c-87b9720928f7'

test('phone pre-population from extensionAttribute15: a dry run lists the changes, the real run creates each missing mobile once, another number already there is a conflict left alone, invalid numbers are never pushed', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_PHONE_ATTRIBUTE: 'extensionAttribute15' } })
  try {
    const fresh = fake.tenant.addUser({ ext: { extensionAttribute15: '(206) 555-0143' } })
    const moved = fake.tenant.addUser({ ext: { extensionAttribute15: '+44 7911 123456' }, methods: [{ phone: '+1 2065550100' }] })
    const same = fake.tenant.addUser({ ext: { extensionAttribute15: '+1 206-555-0199' }, methods: [{ phone: '+1 2065550199' }] })
    const junk = fake.tenant.addUser({ ext: { extensionAttribute15: 'call reception' } })
    const none = fake.tenant.addUser()
    const users = await listAll(async (c) => await provider.listUsers(c))

    const plan = await provider.prepopulatePhones(users, { dryRun: true, defaultRegion: 'US' })
    const byId = new Map(plan.map((p) => [p.externalId, p]))
    assert.deepEqual({ ...byId.get(fresh.id) }, { externalId: fresh.id, action: 'create', phone: '+12065550143', previous: null, applied: false })
    assert.equal(byId.get(moved.id)!.action, 'conflict')
    assert.equal(byId.get(moved.id)!.previous, '+12065550100')
    assert.equal(byId.get(same.id)!.action, 'unchanged')
    assert.equal(byId.get(junk.id)!.action, 'invalid')
    assert.match(byId.get(junk.id)!.reason!, /not a valid phone number/)
    assert.equal(byId.get(none.id)!.action, 'invalid')
    assert.equal(fake.tenant.phone(fresh, 'mobile'), undefined, 'a dry run writes nothing')
    assert.equal(fake.calls.filter((c) => c.method !== 'GET').length, 0)

    const done = await provider.prepopulatePhones(users, { dryRun: false, defaultRegion: 'US' })
    assert.deepEqual(done.filter((p) => p.applied).map((p) => p.externalId), [fresh.id])
    assert.equal(fake.tenant.phone(fresh, 'mobile')!.props.phoneNumber, '+1 2065550143')
    assert.equal(fake.tenant.phone(fresh, 'mobile')!.id, MOBILE_ID)
    assert.equal(fake.tenant.phone(moved, 'mobile')!.props.phoneNumber, '+1 2065550100', 'the number Entra held is never replaced by a feed')
    assert.equal(done.find((p) => p.externalId === moved.id)!.action, 'conflict')
    const writes = fake.calls.filter((c) => c.method !== 'GET')
    assert.deepEqual(writes.map((c) => `${c.method} ${c.status}`), ['POST 201'])
    assert.equal(fake.tenant.phone(junk, 'mobile'), undefined)

    const again = await provider.prepopulatePhones(users, { dryRun: false, defaultRegion: 'US' })
    assert.equal(again.filter((p) => p.action === 'create').length, 0)
    assert.equal(fake.calls.filter((c) => c.method !== 'GET').length, 1, 'a second run writes nothing')
  } finally {
    await close()
  }
})

test('a phone the portal verified is set as the mobile method, created once; another number replaces it in place only when the caller says the user proved an existing method', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    assert.equal(await provider.setMobilePhone(user.id, '+33612345678', { replaceExisting: false }), 'create')
    assert.equal(await provider.setMobilePhone(user.id, '+33612345678', { replaceExisting: false }), 'unchanged')
    assert.equal(await provider.setMobilePhone(user.id, '+33698765432', { replaceExisting: false }), 'conflict')
    assert.equal(user.methods.find((m) => m.props.phoneType === 'mobile')!.props.phoneNumber, '+33 612345678', 'a conflict writes nothing')
    assert.equal(await provider.setMobilePhone(user.id, '+33698765432', { replaceExisting: true }), 'update')
    const phones = user.methods.filter((m) => m.props.phoneType === 'mobile')
    assert.equal(phones.length, 1)
    assert.equal(phones[0].props.phoneNumber, '+33 698765432')
  } finally {
    await close()
  }
})

test('a temporary access pass has the requested lifetime, replaces the earlier one, and is never readable again', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    const first = await provider.issueAccessPass(user.id, { lifetimeMinutes: 120, oneTime: true })
    assert.equal(first.lifetimeMinutes, 120)
    assert.equal(first.oneTime, true)
    assert.equal(first.expiresAt.getTime() - first.startsAt.getTime(), 120 * 60_000)
    assert.match(first.pass, /^.{8}$/)
    const second = await provider.issueAccessPass(user.id, { lifetimeMinutes: 60 })
    assert.notEqual(second.pass, first.pass)
    assert.equal(user.tap!.id, second.methodId, 'one pass per user: the newest')
    assert.equal(fake.calls.filter((c) => c.method === 'DELETE' && c.path.includes('temporaryAccessPassMethods')).length, 0, 'creating replaces: nothing is deleted first')
    const listed = await provider.graph.get<{ value: Array<{ temporaryAccessPass: string | null }> }>(`/users/${user.id}/authentication/temporaryAccessPassMethods`)
    assert.equal(listed.value[0].temporaryAccessPass, null)
  } finally {
    await close()
  }
})

test('the tenant TAP policy bounds passes: refused outside it with the allowed range, or fitted when asked to clamp', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    fake.tenant.tapPolicy = { ...fake.tenant.tapPolicy, minimumLifetimeInMinutes: 60, maximumLifetimeInMinutes: 240, isUsableOnce: true }
    assert.deepEqual(await provider.accessPassPolicy(), { enabled: true, minimumLifetimeMinutes: 60, maximumLifetimeMinutes: 240, defaultLifetimeMinutes: 60, defaultLength: 8, oneTimeOnly: true })
    await assert.rejects(provider.issueAccessPass(user.id, { lifetimeMinutes: 600 }), (err: ProviderError) => {
      assert.equal(err.code, 'access_pass_lifetime_out_of_policy')
      assert.match(err.message, /60 to 240 minutes/)
      return true
    })
    await assert.rejects(provider.issueAccessPass(user.id, { lifetimeMinutes: 60, oneTime: false }), (err: ProviderError) => err.code === 'access_pass_one_time_only')
    assert.equal(user.tap, null, 'nothing was issued')
    const fitted = await provider.issueAccessPass(user.id, { lifetimeMinutes: 600, oneTime: false, outOfPolicy: 'clamp' })
    assert.equal(fitted.lifetimeMinutes, 240)
    assert.equal(fitted.oneTime, true)
    fake.tenant.tapPolicy = { ...fake.tenant.tapPolicy, state: 'disabled' }
    await assert.rejects(provider.issueAccessPass(user.id), (err: ProviderError) => err.code === 'access_pass_disabled')
  } finally {
    await close()
  }
})

test('a mobile number Entra holds in a form the portal cannot read is still the mobile method: it is a conflict, replaced in place only with proof, never a second create', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_PHONE_ATTRIBUTE: 'extensionAttribute15' } })
  try {
    const user = fake.tenant.addUser({ ext: { extensionAttribute15: '+1 206 555 0143' }, methods: [{ phone: '+999 1234567' }] })
    assert.equal(await provider.setMobilePhone(user.id, '+33612345678', { replaceExisting: false }), 'conflict')
    assert.equal(fake.tenant.phone(user, 'mobile')!.props.phoneNumber, '+999 1234567', 'a conflict writes nothing')

    const users = await listAll(async (c) => await provider.listUsers(c))
    const [line] = await provider.prepopulatePhones(users, { dryRun: false, defaultRegion: 'US' })
    assert.equal(line.action, 'conflict')
    assert.equal(line.previous, '+999 1234567', 'the number Entra holds, as it holds it')
    assert.equal(line.applied, false)

    assert.equal(await provider.setMobilePhone(user.id, '+33612345678', { replaceExisting: true }), 'update')
    assert.deepEqual(user.methods.filter((m) => m.props.phoneType === 'mobile').map((m) => m.props.phoneNumber), ['+33 612345678'])
    assert.equal(fake.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/phoneMethods')).length, 0, 'never a second mobile method')
  } finally {
    await close()
  }
})

test('a pass whose creation fails leaves the earlier pass in place: nothing is deleted before the new one exists', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    const first = await provider.issueAccessPass(user.id, { lifetimeMinutes: 60 })
    fake.failNext(1, { status: 400, match: /^POST .*temporaryAccessPassMethods$/ })
    await assert.rejects(provider.issueAccessPass(user.id, { lifetimeMinutes: 60 }))
    assert.equal(user.tap?.id, first.methodId, 'the pass the helpdesk handed out still works')
  } finally {
    await close()
  }
})

test('a user outside the TAP policy\'s targets is refused in plain words before anything is written; a member of a targeted group (even nested) gets a pass', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const outsider = fake.tenant.addUser()
    const insider = fake.tenant.addUser()
    const excluded = fake.tenant.addUser()
    const team = fake.tenant.addGroup(undefined, [insider.id, excluded.id])
    const helpdeskUsers = fake.tenant.addGroup(undefined, [team])
    const contractors = fake.tenant.addGroup(undefined, [excluded.id])
    fake.tenant.tapPolicy = { ...fake.tenant.tapPolicy, includeTargets: [{ targetType: 'group', id: helpdeskUsers }], excludeTargets: [{ targetType: 'group', id: contractors }] }
    fake.tenant.tapPolicy.includeTargets = [{ targetType: 'group', id: 'all_users' }]
    const earlier = await provider.issueAccessPass(outsider.id, { lifetimeMinutes: 60 })
    fake.tenant.tapPolicy.includeTargets = [{ targetType: 'group', id: helpdeskUsers }]
    const writes = (): number => fake.calls.filter((c) => c.method !== 'GET' && c.path.includes('temporaryAccessPassMethods')).length
    const before = writes()

    for (const who of [outsider, excluded]) {
      await assert.rejects(provider.issueAccessPass(who.id, { lifetimeMinutes: 60 }), (err: ProviderError) => {
        assert.equal(err.code, 'access_pass_not_in_policy')
        assert.equal(err.retryable, false)
        assert.match(err.message, /Temporary Access Pass policy/)
        return true
      })
    }
    assert.equal(writes(), before, 'nothing written')
    assert.equal(outsider.tap?.id, earlier.methodId, 'the earlier pass is untouched')
    assert.match((await provider.issueAccessPass(insider.id, { lifetimeMinutes: 60 })).pass, /^.{8}$/)
  } finally {
    await close()
  }
})
