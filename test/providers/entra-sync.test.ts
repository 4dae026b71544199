import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ProviderUser } from '../../server/domain/provider.ts'
import type { EntraProvider } from '../../server/providers/entra/provider.ts'
import { entraFixture, subjectOf } from '../fakes/graph/harness.ts'

const GLOBAL_ADMIN = '62e90394-69f5-4237-9190-012177145e10'
const AUTH_ADMIN = 'c4e39bd9-1100-46d3-8c65-fb160da0071f'
const READER = '88d8e3e3-8f55-4a1e-953a-9b9898b8876b' // Directory Readers: not privileged

async function syncAll (provider: EntraProvider): Promise<{ users: ProviderUser[], pages: number, sources: Set<string | undefined> }> {
  const users: ProviderUser[] = []
  const sources = new Set<string | undefined>()
  let cursor: string | null = null
  let pages = 0
  do {
    const page = await provider.listUsers(cursor)
    users.push(...page.users)
    sources.add(page.registrationSource)
    cursor = page.next
    pages++
  } while (cursor !== null)
  return { users, pages, sources }
}

test('a sync reads every one of 2,500 users across pages, with the phone from extensionAttribute15', async () => {
  const { fake, provider, close } = await entraFixture({ env: { ENTRA_PHONE_ATTRIBUTE: 'extensionAttribute15' }, provider: { pageSize: 300 } })
  try {
    for (let i = 0; i < 2500; i++) fake.tenant.addUser({ mobilePhone: '+1 425 555 0000', ext: i % 2 === 0 ? { extensionAttribute15: `+44 7700 9${String(i).padStart(5, '0')}` } : {} })
    const { users, pages } = await syncAll(provider)
    assert.equal(pages, 9)
    assert.equal(users.length, 2500)
    assert.equal(new Set(users.map((u) => u.externalId)).size, 2500)
    assert.equal(users[0].phone, '+44 7700 900000')
    assert.equal(users[1].phone, null, 'the configured attribute is empty, and mobilePhone is not the source')
    assert.equal(users[0].email, fake.tenant.users[0].userPrincipalName)
    // The listing asked Graph for extension attributes and account state, which come back only when selected.
    const first = fake.calls.find((c) => c.path === '/users')!
    assert.equal(first.status, 200)
    assert.equal(users.every((u) => u.enabled), true)
  } finally {
    await close()
  }
})

test('holders of an administrator role are privileged, other roles and other users are not', async () => {
  const { fake, provider, close } = await entraFixture({ provider: { pageSize: 2 } })
  try {
    const admin = fake.tenant.addUser()
    const authAdmin = fake.tenant.addUser()
    const reader = fake.tenant.addUser()
    const plain = fake.tenant.addUser()
    fake.tenant.assignRole(admin.id, GLOBAL_ADMIN)
    fake.tenant.assignRole(authAdmin.id, AUTH_ADMIN)
    fake.tenant.assignRole(reader.id, READER)
    const { users } = await syncAll(provider)
    const byId = new Map(users.map((u) => [u.externalId, u]))
    assert.equal(byId.get(admin.id)!.privileged, true)
    assert.equal(byId.get(admin.id)!.attributes!.privilegedRoles, GLOBAL_ADMIN)
    assert.equal(byId.get(authAdmin.id)!.privileged, true)
    assert.equal(byId.get(reader.id)!.privileged, false)
    assert.equal(byId.get(plain.id)!.privileged, false)
    // Role assignments are read once per listing run, not once per page.
    const roleReads = fake.calls.filter((c) => c.path === '/roleManagement/directory/roleAssignments')
    assert.equal(roleReads.length, 15)
  } finally {
    await close()
  }
})

test('disabled accounts are reported enabled:false and guests as not targetable', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const disabled = fake.tenant.addUser({ accountEnabled: false })
    const guest = fake.tenant.addUser({ userType: 'Guest' })
    const member = fake.tenant.addUser()
    const { users } = await syncAll(provider)
    const byId = new Map(users.map((u) => [u.externalId, u]))
    assert.equal(byId.get(disabled.id)!.enabled, false)
    assert.equal(byId.get(member.id)!.enabled, true)
    assert.equal(byId.get(guest.id)!.targetable, false)
    assert.equal(byId.get(member.id)!.targetable, true)
  } finally {
    await close()
  }
})

