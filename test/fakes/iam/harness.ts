import { execFileSync } from 'node:child_process'
import { loadAwsConfig, type AwsConfig } from '../../../server/providers/aws/config.ts'
import { AwsIamProvider, type AwsIamProviderDeps } from '../../../server/providers/aws/provider.ts'
import type { ProviderSubject } from '../../../server/domain/provider.ts'
import type { FakeIam } from './server.ts'

export const TEST_KEYS = { accessKeyId: 'AKIDFAKEIAMTEST00001', secretAccessKey: 'fake/iam/secret/key/for/tests/00000000000' }

/** The environment an operator would write to point the provider at the fake, plus `extra`. */
export function awsEnv (fake: FakeIam, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_IAM_ENABLED: 'true',
    AWS_IAM_ENDPOINT: fake.url,
    AWS_IAM_ACCESS_KEY_ID: TEST_KEYS.accessKeyId,
    AWS_IAM_SECRET_ACCESS_KEY: TEST_KEYS.secretAccessKey,
    AWS_IAM_TIMEOUT_SECONDS: '5',
    ...extra
  }
}

export function awsConfig (fake: FakeIam, extra: Record<string, string> = {}): AwsConfig {
  const config = loadAwsConfig(awsEnv(fake, extra))
  if (config === undefined) throw new Error('AWS_IAM_ENABLED=true gave no config')
  return config
}

/** A provider built from configuration the way the portal builds it, talking to the fake through the real SDK. */
export function providerFor (fake: FakeIam, extra: Record<string, string> = {}, deps: AwsIamProviderDeps = {}): AwsIamProvider {
  return new AwsIamProvider(awsConfig(fake, extra), { sleep: async (ms) => { await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 20))) }, ...deps })
}

/** The IAM user id (AIDA…) the fake gave a user: what the portal keys the user by. */
export function idOf (fake: FakeIam, userName: string): string {
  return fake.state.user(userName).userId
}

/** The user as the engine hands it to the provider: keyed by IAM user id, never by name. */
export function subject (fake: FakeIam, userName: string, extra: Partial<ProviderSubject> = {}): ProviderSubject {
  return { userId: `portal-${userName}`, externalId: idOf(fake, userName), email: '', enrolled: false, ...extra }
}

/** Every page of the provider's listing, as a sync would walk it. */
export async function listAll (provider: AwsIamProvider): Promise<{ users: Awaited<ReturnType<AwsIamProvider['listUsers']>>['users'], pages: number }> {
  const users = []
  let cursor: string | null = null
  let pages = 0
  do {
    const page = await provider.listUsers(cursor)
    users.push(...page.users)
    cursor = page.next
    pages++
  } while (cursor !== null)
  return { users, pages }
}

/** A TOTP code from Debian's oathtool for the Base32 seed at a Unix time (seconds). */
export function oathtool (seed: string, epochSeconds: number): string {
  return execFileSync('/usr/bin/oathtool', ['--totp', '-b', seed, '-N', `@${epochSeconds}`], { encoding: 'utf8' }).trim()
}
