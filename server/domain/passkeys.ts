import type {
  AuthenticationResponseJSON, PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON, RegistrationResponseJSON,
  VerifiedRegistrationResponse
} from '@simplewebauthn/server'
import type { AuditLog } from './audit.ts'
import type { AuthenticatorMetadata } from './authenticator-metadata.ts'
import type { Clock } from './clock.ts'
import type { ChangeContext, EnrollmentGuard } from './enrollment-guard.ts'
import { DomainError } from './errors.ts'
import type { MethodLifecycle } from './method-lifecycle.ts'
import { cleanMethodName, type AuthMethod, type MethodStore } from './methods.ts'
import type { User, UserStore } from './users.ts'

let loading: Promise<typeof import('@simplewebauthn/server')> | undefined

/**
 * SimpleWebAuthn, loaded with the first passkey ceremony (the portal's start loads it in the background): a CLI run
 * or a test that never sees a passkey does not pay the ~0.3 s its packages take to load.
 */
export async function simpleWebAuthn (): Promise<typeof import('@simplewebauthn/server')> {
  loading ??= import('@simplewebauthn/server')
  return await loading
}

export type ChallengePurpose = 'register' | 'authenticate' | 'step_up'

/** Server-side WebAuthn challenges. `claim` returns the challenge once (compare-and-swap) and never again. */
export interface ChallengeStore {
  create(purpose: ChallengePurpose, userId: string | null, challenge: string, expiresAt: Date): Promise<string>
  claim(id: string, purpose: ChallengePurpose, userId: string | null, now: Date): Promise<string | undefined>
  /** Deletes challenges that expired before `now`; how many. */
  purge(now: Date): Promise<number>
}

export interface PasskeySettings {
  rpId: string
  rpName: string
  origin: string
  /** When non-empty, privileged users' authenticators must attest one of these AAGUIDs. */
  privilegedAaguids: readonly string[]
  /**
   * The FIDO metadata (FIDO_MDS_FILE, verified at start) that turns an attested AAGUID into a proven one.
   * Without it (or if it failed verification) privileged users cannot register under an allow-list.
   */
  metadata?: Promise<AuthenticatorMetadata>
}

type RegistrationInfo = NonNullable<VerifiedRegistrationResponse['registrationInfo']>

const NOT_APPROVED: Record<string, string> = {
  aaguid_not_allowed: 'Your organisation requires an approved security key for this account, and this one is not on the list. Contact your helpdesk.',
  metadata_unavailable: 'Your organisation requires an approved security key for this account, and the portal cannot check security keys right now (its list of authenticator models is missing or out of order). Contact your helpdesk.'
}
const NOT_PROVEN = 'Your organisation requires an approved security key for this account, and this one could not prove which model it is. Use one of the approved security keys, or contact your helpdesk.'

const CHALLENGE_LIFETIME_MS = 5 * 60_000

/** Friendly default names for common authenticators (by AAGUID); otherwise a generic one. */
const KNOWN_AAGUIDS: Record<string, string> = {
  'ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4': 'Google Password Manager',
  'adce0002-35bc-c60a-648b-0b25f1f05503': 'Chrome on Mac',
  'fbfc3007-154e-4ecc-8c0b-6e020557d7bd': 'iCloud Keychain',
  '08987058-cadc-4b81-b6e1-30de50dcbe96': 'Windows Hello',
  '9ddd1817-af5a-4672-a2b9-3e3dd95000a9': 'Windows Hello',
  'cb69481e-8ff7-4039-93ec-0a2729a154a8': 'YubiKey 5',
  'ee882879-721c-4913-9775-3dfcce97072a': 'YubiKey 5',
  '2fc0579f-8113-47ea-b116-bb5a8db9202a': 'YubiKey 5 NFC',
  'bada5566-a7aa-401f-bd96-45619a55120d': '1Password',
  'd548826e-79b4-db40-a3d8-11116f7e8349': 'Bitwarden'
}

export function defaultPasskeyName (aaguid: string, userAgent: string | null): string {
  const known = KNOWN_AAGUIDS[aaguid.toLowerCase()]
  if (known !== undefined) return known
  const ua = userAgent ?? ''
  const platform = /iPhone|iPad/.test(ua) ? 'iPhone or iPad' : /Android/.test(ua) ? 'Android' : /Mac OS X/.test(ua) ? 'Mac' : /Windows/.test(ua) ? 'Windows' : /Linux|CrOS/.test(ua) ? 'this computer' : undefined
  return platform === undefined ? 'Passkey' : `Passkey on ${platform}`
}

