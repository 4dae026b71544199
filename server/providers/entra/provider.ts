import type { CountryCode } from 'libphonenumber-js'
import {
  MemoryEnforcementRecords, ProviderError, type EnforcementOutcome, type EnforcementRecords, type EnforcementState, type IdentityProvider,
  type ProviderCapabilities, type ProviderPage, type ProviderSubject, type RegistrationStatus
} from '../../domain/provider.ts'
import { AccessPasses, type AccessPassPolicy, type AccessPassRequest, type IssuedAccessPass } from './access-pass.ts'
import { createMsalApp, originsFor, TokenSource, type Origins } from './auth.ts'
import type { EntraConfig } from './config.ts'
import { DirectoryReader, REGISTRATION_SOURCE } from './directory.ts'
import { externalIdOf, PerUserEnforcement, type BulkResult, type EnforcementStrategy } from './enforcement.ts'
import { GroupEnforcement } from './group-enforcement.ts'
import { GraphApi, type GraphClientOptions } from './graph-client.ts'
import { kindsFromMethods } from './method-kinds.ts'
import { HardwareOath, type NewOathToken, type OathDevice, type OathRemoval } from './oath.ts'
import { MicrosoftSignIn, type MicrosoftSignInResult } from './oidc.ts'
import { PhoneMethods, type PhoneAction, type PhonePlan } from './phones.ts'
import type { RegistrationOptions } from './registration.ts'

export interface EntraProviderOptions {
  now?: () => Date
  /** Users per listing page, 1..999; default 999 (fewest requests). */
  pageSize?: number
  /** Groups campaigns target (object ids), asked when a listing run starts; added to ENTRA_SYNC_GROUP_IDS. */
  campaignGroupIds?: () => readonly string[] | Promise<readonly string[]>
  graph?: GraphClientOptions
  /**
   * Where the per-user MFA state found before the portal's first flip is kept, so relax restores exactly it (the
   * portal passes the database's; without it the records live only as long as this object).
   */
  records?: EnforcementRecords
  /** Disabled users the portal knows and what it holds for them (their methods are read once, not every sync). */
  disabledUsers?: RegistrationOptions['disabledUsers']
  /** Warnings an operator should see: a campaign group gone from Entra, a method name the portal does not know. */
  log?: RegistrationOptions['log']
}

/**
 * Microsoft Entra ID through Microsoft Graph (DESIGN.md "Providers"). Implements the provider port, plus the
 * Entra-only operations the portal offers: temporary access passes, pushing verified phones, hardware-OATH
 * registration of authenticator apps, and "Sign in with Microsoft".
 */
export class EntraProvider implements IdentityProvider {
  readonly name = 'entra' as const
  readonly capabilities: ProviderCapabilities
  readonly graph: GraphApi
  readonly origins: Origins

  private readonly directory: DirectoryReader
  private readonly enforcement: EnforcementStrategy
  private readonly phones: PhoneMethods
  private readonly passes: AccessPasses
  private readonly oath: HardwareOath
  private readonly signIn: MicrosoftSignIn
  private readonly hardwareOath: boolean

  constructor (readonly config: EntraConfig, options: EntraProviderOptions = {}) {
    const now = options.now ?? (() => new Date())
    this.origins = originsFor(config)
    const app = createMsalApp(config, this.origins)
    const tokens = new TokenSource(app, `${this.origins.graph.logical}/.default`, () => now().getTime())
    this.graph = new GraphApi(tokens, this.origins.graph, options.graph)
    this.directory = new DirectoryReader(this.graph, config, {
      pageSize: Math.min(999, Math.max(1, options.pageSize ?? 999)),
      groupIds: options.campaignGroupIds ?? (() => []),
      now,
      log: options.log,
      disabledUsers: options.disabledUsers
    })
    const records = options.records ?? new MemoryEnforcementRecords()
    this.enforcement = config.enforcement.mode === 'group'
      ? new GroupEnforcement(this.graph, config.enforcement.groupId, config.concurrency, records)
      : new PerUserEnforcement(this.graph, config.concurrency, records)
    this.phones = new PhoneMethods(this.graph, config.concurrency)
    this.passes = new AccessPasses(this.graph, now)
    this.oath = new HardwareOath(this.graph, now)
    this.signIn = new MicrosoftSignIn(app, config, this.origins, now)
    this.hardwareOath = config.hardwareOath
    this.capabilities = {
      // Passkeys for Entra are registered on Microsoft's own page: the WebAuthn RP there is login.microsoftonline.com.
      enrollInPortal: { passkey: false, totp: config.hardwareOath, phone: true },
      nativeAccessPass: true,
      enforce: true
    }
  }

  /**
   * One page of users (cursor: the previous page's `@odata.nextLink`, null to start a run). Privileged roles,
   * targeted groups and the registration report are read once when a run starts and reused for its pages.
   */
  async listUsers (cursor: string | null): Promise<ProviderPage> {
    return await this.directory.page(cursor)
  }

