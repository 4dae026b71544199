import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { ProviderError, ProviderUser } from '../../server/domain/provider.ts'
import type { EntraProvider } from '../../server/providers/entra/provider.ts'
import type { DisabledUserRecord } from '../../server/providers/entra/registration.ts'
import { entraFixture, subjectOf } from '../fakes/graph/harness.ts'
import type { ReportRefusal } from '../fakes/graph/tenant.ts'

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
    fake.tenant.reportRefusal = 'noPremiumLicence'
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

test('a registration report refused for a missing consent stops the sync and names the permission to grant; no per-user fallback', async () => {
  const cases: Array<[ReportRefusal, RegExp]> = [
    ['noAuditLogPermission', /lacks the application permission AuditLog\.Read\.All\b/],
    ['noDirectoryReadAccess', /lacks the application permission Directory\.Read\.All\b/],
    ['requestDenied', /lacks the application permission AuditLog\.Read\.All/]
  ]
  for (const [refusal, permission] of cases) {
    const { fake, provider, close } = await entraFixture()
    try {
      fake.tenant.reportRefusal = refusal
      fake.tenant.addUser({ methods: ['fido2'] })
      await assert.rejects(provider.listUsers(null), (err: ProviderError) => {
        assert.equal(err.code, 'entra_permission_missing', refusal)
        assert.equal(err.retryable, false)
        assert.match(err.message, permission)
        assert.match(err.message, /admin consent/)
        return true
      })
      assert.equal(fake.calls.filter((c) => c.path.endsWith('/authentication/methods')).length, 0, 'not silently read user by user')
    } finally {
      await close()
    }
  }
})

test('disabled accounts, which the report leaves out, are read per user once: the portal keeps what was read', async () => {
  const kept = new Map<string, DisabledUserRecord>()
  const { fake, provider, close } = await entraFixture({ provider: { disabledUsers: async (ids) => new Map(ids.filter((id) => kept.has(id)).map((id) => [id, kept.get(id)!])) } })
  try {
    const known = fake.tenant.addUser({ accountEnabled: false, methods: ['fido2'] })
    const stranger = fake.tenant.addUser({ accountEnabled: false, methods: ['fido2'] })
    fake.tenant.addUser({ methods: ['softwareOath'] })
    kept.set(known.id, { methods: ['authenticator'], readAt: null, unrecognisedMethods: null })

    const first = new Map((await syncAll(provider)).users.map((u) => [u.externalId, u]))
    assert.deepEqual(first.get(known.id)!.methods, ['passkey'], 'read per user: the report has no row for it')
    const readAt = first.get(known.id)!.attributes!.methodsReadWhileDisabled
    assert.equal(typeof readAt, 'string')
    assert.equal(first.get(stranger.id)!.methods, undefined, 'a disabled account the portal never brought in is not read')
    const reads = (): number => fake.calls.filter((c) => c.path === `/users/${known.id}/authentication/methods`).length
    assert.equal(reads(), 1)

    // The portal stores what the listing said; the next run finds it there.
    kept.set(known.id, { methods: first.get(known.id)!.methods!, readAt: readAt as string, unrecognisedMethods: null })
    const second = new Map((await syncAll(provider)).users.map((u) => [u.externalId, u]))
    assert.equal(reads(), 1, 'not read again on the next run')
    assert.deepEqual(second.get(known.id)!.methods, ['passkey'])
    assert.equal(second.get(known.id)!.attributes!.methodsReadWhileDisabled, readAt)
  } finally {
    await close()
  }
})

