import type { IAMClient } from '@aws-sdk/client-iam'
import { systemClock, type Clock } from '../../domain/clock.ts'
import type {
  EnforcementState, IdentityProvider, ProviderCapabilities, ProviderPage, ProviderSubject, RegistrationStatus
} from '../../domain/provider.ts'
import { AccountIdentity } from './account.ts'
import { createIamClient, IamCalls } from './client.ts'
import type { AwsConfig } from './config.ts'
import { CredentialReports, type CredentialReport, type ReportPolling } from './credential-report.ts'
import { IamDirectory, REGISTRATION_SOURCE } from './directory.ts'
import { IamEnforcement, iamUserName } from './enforcement.ts'
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
 * AWS IAM as an identity provider (DESIGN.md "Providers", contracts Part 2). Users are IAM users, keyed by user
 * name; the switch is the deny-unless-MFA managed policy (or a group carrying it); registration truth is
 * ListMFADevices. Authenticator apps can be enrolled from the portal (virtual MFA brokering); security keys and
 * passkeys are registered in the AWS console (their WebAuthn RP is AWS's) and seen on the next sync.
 */
export class AwsIamProvider implements IdentityProvider {
  readonly name = 'aws' as const
  readonly capabilities: ProviderCapabilities = { enrollInPortal: { passkey: false, totp: true, phone: false }, nativeAccessPass: false, enforce: true }

  private readonly client: IAMClient
  private readonly directory: IamDirectory
  private readonly enforcement: IamEnforcement
  private readonly reports: CredentialReports
  private readonly virtualMfa: VirtualMfaBroker

  constructor (readonly config: AwsConfig, deps: AwsIamProviderDeps = {}) {
    const clock = deps.clock ?? systemClock
    const sleep = deps.sleep ?? (async (ms: number) => { await new Promise((resolve) => setTimeout(resolve, ms)) })
    this.client = deps.client ?? createIamClient(config)
    const iam = new IamCalls(this.client, config.concurrency)
    const account = new AccountIdentity(iam, config.accountId)
    this.enforcement = new IamEnforcement(iam, config, account)
    this.reports = new CredentialReports(iam, clock, sleep, deps.reportPolling)
    this.directory = new IamDirectory(iam, config, account, this.enforcement, this.reports)
    this.virtualMfa = new VirtualMfaBroker(iam, this.directory, clock, config.pendingMfaMs)
  }

  /** One page of IAM users; `cursor` is IAM's Marker. Users without a console password come back not targetable. */
  listUsers (cursor: string | null): Promise<ProviderPage> {
    return this.directory.listUsers(cursor)
  }

  async registrationStatus (subject: ProviderSubject): Promise<RegistrationStatus> {
    return { methods: await this.directory.methodsOf(iamUserName(subject.externalId)), source: REGISTRATION_SOURCE }
  }

  async enforcementState (subject: ProviderSubject): Promise<EnforcementState> {
    return await this.enforcement.isEnforced(iamUserName(subject.externalId)) ? 'enforced' : 'not_enforced'
  }

  async enforce (subject: ProviderSubject): Promise<{ changed: boolean }> {
    return { changed: await this.enforcement.enforce(iamUserName(subject.externalId)) }
  }

  async relax (subject: ProviderSubject): Promise<{ changed: boolean }> {
    return { changed: await this.enforcement.relax(iamUserName(subject.externalId)) }
  }

  /** Makes sure the managed policy exists now (e.g. at start, or from a CLI check); returns its ARN. Policy mode only. */
  ensurePolicy (): Promise<string> {
    return this.enforcement.ensurePolicy()
  }

  /** Creates the user's virtual MFA device and returns what the enrollment page shows (QR code, key, expiry). */
  beginVirtualMfa (userName: string): Promise<BeginVirtualMfaResult> {
    return this.virtualMfa.begin(userName)
  }

  /** Enables the device with two consecutive codes; rejected codes are a result, not an error. */
  completeVirtualMfa (userName: string, serialNumber: string, code1: string, code2: string): Promise<CompleteVirtualMfaResult> {
    return this.virtualMfa.complete(userName, serialNumber, code1, code2)
  }

  /** Redraws a pending setup from the seed the portal kept (no IAM call). */
  virtualMfaSetup (userName: string, serialNumber: string, secret: string, expiresAt: Date): Promise<VirtualMfaSetup> {
    return this.virtualMfa.describe(userName, serialNumber, secret, expiresAt)
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
