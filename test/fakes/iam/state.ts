import { randomBytes } from 'node:crypto'
import { Secret, TOTP } from 'otpauth'

/** An IAM error as the Query protocol reports it: status from the model, `Code` and `Message` (contracts §2.1). */
export class IamFault extends Error {
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
    this.name = 'IamFault'
  }
}

// Model status codes (contracts Part 3 "IAM" item 3).
export const noSuchEntity = (message: string): IamFault => new IamFault(404, 'NoSuchEntity', message)
export const entityAlreadyExists = (message: string): IamFault => new IamFault(409, 'EntityAlreadyExists', message)
export const limitExceeded = (message: string): IamFault => new IamFault(409, 'LimitExceeded', message)
export const validationError = (message: string): IamFault => new IamFault(400, 'ValidationError', message)

export interface FakeIamUser {
  userName: string
  userId: string
  path: string
  arn: string
  createDate: Date
  /** Console password (login profile) creation time, or null without one. */
  loginProfile: Date | null
  tags: Map<string, string>
  groups: Set<string>
  policies: Set<string>
  /** Serial numbers of the user's enabled MFA devices. */
  devices: Set<string>
  /** Long-term access keys (IAM allows two per user), in creation order. */
  accessKeys: FakeAccessKey[]
}

/** A long-term access key: what ListAccessKeys and GetAccessKeyLastUsed tell about it (never its secret). */
export interface FakeAccessKey {
  accessKeyId: string
  status: 'Active' | 'Inactive'
  createDate: Date
  /** The last request signed with it, or null when IAM has seen none since it began tracking. */
  lastUsed: { date: Date, serviceName: string, region: string } | null
}

export interface FakeIamPolicy {
  name: string
  id: string
  arn: string
  path: string
  /** The default version's document (what is in effect), kept in step with `defaultVersionId`. */
  document: string
  attachmentCount: number
  createDate: Date
  updateDate: Date
  /** AWS managed policies (arn:aws:iam::aws:…) can be attached, never given versions. */
  awsManaged: boolean
  /** Up to five versions (IAM's quota); ids v1, v2, … are never reused, even after a version is deleted. */
  versions: FakePolicyVersion[]
  defaultVersionId: string
  nextVersion: number
}

export interface FakePolicyVersion {
  versionId: string
  document: string
  createDate: Date
}

export interface FakeMfaDevice {
  serialNumber: string
  kind: 'virtual' | 'u2f' | 'hardware'
  /** Base32 seed of a virtual device (null for others). */
  seed: string | null
  userName: string | null
  enableDate: Date | null
  tags: Array<{ Key: string, Value: string }>
}

export interface FakeIamGroup {
  name: string
  id: string
  arn: string
  path: string
  createDate: Date
  /** Managed policies attached to the group: every member holds them. */
  policies: Set<string>
}

/** What a test says about a user it seeds. */
export interface UserSeed {
  userName: string
  createDate?: Date
  path?: string
  consolePassword?: boolean
  tags?: Record<string, string>
  groups?: string[]
  policies?: string[]
  /** Devices already enabled for the user: FIDO security keys ('u2f'), hardware TOTP tokens, virtual apps. */
  devices?: Array<'virtual' | 'u2f' | 'hardware'>
  /** Long-term access keys the user holds (at most two, as IAM allows). */
  accessKeys?: Array<{ status?: 'Active' | 'Inactive', createDate?: Date, lastUsed?: { date: Date, serviceName: string, region: string } | null }>
}

/** AWS lets a user hold up to eight MFA devices (contracts Part 4: unconfirmed, but what the fake enforces). */
export const MAX_DEVICES_PER_USER = 8
/** Access keys per user (IAM quota). */
export const MAX_ACCESS_KEYS_PER_USER = 2
/** Managed policies per user (default quota, contracts Part 4: unconfirmed). */
export const MAX_POLICIES_PER_USER = 10
/** Managed policies per group (the same default quota). */
export const MAX_POLICIES_PER_GROUP = 10
/** Versions a customer managed policy keeps (IAM User Guide, "Versioning IAM policies"). */
export const MAX_POLICY_VERSIONS = 5
export const ADMINISTRATOR_ACCESS = 'arn:aws:iam::aws:policy/AdministratorAccess'

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

/**
 * The account the fake IAM serves, in memory: users, login profiles, groups, managed policies and attachments, MFA
 * devices. Maps keyed by name keep every lookup O(1) and users stay in creation order for paging, so 10,000+ users
 * cost a few megabytes and list in linear time.
 */
