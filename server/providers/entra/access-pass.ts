import { ProviderError } from '../../domain/provider.ts'
import type { GraphApi } from './graph-client.ts'

/** The tenant's Temporary Access Pass policy (contracts 1.7). */
export interface AccessPassPolicy {
  enabled: boolean
  minimumLifetimeMinutes: number
  maximumLifetimeMinutes: number
  defaultLifetimeMinutes: number
  defaultLength: number
  /** The policy makes every pass one-time. */
  oneTimeOnly: boolean
}

export interface AccessPassRequest {
  /** Default: the policy's default lifetime. */
  lifetimeMinutes?: number
  /** Default: the policy's setting. */
  oneTime?: boolean
  /** Outside the policy: refuse with a clear error (default), or fit the request into the policy. */
  outOfPolicy?: 'refuse' | 'clamp'
}

/** A pass to show once to the helpdesk: the portal never stores it. */
export interface IssuedAccessPass {
  pass: string
  methodId: string
  startsAt: Date
  expiresAt: Date
  lifetimeMinutes: number
  oneTime: boolean
}

const POLICY_PATH = '/policies/authenticationMethodsPolicy/authenticationMethodConfigurations/TemporaryAccessPass'
// Graph's own bounds, whatever the policy says (contracts 1.7).
const GRAPH_MIN = 10
const GRAPH_MAX = 43_200

interface TapPolicyBody {
  state?: string
  minimumLifetimeInMinutes?: number
  maximumLifetimeInMinutes?: number
  defaultLifetimeInMinutes?: number
  defaultLength?: number
  isUsableOnce?: boolean
}

interface TapMethod {
  id: string
  temporaryAccessPass?: string | null
  createdDateTime?: string
  startDateTime?: string | null
  lifetimeInMinutes?: number
  isUsableOnce?: boolean
}

function tapPath (id: string): string {
  return `/users/${encodeURIComponent(id)}/authentication/temporaryAccessPassMethods`
}

export class AccessPasses {
  constructor (private readonly graph: GraphApi, private readonly now: () => Date) {}

  async policy (): Promise<AccessPassPolicy> {
    const body = await this.graph.get<TapPolicyBody>(POLICY_PATH)
    // Defaults from the Entra TAP how-to, for properties a tenant never set.
    return {
      enabled: body.state === 'enabled',
      minimumLifetimeMinutes: body.minimumLifetimeInMinutes ?? 60,
      maximumLifetimeMinutes: body.maximumLifetimeInMinutes ?? 480,
      defaultLifetimeMinutes: body.defaultLifetimeInMinutes ?? 60,
      defaultLength: body.defaultLength ?? 8,
      oneTimeOnly: body.isUsableOnce ?? false
    }
  }

  /**
   * Issues a pass within the tenant's policy. A user holds at most one pass, so any earlier one is deleted first:
   * the newest pass is the only one the helpdesk has handed out.
   */
  async issue (externalId: string, request: AccessPassRequest = {}): Promise<IssuedAccessPass> {
    const policy = await this.policy()
    if (!policy.enabled) {
      throw new ProviderError('Temporary access passes are turned off in this tenant\'s authentication methods policy', false, null, 'access_pass_disabled')
    }
    const { lifetimeMinutes, oneTime } = fitToPolicy(policy, request)
    const existing = await this.graph.get<{ value: TapMethod[] }>(tapPath(externalId))
    for (const tap of existing.value) await this.graph.delete(`${tapPath(externalId)}/${encodeURIComponent(tap.id)}`)
    const created = await this.graph.post<TapMethod>(tapPath(externalId), { lifetimeInMinutes: lifetimeMinutes, isUsableOnce: oneTime })
    if (typeof created.temporaryAccessPass !== 'string' || created.temporaryAccessPass === '') {
      throw new ProviderError('Entra created a temporary access pass but did not return it', false, null, 'access_pass_missing')
    }
    const startsAt = new Date(created.startDateTime ?? created.createdDateTime ?? this.now().toISOString())
    const lifetime = created.lifetimeInMinutes ?? lifetimeMinutes
    return {
      pass: created.temporaryAccessPass,
      methodId: created.id,
      startsAt,
      expiresAt: new Date(startsAt.getTime() + lifetime * 60_000),
      lifetimeMinutes: lifetime,
      oneTime: created.isUsableOnce ?? oneTime
    }
  }
}

/** The lifetime and one-time setting to ask for, or a clear refusal naming the policy's bounds. */
export function fitToPolicy (policy: AccessPassPolicy, request: AccessPassRequest): { lifetimeMinutes: number, oneTime: boolean } {
  const min = Math.max(GRAPH_MIN, policy.minimumLifetimeMinutes)
  const max = Math.min(GRAPH_MAX, policy.maximumLifetimeMinutes)
  const clamp = request.outOfPolicy === 'clamp'
  let lifetimeMinutes = request.lifetimeMinutes ?? policy.defaultLifetimeMinutes
  if (!Number.isInteger(lifetimeMinutes) || lifetimeMinutes < min || lifetimeMinutes > max) {
    if (!clamp || !Number.isFinite(lifetimeMinutes)) {
      throw new ProviderError(`This tenant allows temporary access passes lasting ${min} to ${max} minutes; ${request.lifetimeMinutes} minutes is outside that`, false, null, 'access_pass_lifetime_out_of_policy')
    }
    lifetimeMinutes = Math.min(max, Math.max(min, Math.round(lifetimeMinutes)))
  }
  let oneTime = request.oneTime ?? policy.oneTimeOnly
  if (policy.oneTimeOnly && !oneTime) {
    if (!clamp) throw new ProviderError('This tenant allows only one-time temporary access passes', false, null, 'access_pass_one_time_only')
    oneTime = true
  }
  return { lifetimeMinutes, oneTime }
}