test('method names the portal does not know are kept in the user\'s attributes and logged once, never counted', async () => {
  const warnings: Array<{ fields: object, message: string }> = []
  const { fake, provider, close } = await entraFixture({ provider: { log: { warn: (fields, message) => { warnings.push({ fields, message }) } } } })
  try {
    const certified = fake.tenant.addUser({ methods: ['fido2'] })
    certified.otherReportedMethods.push('x509CertificateMultiFactor')
    const onlyCert = fake.tenant.addUser()
    onlyCert.otherReportedMethods.push('x509CertificateMultiFactor', 'securityQuestion')
    for (let run = 0; run < 2; run++) {
      const byId = new Map((await syncAll(provider)).users.map((u) => [u.externalId, u]))
      assert.deepEqual(byId.get(certified.id)!.methods, ['passkey'])
      assert.equal(byId.get(certified.id)!.attributes!.unrecognisedMethods, 'x509CertificateMultiFactor')
      assert.deepEqual(byId.get(onlyCert.id)!.methods, [], 'an unknown method does not count')
      assert.equal(byId.get(onlyCert.id)!.attributes!.unrecognisedMethods, 'x509CertificateMultiFactor', 'a known non-factor is not "unknown"')
    }
    assert.equal(warnings.length, 1, 'logged once, not once per user or per run')
    assert.deepEqual(warnings[0].fields, { method: 'x509CertificateMultiFactor' })
  } finally {
    await close()
  }
})

test('a campaign group deleted in Entra is skipped with a warning instead of failing every sync', async () => {
  const warnings: object[] = []
  const gone = 'a1b2c3d4-0000-4000-8000-00000000dead'
  let targets: string[] = []
  const { fake, provider, close } = await entraFixture({ provider: { campaignGroupIds: () => targets, log: { warn: (fields) => { warnings.push(fields) } } } })
  try {
    const a = fake.tenant.addUser()
    const pilots = fake.tenant.addGroup(undefined, [a.id])
    targets = [gone, pilots]
    const { users } = await syncAll(provider)
    assert.deepEqual(users.find((u) => u.externalId === a.id)!.groups, [pilots])
    assert.deepEqual(warnings, [{ groupId: gone }])
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

test('PIM-eligible administrators and members of a role-assignable group that holds an administrator role are privileged', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    const eligible = fake.tenant.addUser()
    const viaGroup = fake.tenant.addUser()
    const viaEligibleGroup = fake.tenant.addUser()
    const readerMember = fake.tenant.addUser()
    const plain = fake.tenant.addUser()
    // PIM: eligible to activate Global Administrator whenever they like; no active assignment.
    fake.tenant.makeEligible(eligible.id, GLOBAL_ADMIN)
    // Role-assignable groups: one holds Authentication Administrator actively, one is eligible for Global Administrator.
    fake.tenant.assignRole(fake.tenant.addGroup(undefined, [viaGroup.id]), AUTH_ADMIN)
    fake.tenant.makeEligible(fake.tenant.addGroup(undefined, [viaEligibleGroup.id]), GLOBAL_ADMIN)
    fake.tenant.assignRole(fake.tenant.addGroup(undefined, [readerMember.id]), READER)

    const byId = new Map((await syncAll(provider)).users.map((u) => [u.externalId, u]))
    assert.equal(byId.get(eligible.id)!.privileged, true, 'eligible is privileged: one click away from the role')
    assert.equal(byId.get(eligible.id)!.attributes!.privilegedRoles, GLOBAL_ADMIN)
    assert.equal(byId.get(viaGroup.id)!.privileged, true)
    assert.equal(byId.get(viaGroup.id)!.attributes!.privilegedRoles, AUTH_ADMIN)
    assert.equal(byId.get(viaEligibleGroup.id)!.privileged, true)
    assert.equal(byId.get(readerMember.id)!.privileged, false, 'a group holding a role that is not an administrator role')
    assert.equal(byId.get(plain.id)!.privileged, false)
    assert.ok(fake.calls.some((c) => c.path === '/roleManagement/directory/roleEligibilityScheduleInstances' && c.status === 200))
  } finally {
    await close()
  }
})

test('a tenant without Entra ID P2 has no PIM: active assignments still count and the sync goes on', async () => {
  const { fake, provider, close } = await entraFixture()
  try {
    fake.tenant.pimUnlicensed = true
    const admin = fake.tenant.addUser()
    fake.tenant.assignRole(admin.id, GLOBAL_ADMIN)
    const { users } = await syncAll(provider)
    assert.equal(users.find((u) => u.externalId === admin.id)!.privileged, true)
    assert.ok(fake.calls.some((c) => c.path === '/roleManagement/directory/roleEligibilityScheduleInstances' && c.status === 400))
  } finally {
    await close()
  }
})