export class IamState {
  readonly users = new Map<string, FakeIamUser>()
  readonly userOrder: FakeIamUser[] = []
  readonly groups = new Map<string, FakeIamGroup>()
  readonly policies = new Map<string, FakeIamPolicy>()
  /** Serial number → device. */
  readonly devices = new Map<string, FakeMfaDevice>()
  /** Access key id → its user's name, as IAM finds a key's owner (GetAccessKeyLastUsed answers with it). */
  readonly accessKeyOwners = new Map<string, string>()
  private sequence = 0

  constructor (readonly accountId: string, private readonly now: () => Date) {
    // AWS managed policies exist in every account and can be attached, never created.
    const created = new Date('2015-02-06T18:39:46Z')
    const document = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] })
    this.policies.set(ADMINISTRATOR_ACCESS, {
      name: 'AdministratorAccess', id: 'ANPAIWMBCKSKIEE64ZLYK', arn: ADMINISTRATOR_ACCESS, path: '/', document, attachmentCount: 0,
      createDate: created, updateDate: created, awsManaged: true, versions: [{ versionId: 'v1', document, createDate: created }], defaultVersionId: 'v1', nextVersion: 2
    })
  }

  addGroup (name: string): FakeIamGroup {
    const group = { name, id: this.id('AGPA'), arn: `arn:aws:iam::${this.accountId}:group/${name}`, path: '/', createDate: this.now(), policies: new Set<string>() }
    this.groups.set(name, group)
    return group
  }

  addUser (seed: UserSeed): FakeIamUser {
    if (this.users.has(seed.userName)) throw entityAlreadyExists(`User with name ${seed.userName} already exists.`)
    const path = seed.path ?? '/'
    const createDate = seed.createDate ?? this.now()
    const user: FakeIamUser = {
      userName: seed.userName,
      userId: this.id('AIDA'),
      path,
      arn: `arn:aws:iam::${this.accountId}:user${path}${seed.userName}`,
      createDate,
      loginProfile: seed.consolePassword === true ? createDate : null,
      tags: new Map(Object.entries(seed.tags ?? {})),
      groups: new Set(),
      policies: new Set(),
      devices: new Set(),
      accessKeys: []
    }
    this.users.set(user.userName, user)
    this.userOrder.push(user)
    for (const group of seed.groups ?? []) {
      if (!this.groups.has(group)) this.addGroup(group)
      user.groups.add(group)
    }
    for (const arn of seed.policies ?? []) this.attachUserPolicy(user.userName, arn)
    for (const kind of seed.devices ?? []) this.addEnabledDevice(user.userName, kind)
    for (const key of seed.accessKeys ?? []) this.addAccessKey(user.userName, key)
    return user
  }

  /**
   * UpdateUser with NewUserName, as an operator renames a user in the console: the user id (AIDA…) stays, the
   * name, ARN and every name-keyed lookup change. The old name no longer answers (NoSuchEntity).
   */
  renameUser (oldName: string, newName: string): FakeIamUser {
    const user = this.user(oldName)
    if (this.users.has(newName)) throw entityAlreadyExists(`User with name ${newName} already exists.`)
    this.users.delete(oldName)
    user.userName = newName
    user.arn = `arn:aws:iam::${this.accountId}:user${user.path}${newName}`
    this.users.set(newName, user)
    for (const device of this.devices.values()) if (device.userName === oldName) device.userName = newName
    for (const key of user.accessKeys) this.accessKeyOwners.set(key.accessKeyId, newName)
    return user
  }

  /** DeleteUser (after its keys, devices and attachments are gone, which the fake does not insist on). */
  deleteUser (userName: string): void {
    const user = this.user(userName)
    this.users.delete(userName)
    this.userOrder.splice(this.userOrder.indexOf(user), 1)
    for (const key of user.accessKeys) this.accessKeyOwners.delete(key.accessKeyId)
  }

  /** CreateAccessKey (at most two per user, LimitExceeded beyond), optionally already used once. */
  addAccessKey (userName: string, seed: { status?: 'Active' | 'Inactive', createDate?: Date, lastUsed?: FakeAccessKey['lastUsed'] } = {}): FakeAccessKey {
    const user = this.user(userName)
    if (user.accessKeys.length >= MAX_ACCESS_KEYS_PER_USER) throw limitExceeded(`Cannot exceed quota for AccessKeysPerUser: ${MAX_ACCESS_KEYS_PER_USER}`)
    const key: FakeAccessKey = { accessKeyId: this.id('AKIA').slice(0, 20), status: seed.status ?? 'Active', createDate: seed.createDate ?? this.now(), lastUsed: seed.lastUsed ?? null }
    user.accessKeys.push(key)
    this.accessKeyOwners.set(key.accessKeyId, user.userName)
    return key
  }

  /** The key and its owner, for GetAccessKeyLastUsed. */
  accessKey (accessKeyId: string): { key: FakeAccessKey, user: FakeIamUser } {
    const owner = this.accessKeyOwners.get(accessKeyId)
    const user = owner === undefined ? undefined : this.users.get(owner)
    const key = user?.accessKeys.find((k) => k.accessKeyId === accessKeyId)
    // IAM models no error for this call; a key that no longer exists is answered as not found here.
    if (user === undefined || key === undefined) throw noSuchEntity(`The Access Key with id ${accessKeyId} cannot be found.`)
    return { key, user }
  }

  /** A device enabled outside the portal (AWS console): a security key, a hardware token or another app. */
  addEnabledDevice (userName: string, kind: 'virtual' | 'u2f' | 'hardware'): FakeMfaDevice {
    const user = this.user(userName)
    const n = ++this.sequence
    // Serial formats as IAM shows them: virtual devices and FIDO keys are ARNs, hardware tokens their printed serial.
    const serialNumber = kind === 'virtual'
      ? `arn:aws:iam::${this.accountId}:mfa/${userName}-app${n}`
      : kind === 'u2f'
        ? `arn:aws:iam::${this.accountId}:u2f/user/${userName}/securitykey-${randomBase32(26)}`
        : `GAHT${String(n).padStart(8, '0')}`
    const device: FakeMfaDevice = { serialNumber, kind, seed: kind === 'virtual' ? randomBase32(32) : null, userName: user.userName, enableDate: this.now(), tags: [] }
    this.devices.set(serialNumber, device)
    user.devices.add(serialNumber)
    return device
  }

  user (userName: string | undefined): FakeIamUser {
    const user = userName === undefined ? undefined : this.users.get(userName)
    if (user === undefined) throw noSuchEntity(`The user with name ${userName ?? ''} cannot be found.`)
    return user
  }

  devicesOf (userName: string): FakeMfaDevice[] {
    return [...this.user(userName).devices].map((serial) => this.devices.get(serial)!)
  }

  // Policies ---------------------------------------------------------------------------------------------------

  createPolicy (name: string, path: string, document: string): FakeIamPolicy {
    checkPolicyDocument(document)
    const arn = `arn:aws:iam::${this.accountId}:policy${path}${name}`
    if ([...this.policies.values()].some((p) => p.name === name && p.arn.startsWith(`arn:aws:iam::${this.accountId}:`))) {
      throw entityAlreadyExists(`A policy called ${name} already exists. Duplicate names are not allowed.`)
    }
    const now = this.now()
    const policy: FakeIamPolicy = {
      name, id: this.id('ANPA'), arn, path, document, attachmentCount: 0, createDate: now, updateDate: now, awsManaged: false,
      versions: [{ versionId: 'v1', document, createDate: now }], defaultVersionId: 'v1', nextVersion: 2
    }
    this.policies.set(arn, policy)
    return policy
  }

  /**
   * A new version of a customer managed policy (CreatePolicyVersion): at most five are kept, so a sixth is refused
   * with LimitExceeded until one is deleted; `setAsDefault` puts it in effect at once.
   */
  createPolicyVersion (arn: string | undefined, document: string, setAsDefault: boolean): FakePolicyVersion {
    const policy = this.customerPolicy(arn)
    checkPolicyDocument(document)
    if (policy.versions.length >= MAX_POLICY_VERSIONS) {
      throw limitExceeded('A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.')
    }
    const version = { versionId: `v${policy.nextVersion++}`, document, createDate: this.now() }
    policy.versions.push(version)
    if (setAsDefault) this.setDefaultPolicyVersion(policy.arn, version.versionId)
    return version
  }

  policyVersion (arn: string | undefined, versionId: string | undefined): FakePolicyVersion {
    const policy = this.policy(arn)
    checkVersionId(versionId)
    const version = policy.versions.find((v) => v.versionId === versionId)
    if (version === undefined) throw noSuchEntity(`Policy ${policy.arn} version ${versionId ?? ''} does not exist or is not attachable.`)
    return version
  }

  setDefaultPolicyVersion (arn: string | undefined, versionId: string | undefined): void {
    const policy = this.customerPolicy(arn)
    const version = this.policyVersion(policy.arn, versionId)
    policy.defaultVersionId = version.versionId
    policy.document = version.document
    policy.updateDate = this.now()
  }

  /** DeletePolicyVersion: the default version cannot go (DeleteConflict); only a whole policy takes it along. */
  deletePolicyVersion (arn: string | undefined, versionId: string | undefined): void {
    const policy = this.customerPolicy(arn)
    const version = this.policyVersion(policy.arn, versionId)
    if (version.versionId === policy.defaultVersionId) throw new IamFault(409, 'DeleteConflict', 'Cannot delete the default version of a policy.')
    policy.versions = policy.versions.filter((v) => v !== version)
  }

  private customerPolicy (arn: string | undefined): FakeIamPolicy {
    const policy = this.policy(arn)
    if (policy.awsManaged) throw new IamFault(400, 'InvalidInput', `Cannot modify an AWS managed policy: ${policy.arn}.`)
    return policy
  }

  policy (arn: string | undefined): FakeIamPolicy {
    const policy = arn === undefined ? undefined : this.policies.get(arn)
    if (policy === undefined) throw noSuchEntity(`Policy ${arn ?? ''} does not exist or is not attachable.`)
    return policy
  }

  /** Returns whether the attachment is new; attaching twice is a no-op (contracts §2.2, unconfirmed). */
  attachUserPolicy (userName: string | undefined, arn: string | undefined): boolean {
    const user = this.user(userName)
    const policy = this.policy(arn)
    if (user.policies.has(policy.arn)) return false
    if (user.policies.size >= MAX_POLICIES_PER_USER) throw limitExceeded(`Cannot exceed quota for PoliciesPerUser: ${MAX_POLICIES_PER_USER}`)
    user.policies.add(policy.arn)
    policy.attachmentCount++
    return true
  }

  detachUserPolicy (userName: string | undefined, arn: string | undefined): void {
    const user = this.user(userName)
    const policy = this.policy(arn)
    if (!user.policies.delete(policy.arn)) throw noSuchEntity(`Policy ${policy.arn} was not found.`)
    policy.attachmentCount--
  }

  // Groups -----------------------------------------------------------------------------------------------------

  group (name: string | undefined): FakeIamGroup {
    const group = name === undefined ? undefined : this.groups.get(name)
    if (group === undefined) throw noSuchEntity(`The group with name ${name ?? ''} cannot be found.`)
    return group
  }

  /** AttachGroupPolicy, as an operator does it in the console: every member of the group then holds the policy. */
  attachGroupPolicy (groupName: string | undefined, arn: string | undefined): void {
    const group = this.group(groupName)
    const policy = this.policy(arn)
    if (group.policies.has(policy.arn)) return
    if (group.policies.size >= MAX_POLICIES_PER_GROUP) throw limitExceeded(`Cannot exceed quota for PoliciesPerGroup: ${MAX_POLICIES_PER_GROUP}`)
    group.policies.add(policy.arn)
    policy.attachmentCount++
  }

  detachGroupPolicy (groupName: string | undefined, arn: string | undefined): void {
    const group = this.group(groupName)
    const policy = this.policy(arn)
    if (!group.policies.delete(policy.arn)) throw noSuchEntity(`Policy ${policy.arn} was not found.`)
    policy.attachmentCount--
  }

  // Virtual MFA ------------------------------------------------------------------------------------------------

  createVirtualMfaDevice (name: string, path: string, tags: Array<{ Key: string, Value: string }>): FakeMfaDevice {
    if (!/^[\w+=,.@-]{1,226}$/.test(name)) throw validationError('1 validation error detected: Value at \'virtualMFADeviceName\' failed to satisfy constraint')
    const serialNumber = `arn:aws:iam::${this.accountId}:mfa${path}${name}`
    if (this.devices.has(serialNumber)) throw entityAlreadyExists('MFADevice entity at the same path and name already exists.')
    const device: FakeMfaDevice = { serialNumber, kind: 'virtual', seed: randomBase32(32), userName: null, enableDate: null, tags }
    this.devices.set(serialNumber, device)
    return device
  }

  enableMfaDevice (userName: string | undefined, serial: string | undefined, code1: string | undefined, code2: string | undefined): void {
    if (!/^\d{6}$/.test(code1 ?? '') || !/^\d{6}$/.test(code2 ?? '')) {
      throw validationError('1 validation error detected: Value at \'authenticationCode1\' failed to satisfy constraint: Member must have length 6')
    }
    const user = this.user(userName)
    const device = serial === undefined ? undefined : this.devices.get(serial)
    if (device === undefined) throw noSuchEntity(`MFA device ${serial ?? ''} cannot be found.`)
    if (device.enableDate !== null) throw entityAlreadyExists('MFA device is already in use.')
    if (this.devicesOf(user.userName).length >= MAX_DEVICES_PER_USER) throw limitExceeded(`Cannot exceed quota for MFADevicesPerUser: ${MAX_DEVICES_PER_USER}`)
    if (device.seed === null || !consecutiveCodes(device.seed, code1!, code2!, this.now())) {
      throw new IamFault(403, 'InvalidAuthenticationCode', 'Authentication code for device is not valid.')
    }
    device.userName = user.userName
    device.enableDate = this.now()
    user.devices.add(device.serialNumber)
  }

  deactivateMfaDevice (userName: string | undefined, serial: string | undefined): void {
    const device = serial === undefined ? undefined : this.devices.get(serial)
    if (device === undefined || device.enableDate === null || (userName !== undefined && device.userName !== userName)) {
      throw noSuchEntity(`MFA Device with serial number ${serial ?? ''} not found for user ${userName ?? ''}.`)
    }
    this.users.get(device.userName!)?.devices.delete(device.serialNumber)
    if (device.kind === 'virtual') {
      device.userName = null
      device.enableDate = null
    } else {
      this.devices.delete(device.serialNumber)
    }
  }

  deleteVirtualMfaDevice (serial: string | undefined): void {
    const device = serial === undefined ? undefined : this.devices.get(serial)
    if (device === undefined || device.kind !== 'virtual') throw noSuchEntity(`VirtualMFADevice with serial number ${serial ?? ''} doesn't exist.`)
    if (device.enableDate !== null) throw new IamFault(409, 'DeleteConflict', 'MFA VirtualDevice in use. Must deactivate first.')
    this.devices.delete(device.serialNumber)
  }

  private id (prefix: string): string {
    return `${prefix}${randomBase32(17)}`
  }
}

