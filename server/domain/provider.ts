/**
 * The port every identity provider implements (DESIGN.md "Providers"). The engine only ever talks to this;
 * adapters own their SDKs and wire quirks. Calls are idempotent: enforce/relax read the current state and
 * change it only when it differs, so a retried job never double-applies.
 */

export type ProviderName = 'local' | 'entra' | 'aws'

export interface ProviderCapabilities {
  /** Methods this provider's users can enroll in the portal itself. */
  enrollInPortal: { passkey: boolean, totp: boolean, phone: boolean }
  /** A provider-issued temporary access pass (Entra) rather than the portal's own. */
  nativeAccessPass: boolean
  enforce: boolean
}

export interface ProviderUser {
  /** The provider's stable id (Entra object id, IAM user id `AIDA…`, the portal's own id for local): never a name or an address. */
  externalId: string
  email: string
  displayName: string
  privileged: boolean
  groups: string[]
  enabled: boolean
  /** Method kinds registered at the provider when the listing already knows them (else registrationStatus is asked). */
  methods?: string[]
  /** A phone number as the directory stores it (seed for pinned phones; normalised by the portal). */
  phone?: string | null
  /** Provider facts shown to admins and used by policies, e.g. { consolePassword: true, createdAt: '2024-01-02T…' }. */
  attributes?: Record<string, string | number | boolean | null>
  /** When the directory created the account (Entra createdDateTime, IAM CreateDate): starts the new-user window. */
  createdAt?: Date | null
  /** False when the user is out of scope by default (e.g. an IAM user without a console password). */
  targetable?: boolean
  /** Ids earlier portal versions stored for this user (AWS: the IAM user name); sync rewrites a row found under one. */
  formerExternalIds?: string[]
}

export interface RegistrationStatus {
  /** Method kinds the provider says the user has (e.g. 'passkey', 'totp', 'phone'). */
  methods: string[]
  /** Where the answer came from, for the admin page (e.g. 'userRegistrationDetails', 'authentication/methods'). */
  source: string
}

/** What the provider currently enforces for a user. */
export type EnforcementState = 'enforced' | 'not_enforced'

export interface ProviderSubject {
  userId: string
  externalId: string | null
  email: string
  /**
   * Whether the portal believes the user holds a qualifying method. Adapters that can ask the directory itself at
   * the moment of the flip do so (Entra per-user MFA reads the user's registered methods live).
   */
  enrolled: boolean
  /**
   * Which deny-unless-MFA policy an AWS IAM user gets, as the user's campaign chose it: 'console_and_api' (AWS's
   * documented policy, which also blocks long-term access keys) or 'console_only'. Other providers ignore it.
   */
  awsPolicyVariant?: AwsPolicyVariant
}

export type AwsPolicyVariant = 'console_and_api' | 'console_only'

/** What enforce/relax did: whether anything changed, and anything an admin should read in the audit log. */
export interface EnforcementOutcome {
  changed: boolean
  /** e.g. why relax left a state alone (an administrator changed it since the portal set it). */
  note?: string
}

/**
 * What a directory's switch was before the portal first flipped it for a user, and what the portal set, kept by
 * the portal (directory_enforcement_records): relax restores `found`, and only while the switch still reads `set`.
 */
export interface EnforcementRecord {
  found: string
  set: string
}

export interface EnforcementRecords {
  get(provider: ProviderName, userId: string): Promise<EnforcementRecord | undefined>
  put(provider: ProviderName, userId: string, record: EnforcementRecord): Promise<void>
  forget(provider: ProviderName, userId: string): Promise<void>
}

/**
 * Records kept in memory, for an adapter used on its own (a benchmark, a one-off script); the portal hands its
 * adapters the database's records, so what was found survives restarts.
 */
export class MemoryEnforcementRecords implements EnforcementRecords {
  private readonly records = new Map<string, EnforcementRecord>()
  async get (provider: ProviderName, userId: string): Promise<EnforcementRecord | undefined> { return this.records.get(`${provider}\u0000${userId}`) }
  async put (provider: ProviderName, userId: string, record: EnforcementRecord): Promise<void> { this.records.set(`${provider}\u0000${userId}`, { ...record }) }
  async forget (provider: ProviderName, userId: string): Promise<void> { this.records.delete(`${provider}\u0000${userId}`) }
}

export interface ProviderPage {
  users: ProviderUser[]
  /** Opaque continuation, null on the last page. */
  next: string | null
  /** Where `methods` came from when the listing carries them (e.g. 'userRegistrationDetails'). */
  registrationSource?: string
}

export interface IdentityProvider {
  readonly name: ProviderName
  readonly capabilities: ProviderCapabilities
  listUsers(cursor: string | null): Promise<ProviderPage>
  registrationStatus(subject: ProviderSubject): Promise<RegistrationStatus>
  enforcementState(subject: ProviderSubject): Promise<EnforcementState>
  /** Makes MFA mandatory for the subject; a no-op when it already is. Returns whether anything changed. */
  enforce(subject: ProviderSubject): Promise<EnforcementOutcome>
  /** Reverses enforce (exemption, extension, reset): sets back what the portal set, never an admin's own change. */
  relax(subject: ProviderSubject): Promise<EnforcementOutcome>
  /**
   * Providers with `capabilities.nativeAccessPass`: issues the provider's own temporary access pass (within its
   * policy, replacing any earlier one). The pass is returned once for the helpdesk to read out and never stored.
   */
  issueAccessPass?(externalId: string, options: { lifetimeMinutes: number, oneTime: boolean }): Promise<NativeAccessPass>
}

/** A provider-issued temporary access pass, as the helpdesk shows it once. */
export interface NativeAccessPass {
  pass: string
  expiresAt: Date
  lifetimeMinutes: number
  oneTime: boolean
}

/**
 * A provider call that failed. `retryable` and `retryAfterMs` (from Retry-After on 429/503) let the engine decide
 * retries in one place; adapters translate their SDK's errors into this.
 */
export class ProviderError extends Error {
  constructor (
    message: string,
    readonly retryable: boolean,
    readonly retryAfterMs: number | null = null,
    readonly code: string = 'provider_error'
  ) {
    super(message)
    this.name = 'ProviderError'
  }
}
