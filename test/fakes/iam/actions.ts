import { Buffer } from 'node:buffer'
import type { CredentialReportLifecycle } from './credential-report.ts'
import { IamFault, noSuchEntity, validationError, type FakeIamPolicy, type FakeIamUser, type FakeMfaDevice, type FakePolicyVersion, type IamState } from './state.ts'
import type { XmlNode } from './xml.ts'

/** A form-encoded Query request's parameters (contracts §2.1). */
export type Form = URLSearchParams

/** What an action answers: its result members, or null for output-less operations. */
type Handler = (form: Form) => XmlNode | null

export interface ActionContext {
  state: IamState
  report: CredentialReportLifecycle
  /** Caps every page below MaxItems, to prove a client follows IsTruncated rather than counting. */
  maxPageSize: number
}

/** Reads `Name.member.N` lists (N from 1) of `Key`/`Value` pairs, as the SDK writes Tags. */
function tagList (form: Form, name: string): Array<{ Key: string, Value: string }> {
  const tags: Array<{ Key: string, Value: string }> = []
  for (let n = 1; form.has(`${name}.member.${n}.Key`); n++) {
    tags.push({ Key: form.get(`${name}.member.${n}.Key`)!, Value: form.get(`${name}.member.${n}.Value`) ?? '' })
  }
  return tags
}

function required (form: Form, name: string): string {
  const value = form.get(name)
  if (value === null || value === '') throw validationError(`1 validation error detected: Value null at '${name}' failed to satisfy constraint: Member must not be null`)
  return value
}

/**
 * IAM paging: MaxItems 1..1000 (default 100) and an opaque Marker; IsTruncated with a Marker while more remain, no
 * Marker on the last page (contracts Part 3 "IAM" item 4).
 */
function page<T> (items: readonly T[], form: Form, cap: number): { items: T[], IsTruncated: boolean, Marker?: string } {
  const maxItemsText = form.get('MaxItems')
  const maxItems = maxItemsText === null ? 100 : Number(maxItemsText)
  if (!Number.isInteger(maxItems) || maxItems < 1 || maxItems > 1000) throw validationError('1 validation error detected: Value at \'maxItems\' failed to satisfy constraint: Member must have value between 1 and 1000')
  const marker = form.get('Marker')
  let start = 0
  if (marker !== null) {
    const decoded = /^o(\d+)$/.exec(Buffer.from(marker, 'base64url').toString('utf8'))
    if (decoded === null) throw new IamFault(400, 'InvalidInput', 'Invalid Marker.')
    start = Number(decoded[1])
  }
  const end = Math.min(items.length, start + Math.min(maxItems, cap))
  const truncated = end < items.length
  return { items: items.slice(start, end), IsTruncated: truncated, ...(truncated ? { Marker: Buffer.from(`o${end}`).toString('base64url') } : {}) }
}

function policyXml (policy: FakeIamPolicy): XmlNode {
  return {
    PolicyName: policy.name, PolicyId: policy.id, Arn: policy.arn, Path: policy.path, DefaultVersionId: policy.defaultVersionId,
    AttachmentCount: policy.attachmentCount, PermissionsBoundaryUsageCount: 0, IsAttachable: true,
    CreateDate: policy.createDate, UpdateDate: policy.updateDate
  }
}

/**
 * A PolicyVersion element. The Document is sent only by GetPolicyVersion, URL-encoded as RFC 3986 says (IAM API
 * reference, PolicyVersion): a client that forgets to decode it sees `%7B%22Version…`, not JSON.
 */
function versionXml (policy: FakeIamPolicy, version: FakePolicyVersion, withDocument: boolean): XmlNode {
  return {
    Document: withDocument ? encodeRfc3986(version.document) : undefined,
    VersionId: version.versionId,
    IsDefaultVersion: version.versionId === policy.defaultVersionId,
    CreateDate: version.createDate
  }
}

