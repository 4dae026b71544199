import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign, type KeyObject } from 'node:crypto'
import type { FakeTenant } from './tenant.ts'

/** The public authority origin: ID tokens are issued as if from it (the client under test maps it to the fake). */
export const AUTHORITY_ORIGIN = 'https://login.microsoftonline.com'

export interface FakeApp {
  clientId: string
  clientSecret: string
}

export interface IdentityResponse {
  status: number
  body?: unknown
  headers?: Record<string, string>
}

interface PendingCode {
  userId: string
  clientId: string
  redirectUri: string
  nonce: string | undefined
  challenge: string | undefined
  /** Authentication contexts the ID token proves (`acrs`): asked for in the claims request and satisfied. */
  acrs: string[]
  expiresAt: number
}

/** Entra's OAuth error body (contracts 1.14). */
function oauthError (status: number, error: string, aadsts: number, description: string): IdentityResponse {
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${aadsts}: ${description}`,
      error_codes: [aadsts],
      timestamp: new Date().toISOString().replace('T', ' ').slice(0, 19) + 'Z',
      trace_id: randomUUID(),
      correlation_id: randomUUID(),
      error_uri: `${AUTHORITY_ORIGIN}/error?code=${aadsts}`
    }
  }
}

let keys: { privateKey: KeyObject, publicKey: KeyObject } | undefined

/**
 * The key pair ID tokens are signed with, made once per process: Entra signs every tenant's tokens with the same
 * published keys (one JWKS for all), and an RSA key takes up to a second of CPU to make, for each fake a test starts.
 */
function signingKeys (): { privateKey: KeyObject, publicKey: KeyObject } {
  keys ??= generateKeyPairSync('rsa', { modulusLength: 2048 })
  return keys
}

/**
 * The Entra side of the fake: the token endpoint (client credentials and authorization code with PKCE), an
 * authorize endpoint that signs in whoever the test chose, and the JWKS its RS256 ID tokens verify against.
 */
export class FakeIdentity {
  /** Access tokens the Graph side accepts. */
  readonly accessTokens = new Set<string>()
  readonly tokenRequests: Array<Record<string, string>> = []
  private readonly codes = new Map<string, PendingCode>()
  private readonly keyId = randomBytes(8).toString('hex')
  private readonly privateKey: KeyObject
  private readonly publicJwk: Record<string, unknown>
  private signingIn: { userId: string, mfa: boolean } | null = null
  /**
   * The tenant's Conditional Access policies that bind an authentication context to "require MFA". A context with
   * no policy is satisfied by any sign-in: Entra then issues it in `acrs` all the same (developer guide to
   * Conditional Access authentication context, "Summary table for expected behavior when ACRS are explicitly requested").
   */
  readonly contextsRequiringMfa = new Set<string>(['c1'])

  constructor (private readonly tenant: FakeTenant, private readonly app: FakeApp, private readonly now: () => Date) {
    const { privateKey, publicKey } = signingKeys()
    this.privateKey = privateKey
    this.publicJwk = { ...publicKey.export({ format: 'jwk' }), kid: this.keyId, use: 'sig', alg: 'RS256' }
  }

  /**
   * The next /authorize signs this user in; `mfa`: they also complete MFA when Conditional Access asks for it. The ID
   * token never carries `amr` (v2.0 tokens have none, contracts 1.13b): what proves MFA is an authentication context
   * the sign-in asked for in its claims request and satisfied, in `acrs`.
   */
  signInAs (userId: string, options: { mfa?: boolean } = {}): void {
    this.signingIn = { userId, mfa: options.mfa === true }
  }

  handle (method: string, path: string, query: URLSearchParams, form: Record<string, string>): IdentityResponse | null {
    const m = /^\/([^/]+)\/(oauth2\/v2\.0\/token|oauth2\/v2\.0\/authorize|discovery\/v2\.0\/keys)$/.exec(path)
    if (m === null) return null
    if (m[1] !== this.tenant.tenantId) return oauthError(400, 'invalid_request', 90002, `Tenant '${m[1]}' not found.`)
    if (m[2] === 'discovery/v2.0/keys' && method === 'GET') return { status: 200, body: { keys: [this.publicJwk] } }
    if (m[2] === 'oauth2/v2.0/authorize' && method === 'GET') return this.authorize(query)
    if (m[2] === 'oauth2/v2.0/token' && method === 'POST') return this.token(form)
    return null
  }

  private authorize (query: URLSearchParams): IdentityResponse {
    const redirectUri = query.get('redirect_uri')
    if (query.get('client_id') !== this.app.clientId || redirectUri === null) return oauthError(400, 'unauthorized_client', 700016, 'Application not found in the directory.')
    if (query.get('response_type') !== 'code') return oauthError(400, 'unsupported_response_type', 900144, 'response_type must be code.')
    if (this.signingIn === null) return oauthError(400, 'interaction_required', 50058, 'No user chose to sign in (call signInAs first).')
    const code = randomBytes(24).toString('base64url')
    const challenge = query.get('code_challenge') ?? undefined
    if (challenge !== undefined && query.get('code_challenge_method') !== 'S256') return oauthError(400, 'invalid_request', 50125, 'Only S256 is supported.')
    let requested: string[]
    try {
      requested = requestedContexts(query.get('claims'))
    } catch {
      return oauthError(400, 'invalid_request', 90014, 'The claims parameter is not valid JSON.')
    }
    const mfa = this.signingIn.mfa
    this.codes.set(code, {
      userId: this.signingIn.userId, clientId: this.app.clientId, redirectUri, nonce: query.get('nonce') ?? undefined, challenge,
      acrs: requested.filter((c) => mfa || !this.contextsRequiringMfa.has(c)), expiresAt: this.now().getTime() + 10 * 60_000
    })
    const location = new URL(redirectUri)
    location.searchParams.set('code', code)
    const state = query.get('state')
    if (state !== null) location.searchParams.set('state', state)
    return { status: 302, headers: { location: location.href } }
  }

  private token (form: Record<string, string>): IdentityResponse {
    this.tokenRequests.push(Object.fromEntries(Object.entries(form).map(([k, v]) => [k, k === 'client_secret' ? '<redacted>' : v])))
    if (form.client_id !== this.app.clientId) return oauthError(400, 'unauthorized_client', 700016, `Application with identifier '${form.client_id}' was not found in the directory.`)
    const secretOk = form.client_secret === this.app.clientSecret || (form.client_assertion !== undefined && form.client_assertion.split('.').length === 3)
    if (!secretOk) return oauthError(401, 'invalid_client', 7000215, 'Invalid client secret provided.')
    if (form.grant_type === 'client_credentials') {
      if (!(form.scope ?? '').endsWith('/.default')) return oauthError(400, 'invalid_scope', 1002012, 'The provided value for scope is not valid.')
      return { status: 200, body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: this.issueAccessToken() } }
    }
    if (form.grant_type === 'authorization_code') return this.redeem(form)
    return oauthError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.')
  }

  private redeem (form: Record<string, string>): IdentityResponse {
    const pending = this.codes.get(form.code ?? '')
    // Codes are single-use: a replay fails like an unknown code.
    this.codes.delete(form.code ?? '')
    if (pending === undefined || pending.expiresAt < this.now().getTime()) return oauthError(400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired or was already used.')
    if (pending.redirectUri !== form.redirect_uri) return oauthError(400, 'invalid_grant', 50148, 'The redirect URI does not match the one used for the code.')
    if (pending.challenge !== undefined && createHash('sha256').update(form.code_verifier ?? '').digest('base64url') !== pending.challenge) {
      return oauthError(400, 'invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.')
    }
    const user = this.tenant.byId.get(pending.userId)!
    const nowS = Math.floor(this.now().getTime() / 1000)
    const claims: Record<string, unknown> = {
      aud: this.app.clientId, iss: `${AUTHORITY_ORIGIN}/${this.tenant.tenantId}/v2.0`, iat: nowS, nbf: nowS, exp: nowS + 3600,
      name: user.displayName, oid: user.id, preferred_username: user.userPrincipalName, sub: randomBytes(16).toString('base64url'),
      tid: this.tenant.tenantId, ver: '2.0', ...(pending.nonce === undefined ? {} : { nonce: pending.nonce }), ...(pending.acrs.length === 0 ? {} : { acrs: pending.acrs })
    }
    return {
      status: 200,
      body: {
        token_type: 'Bearer', scope: 'openid profile email', expires_in: 3599, ext_expires_in: 3599,
        access_token: this.issueAccessToken(), id_token: this.signJwt(claims),
        client_info: Buffer.from(JSON.stringify({ uid: user.id, utid: this.tenant.tenantId })).toString('base64url')
      }
    }
  }

  private issueAccessToken (): string {
    const token = `fake-at-${randomBytes(24).toString('base64url')}`
    this.accessTokens.add(token)
    return token
  }

  /** An RS256 JWT signed with the key published at /discovery/v2.0/keys. */
  signJwt (claims: Record<string, unknown>): string {
    const header = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'RS256', kid: this.keyId })).toString('base64url')
    const payload = Buffer.from(JSON.stringify(claims)).toString('base64url')
    const signature = sign('RSA-SHA256', Buffer.from(`${header}.${payload}`), this.privateKey).toString('base64url')
    return `${header}.${payload}.${signature}`
  }
}

/**
 * Authentication contexts an authorize request asks for in its ID token: `claims={"id_token":{"acrs":{"essential":true,
 * "value":"c1"}}}` (or `values`). MSAL always sends a claims parameter (with its own optional id_token claims).
 */
function requestedContexts (claims: string | null): string[] {
  if (claims === null || claims === '') return []
  const parsed = JSON.parse(claims) as { id_token?: { acrs?: { value?: unknown, values?: unknown } } }
  const acrs = parsed.id_token?.acrs
  if (acrs === undefined) return []
  const values = [acrs.value, ...(Array.isArray(acrs.values) ? acrs.values : [])]
  return values.filter((v): v is string => typeof v === 'string' && /^c\d{1,2}$/.test(v))
}
