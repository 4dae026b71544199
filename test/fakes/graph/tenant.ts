import { randomUUID } from 'node:crypto'

/** Phone method ids are fixed per type (contracts 1.6). */
export const PHONE_IDS = {
  mobile: '3179e48a-750b-4051-897c-87b9720928f7',
  alternateMobile: 'b6332ec1-7057-4abe-9331-3d72feddfe41',
  office: 'e37fc753-ff3b-4958-9484-eaa9425c82bc'
} as const
export type PhoneType = keyof typeof PHONE_IDS

export const PASSWORD_METHOD_ID = '28c10230-6103-485e-b985-444c60001490'

export type PerUserMfaState = 'disabled' | 'enabled' | 'enforced'

/** One registered method as the directory keeps it; `props` are the type's own properties (contracts 1.5). */
export interface FakeMethod {
  odataType: string
  id: string
  createdDateTime: string
  props: Record<string, unknown>
}

export interface FakeTap {
  id: string
  createdDateTime: string
  startDateTime: string
  lifetimeInMinutes: number
  isUsableOnce: boolean
}

export interface FakeUser {
  id: string
  userPrincipalName: string
  displayName: string
  mail: string | null
  mobilePhone: string | null
  accountEnabled: boolean
  userType: 'Member' | 'Guest'
  createdDateTime: string
  /** Only the extension attributes that are set; the other keys render as null. */
  ext: Record<string, string>
  methods: FakeMethod[]
  /** Names the registration report also lists for this user, for methods the fake does not model (e.g. x509CertificateMultiFactor). */
  otherReportedMethods: string[]
  requirement: PerUserMfaState
  tap: FakeTap | null
}

export interface FakeOathDevice {
  id: string
  displayName: string
  serialNumber: string
  manufacturer: string
  model: string
  secretKey: string
  timeIntervalInSeconds: number
  hashFunction: 'hmacsha1' | 'hmacsha256'
  status: 'available' | 'assigned' | 'activated' | 'failedActivation'
  assignedTo: string | null
}

export interface FakeEligibility {
  id: string
  principalId: string
  roleDefinitionId: string
  directoryScopeId: string
  appScopeId: string | null
  startDateTime: string
  endDateTime: string | null
  memberType: 'Direct' | 'Group' | 'Inherited'
  roleEligibilityScheduleId: string
}

export interface TapPolicy {
  state: 'enabled' | 'disabled'
  defaultLifetimeInMinutes: number
  minimumLifetimeInMinutes: number
  maximumLifetimeInMinutes: number
  defaultLength: number
  isUsableOnce: boolean
  /** Who may hold a pass: group ids, or the special 'all_users' (the default). */
  includeTargets: Array<{ targetType: 'group', id: string }>
  excludeTargets: Array<{ targetType: 'group', id: string }>
}

/** The 403 answers of the registration report (contracts 1.4), by cause; code and message as Graph sends them. */
export const REPORT_REFUSALS = {
  noPremiumLicence: ['Authentication_RequestFromNonPremiumTenantOrB2CTenant', 'Neither tenant is B2C or tenant doesn\'t have premium license'],
  noAuditLogPermission: ['Authentication_MSGraphPermissionMissing', 'Calling principal does not have required MSGraph permissions AuditLog.Read.All'],
  noDirectoryReadAccess: ['Authentication_ApplicationHasNoDirectoryReadAccess', 'Calling application does not have directory read access.'],
  requestDenied: ['Authorization_RequestDenied', 'Insufficient privileges to complete the operation.']
} as const
export type ReportRefusal = keyof typeof REPORT_REFUSALS

export interface NewFakeUser {
  id?: string
  userPrincipalName?: string
  displayName?: string
  mail?: string | null
  mobilePhone?: string | null
  accountEnabled?: boolean
  userType?: 'Member' | 'Guest'
  ext?: Record<string, string>
  /** When Entra created the account (ISO 8601); default: the fake's now. */
  createdDateTime?: string
  /** Methods to start with, by kind. */
  methods?: Array<'fido2' | 'softwareOath' | 'microsoftAuthenticator' | 'windowsHello' | { phone: string, type?: PhoneType }>
  requirement?: PerUserMfaState
}

/**
 * The directory behind the fake: users (array for paging, maps for lookup by id or UPN), their methods, per-user
 * MFA state, TAPs, role assignments, groups and hardware OATH devices. Plain data, so 100,000 users fit easily.
 */
