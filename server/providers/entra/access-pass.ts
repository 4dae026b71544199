import { ProviderError } from '../../domain/provider.ts'
import { mayHaveHappened, type GraphApi } from './graph-client.ts'

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
  includeTargets?: Array<{ targetType?: string, id?: string }>
  excludeTargets?: Array<{ targetType?: string, id?: string }>
}

/** Who the policy lets hold a pass: groups (read transitively), or everyone ('all_users'). */
interface PolicyTargets {
  include: string[]
  exclude: string[]
}

const ALL_USERS = 'all_users'
// checkMemberGroups takes at most 20 group ids per call.
const GROUPS_PER_CHECK = 20

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
    return (await this.readPolicy()).policy
  }

  private async readPolicy (): Promise<{ policy: AccessPassPolicy, targets: PolicyTargets }> {
    const body = await this.graph.get<TapPolicyBody>(POLICY_PATH)
    const groups = (targets: TapPolicyBody['includeTargets']): string[] =>
      (targets ?? []).filter((t) => t.targetType === 'group' && typeof t.id === 'string').map((t) => t.id!)
    // Defaults from the Entra TAP how-to, for properties a tenant never set.
    return {
      policy: {
        enabled: body.state === 'enabled',
        minimumLifetimeMinutes: body.minimumLifetimeInMinutes ?? 60,
        maximumLifetimeMinutes: body.maximumLifetimeInMinutes ?? 480,
        defaultLifetimeMinutes: body.defaultLifetimeInMinutes ?? 60,
        defaultLength: body.defaultLength ?? 8,
        oneTimeOnly: body.isUsableOnce ?? false
      },
      targets: { include: groups(body.includeTargets), exclude: groups(body.excludeTargets) }
    }
  }

  /**
   * Issues a pass within the tenant's policy, to a user the policy targets. A user holds at most one pass and
   * creating one replaces the earlier one (contracts 1.7), so nothing is deleted first: a create that fails leaves
   * the pass the helpdesk handed out before still working.
   */
  async issue (externalId: string, request: AccessPassRequest = {}): Promise<IssuedAccessPass> {
    const { policy, targets } = await this.readPolicy()
    if (!policy.enabled) {
      throw new ProviderError('Temporary access passes are turned off in this tenant\'s authentication methods policy', false, null, 'access_pass_disabled')
    }
    const { lifetimeMinutes, oneTime } = fitToPolicy(policy, request)
    await this.assertTargeted(externalId, targets)
    const before = await this.currentPassId(externalId)
    let created: TapMethod
    try {
      created = await this.graph.post<TapMethod>(tapPath(externalId), { lifetimeInMinutes: lifetimeMinutes, isUsableOnce: oneTime })
    } catch (err) {
      // Graph may have made the pass and lost the answer: the pass exists only in that answer, so it cannot be shown.
      // Sent again blindly it would make another; the helpdesk is told instead, and a new request replaces it.
      if (mayHaveHappened(err) && await this.currentPassId(externalId) !== before) {
        throw new ProviderError('Entra created the pass, but its answer was lost on the way, so nobody has seen it. Issue the pass again: the new one replaces it.', true, null, 'access_pass_answer_lost')
      }
      throw err
    }
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

  /** The id of the user's pass now, or null: how a lost create answer is told from a create that never happened. */
  private async currentPassId (externalId: string): Promise<string | null> {
    const { value } = await this.graph.get<{ value: TapMethod[] }>(tapPath(externalId))
    return value[0]?.id ?? null
  }

  /**
   * Refuses, in words, a user the policy does not target (not in an included group, or in an excluded one), before
   * anything is written. Membership is transitive, as the policy reads it.
   */
  private async assertTargeted (externalId: string, targets: PolicyTargets): Promise<void> {
    const included = targets.include.includes(ALL_USERS) || await this.memberOfAny(externalId, targets.include)
    const excluded = await this.memberOfAny(externalId, targets.exclude.filter((id) => id !== ALL_USERS)) || targets.exclude.includes(ALL_USERS)
    if (included && !excluded) return
    throw new ProviderError(
      `This person is ${excluded ? 'excluded from' : 'not among the groups of'} the tenant's Temporary Access Pass policy, so Entra cannot give them a pass. ` +
      'An administrator can add them in the Entra admin center (Protection > Authentication methods > Temporary Access Pass), or the helpdesk can help them another way.',
      false, null, 'access_pass_not_in_policy')
  }

  private async memberOfAny (externalId: string, groupIds: string[]): Promise<boolean> {
    for (let i = 0; i < groupIds.length; i += GROUPS_PER_CHECK) {
      const { value } = await this.graph.post<{ value: string[] }>(`/users/${encodeURIComponent(externalId)}/checkMemberGroups`,
        { groupIds: groupIds.slice(i, i + GROUPS_PER_CHECK) }, 'v1.0', { idempotent: true })
      if (value.length > 0) return true
    }
    return false
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