/** Passkeys and security keys with the portal itself as relying party (each ceremony: options, then verify). */
export class PasskeyService {
  constructor (
    private readonly methods: MethodStore,
    private readonly challenges: ChallengeStore,
    private readonly users: UserStore,
    private readonly guard: EnrollmentGuard,
    private readonly lifecycle: MethodLifecycle,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly settings: PasskeySettings
  ) {}

  async registrationOptions (user: User, context: ChangeContext): Promise<{ challengeId: string, options: PublicKeyCredentialCreationOptionsJSON }> {
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
    const attest = user.privileged && this.settings.privilegedAaguids.length > 0
    const { generateRegistrationOptions } = await simpleWebAuthn()
    const options = await generateRegistrationOptions({
      rpName: this.settings.rpName,
      rpID: this.settings.rpId,
      userName: user.email,
      userDisplayName: user.displayName,
      userID: new TextEncoder().encode(user.id),
      attestationType: attest ? 'direct' : 'none',
      // One authenticator, one registration: the browser refuses an authenticator already registered here.
      excludeCredentials: (await this.methods.passkeysFor(user.id)).map((p) => ({ id: p.credentialId, transports: p.transports })),
      // A passkey counts as a second factor only with a PIN or biometric, so the browser asks for one at the start
      // (and has a security key without a PIN set one up) rather than accepting a key that could never confirm.
      authenticatorSelection: { residentKey: 'required', userVerification: 'required' }
    })
    return { challengeId: await this.newChallenge('register', user.id, options.challenge), options }
  }

