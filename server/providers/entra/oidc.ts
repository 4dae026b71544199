import { createHash, createPublicKey, randomBytes, timingSafeEqual, verify, type JsonWebKey, type KeyObject } from 'node:crypto'
import type { ConfidentialClientApplication } from '@azure/msal-node'
import { ProviderError } from '../../domain/provider.ts'
import { rewriteOrigin, type Origins } from './auth.ts'
import type { EntraConfig } from './config.ts'
import { toProviderError } from './errors.ts'

/** PKCE pair (RFC 7636, S256): keep `verifier` in the session, send `challenge` with the authorization request. */
export function createPkce (): { verifier: string, challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export interface IdTokenClaims {
  iss?: string
  aud?: string
  tid?: string
  oid?: string
  sub?: string
  nonce?: string
  exp?: number
  nbf?: number
  /** Conditional Access authentication contexts the sign-in satisfied (asked for through the claims parameter). */
  acrs?: string[]
  preferred_username?: string
  name?: string
  [claim: string]: unknown
}

export interface MicrosoftSignInResult {
  /** The user's object id in the tenant: the ProviderUser externalId. */
  objectId: string
  tenantId: string
  username: string | null
  displayName: string | null
  /**
   * Whether the sign-in proved MFA: the ID token's `acrs` holds the configured authentication context (ENTRA_AUTH_CONTEXT),
   * which Conditional Access issues only once its policy (MFA) was satisfied. v2.0 ID tokens carry no `amr`
   * (contracts 1.13b), so without a configured context this is always false: one factor.
   */
  mfa: boolean
  claims: IdTokenClaims
}

/**
 * Checks the ID token's nonce against the one stored with the sign-in attempt (constant time). The caller owns
 * state and nonce storage; this is the comparison, refusing a missing nonce as firmly as a wrong one.
 */
export function validateNonce (claims: Pick<IdTokenClaims, 'nonce'>, expected: string): void {
  const got = Buffer.from(typeof claims.nonce === 'string' ? claims.nonce : '')
  const want = Buffer.from(expected)
  if (expected === '' || got.length !== want.length || !timingSafeEqual(got, want)) {
    throw new ProviderError('The sign-in response does not belong to this sign-in attempt (nonce mismatch)', false, null, 'nonce_mismatch')
  }
}

const CLOCK_SKEW_S = 300

/**
 * "Sign in with Microsoft": authorization code flow with PKCE through msal-node. The ID token's signature is also
 * checked against the authority's published keys, so the portal trusts no claim it cannot verify itself.
 */
export class MicrosoftSignIn {
  private keys = new Map<string, KeyObject>()

  constructor (
    private readonly app: ConfidentialClientApplication,
    private readonly config: EntraConfig,
    private readonly origins: Origins,
    private readonly now: () => Date
  ) {}

  private get scopes (): string[] {
    return [...this.config.signIn?.scopes ?? ['openid', 'profile', 'email']]
  }

  /**
   * The claims request asking for the authentication context in the ID token, or undefined without one. The ID token
   * is where the portal (the app that signs the user in) receives it: Entra issues `acrs` in any JWT it is explicitly
   * asked for in (developer guide to Conditional Access authentication context; optional claims reference: acrs, JWT).
   */
  private get claims (): string | undefined {
    const context = this.config.signIn?.authContext ?? null
    return context === null ? undefined : JSON.stringify({ id_token: { acrs: { essential: true, value: context } } })
  }

  private redirectUri (given: string | undefined): string {
    const uri = given ?? this.config.signIn?.redirectUri
    if (uri === undefined) throw new ProviderError('Microsoft sign-in is not configured (ENTRA_REDIRECT_URI)', false, null, 'sign_in_not_configured')
    return uri
  }

  /** Where to send the browser. `state` and `nonce` are random values the caller stores and checks on return. */
  async authCodeUrl (request: { state: string, nonce: string, codeChallenge: string, redirectUri?: string, loginHint?: string }): Promise<string> {
    try {
      return await this.app.getAuthCodeUrl({
        scopes: this.scopes,
        redirectUri: this.redirectUri(request.redirectUri),
        state: request.state,
        nonce: request.nonce,
        codeChallenge: request.codeChallenge,
        codeChallengeMethod: 'S256',
        responseMode: 'query',
        ...(this.claims === undefined ? {} : { claims: this.claims }),
        ...(request.loginHint === undefined ? {} : { loginHint: request.loginHint })
      })
    } catch (err) {
      throw toProviderError('Building the Microsoft sign-in address', err)
    }
  }

  /** Exchanges the code from the callback for the user's identity; refuses a token that fails any check. */
  async redeemCode (request: { code: string, codeVerifier: string, nonce: string, redirectUri?: string }): Promise<MicrosoftSignInResult> {
    let idToken: string
    try {
      const result = await this.app.acquireTokenByCode({
        code: request.code,
        codeVerifier: request.codeVerifier,
        redirectUri: this.redirectUri(request.redirectUri),
        scopes: this.scopes,
        nonce: request.nonce,
        ...(this.claims === undefined ? {} : { claims: this.claims })
      })
      idToken = result.idToken
      // The portal keeps its own session: do not let every sign-in pile up accounts and tokens in MSAL's memory.
      if (result.account !== null) await this.app.getTokenCache().removeAccount(result.account)
    } catch (err) {
      const error = toProviderError('Redeeming the Microsoft sign-in code', err)
      if (error.code === 'nonce_mismatch') throw new ProviderError('The sign-in response does not belong to this sign-in attempt (nonce mismatch)', false, null, 'nonce_mismatch')
      throw error
    }
    const claims = await this.verifyIdToken(idToken)
    validateNonce(claims, request.nonce)
    return {
      objectId: claims.oid!,
      tenantId: claims.tid!,
      username: claims.preferred_username ?? null,
      displayName: claims.name ?? null,
      mfa: this.provesMfa(claims),
      claims
    }
  }

  /** Only the configured context counts: another one may stand for a policy that asks for something else than MFA. */
  private provesMfa (claims: IdTokenClaims): boolean {
    const context = this.config.signIn?.authContext ?? null
    return context !== null && Array.isArray(claims.acrs) && claims.acrs.some((c) => typeof c === 'string' && c.toLowerCase() === context)
  }

  /** Signature (RS256, key by `kid` from the JWKS), issuer, audience, tenant and lifetime of an ID token. */
  async verifyIdToken (token: string): Promise<IdTokenClaims> {
    const refuse = (why: string): ProviderError => new ProviderError(`The Microsoft ID token was refused: ${why}`, false, null, 'id_token_invalid')
    const parts = token.split('.')
    if (parts.length !== 3) throw refuse('malformed')
    let header: { alg?: string, kid?: string }
    let claims: IdTokenClaims
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as typeof header
      claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as IdTokenClaims
    } catch {
      throw refuse('malformed')
    }
    if (header.alg !== 'RS256' || typeof header.kid !== 'string') throw refuse(`unexpected algorithm ${String(header.alg)}`)
    const key = await this.signingKey(header.kid)
    if (key === undefined) throw refuse('signed with an unknown key')
    if (!verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), key, Buffer.from(parts[2], 'base64url'))) throw refuse('bad signature')
    if (claims.aud !== this.config.clientId) throw refuse('issued for another application')
    if (typeof claims.tid !== 'string' || claims.iss !== `${this.origins.authority.logical}/${claims.tid}/v2.0`) throw refuse('unexpected issuer')
    // A tenant configured by domain name cannot be compared with the token's tenant GUID; the issuer still is.
    if (/^[0-9a-f-]{36}$/i.test(this.config.tenantId) && claims.tid.toLowerCase() !== this.config.tenantId.toLowerCase()) throw refuse('from another tenant')
    const nowS = Math.floor(this.now().getTime() / 1000)
    if (typeof claims.exp !== 'number' || claims.exp < nowS - CLOCK_SKEW_S) throw refuse('expired')
    if (typeof claims.nbf === 'number' && claims.nbf > nowS + CLOCK_SKEW_S) throw refuse('not yet valid')
    if (typeof claims.oid !== 'string' || claims.oid === '') throw refuse('no object id (oid)')
    return claims
  }

  // Keys rotate: an unknown kid refreshes the set once before the token is refused.
  private async signingKey (kid: string): Promise<KeyObject | undefined> {
    if (!this.keys.has(kid)) await this.loadKeys()
    return this.keys.get(kid)
  }

  private async loadKeys (): Promise<void> {
    const url = rewriteOrigin(`${this.origins.authority.logical}/${this.config.tenantId}/discovery/v2.0/keys`, this.origins.authority)
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
      if (!response.ok) throw new Error(`status ${response.status}`)
      const { keys } = await response.json() as { keys: Array<JsonWebKey & { kid?: string }> }
      this.keys = new Map(keys.filter((k) => k.kty === 'RSA' && typeof k.kid === 'string').map((k) => [k.kid!, createPublicKey({ key: k, format: 'jwk' })]))
    } catch (err) {
      throw new ProviderError(`Reading Microsoft's signing keys failed: ${err instanceof Error ? err.message : String(err)}`, true, null, 'network')
    }
  }
}
