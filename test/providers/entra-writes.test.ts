import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { Secret } from 'otpauth'
import type { ProviderError } from '../../server/domain/provider.ts'
import { entraFixture, listAll, subjectOf } from '../fakes/graph/harness.ts'

const EPOCH = 1_767_225_600 // 2026-01-01T00:00:00Z, mid-step for 30 s periods

function oathtool (secret: string, epoch: number): string {
  return execFileSync('/usr/bin/oathtool', ['--totp', '-b', secret, '-N', `@${epoch}`], { encoding: 'utf8' }).trim()
}

// Graph carried each of these out, then the answer was lost (503): a second POST would make a second phone, pass
// or token. The adapter sends a create once, and a read afterwards finds out whether it happened.

test('a phone create Graph carried out but answered 503 is not sent again: the read that follows finds the number', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    fake.failNext(1, { status: 503, match: /^POST .*\/phoneMethods$/, afterDoing: true })
    assert.equal(await provider.setMobilePhone(user.id, '+33612345678', { replaceExisting: false }), 'create')
    assert.equal(fake.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/phoneMethods')).length, 1)
    assert.equal(fake.tenant.phone(user, 'mobile')!.props.phoneNumber, '+33 612345678')
  } finally {
    await close()
  }
})

test('a phone create that never happened (503 before Graph acted) is reported as a retryable failure, not as done', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    fake.failNext(1, { status: 503, match: /^POST .*\/phoneMethods$/ })
    await assert.rejects(provider.setMobilePhone(user.id, '+33612345678', { replaceExisting: false }), (err: ProviderError) => err.retryable)
    assert.equal(fake.tenant.phone(user, 'mobile'), undefined)
  } finally {
    await close()
  }
})

test('pre-population: a create in a $batch that Graph carried out but answered 503 is found by a read, not re-batched', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_PHONE_ATTRIBUTE: 'extensionAttribute15' } })
  try {
    const users = Array.from({ length: 3 }, (_, i) => fake.tenant.addUser({ ext: { extensionAttribute15: `+1 206 555 014${i}` } }))
    const listed = await listAll(async (c) => await provider.listUsers(c))
    fake.failNext(1, { status: 503, match: new RegExp(`^POST /v1\\.0/users/${users[1].id}/authentication/phoneMethods$`), afterDoing: true })
    const done = await provider.prepopulatePhones(listed, { dryRun: false, defaultRegion: 'US' })
    assert.deepEqual(done.map((l) => l.applied), [true, true, true])
    for (const user of users) {
      assert.equal(fake.calls.filter((c) => c.method === 'POST' && c.path === `/users/${user.id}/authentication/phoneMethods`).length, 1, 'one create per user')
    }
  } finally {
    await close()
  }
})

test('a temporary access pass whose answer was lost is not created a second time: the helpdesk is told to issue it again', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    fake.failNext(1, { status: 503, match: /^POST .*temporaryAccessPassMethods$/, afterDoing: true })
    await assert.rejects(provider.issueAccessPass(user.id, { lifetimeMinutes: 60 }), (err: ProviderError) => {
      assert.equal(err.code, 'access_pass_answer_lost')
      assert.match(err.message, /issue .*again/i)
      return true
    })
    assert.equal(fake.calls.filter((c) => c.method === 'POST' && c.path.endsWith('temporaryAccessPassMethods')).length, 1)
    // Asked again, it replaces the pass nobody saw.
    const pass = await provider.issueAccessPass(user.id, { lifetimeMinutes: 60 })
    assert.equal(user.tap?.id, pass.methodId)
  } finally {
    await close()
  }
})

test('a hardware OATH token create Graph carried out but answered 503 is found by its serial number, not made twice', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_HARDWARE_OATH: 'true' }, fake: { now: () => new Date(EPOCH * 1000 + 10_000) } })
  try {
    const user = fake.tenant.addUser()
    const secret = new Secret({ size: 20 }).base32
    fake.failNext(1, { status: 503, match: /^POST .*\/hardwareOathDevices$/, afterDoing: true })
    const { deviceId } = await provider.enrollOathToken(user.id, { secretKey: secret, code: oathtool(secret, EPOCH), displayName: 'Phone app' })
    assert.equal(fake.tenant.oathDevices.size, 1)
    assert.equal(fake.tenant.oathDevices.get(deviceId)!.status, 'activated')
  } finally {
    await close()
  }
})