  async register (user: User, challengeId: string, response: RegistrationResponseJSON, nameInput: string, userAgent: string | null, context: ChangeContext): Promise<AuthMethod> {
    this.guard.assertMayAdd(user, await this.methods.countFor(user.id), context)
    // A typed name is checked before anything is spent; a blank one becomes a default from the authenticator.
    const typedName = nameInput.trim() === '' ? null : cleanMethodName(nameInput)
    if (typedName === undefined) throw new DomainError('invalid_name', 'Give the passkey a name of up to 60 characters.', { variant: 'passkey' })
    // Claimed before verifying, so a challenge is spent even when verification throws.
    const challenge = await this.challenges.claim(challengeId, 'register', user.id, this.clock.now())
    if (challenge === undefined) throw new DomainError('challenge_expired', 'This request has expired. Please try again.')
    const { verifyRegistrationResponse } = await simpleWebAuthn()
    let verification
    try {
      verification = await verifyRegistrationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.settings.origin,
        expectedRPID: this.settings.rpId,
        requireUserVerification: false
      })
    } catch (err) {
      await this.audit.append({ action: 'passkey.registration_rejected', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason: (err as Error).message.slice(0, 200) } })
      throw new DomainError('passkey_rejected', 'Your passkey could not be verified. Please try again.')
    }
    if (!verification.verified) throw new DomainError('passkey_rejected', 'Your passkey could not be verified. Please try again.')
    const info = verification.registrationInfo
    if (await this.methods.passkeyByCredentialId(info.credential.id) !== undefined) {
      throw new DomainError('passkey_exists', 'This passkey or security key is already registered.')
    }
    if (user.privileged && this.settings.privilegedAaguids.length > 0) {
      const reason = await this.unapprovedAuthenticator(info)
      if (reason !== null) {
        await this.audit.append({ action: 'passkey.registration_rejected', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { reason, aaguid: info.aaguid, fmt: info.fmt } })
        throw new DomainError('authenticator_not_allowed', NOT_APPROVED[reason] ?? NOT_PROVEN, { variant: reason })
      }
    }
    const name = typedName ?? defaultPasskeyName(info.aaguid, userAgent)
    const method = await this.methods.addPasskey(user.id, {
      name,
      credentialId: info.credential.id,
      publicKey: info.credential.publicKey,
      counter: info.credential.counter,
      transports: info.credential.transports ?? [],
      aaguid: info.aaguid,
      backedUp: info.credentialBackedUp
    })
    await this.lifecycle.added(user, method, context)
    return method
  }

  /**
   * Options for signing in (no user: discoverable credentials) or for step-up (the user's own credentials).
   * User verification (PIN, biometric) is required: without it a passkey is only something someone holds.
   */
  async authenticationOptions (user: User | null): Promise<{ challengeId: string, options: PublicKeyCredentialRequestOptionsJSON }> {
    const { generateAuthenticationOptions } = await simpleWebAuthn()
    const options = await generateAuthenticationOptions({
      rpID: this.settings.rpId,
      userVerification: 'required',
      allowCredentials: user === null ? [] : (await this.methods.passkeysFor(user.id)).map((p) => ({ id: p.credentialId, transports: p.transports as never }))
    })
    return { challengeId: await this.newChallenge(user === null ? 'authenticate' : 'step_up', user?.id ?? null, options.challenge), options }
  }

  /**
   * Verifies an assertion; for step-up, it must come from `expectedUser`'s own passkey and verify the user.
   * Returns the user, the method and whether the authenticator verified the user (PIN, biometric): a sign-in
   * without that is one factor, like a password (the caller decides what it still owes).
   */
  async authenticate (challengeId: string, response: AuthenticationResponseJSON, expectedUser: User | null): Promise<{ user: User, method: AuthMethod, userVerified: boolean }> {
    const purpose = expectedUser === null ? 'authenticate' : 'step_up'
    const challenge = await this.challenges.claim(challengeId, purpose, expectedUser?.id ?? null, this.clock.now())
    if (challenge === undefined) throw new DomainError('challenge_expired', 'This request has expired. Please try again.')
    const refuse = async (reason: string, userId: string | null = null): Promise<never> => {
      await this.audit.append({ action: 'passkey.assertion_rejected', actorLabel: 'passkey', subjectUserId: userId, details: { reason } })
      throw new DomainError('passkey_rejected', 'That passkey could not be used to sign in here.', { variant: 'signin' })
    }
    const credential = typeof response?.id === 'string' ? await this.methods.passkeyByCredentialId(response.id) : undefined
    if (credential === undefined) return refuse('unknown_credential')
    if (expectedUser !== null && credential.userId !== expectedUser.id) return refuse('credential_of_another_user', expectedUser.id)
    const user = await this.users.findById(credential.userId)
    if (user === undefined || user.disabled) return refuse('user_unavailable', credential.userId)
    const { verifyAuthenticationResponse } = await simpleWebAuthn()
    let verification
    try {
      verification = await verifyAuthenticationResponse({
        response,
        expectedChallenge: challenge,
        expectedOrigin: this.settings.origin,
        expectedRPID: this.settings.rpId,
        credential: { id: credential.credentialId, publicKey: credential.publicKey as Uint8Array<ArrayBuffer>, counter: credential.counter, transports: credential.transports as never },
        // Checked below instead, so a step-up without it gets its own message and a sign-in can go on as one factor.
        requireUserVerification: false
      })
    } catch (err) {
      return refuse((err as Error).message.slice(0, 200), user.id)
    }
    if (!verification.verified) return refuse('not_verified', user.id)
    const { newCounter, userVerified } = verification.authenticationInfo
    // A step-up is a second factor: a passkey counts as one only if it checked the PIN or biometric.
    if (expectedUser !== null && !userVerified) {
      await this.audit.append({ action: 'passkey.assertion_rejected', actorLabel: 'passkey', subjectUserId: user.id, details: { reason: 'user_not_verified' } })
      throw new DomainError('user_verification_required',
        'Your passkey or security key did not check your PIN, fingerprint or face, so it cannot confirm it\'s you. Try again and enter your PIN (or use your fingerprint or face) when asked, or use another method.')
    }
    // A counter that went backwards (and is in use) suggests a cloned authenticator; the library throws for that.
    // The compare-and-swap catches two uses of one assertion racing each other.
    if (!await this.methods.recordPasskeyUse(credential.methodId, credential.counter, newCounter, this.clock.now())) {
      return refuse('counter_race', user.id)
    }
    const method = (await this.methods.findFor(user.id, credential.methodId))!
    return { user, method, userVerified }
  }

  /**
   * Why a privileged user's new authenticator is not a proven, allowed model (null when it is). An AAGUID is
   * whatever the authenticator says unless an attestation certificate vouches for it, so "none" and self
   * attestation (packed without certificates) prove nothing; a certificate must chain to a root that the FIDO
   * metadata lists for that AAGUID. SimpleWebAuthn has already checked that the certificate signed this
   * registration (and, for packed, that it names the same AAGUID).
   */
  private async unapprovedAuthenticator (info: RegistrationInfo): Promise<string | null> {
    if (!this.settings.privilegedAaguids.includes(info.aaguid.toLowerCase())) return 'aaguid_not_allowed'
    const { decodeAttestationObject } = await import('@simplewebauthn/server/helpers')
    const x5c = info.fmt === 'none' ? undefined : decodeAttestationObject(info.attestationObject).get('attStmt').get('x5c')
    if (x5c === undefined || x5c.length === 0) return 'attestation_missing'
    // A file that failed verification was reported when the portal started; here it just proves nothing.
    const metadata = await this.settings.metadata?.catch(() => undefined)
    if (metadata === undefined) return 'metadata_unavailable'
    return await metadata.refusal(info.aaguid, x5c)
  }

  private async newChallenge (purpose: 'register' | 'authenticate' | 'step_up', userId: string | null, challenge: string): Promise<string> {
    return await this.challenges.create(purpose, userId, challenge, new Date(this.clock.now().getTime() + CHALLENGE_LIFETIME_MS))
  }
}
