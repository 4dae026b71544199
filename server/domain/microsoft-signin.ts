import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import { ProviderError } from './provider.ts'
import { secondFactorRequirement, type RequestContext } from './signin.ts'
import type { User } from './users.ts'

/** The directory's half of "Sign in with Microsoft" (OIDC authorization code + PKCE); the Entra adapter implements it. */
export interface MicrosoftSignInPort {
  /** The address to send the browser to. */
  authCodeUrl(request: { state: string, nonce: string, codeChallenge: string }): Promise<string>
  /** Redeems the callback's code; refuses (ProviderError) a wrong verifier or nonce, or an ID token it cannot verify. */
  redeemCode(request: { code: string, codeVerifier: string, nonce: string }): Promise<{ objectId: string, username: string | null, mfa: boolean }>
}

/** What one sign-in attempt keeps in the (pre-sign-in) session until Microsoft sends the browser back. */
export interface MicrosoftAttempt {
  state: string
  nonce: string
  verifier: string
  next: string
  startedAt: number
}

/** What came back on the callback address. */
export interface MicrosoftCallback {
  code?: string
  state?: string
  error?: string
  errorDescription?: string
}

export interface MicrosoftSignedIn {
  user: User
  /**
   * The sign-in proved MFA at Microsoft (the configured Conditional Access authentication context came back in `acrs`):
   * that counts as a fresh step-up. Without a configured context a Microsoft sign-in is one factor.
   */
  mfa: boolean
  /** What the session still owes before the rest of the portal opens (as after a password). */
  owed: 'none' | 'required' | 'passkey'
}

/** An attempt older than this is refused: Microsoft's own sign-in page does not wait longer. */
const ATTEMPT_LIFETIME_MS = 15 * 60_000

/**
 * "Sign in with Microsoft" for users synced from Entra ID: random state (CSRF on the callback), nonce (ties the ID
 * token to this attempt) and PKCE verifier, all kept server-side; the user is matched by object id only, never by
 * email, since an email can be reassigned while an object id cannot.
 */
export class MicrosoftSignInService {
  constructor (
    private readonly port: MicrosoftSignInPort,
    /** The portal user synced from Entra with this object id. */
    private readonly findUser: (objectId: string) => Promise<User | undefined>,
    /** The user's portal method kinds (for what the session still owes). */
    private readonly methodKinds: (userId: string) => Promise<string[]>,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly staffPasskeyRequired: boolean
  ) {}

  async begin (next: string): Promise<{ url: string, attempt: MicrosoftAttempt }> {
    const verifier = randomBytes(32).toString('base64url')
    const attempt: MicrosoftAttempt = {
      state: randomBytes(24).toString('base64url'),
      nonce: randomBytes(24).toString('base64url'),
      verifier,
      next,
      startedAt: this.clock.now().getTime()
    }
    const url = await this.call(() => this.port.authCodeUrl({ state: attempt.state, nonce: attempt.nonce, codeChallenge: createHash('sha256').update(verifier).digest('base64url') }))
    return { url, attempt }
  }

  /**
   * Checks the callback against the attempt and redeems the code. The caller has already forgotten the attempt
   * (single use), whatever this returns or throws.
   */
  async finish (attempt: MicrosoftAttempt | undefined, callback: MicrosoftCallback, context: RequestContext): Promise<MicrosoftSignedIn> {
    const meta = { ip: context.ip, userAgent: context.userAgent }
    const refuse = async (code: string, reason: string, message: string, subjectUserId: string | null = null): Promise<DomainError> => {
      await this.audit.append({ action: 'signin.failure', actorLabel: 'microsoft', subjectUserId, details: { method: 'microsoft', reason }, ...meta })
      return new DomainError(code, message, { variant: reason.startsWith('microsoft_error:') ? 'error' : reason })
    }
    if (attempt === undefined || callback.state === undefined || !sameText(callback.state, attempt.state)) {
      throw await refuse('microsoft_state_mismatch', 'state_mismatch', 'This sign-in reply does not belong to a sign-in started here (it may be old, or opened in another browser). Start again from the sign-in page.')
    }
    if (this.clock.now().getTime() - attempt.startedAt > ATTEMPT_LIFETIME_MS) {
      throw await refuse('microsoft_attempt_expired', 'attempt_expired', 'This sign-in took too long. Start again from the sign-in page.')
    }
    if (callback.error !== undefined) {
      throw await refuse('microsoft_refused', `microsoft_error:${callback.error.slice(0, 60)}`, 'Microsoft did not sign you in. Start again from the sign-in page, or contact your helpdesk if it keeps happening.')
    }
    if (callback.code === undefined || callback.code === '') {
      throw await refuse('microsoft_refused', 'no_code', 'Microsoft did not send a sign-in code back. Start again from the sign-in page.')
    }
    let result: { objectId: string, username: string | null, mfa: boolean }
    try {
      result = await this.port.redeemCode({ code: callback.code, codeVerifier: attempt.verifier, nonce: attempt.nonce })
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      if (err.retryable) throw new DomainError('provider_unavailable', 'Microsoft could not be reached to finish signing you in. Try again in a minute.', { variant: 'microsoft_finish' })
      throw await refuse('microsoft_refused', err.code, 'Microsoft\'s reply could not be accepted, so you are not signed in. Start again from the sign-in page.')
    }
    const user = await this.findUser(result.objectId)
    if (user === undefined || user.disabled) {
      throw await refuse('microsoft_user_unknown', user === undefined ? 'unknown_user' : 'account_disabled',
        'Your Microsoft account is not set up in this portal, or it is switched off. Contact your helpdesk.', user?.id ?? null)
    }
    const mfa = result.mfa
    const kinds = await this.methodKinds(user.id)
    // Microsoft's MFA is the second factor, except where staff must use their passkey (phishing-resistant).
    const owed = mfa
      ? (this.staffPasskeyRequired && user.role !== 'user' && kinds.includes('passkey') ? 'passkey' : 'none')
      : secondFactorRequirement(user, kinds, this.staffPasskeyRequired)
    await this.audit.append({ action: 'signin.success', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { method: 'microsoft', mfa: result.mfa }, ...meta })
    return { user, mfa, owed }
  }

  private async call<T> (work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      throw new DomainError('provider_unavailable', 'Sign-in with Microsoft is not available right now. Try again in a minute.', { variant: 'microsoft_start' })
    }
  }
}

function sameText (a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