export class FakeTenant {
  readonly users: FakeUser[] = []
  readonly byId = new Map<string, FakeUser>()
  readonly byUpn = new Map<string, FakeUser>()
  readonly roleAssignments: Array<{ id: string, principalId: string, roleDefinitionId: string, directoryScopeId: string }> = []
  /** PIM eligibilities (unifiedRoleEligibilityScheduleInstance): the principal may activate the role at will. */
  readonly roleEligibilities: FakeEligibility[] = []
  /** Group id → member ids: users, or other groups (nested; transitive reads expand them). */
  readonly groups = new Map<string, Set<string>>()
  readonly oathDevices = new Map<string, FakeOathDevice>()
  tapPolicy: TapPolicy = {
    state: 'enabled', defaultLifetimeInMinutes: 60, minimumLifetimeInMinutes: 60, maximumLifetimeInMinutes: 480, defaultLength: 8, isUsableOnce: false,
    includeTargets: [{ targetType: 'group', id: 'all_users' }], excludeTargets: []
  }
  /**
   * Why the registration report answers 403, or null when it serves (contracts 1.4): a tenant without Entra ID P1
   * ('noPremiumLicence'), or an app registration missing a consent, which Graph refuses with other codes.
   */
  reportRefusal: ReportRefusal | null = null
  /** The users the registration report lists in the paging run under way (enabled accounts only). */
  reportSnapshot: FakeUser[] | null = null
  /** The hardware OATH tokens method in the authentication methods policy (beta `.../authenticationMethodConfigurations/hardwareOath`). */
  hardwareOathPolicy: { state: 'enabled' | 'disabled' } = { state: 'enabled' }
  /** A tenant without Entra ID P2 (or Governance): PIM's APIs answer 400 AadPremiumLicenseRequired. */
  pimUnlicensed = false

  constructor (readonly tenantId: string, private readonly now: () => Date) {}

  addUser (input: NewFakeUser = {}): FakeUser {
    const id = input.id ?? randomUUID()
    const n = this.users.length + 1
    const upn = input.userPrincipalName ?? `user${n}@contoso.example`
    const user: FakeUser = {
      id,
      userPrincipalName: upn,
      displayName: input.displayName ?? `User ${n}`,
      mail: input.mail === undefined ? upn : input.mail,
      mobilePhone: input.mobilePhone ?? null,
      accountEnabled: input.accountEnabled ?? true,
      userType: input.userType ?? 'Member',
      createdDateTime: input.createdDateTime ?? this.now().toISOString(),
      ext: { ...input.ext },
      methods: [],
      otherReportedMethods: [],
      requirement: input.requirement ?? 'disabled',
      tap: null
    }
    for (const m of input.methods ?? []) {
      if (typeof m === 'object') this.addPhone(user, m.type ?? 'mobile', m.phone)
      else this.addMethod(user, m)
    }
    this.users.push(user)
    this.byId.set(id, user)
    this.byUpn.set(upn.toLowerCase(), user)
    return user
  }

  /** By object id or UPN, as Graph accepts both (contracts 1.5). */
  find (idOrUpn: string): FakeUser | undefined {
    return this.byId.get(idOrUpn) ?? this.byUpn.get(idOrUpn.toLowerCase())
  }

  addMethod (user: FakeUser, kind: 'fido2' | 'softwareOath' | 'microsoftAuthenticator' | 'windowsHello'): FakeMethod {
    const types = {
      fido2: ['#microsoft.graph.fido2AuthenticationMethod', { displayName: 'Security key', aaGuid: '2fc0579f-8113-47ea-b116-555a8db9202a', model: 'NFC key', attestationLevel: 'attested' }],
      softwareOath: ['#microsoft.graph.softwareOathAuthenticationMethod', { secretKey: null }],
      microsoftAuthenticator: ['#microsoft.graph.microsoftAuthenticatorAuthenticationMethod', { displayName: 'Phone', deviceTag: 'SoftwareTokenActivated', phoneAppVersion: '6.2401.0119' }],
      windowsHello: ['#microsoft.graph.windowsHelloForBusinessAuthenticationMethod', { displayName: 'Laptop', keyStrength: 'normal' }]
    } as const
    const [odataType, props] = types[kind]
    const method = { odataType, id: randomUUID(), createdDateTime: this.now().toISOString(), props: { ...props } }
    user.methods.push(method)
    return method
  }