function encodeRfc3986 (text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

function userXml (user: FakeIamUser): XmlNode {
  return { Path: user.path, UserName: user.userName, UserId: user.userId, Arn: user.arn, CreateDate: user.createDate }
}

function listed<T> (name: string, paged: { items: T[], IsTruncated: boolean, Marker?: string }, render: (item: T) => XmlNode): XmlNode {
  return { [name]: paged.items.map(render), IsTruncated: paged.IsTruncated, Marker: paged.Marker }
}

/** One handler per IAM action the portal uses (contracts §2.2), plus ListUserTags for the e-mail tag. */
export function iamActions ({ state, report, maxPageSize: cap }: ActionContext): Record<string, Handler> {
  const deviceXml = (d: FakeMfaDevice): XmlNode => ({ UserName: d.userName, SerialNumber: d.serialNumber, EnableDate: d.enableDate })
  return {
    ListUsers: (form) => {
      const prefix = form.get('PathPrefix') ?? '/'
      const users = prefix === '/' ? state.userOrder : state.userOrder.filter((u) => u.path.startsWith(prefix))
      return listed('Users', page(users, form, cap), userXml)
    },
    // Without UserName IAM answers for the caller; the portal always names the user.
    GetUser: (form) => ({ User: userXml(state.user(required(form, 'UserName'))) }),
    GetLoginProfile: (form) => {
      const user = state.user(required(form, 'UserName'))
      if (user.loginProfile === null) throw noSuchEntity(`Login Profile for User ${user.userName} cannot be found.`)
      return { LoginProfile: { UserName: user.userName, CreateDate: user.loginProfile, PasswordResetRequired: false } }
    },
    ListUserTags: (form) => {
      const user = state.user(required(form, 'UserName'))
      const paged = page([...user.tags], form, cap)
      return { Tags: paged.items.map(([Key, Value]) => ({ Key, Value })), IsTruncated: paged.IsTruncated, Marker: paged.Marker }
    },
    // Metadata only (never the secret), in creation order, for the named user (contracts §2.4 "Access keys").
    ListAccessKeys: (form) => {
      const user = state.user(required(form, 'UserName'))
      return listed('AccessKeyMetadata', page(user.accessKeys, form, cap), (k) => ({ UserName: user.userName, AccessKeyId: k.accessKeyId, Status: k.status, CreateDate: k.createDate }))
    },
    // A key never used has no LastUsedDate, and ServiceName and Region "N/A" (IAM API reference, AccessKeyLastUsed).
    GetAccessKeyLastUsed: (form) => {
      const { key, user } = state.accessKey(required(form, 'AccessKeyId'))
      return {
        UserName: user.userName,
        AccessKeyLastUsed: key.lastUsed === null
          ? { ServiceName: 'N/A', Region: 'N/A' }
          : { LastUsedDate: key.lastUsed.date, ServiceName: key.lastUsed.serviceName, Region: key.lastUsed.region }
      }
    },
    ListMFADevices: (form) => listed('MFADevices', page(state.devicesOf(required(form, 'UserName')), form, cap), deviceXml),
    ListVirtualMFADevices: (form) => {
      const status = form.get('AssignmentStatus') ?? 'Any'
      const devices = [...state.devices.values()].filter((d) => d.kind === 'virtual' &&
        (status === 'Any' || (status === 'Assigned') === (d.enableDate !== null)))
      // Seeds and QR codes are never listed; User and EnableDate only for assigned devices.
      return listed('VirtualMFADevices', page(devices, form, cap), (d) => ({
        SerialNumber: d.serialNumber,
        User: d.userName === null ? undefined : userXml(state.user(d.userName)),
        EnableDate: d.enableDate
      }))
    },
    CreateVirtualMFADevice: (form) => {
      const device = state.createVirtualMfaDevice(required(form, 'VirtualMFADeviceName'), form.get('Path') ?? '/', tagList(form, 'Tags'))
      return {
        VirtualMFADevice: {
          SerialNumber: device.serialNumber,
          // Blobs travel as base64: the seed is base64 of its ASCII Base32 text (contracts §2.2).
          Base32StringSeed: Buffer.from(device.seed!).toString('base64'),
          QRCodePNG: Buffer.from('not a real PNG: the portal draws its own QR code').toString('base64')
        }
      }
    },
    EnableMFADevice: (form) => {
      state.enableMfaDevice(form.get('UserName') ?? undefined, form.get('SerialNumber') ?? undefined, form.get('AuthenticationCode1') ?? undefined, form.get('AuthenticationCode2') ?? undefined)
      return null
    },
    DeactivateMFADevice: (form) => {
      state.deactivateMfaDevice(form.get('UserName') ?? undefined, required(form, 'SerialNumber'))
      return null
    },
    DeleteVirtualMFADevice: (form) => {
      state.deleteVirtualMfaDevice(required(form, 'SerialNumber'))
      return null
    },
    CreatePolicy: (form) => {
      const policy = state.createPolicy(required(form, 'PolicyName'), form.get('Path') ?? '/', required(form, 'PolicyDocument'))
      return { Policy: policyXml(policy) }
    },
    GetPolicy: (form) => {
      const arn = required(form, 'PolicyArn')
      if (!arn.startsWith('arn:')) throw new IamFault(400, 'InvalidInput', `ARN ${arn} is not valid.`)
      const policy = state.policy(arn)
      return { Policy: policyXml(policy) }
    },
    GetPolicyVersion: (form) => {
      const policy = state.policy(required(form, 'PolicyArn'))
      return { PolicyVersion: versionXml(policy, state.policyVersion(policy.arn, required(form, 'VersionId')), true) }
    },
    // Newest first: a client must read IsDefaultVersion and CreateDate, never assume an order.
    ListPolicyVersions: (form) => {
      const policy = state.policy(required(form, 'PolicyArn'))
      const versions = [...policy.versions].reverse()
      return listed('Versions', page(versions, form, cap), (v) => versionXml(policy, v, false))
    },
    CreatePolicyVersion: (form) => {
      const arn = required(form, 'PolicyArn')
      const version = state.createPolicyVersion(arn, required(form, 'PolicyDocument'), form.get('SetAsDefault') === 'true')
      return { PolicyVersion: versionXml(state.policy(arn), version, false) }
    },
    DeletePolicyVersion: (form) => {
      state.deletePolicyVersion(required(form, 'PolicyArn'), required(form, 'VersionId'))
      return null
    },
    SetDefaultPolicyVersion: (form) => {
      state.setDefaultPolicyVersion(required(form, 'PolicyArn'), required(form, 'VersionId'))
      return null
    },
    AttachUserPolicy: (form) => {
      state.attachUserPolicy(required(form, 'UserName'), required(form, 'PolicyArn'))
      return null
    },
    DetachUserPolicy: (form) => {
      state.detachUserPolicy(required(form, 'UserName'), required(form, 'PolicyArn'))
      return null
    },
    ListAttachedUserPolicies: (form) => {
      const user = state.user(required(form, 'UserName'))
      const attached = [...user.policies].map((arn) => state.policy(arn))
      return listed('AttachedPolicies', page(attached, form, cap), (p) => ({ PolicyName: p.name, PolicyArn: p.arn }))
    },
    ListAttachedGroupPolicies: (form) => {
      const group = state.group(required(form, 'GroupName'))
      const attached = [...group.policies].map((arn) => state.policy(arn))
      return listed('AttachedPolicies', page(attached, form, cap), (p) => ({ PolicyName: p.name, PolicyArn: p.arn }))
    },
    AddUserToGroup: (form) => {
      const group = state.group(required(form, 'GroupName'))
      state.user(required(form, 'UserName')).groups.add(group.name)
      return null
    },
    RemoveUserFromGroup: (form) => {
      const group = state.group(required(form, 'GroupName'))
      const user = state.user(required(form, 'UserName'))
      if (!user.groups.delete(group.name)) throw noSuchEntity(`User ${user.userName} is not in group ${group.name}.`)
      return null
    },
    ListGroupsForUser: (form) => {
      const user = state.user(required(form, 'UserName'))
      const groups = [...user.groups].map((name) => state.group(name))
      return listed('Groups', page(groups, form, cap), (g) => ({ Path: g.path, GroupName: g.name, GroupId: g.id, Arn: g.arn, CreateDate: g.createDate }))
    },
    GenerateCredentialReport: () => report.generate(),
    GetCredentialReport: () => report.get()
  }
}
