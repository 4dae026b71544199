import { existsSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { ConfigError } from '../../config-error.ts'

/**
 * Built-in administrator roles whose holders count as privileged (contracts 1.11; role template ids, which equal
 * roleDefinitionId for built-in roles). Re-check in a tenant with GET /roleManagement/directory/roleDefinitions.
 */
export const DEFAULT_PRIVILEGED_ROLES: readonly string[] = Object.freeze([
  '62e90394-69f5-4237-9190-012177145e10', // Global Administrator
  'e8611ab8-c189-46e8-94e1-60213ab1f814', // Privileged Role Administrator
  '7be44c8a-adaf-4e2a-84d6-ab2649e08a13', // Privileged Authentication Administrator
  'c4e39bd9-1100-46d3-8c65-fb160da0071f', // Authentication Administrator
  '194ae4cb-b126-40b2-bd5b-6091b380977d', // Security Administrator
  'fe930be7-5e62-47db-91af-98c3a49a38b1', // User Administrator
  'b1be1c3e-b65d-4f19-8427-f6fa0d97feb9', // Conditional Access Administrator
  '29232cdf-9323-42fd-ade2-1d097af3e4de', // Exchange Administrator
  'f28a1f50-f6e7-4571-818b-6a12f2af6b6c', // SharePoint Administrator
  '9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3', // Application Administrator
  '158c047a-c907-4556-b7ef-446551a6b5f7', // Cloud Application Administrator
  '729827e3-9c14-49f7-bb1b-9608f156bbb8', // Helpdesk Administrator
  '8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2', // Hybrid Identity Administrator
  '3a2c62db-5318-420d-8d74-23affee5d9d5', // Intune Administrator
  'b0f54661-2d74-4c50-afa3-1ec803f12efe' // Billing Administrator
])

/** Where a user's phone number lives in the directory: the `mobilePhone` property or one on-premises extension attribute. */
export type EntraPhoneSource = 'mobilePhone' | `extensionAttribute${number}`

export type EntraEnforcement =
  | { readonly mode: 'per-user' }
  | { readonly mode: 'group', readonly groupId: string }

export type EntraCredential =
  | { readonly kind: 'secret', readonly clientSecret: string }
  | { readonly kind: 'certificate', readonly thumbprint: string, readonly privateKeyFile: string }

export interface EntraConfig {
  readonly tenantId: string
  readonly clientId: string
  readonly credential: EntraCredential
  /** e.g. https://login.microsoftonline.com; http only for an emulator on a loopback address. */
  readonly authorityUrl: string
  /** e.g. https://graph.microsoft.com; http only for an emulator on a loopback address. */
  readonly graphUrl: string
  /** Role template ids whose active holders are privileged. */
  readonly privilegedRoles: readonly string[]
  readonly phoneSource: EntraPhoneSource
  readonly enforcement: EntraEnforcement
  /** Whether authenticator-app (TOTP) enrolment goes to Entra through the beta hardware-OATH token API. */
  readonly hardwareOath: boolean
  /** Graph requests (or $batch requests) in flight at once. */
  readonly concurrency: number
  /** Group object ids whose (transitive) members are reported in ProviderUser.groups, for campaign targets. */
  readonly syncGroupIds: readonly string[]
  /**
   * Microsoft sign-in (OIDC, authorization code + PKCE); undefined when ENTRA_REDIRECT_URI is unset. `authContext`:
   * the Conditional Access authentication context (c1..c99) whose presence in the ID token's `acrs` proves MFA; null
   * means a Microsoft sign-in proves one factor only (v2.0 ID tokens carry no `amr`, contracts 1.13b).
   */
  readonly signIn: { readonly redirectUri: string, readonly scopes: readonly string[], readonly authContext: string | null } | undefined
}

/** Every variable loadEntraConfig reads (server/config.ts warns about unknown ENTRA_* names, typos). */
export const ENTRA_VARIABLES: readonly string[] = Object.freeze([
  'ENTRA_TENANT_ID', 'ENTRA_CLIENT_ID', 'ENTRA_CLIENT_SECRET', 'ENTRA_CERTIFICATE_THUMBPRINT', 'ENTRA_CERTIFICATE_KEY_FILE',
  'ENTRA_AUTHORITY_URL', 'ENTRA_GRAPH_URL', 'ENTRA_PRIVILEGED_ROLES', 'ENTRA_PHONE_ATTRIBUTE', 'ENTRA_ENFORCEMENT',
  'ENTRA_ENFORCEMENT_GROUP_ID', 'ENTRA_HARDWARE_OATH', 'ENTRA_CONCURRENCY', 'ENTRA_SYNC_GROUP_IDS', 'ENTRA_REDIRECT_URI',
  'ENTRA_SIGNIN_SCOPES', 'ENTRA_AUTH_CONTEXT'
])

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i
const MULTI_TENANT = ['common', 'organizations', 'consumers']

/**
 * Reads the Entra ID settings; undefined when ENTRA_TENANT_ID is unset (the provider is not configured).
 * Every problem is one ConfigError line naming the variable. Variables:
 *
 *   ENTRA_TENANT_ID               directory (tenant) id, a GUID or a verified domain such as contoso.onmicrosoft.com
 *   ENTRA_CLIENT_ID               the app registration's application (client) id, a GUID
 *   ENTRA_CLIENT_SECRET           a client secret; or instead:
 *   ENTRA_CERTIFICATE_THUMBPRINT  the uploaded certificate's thumbprint (SHA-1, 40 hex, or SHA-256, 64 hex), with
 *   ENTRA_CERTIFICATE_KEY_FILE    the path of its PEM private key (read at start; never logged)
 *   ENTRA_AUTHORITY_URL           sign-in authority base, default https://login.microsoftonline.com (a national cloud's
 *                                 login host, or http://127.0.0.1:PORT for a local emulator)
 *   ENTRA_GRAPH_URL               Microsoft Graph base, default https://graph.microsoft.com (same rules)
 *   ENTRA_PRIVILEGED_ROLES        comma-separated role template ids that make a user privileged; default: the
 *                                 administrator roles of contracts 1.11 (DEFAULT_PRIVILEGED_ROLES)
 *   ENTRA_PHONE_ATTRIBUTE         where the directory keeps users' MFA phone: mobilePhone (default) or extensionAttribute1..15
 *   ENTRA_ENFORCEMENT             per-user (default: legacy per-user MFA state, beta API) or group (Conditional Access group)
 *   ENTRA_ENFORCEMENT_GROUP_ID    the group's object id, required with ENTRA_ENFORCEMENT=group
 *   ENTRA_HARDWARE_OATH           true to register authenticator apps in Entra as hardware OATH tokens (beta); default false
 *   ENTRA_CONCURRENCY             Graph requests in flight at once, 1..32, default 4
 *   ENTRA_SYNC_GROUP_IDS          comma-separated group object ids whose members sync reports in users' groups
 *   ENTRA_REDIRECT_URI            enables "Sign in with Microsoft": the portal's callback URL registered on the app
 *                                 (https, or http on localhost for development)
 *   ENTRA_SIGNIN_SCOPES           extra scopes asked at sign-in, space-separated; default "openid profile email"
 *   ENTRA_AUTH_CONTEXT            a Conditional Access authentication context id (c1..c99) bound to a policy that
 *                                 requires MFA: asked for at sign-in, and its presence in the ID token's acrs claim
 *                                 makes the sign-in count as MFA; unset: a Microsoft sign-in counts as one factor
 */
export function loadEntraConfig (env: NodeJS.ProcessEnv): EntraConfig | undefined {
  const tenantId = text(env, 'ENTRA_TENANT_ID')
  if (tenantId === undefined) return undefined
  if (MULTI_TENANT.includes(tenantId.toLowerCase()) || !(GUID.test(tenantId) || DOMAIN.test(tenantId))) {
    throw new ConfigError('ENTRA_TENANT_ID', `expected the directory (tenant) id GUID or a verified domain, got "${tenantId}"`)
  }

  const clientId = text(env, 'ENTRA_CLIENT_ID')
  if (clientId === undefined) throw new ConfigError('ENTRA_CLIENT_ID', 'required with ENTRA_TENANT_ID: the application (client) id GUID')
  if (!GUID.test(clientId)) throw new ConfigError('ENTRA_CLIENT_ID', 'expected the application (client) id, a GUID')

  const enforcementMode = text(env, 'ENTRA_ENFORCEMENT') ?? 'per-user'
  let enforcement: EntraEnforcement
  if (enforcementMode === 'per-user') {
    enforcement = { mode: 'per-user' }
  } else if (enforcementMode === 'group') {
    const groupId = text(env, 'ENTRA_ENFORCEMENT_GROUP_ID')
    if (groupId === undefined || !GUID.test(groupId)) {
      throw new ConfigError('ENTRA_ENFORCEMENT_GROUP_ID', 'required with ENTRA_ENFORCEMENT=group: the Conditional Access group\'s object id GUID')
    }
    enforcement = { mode: 'group', groupId }
  } else {
    throw new ConfigError('ENTRA_ENFORCEMENT', `expected per-user or group, got "${enforcementMode}"`)
  }

  const redirectText = text(env, 'ENTRA_REDIRECT_URI')
  const authContext = authContextOf(env, redirectText !== undefined)
  const signIn = redirectText === undefined
    ? undefined
    : {
        redirectUri: baseUrl(redirectText, 'ENTRA_REDIRECT_URI', { keepPath: true }),
        scopes: Object.freeze(words(text(env, 'ENTRA_SIGNIN_SCOPES') ?? 'openid profile email')),
        authContext
      }

  return Object.freeze({
    tenantId,
    clientId,
    credential: credential(env),
    authorityUrl: baseUrl(text(env, 'ENTRA_AUTHORITY_URL') ?? 'https://login.microsoftonline.com', 'ENTRA_AUTHORITY_URL'),
    graphUrl: baseUrl(text(env, 'ENTRA_GRAPH_URL') ?? 'https://graph.microsoft.com', 'ENTRA_GRAPH_URL'),
    privilegedRoles: Object.freeze(guids(env, 'ENTRA_PRIVILEGED_ROLES', 'role template ids') ?? DEFAULT_PRIVILEGED_ROLES),
    phoneSource: phoneSource(env),
    enforcement: Object.freeze(enforcement),
    hardwareOath: flag(env, 'ENTRA_HARDWARE_OATH', false),
    concurrency: integer(env, 'ENTRA_CONCURRENCY', 4, 1, 32),
    syncGroupIds: Object.freeze(guids(env, 'ENTRA_SYNC_GROUP_IDS', 'group object ids') ?? []),
    signIn: signIn === undefined ? undefined : Object.freeze(signIn)
  })
}

function text (env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

function credential (env: NodeJS.ProcessEnv): EntraCredential {
  const secret = env.ENTRA_CLIENT_SECRET
  const thumbprint = text(env, 'ENTRA_CERTIFICATE_THUMBPRINT')
  const keyFile = text(env, 'ENTRA_CERTIFICATE_KEY_FILE')
  const hasSecret = secret !== undefined && secret !== ''
  if (hasSecret && (thumbprint !== undefined || keyFile !== undefined)) {
    // Two credentials would leave it to chance which one is used; make the operator choose.
    throw new ConfigError('ENTRA_CLIENT_SECRET', 'set either a client secret or a certificate (ENTRA_CERTIFICATE_THUMBPRINT + ENTRA_CERTIFICATE_KEY_FILE), not both')
  }
  if (hasSecret) return Object.freeze({ kind: 'secret', clientSecret: secret })
  if (thumbprint === undefined && keyFile === undefined) {
    throw new ConfigError('ENTRA_CLIENT_SECRET', 'required with ENTRA_TENANT_ID unless a certificate is configured (ENTRA_CERTIFICATE_THUMBPRINT + ENTRA_CERTIFICATE_KEY_FILE)')
  }
  if (thumbprint === undefined || !/^([0-9a-f]{40}|[0-9a-f]{64})$/i.test(thumbprint.replace(/:/g, ''))) {
    throw new ConfigError('ENTRA_CERTIFICATE_THUMBPRINT', 'expected the certificate thumbprint as 40 (SHA-1) or 64 (SHA-256) hex characters')
  }
  if (keyFile === undefined) throw new ConfigError('ENTRA_CERTIFICATE_KEY_FILE', 'required with ENTRA_CERTIFICATE_THUMBPRINT: the path of the PEM private key')
  if (!existsSync(keyFile) || !statSync(keyFile).isFile()) {
    throw new ConfigError('ENTRA_CERTIFICATE_KEY_FILE', `no file at ${keyFile}`)
  }
  return Object.freeze({ kind: 'certificate', thumbprint: thumbprint.replace(/:/g, '').toLowerCase(), privateKeyFile: keyFile })
}

/**
 * An absolute base URL without a trailing slash. Plain http is allowed only on loopback addresses: a bearer
 * token or client secret must never cross a network unencrypted, but a local emulator has no certificate.
 */
function baseUrl (value: string, name: string, options: { keepPath?: boolean } = {}): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new ConfigError(name, `expected an absolute URL, got "${value}"`)
  }
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || (isIP(url.hostname) === 4 && url.hostname.startsWith('127.'))
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw new ConfigError(name, `expected an https URL (http only on localhost), got "${value}"`)
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigError(name, 'expected a URL without query, fragment or credentials')
  }
  if (options.keepPath === true) return url.href
  if (url.pathname !== '/') throw new ConfigError(name, `expected only scheme and host (no path), got "${value}"`)
  return url.origin
}