test('a hardware OATH token is created already assigned (one call), and activated', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_HARDWARE_OATH: 'true' }, fake: { now: () => new Date(EPOCH * 1000 + 10_000) } })
  try {
    const user = fake.tenant.addUser()
    const secret = new Secret({ size: 20 }).base32
    const { deviceId, methodId } = await provider.enrollOathToken(user.id, { secretKey: secret, code: oathtool(secret, EPOCH) })
    assert.equal(methodId, deviceId, 'the user\'s method carries the device id')
    assert.deepEqual(fake.calls.filter((c) => c.method === 'POST').map((c) => c.path.replace(user.id, 'USER').replace(deviceId, 'DEVICE')), [
      '/directory/authenticationMethodDevices/hardwareOathDevices',
      '/users/USER/authentication/hardwareOathMethods/DEVICE/activate'
    ])
  } finally {
    await close()
  }
})

test('a code Entra refuses leaves no token behind: the assigned device is unassigned and deleted', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_HARDWARE_OATH: 'true' }, fake: { now: () => new Date(EPOCH * 1000) } })
  try {
    const user = fake.tenant.addUser()
    const secret = new Secret({ size: 20 }).base32
    for (let attempt = 0; attempt < 2; attempt++) {
      // A code from ten minutes earlier is outside the ±1 step Entra tolerates.
      await assert.rejects(provider.enrollOathToken(user.id, { secretKey: secret, code: oathtool(secret, EPOCH - 600) }), (err: ProviderError) => err.code === 'oath_code_rejected' && !err.retryable)
    }
    assert.equal(fake.tenant.oathDevices.size, 0, 'no device holds the seed, however many tries')
    assert.equal(user.methods.filter((m) => m.odataType.includes('hardwareOath')).length, 0)
  } finally {
    await close()
  }
})

test('with hardware OATH tokens turned off in the tenant\'s authentication methods policy, the portal says so and creates nothing', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_HARDWARE_OATH: 'true' }, fake: { now: () => new Date(EPOCH * 1000) } })
  try {
    const user = fake.tenant.addUser()
    fake.tenant.hardwareOathPolicy = { state: 'disabled' }
    const secret = new Secret({ size: 20 }).base32
    await assert.rejects(provider.enrollOathToken(user.id, { secretKey: secret, code: oathtool(secret, EPOCH) }), (err: ProviderError) => {
      assert.equal(err.code, 'hardware_oath_policy_disabled')
      assert.match(err.message, /Hardware OATH tokens.*authentication methods policy/)
      return true
    })
    assert.equal(fake.tenant.oathDevices.size, 0)
    assert.equal(fake.calls.filter((c) => c.method === 'POST').length, 0)
  } finally {
    await close()
  }
})

test('POSTs that are idempotent by design are sent again after a 503: a membership read and a membership add', async () => {
  const groupId = 'a1b2c3d4-0000-4000-8000-000000000009'
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_ENFORCEMENT: 'group', ENTRA_ENFORCEMENT_GROUP_ID: groupId } })
  try {
    fake.tenant.addGroup(groupId)
    const user = fake.tenant.addUser()
    fake.failNext(1, { status: 503, match: /^POST .*\/checkMemberGroups$/ })
    fake.failNext(1, { status: 503, match: /^POST .*\/members\/\$ref$/, afterDoing: true })
    await provider.enforce(subjectOf(user.id, false))
    assert.equal(fake.tenant.groups.get(groupId)!.has(user.id), true)
    assert.equal(await provider.enforcementState(subjectOf(user.id, false)), 'enforced')
    const adds = fake.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/members/$ref'))
    assert.deepEqual(adds.map((c) => c.status), [503, 400], 'sent again; the repeat answers "already exist", a no-op')
  } finally {
    await close()
  }
})