/**
 * IAM's check: some step t near now (t ∈ [now−2, now+1], 30 s steps) with code1 = TOTP(t) and code2 = TOTP(t+1),
 * SHA-1, six digits (contracts Part 3 "IAM" item 7).
 */
export function consecutiveCodes (seedBase32: string, code1: string, code2: string, now: Date): boolean {
  const totp = new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(seedBase32) })
  const step = Math.floor(now.getTime() / 30_000)
  for (let t = step - 2; t <= step + 1; t++) {
    if (totp.generate({ timestamp: t * 30_000 }) === code1 && totp.generate({ timestamp: (t + 1) * 30_000 }) === code2) return true
  }
  return false
}

function checkPolicyDocument (document: string): void {
  let parsed: unknown
  try {
    parsed = JSON.parse(document)
  } catch {
    throw new IamFault(400, 'MalformedPolicyDocument', 'Syntax errors in policy.')
  }
  const doc = parsed as { Version?: unknown, Statement?: unknown }
  if (typeof doc !== 'object' || doc === null || doc.Version === undefined || doc.Statement === undefined) {
    throw new IamFault(400, 'MalformedPolicyDocument', 'Policy document must contain Version and Statement.')
  }
  if (document.replace(/\s/g, '').length > 6144) throw limitExceeded('Cannot exceed quota for PolicySize: 6144')
}

// The model's pattern for policy version ids: v1, v2, … optionally with a suffix (v3.beta).
function checkVersionId (versionId: string | undefined): void {
  if (versionId === undefined || !/^v[1-9][0-9]*(\.[A-Za-z0-9-]*)?$/.test(versionId)) {
    throw validationError(`1 validation error detected: Value '${versionId ?? ''}' at 'versionId' failed to satisfy constraint: Member must satisfy regular expression pattern: v[1-9][0-9]*(\\.[A-Za-z0-9-]*)?`)
  }
}

export function randomBase32 (length: number): string {
  const bytes = randomBytes(length)
  let out = ''
  for (const byte of bytes) out += BASE32[byte & 31]
  return out
}
