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
  /** The provider's stable id (object id, IAM user name, the portal's own id for local). */
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
  /** False when the user is out of scope by default (e.g. an IAM user without a console password). */
  targetable?: boolean
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
  /** Whether the portal believes the user holds a qualifying method (enforce may differ, e.g. Entra 'enabled'). */
  enrolled: boolean
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
  enforce(subject: ProviderSubject): Promise<{ changed: boolean }>
  /** Reverses enforce (exemption, extension, reset); a no-op when not enforced. */
  relax(subject: ProviderSubject): Promise<{ changed: boolean }>
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
