import type { IAMClient } from '@aws-sdk/client-iam'
import type { AccessKey, AccessKeySource } from '../../domain/access-keys.ts'
import { systemClock, type Clock } from '../../domain/clock.ts'
import type {
  AwsPolicyVariant, EnforcementState, IdentityProvider, ProviderCapabilities, ProviderPage, ProviderSubject, RegistrationStatus
} from '../../domain/provider.ts'
import { IamAccessKeys } from './access-keys.ts'
import { AccountIdentity } from './account.ts'
import { createIamClient, IamCalls } from './client.ts'
import type { AwsConfig } from './config.ts'
import { CredentialReports, type CredentialReport, type ReportPolling } from './credential-report.ts'
import { IamDirectory, REGISTRATION_SOURCE } from './directory.ts'
import { IamEnforcement, iamUserId } from './enforcement.ts'
import { hasCode } from './errors.ts'
import { IamUserNames } from './user-names.ts'
import {
  VirtualMfaBroker, type BeginVirtualMfaResult, type CompleteVirtualMfaResult, type DeleteVirtualMfaResult, type VirtualMfaSetup
} from './virtual-mfa.ts'

export interface AwsIamProviderDeps {
  /** An SDK client to use instead of one built from the config. */
  client?: IAMClient
  clock?: Clock
  /** How credential-report polling waits (tests pass a quick one). */
  sleep?: (ms: number) => Promise<void>
  reportPolling?: ReportPolling
}

/**
 * AWS IAM as an identity provider (DESIGN.md "Providers", contracts Part 2). Users are IAM users, keyed by their
 * user id (`AIDA…`; IAM's calls take the current name, looked up by id); the switch is the deny-unless-MFA managed
 * policy in the variant the user's campaign chose (or a group carrying it); registration truth is
 * ListMFADevices. Authenticator apps can be enrolled from the portal (virtual MFA brokering); security keys and
 * passkeys are registered in the AWS console (their WebAuthn RP is AWS's) and seen on the next sync.
 */
export class AwsIamProvider implements IdentityProvider, AccessKeySource {
  readonly name = 'aws' as const
  readonly capabilities: ProviderCapabilities = { enrollInPortal: { passkey: false, totp: true, phone: false }, nativeAccessPass: false, enforce: true }

  private readonly client: IAMClient
  private readonly directory: IamDirectory
  private readonly enforcement: IamEnforcement
  private readonly reports: CredentialReports
  private readonly virtualMfa: VirtualMfaBroker
  private readonly userNames: IamUserNames
  private readonly accessKeys: IamAccessKeys

  constructor (readonly config: AwsConfig, deps: AwsIamProviderDeps = {}) {
    const clock = deps.clock ?? systemClock
    const sleep = deps.sleep ?? (async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) })
    this.client = deps.client ?? createIamClient(config)
    const iam = new IamCalls(this.client, config.concurrency)
    const account = new AccountIdentity(iam, config.accountId)
    this.enforcement = new IamEnforcement(iam, config, account, clock)
    this.reports = new CredentialReports(iam, clock, sleep, deps.reportPolling)
    this.userNames = new IamUserNames(iam, config, clock)
    this.directory = new IamDirectory(iam, config, account, this.enforcement, this.reports, this.userNames)
    this.virtualMfa = new VirtualMfaBroker(iam, this.directory, clock, config.pendingMfaMs)
    this.accessKeys = new IamAccessKeys(iam)
  }

  /** One page of IAM users; `cursor` is IAM's Marker. Users without a console password come back not targetable. */
  listUsers (cursor: string | null): Promise<ProviderPage> {
    return this.directory.listUsers(cursor)
  }

  async registrationStatus (subject: ProviderSubject): Promise<RegistrationStatus> {
    return { methods: await this.named(subject.externalId, (name) => this.directory.methodsOf(name)), source: REGISTRATION_SOURCE }
  }

  /** Drift: enforced means the policy the user's campaign chose is attached and intact. */
  async enforcementState (subject: ProviderSubject): Promise<EnforcementState> {
    return await this.named(subject.externalId, (name) => this.enforcement.isEnforced(name, variantOf(subject))) ? 'enforced' : 'not_enforced'
  }

  async enforce (subject: ProviderSubject): Promise<{ changed: boolean }> {
    return { changed: await this.named(subject.externalId, (name) => this.enforcement.enforce(name, variantOf(subject))) }
  }

  async relax (subject: ProviderSubject): Promise<{ changed: boolean }> {
    return { changed: await this.named(subject.externalId, (name) => this.enforcement.relax(name)) }
  }

  /** Makes sure a variant's managed policy exists now (e.g. at start, or from a CLI check); returns its ARN. Policy mode only. */
  ensurePolicy (variant: AwsPolicyVariant = 'console_and_api'): Promise<string> {
    return this.enforcement.ensurePolicy(variant)
  }

  /** The user's active long-term access keys and their last use (what the "console and API" policy would block). */
  activeAccessKeys (externalId: string): Promise<AccessKey[]> {
    return this.named(externalId, (name) => this.accessKeys.activeKeys(name))
  }

  /** Creates the user's virtual MFA device and returns what the enrollment page shows (QR code, key, expiry). */
  async beginVirtualMfa (externalId: string): Promise<BeginVirtualMfaResult> {
    try {
      return await this.named(externalId, (name) => this.virtualMfa.begin(name), (result) => !result.ok && result.reason === 'user_not_found')
    } catch (err) {
      // No IAM user has the id any more: no device is made for nobody.
      if (hasCode(err, 'not_found')) return { ok: false, reason: 'user_not_found', message: 'This AWS user no longer exists.' }
      throw err
    }
  }

  /** Enables the device with two consecutive codes; rejected codes are a result, not an error. */
  completeVirtualMfa (externalId: string, serialNumber: string, code1: string, code2: string): Promise<CompleteVirtualMfaResult> {
    return this.named(externalId, (name) => this.virtualMfa.complete(name, serialNumber, code1, code2))
  }

  /** Redraws a pending setup from the seed the portal kept (IAM is asked at most for the user's current name). */
  async virtualMfaSetup (externalId: string, serialNumber: string, secret: string, expiresAt: Date): Promise<VirtualMfaSetup> {
    return await this.virtualMfa.describe(await this.userNames.nameOf(iamUserId(externalId)), serialNumber, secret, expiresAt)
  }

  /** Runs an IAM call for the user with this id under its current name (a renamed user is followed). */
  private async named<T> (externalId: string | null, call: (userName: string) => Promise<T>, gone?: (result: T) => boolean): Promise<T> {
    return await this.userNames.withName(iamUserId(externalId), call, gone)
  }

  /** Deletes an abandoned (never enabled) virtual MFA device; an enabled one is left alone ('in_use'). */
  deleteVirtualMfa (serialNumber: string): Promise<DeleteVirtualMfaResult> {
    return this.virtualMfa.delete(serialNumber)
  }

  /** The IAM credential report (user, password_enabled, mfa_active, user_creation_time): CIS 1.10 evidence. */
  credentialReportRows (): Promise<CredentialReport> {
    return this.reports.fetch()
  }

  /** Closes the SDK client's sockets (shutdown). */
  close (): void {
    this.client.destroy()
  }
}

function variantOf (subject: ProviderSubject): AwsPolicyVariant {
  return subject.awsPolicyVariant ?? 'console_and_api'
}