function guids (env: NodeJS.ProcessEnv, name: string, what: string): string[] | undefined {
  const value = text(env, name)
  if (value === undefined) return undefined
  const list = value.split(',').map((v) => v.trim().toLowerCase()).filter((v) => v !== '')
  const bad = list.find((v) => !GUID.test(v))
  if (bad !== undefined || list.length === 0) throw new ConfigError(name, `expected comma-separated ${what} (GUIDs), got "${bad ?? value}"`)
  return [...new Set(list)]
}

/** ENTRA_AUTH_CONTEXT: c1..c99 as Conditional Access numbers them (lower case, as Entra puts them in `acrs`). */
function authContextOf (env: NodeJS.ProcessEnv, signIn: boolean): string | null {
  const value = text(env, 'ENTRA_AUTH_CONTEXT')
  if (value === undefined) return null
  if (!signIn) throw new ConfigError('ENTRA_AUTH_CONTEXT', 'only means something with ENTRA_REDIRECT_URI (Microsoft sign-in); set both or neither')
  if (!/^c([1-9]|[1-9][0-9])$/i.test(value)) throw new ConfigError('ENTRA_AUTH_CONTEXT', `expected an authentication context id c1..c99, got "${value}"`)
  return value.toLowerCase()
}

function phoneSource (env: NodeJS.ProcessEnv): EntraPhoneSource {
  const value = text(env, 'ENTRA_PHONE_ATTRIBUTE') ?? 'mobilePhone'
  if (value === 'mobilePhone') return value
  const match = /^extensionAttribute([1-9]|1[0-5])$/.exec(value)
  if (match === null) throw new ConfigError('ENTRA_PHONE_ATTRIBUTE', `expected mobilePhone or extensionAttribute1..15, got "${value}"`)
  return value as EntraPhoneSource
}

function flag (env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const value = text(env, name)
  if (value === undefined) return fallback
  if (value === 'true') return true
  if (value === 'false') return false
  throw new ConfigError(name, `expected true or false, got "${value}"`)
}

function integer (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const value = text(env, name)
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${value}"`)
  return n
}

function words (value: string): string[] {
  return [...new Set(value.split(/\s+/).filter((w) => w !== ''))]
}