  addPhone (user: FakeUser, phoneType: PhoneType, phoneNumber: string): FakeMethod {
    const method = { odataType: '#microsoft.graph.phoneAuthenticationMethod', id: PHONE_IDS[phoneType], createdDateTime: this.now().toISOString(), props: { phoneNumber, phoneType, smsSignInState: 'notEnabled' } }
    user.methods.push(method)
    return method
  }

  phone (user: FakeUser, phoneType: PhoneType): FakeMethod | undefined {
    return user.methods.find((m) => m.odataType === '#microsoft.graph.phoneAuthenticationMethod' && m.props.phoneType === phoneType)
  }

  /** An active role assignment to a user, or to a (role-assignable) group whose members then hold the role. */
  assignRole (principalId: string, roleDefinitionId: string): void {
    this.roleAssignments.push({ id: randomUUID(), principalId, roleDefinitionId, directoryScopeId: '/' })
  }

  /** A PIM eligible assignment (to a user or a role-assignable group), tenant-wide, with no end. */
  makeEligible (principalId: string, roleDefinitionId: string): void {
    const scheduleId = randomUUID()
    this.roleEligibilities.push({
      id: `${scheduleId}-instance`, principalId, roleDefinitionId, directoryScopeId: '/', appScopeId: null,
      startDateTime: this.now().toISOString(), endDateTime: null, memberType: 'Direct', roleEligibilityScheduleId: scheduleId
    })
  }

  /** A principal as `$expand=principal` shows it: a user or a group, with its `@odata.type`. */
  principal (id: string): Record<string, unknown> | null {
    if (this.groups.has(id)) return { '@odata.type': '#microsoft.graph.group', id }
    const user = this.byId.get(id)
    return user === undefined ? null : { '@odata.type': '#microsoft.graph.user', id, userPrincipalName: user.userPrincipalName, displayName: user.displayName }
  }

  /** Every member of the group, nested groups expanded (and listed themselves), each once. */
  transitiveMembers (groupId: string, seen = new Set<string>([groupId])): string[] {
    const out: string[] = []
    for (const member of this.groups.get(groupId) ?? []) {
      if (seen.has(member)) continue
      seen.add(member)
      out.push(member)
      if (this.groups.has(member)) out.push(...this.transitiveMembers(member, seen))
    }
    return out
  }

  addGroup (groupId: string = randomUUID(), members: string[] = []): string {
    this.groups.set(groupId, new Set(members))
    return groupId
  }

  /** Whether the TAP policy's targets include the user (transitively through groups) and none excludes them. */
  inTapScope (user: FakeUser): boolean {
    const inGroup = (id: string): boolean => id === 'all_users' || this.transitiveMembers(id).includes(user.id)
    return this.tapPolicy.includeTargets.some((t) => inGroup(t.id)) && !this.tapPolicy.excludeTargets.some((t) => inGroup(t.id))
  }

  /** Someone changes per-user MFA in the Entra admin centre (drift): no Graph call is logged. */
  setRequirementByHand (userId: string, state: PerUserMfaState): void {
    this.byId.get(userId)!.requirement = state
  }

  /** `methodsRegistered` of the registration report (contracts 1.4), derived from the user's methods. */
  methodsRegistered (user: FakeUser): string[] {
    const names: string[] = []
    for (const m of user.methods) {
      switch (m.odataType) {
        case '#microsoft.graph.phoneAuthenticationMethod':
          names.push(m.props.phoneType === 'mobile' ? 'mobilePhone' : m.props.phoneType === 'alternateMobile' ? 'alternateMobilePhone' : 'officePhone')
          break
        case '#microsoft.graph.fido2AuthenticationMethod': names.push('passKeyDeviceBound'); break
        case '#microsoft.graph.softwareOathAuthenticationMethod': names.push('softwareOneTimePasscode'); break
        case '#microsoft.graph.microsoftAuthenticatorAuthenticationMethod': names.push('microsoftAuthenticatorPush'); break
        case '#microsoft.graph.windowsHelloForBusinessAuthenticationMethod': names.push('windowsHelloForBusiness'); break
        case '#microsoft.graph.hardwareOathAuthenticationMethod':
          if (this.oathDevices.get(String(m.props.deviceId))?.status === 'activated') names.push('hardwareOneTimePasscode')
          break
      }
    }
    if (user.tap !== null) names.push('temporaryAccessPass')
    return [...names, ...user.otherReportedMethods]
  }
}