test('registered methods come from the registration report, mapped to the portal\'s kinds', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const keyUser = fake.tenant.addUser({ methods: ['fido2', { phone: '+1 2065550100' }] })
    const appUser = fake.tenant.addUser({ methods: ['softwareOath', 'microsoftAuthenticator'] })
    const nobody = fake.tenant.addUser()
    const { users, sources } = await syncAll(provider)
    const byId = new Map(users.map((u) => [u.externalId, u]))
    assert.deepEqual([...sources], ['userRegistrationDetails'])
    assert.deepEqual(byId.get(keyUser.id)!.methods, ['passkey', 'phone'])
    assert.deepEqual(byId.get(appUser.id)!.methods, ['authenticator', 'totp'])
    assert.deepEqual(byId.get(nobody.id)!.methods, [])
  } finally {
    await close()
  }
})

test('without a P1 licence (report answers 403) methods are read per user and the source says so', async () => {
  const { fake, provider, close } = await entraFixture({ provider: { pageSize: 25 } })
  try {
    fake.tenant.reportForbidden = true
    const users = Array.from({ length: 60 }, (_, i) => fake.tenant.addUser({ methods: i % 3 === 0 ? ['fido2'] : [] }))
    const result = await syncAll(provider)
    assert.deepEqual([...result.sources], ['authentication/methods'])
    const byId = new Map(result.users.map((u) => [u.externalId, u]))
    assert.deepEqual(byId.get(users[0].id)!.methods, ['passkey'])
    assert.deepEqual(byId.get(users[1].id)!.methods, [])
    // Per-user reads went 20 to a $batch.
    const perUser = fake.calls.filter((c) => c.path.endsWith('/authentication/methods'))
    assert.equal(perUser.length, 60)
    assert.equal(perUser.every((c) => c.inBatch), true)
    assert.equal(fake.calls.filter((c) => c.path.startsWith('/reports/')).length, 1)
  } finally {
    await close()
  }
})

test('members of the groups campaigns target are reported in groups, read once per group', async () => {
  let targets: string[] = []
  const { fake, provider, close } = await entraFixture({ provider: { campaignGroupIds: () => targets } })
  try {
    const a = fake.tenant.addUser()
    const b = fake.tenant.addUser()
    const finance = fake.tenant.addGroup(undefined, [a.id])
    const pilots = fake.tenant.addGroup(undefined, [a.id, b.id])
    fake.tenant.addGroup(undefined, [b.id]) // no campaign names it: never read
    targets = [finance, pilots]
    const { users } = await syncAll(provider)
    const byId = new Map(users.map((u) => [u.externalId, u]))
    assert.deepEqual(byId.get(a.id)!.groups.sort(), [finance, pilots].sort())
    assert.deepEqual(byId.get(b.id)!.groups, [pilots])
    assert.equal(fake.calls.filter((c) => c.path.startsWith('/groups/')).length, 2)
  } finally {
    await close()
  }
})

test('a live registration status reads the user\'s methods now, not the lagging report', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const user = fake.tenant.addUser()
    assert.deepEqual(await provider.registrationStatus(subjectOf(user.id, false)), { methods: [], source: 'authentication/methods' })
    fake.tenant.addMethod(user, 'fido2')
    assert.deepEqual(await provider.registrationStatus(subjectOf(user.id, false)), { methods: ['passkey'], source: 'authentication/methods' })
  } finally {
    await close()
  }
})

test('a cursor that does not point at Microsoft Graph is refused before any token leaves', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    await assert.rejects(provider.listUsers('https://attacker.example/v1.0/users?$skiptoken=x'), (err: Error & { code?: string, retryable?: boolean }) => {
      assert.equal(err.code, 'invalid_cursor')
      assert.equal(err.retryable, false)
      return true
    })
    assert.equal(fake.calls.length, 0)
  } finally {
    await close()
  }
})
