import { readFileSync } from 'node:fs'
import { ConfidentialClientApplication, type Configuration, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node'
import type { EntraConfig } from './config.ts'
import { toProviderError } from './errors.ts'

/** The public cloud's hosts, used as the logical origin when an emulator on plain http stands in. */
const PUBLIC_AUTHORITY = 'https://login.microsoftonline.com'
const PUBLIC_GRAPH = 'https://graph.microsoft.com'

/** Login hosts MSAL already knows metadata for; any other https host must be listed in knownAuthorities. */
const MICROSOFT_LOGIN_HOSTS = new Set([
  'login.microsoftonline.com', 'login.microsoft.com', 'login.windows.net', 'login.microsoftonline.us',
  'login.chinacloudapi.cn', 'login.partner.microsoftonline.cn', 'login.microsoftonline.de'
])

/**
 * The origins the SDKs are told about versus the ones requests really go to. MSAL refuses an http authority
 * (authority_uri_insecure) and the Graph client only attaches tokens to and parses nextLinks of https URLs
 * (contracts 1.1 pitfalls, 1.14), so an http emulator is addressed as the public cloud and the last hop rewrites
 * the origin. With https base URLs (production, national clouds) logical and actual are the same.
 */
export interface Origins {
  authority: { logical: string, actual: string }
  graph: { logical: string, actual: string }
}

export function originsFor (config: Pick<EntraConfig, 'authorityUrl' | 'graphUrl'>): Origins {
  const pick = (actual: string, fallback: string): { logical: string, actual: string } =>
    ({ logical: actual.startsWith('https://') ? actual : fallback, actual })
  return { authority: pick(config.authorityUrl, PUBLIC_AUTHORITY), graph: pick(config.graphUrl, PUBLIC_GRAPH) }
}

/** Replaces a logical origin at the start of `url` with the actual one. */
export function rewriteOrigin (url: string, origin: { logical: string, actual: string }): string {
  if (origin.logical === origin.actual) return url
  return url === origin.logical || url.startsWith(`${origin.logical}/`) ? origin.actual + url.slice(origin.logical.length) : url
}

/**
 * MSAL's network client with the origin rewrite (contracts 1.14 option A). Anything not addressed to the logical
 * authority passes through unchanged.
 */
export class RewritingNetworkClient implements INetworkModule {
  constructor (private readonly origin: { logical: string, actual: string }) {}

  async sendGetRequestAsync<T> (url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return await this.send<T>(url, 'GET', options, timeout)
  }

  async sendPostRequestAsync<T> (url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return await this.send<T>(url, 'POST', options)
  }

  private async send<T> (url: string, method: 'GET' | 'POST', options: NetworkRequestOptions | undefined, timeout?: number): Promise<NetworkResponse<T>> {
    const response = await fetch(rewriteOrigin(url, this.origin), {
      method,
      headers: options?.headers,
      body: method === 'POST' ? options?.body ?? '' : undefined,
      signal: AbortSignal.timeout(timeout ?? 30_000)
    })
    const headers: Record<string, string> = {}
    response.headers.forEach((value, key) => { headers[key] = value })
    return { status: response.status, headers, body: await response.json() as T }
  }
}

export function authorityFor (config: Pick<EntraConfig, 'tenantId'>, origins: Origins): string {
  return `${origins.authority.logical}/${config.tenantId}`
}

/** One MSAL app per provider instance: its in-memory token cache is what keeps token requests rare (contracts 1.14). */
export function createMsalApp (config: EntraConfig, origins: Origins = originsFor(config)): ConfidentialClientApplication {
  const host = new URL(origins.authority.logical).host
  const credential = config.credential.kind === 'secret'
    ? { clientSecret: config.credential.clientSecret }
    : {
        clientCertificate: {
          ...(config.credential.thumbprint.length === 64 ? { thumbprintSha256: config.credential.thumbprint } : { thumbprint: config.credential.thumbprint }),
          privateKey: readFileSync(config.credential.privateKeyFile, 'utf8')
        }
      }
  const msalConfig: Configuration = {
    auth: {
      clientId: config.clientId,
      authority: authorityFor(config, origins),
      // An https emulator or private cloud host: skip instance discovery at Microsoft, which could not vouch for it.
      ...(MICROSOFT_LOGIN_HOSTS.has(host) ? {} : { knownAuthorities: [host] }),
      ...credential
    },
    system: origins.authority.logical === origins.authority.actual ? {} : { networkClient: new RewritingNetworkClient(origins.authority) }
  }
  return new ConfidentialClientApplication(msalConfig)
}

/**
 * App-only Graph tokens from the client-credentials grant. Keeps the current token beside MSAL's cache so a request
 * costs no MSAL call while the token is fresh, and concurrent requests share one acquisition.
 */
export class TokenSource {
  private current: { token: string, refreshAt: number } | null = null
  private pending: Promise<string> | null = null

  constructor (private readonly app: ConfidentialClientApplication, private readonly scope: string, private readonly now: () => number = Date.now) {}

  async get (): Promise<string> {
    if (this.current !== null && this.now() < this.current.refreshAt) return this.current.token
    this.pending ??= this.acquire().finally(() => { this.pending = null })
    return await this.pending
  }

  private async acquire (): Promise<string> {
    try {
      const result = await this.app.acquireTokenByClientCredential({ scopes: [this.scope] })
      if (result === null) throw new Error('no token in the response')
      // Five minutes early, as MSAL itself does, so a request never leaves with a token about to expire.
      const expires = result.expiresOn?.getTime() ?? this.now() + 10 * 60_000
      this.current = { token: result.accessToken, refreshAt: expires - 5 * 60_000 }
      return result.accessToken
    } catch (err) {
      throw toProviderError('Getting a Microsoft Graph token', err)
    }
  }
}