  /** The user's methods as Entra has them now (live `authentication/methods`, not the report, which lags hours). */
  async registrationStatus (subject: ProviderSubject): Promise<RegistrationStatus> {
    const id = externalIdOf(subject)
    const { value } = await this.graph.get<{ value: Array<{ '@odata.type'?: string }> }>(
      `/users/${encodeURIComponent(id)}/authentication/methods`, this.hardwareOath ? 'beta' : 'v1.0')
    return { methods: kindsFromMethods(value), source: REGISTRATION_SOURCE.methods }
  }

  async enforcementState (subject: ProviderSubject): Promise<EnforcementState> {
    return await this.enforcement.state(externalIdOf(subject))
  }

  /** Per-user mode: `enforced` when Entra (read now) reports a usable method, else `enabled`; the state found is recorded. */
  async enforce (subject: ProviderSubject): Promise<EnforcementOutcome> {
    return await this.enforcement.enforce(subject)
  }

  /** Restores what was found before the portal's first flip, unless an administrator has changed it since. */
  async relax (subject: ProviderSubject): Promise<EnforcementOutcome> {
    return await this.enforcement.relax(subject)
  }

  /** enforce() for many users through $batch (20 per request): per-user results, in order; failures never throw. */
  async enforceMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.enforcement.enforceMany(subjects)
  }

  /** relax() for many users through $batch. */
  async relaxMany (subjects: readonly ProviderSubject[]): Promise<BulkResult[]> {
    return await this.enforcement.relaxMany(subjects)
  }

  /** The tenant's Temporary Access Pass policy, for the helpdesk form's bounds. */
  async accessPassPolicy (): Promise<AccessPassPolicy> {
    return await this.passes.policy()
  }

  /** Issues a TAP within the tenant policy, replacing any earlier one; the pass is returned once and never stored. */
  async issueAccessPass (externalId: string, request: AccessPassRequest = {}): Promise<IssuedAccessPass> {
    return await this.passes.issue(externalId, request)
  }

  /** Sets the user's mobile MFA number (E.164) after the portal verified it by code; another one only with `replaceExisting`. */
  async setMobilePhone (externalId: string, e164: string, options: { replaceExisting: boolean }): Promise<Exclude<PhoneAction, 'invalid'>> {
    return await this.phones.setMobilePhone(externalId, e164, options)
  }

  /** Plans (dryRun) or pushes directory phone numbers into users' mobile methods; one report line per user. */
  async prepopulatePhones (users: ReadonlyArray<{ externalId: string, phone?: string | null }>, options: { dryRun: boolean, defaultRegion: CountryCode }): Promise<PhonePlan[]> {
    return await this.phones.prepopulate(users, options)
  }

  async createOathToken (token: NewOathToken): Promise<OathDevice> {
    this.requireHardwareOath()
    return await this.oath.createOathToken(token)
  }

  async assignOathToken (externalId: string, deviceId: string): Promise<string> {
    this.requireHardwareOath()
    return await this.oath.assignOathToken(externalId, deviceId)
  }

  async activateOathToken (externalId: string, methodId: string, code: string, displayName?: string): Promise<void> {
    this.requireHardwareOath()
    await this.oath.activateOathToken(externalId, methodId, code, displayName)
  }

  /**
   * Create (assigned) + activate for an authenticator the user just proved with `code`, after checking the tenant's
   * policy allows hardware OATH tokens; a token that is not activated is removed again.
   */
  async enrollOathToken (externalId: string, token: NewOathToken & { code: string }): Promise<{ deviceId: string, methodId: string }> {
    this.requireHardwareOath()
    return await this.oath.enrollOathToken(externalId, token)
  }

  /** Whether the tenant's authentication methods policy lets the portal register authenticator apps (refuses in words). */
  async assertOathAllowed (): Promise<void> {
    this.requireHardwareOath()
    await this.oath.assertPolicyEnabled()
  }

  /** Removes the not-activated token with this serial number (a failed or abandoned setup); an activated one stays. */
  async removeOathToken (externalId: string, serialNumber: string): Promise<OathRemoval> {
    this.requireHardwareOath()
    return await this.oath.removeOathToken(externalId, serialNumber)
  }

  /** The Microsoft sign-in address (authorization code + PKCE). */
  async authCodeUrl (request: { state: string, nonce: string, codeChallenge: string, redirectUri?: string, loginHint?: string }): Promise<string> {
    return await this.signIn.authCodeUrl(request)
  }

  /** Redeems the callback's code: the user's object id and whether the sign-in used MFA. */
  async redeemCode (request: { code: string, codeVerifier: string, nonce: string, redirectUri?: string }): Promise<MicrosoftSignInResult> {
    return await this.signIn.redeemCode(request)
  }

  private requireHardwareOath (): void {
    if (!this.hardwareOath) throw new ProviderError('Hardware OATH registration is off (ENTRA_HARDWARE_OATH)', false, null, 'hardware_oath_disabled')
  }
}
