import type { ProviderSubject, ProviderUser } from '../../../server/domain/provider.ts'
import { loadEntraConfig, type EntraConfig } from '../../../server/providers/entra/config.ts'
import { EntraProvider, type EntraProviderOptions } from '../../../server/providers/entra/provider.ts'
import { startFakeEntra, type FakeEntra, type FakeEntraOptions } from './server.ts'

/** The environment that points the adapter at `fake`, as an operator would write it. */
export function fakeEnv (fake: FakeEntra, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ENTRA_TENANT_ID: fake.tenant.tenantId,
    ENTRA_CLIENT_ID: fake.app.clientId,
    ENTRA_CLIENT_SECRET: fake.app.clientSecret,
    ENTRA_AUTHORITY_URL: fake.url,
    ENTRA_GRAPH_URL: fake.url,
    ...extra
  }
}

export interface EntraFixture {
  fake: FakeEntra
  config: EntraConfig
  provider: EntraProvider
  close(): Promise<void>
}

/** A fake tenant and an adapter talking to it through the real MSAL and Graph clients. */
export async function entraFixture (options: { env?: Record<string, string>, provider?: EntraProviderOptions, fake?: FakeEntraOptions } = {}): Promise<EntraFixture> {
  const fake = await startFakeEntra(options.fake)
  const config = loadEntraConfig(fakeEnv(fake, options.env))!
  // RetryHandler waits 3 s when a throttled answer has no Retry-After; tests keep it short.
  const provider = new EntraProvider(config, { ...options.provider, graph: { retryDelaySeconds: 0, ...options.provider?.graph } })
  return { fake, config, provider, close: async () => { await fake.close() } }
}

export function subjectOf (externalId: string, enrolled: boolean): ProviderSubject {
  return { userId: `portal-${externalId}`, externalId, email: `${externalId}@contoso.example`, enrolled }
}

/** Every user of a paged listing, following `next` until the last page. */
export async function listAll (list: (cursor: string | null) => Promise<{ users: ProviderUser[], next: string | null }>): Promise<ProviderUser[]> {
  const users: ProviderUser[] = []
  let cursor: string | null = null
  do {
    const page = await list(cursor)
    users.push(...page.users)
    cursor = page.next
  } while (cursor !== null)
  return users
}
