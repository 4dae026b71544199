import { ProviderError, type ProviderPage, type ProviderUser } from '../../domain/provider.ts'
import { runBatch } from './batch.ts'
import { mapLimit } from './concurrency.ts'
import type { EntraConfig } from './config.ts'
import { hasStatus } from './errors.ts'
import type { GraphApi } from './graph-client.ts'
import { kindsFromMethods, kindsFromReport } from './method-kinds.ts'

/** A user as selected from GET /users (contracts 1.3). */
export interface GraphUser {
  id: string
  userPrincipalName?: string | null
  displayName?: string | null
  mail?: string | null
  mobilePhone?: string | null
  accountEnabled?: boolean | null
  userType?: string | null
  createdDateTime?: string | null
  onPremisesExtensionAttributes?: Record<string, string | null> | null
}

// accountEnabled and onPremisesExtensionAttributes come back only when selected (contracts 1.3).
export const USER_SELECT = 'id,userPrincipalName,displayName,mail,mobilePhone,accountEnabled,userType,createdDateTime,onPremisesExtensionAttributes'

export const REGISTRATION_SOURCE = { report: 'userRegistrationDetails', methods: 'authentication/methods' } as const

/**
 * What one listing run needs besides the users themselves, read once when a run starts (cursor null) and reused
 * for every page of that run: active privileged role assignments, members of the groups campaigns target, and the
 * registration report (null when the tenant cannot serve it: no Entra ID P1 licence gives 403).
 */
export interface ListingRun {
  rolesByUser: Map<string, string[]>
  groupsByUser: Map<string, string[]>
  registration: Map<string, string[]> | null
}

export interface DirectoryOptions {
  /** Users per page, 1..999 (Graph's default is 100). */
  pageSize: number
  /** Groups whose members to report; campaigns' group targets, resolved when a run starts. */
  groupIds: () => readonly string[] | Promise<readonly string[]>
}

/** Reads users page by page, with privilege, groups, phone and registered methods filled in. */
export class DirectoryReader {
  private run: ListingRun | null = null

  constructor (private readonly graph: GraphApi, private readonly config: EntraConfig, private readonly options: DirectoryOptions) {}

  async page (cursor: string | null): Promise<ProviderPage> {
    // A cursor comes back from outside (the engine stores it): it must be a Graph link before anything is sent.
    if (cursor !== null && !this.graph.isGraphLink(cursor)) {
      throw new ProviderError('A paging link does not point at Microsoft Graph', false, null, 'invalid_cursor')
    }
    if (cursor === null || this.run === null) this.run = await this.startRun()
    const run = this.run
    const first = `/users?$select=${USER_SELECT}&$top=${this.options.pageSize}`
    const { items, next } = await this.graph.page<GraphUser>(cursor ?? first)
    let methods: Map<string, string[]>
    let registrationSource: string
    if (run.registration !== null) {
      methods = run.registration
      registrationSource = REGISTRATION_SOURCE.report
    } else {
      methods = await this.methodsOf(items.map((u) => u.id))
      registrationSource = REGISTRATION_SOURCE.methods
    }
    if (next === null) this.run = null
    return { users: items.map((u) => this.toProviderUser(u, run, methods.get(u.id))), next, registrationSource }
  }

  private async startRun (): Promise<ListingRun> {
    const [rolesByUser, groupsByUser, registration] = await Promise.all([this.roleHolders(), this.groupMembers(), this.registrationReport()])
    return { rolesByUser, groupsByUser, registration }
  }

  /**
   * Active assignments of the privileged roles, one filtered query per role (contracts 1.11). PIM-eligible
   * assignments and members of role-assignable groups are not expanded here.
   */
  private async roleHolders (): Promise<Map<string, string[]>> {
    const byUser = new Map<string, string[]>()
    await mapLimit(this.config.privilegedRoles, this.config.concurrency, async (roleId) => {
      const assignments = await this.graph.all<{ principalId: string, roleDefinitionId: string }>(
        `/roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq '${roleId}'`)
      for (const a of assignments) {
        const roles = byUser.get(a.principalId) ?? []
        if (!roles.includes(roleId)) roles.push(roleId)
        byUser.set(a.principalId, roles)
      }
    })
    return byUser
  }

  /**
   * Membership of the targeted groups only, read from each group (transitive, ids only): the cost follows the
   * size of the groups campaigns name rather than users × groups, and nested groups count as Conditional Access does.
   */
  private async groupMembers (): Promise<Map<string, string[]>> {
    const byUser = new Map<string, string[]>()
    const groupIds = [...new Set([...this.config.syncGroupIds, ...await this.options.groupIds()])]
    await mapLimit(groupIds, this.config.concurrency, async (groupId) => {
      const members = await this.graph.all<{ id: string }>(`/groups/${encodeURIComponent(groupId)}/transitiveMembers?$select=id&$top=999`)
      for (const m of members) byUser.set(m.id, [...byUser.get(m.id) ?? [], groupId])
    })
    return byUser
  }

  /** The whole registration report, keyed by user id; null when the tenant answers 403 (no P1 licence). */
  private async registrationReport (): Promise<Map<string, string[]> | null> {
    try {
      const rows = await this.graph.all<{ id: string, methodsRegistered?: string[] }>(
        '/reports/authenticationMethods/userRegistrationDetails?$select=id,methodsRegistered&$top=999')
      return new Map(rows.map((r) => [r.id, kindsFromReport(r.methodsRegistered)]))
    } catch (err) {
      if (hasStatus(err, 403)) return null
      throw err
    }
  }

  /** Fallback without the report: each user's methods, 20 users per $batch. A user whose read fails is left unknown. */
  private async methodsOf (userIds: string[]): Promise<Map<string, string[]>> {
    const version = this.config.hardwareOath ? 'beta' : 'v1.0'
    const outcomes = await runBatch(this.graph, userIds.map((id) => ({ method: 'GET' as const, url: `/users/${encodeURIComponent(id)}/authentication/methods` })), { version, concurrency: this.config.concurrency })
    const methods = new Map<string, string[]>()
    outcomes.forEach((o, i) => {
      if (o.ok) methods.set(userIds[i], kindsFromMethods((o.body as { value?: Array<{ '@odata.type'?: string }> }).value ?? []))
    })
    return methods
  }

  private toProviderUser (u: GraphUser, run: ListingRun, methods: string[] | undefined): ProviderUser {
    const roles = run.rolesByUser.get(u.id) ?? []
    const upn = u.userPrincipalName ?? u.id
    const user: ProviderUser = {
      externalId: u.id,
      email: u.mail ?? upn,
      displayName: u.displayName ?? upn,
      privileged: roles.length > 0,
      groups: run.groupsByUser.get(u.id) ?? [],
      enabled: u.accountEnabled !== false,
      phone: phoneOf(u, this.config.phoneSource),
      attributes: {
        userPrincipalName: upn,
        userType: u.userType ?? null,
        createdAt: u.createdDateTime ?? null,
        privilegedRoles: roles.length === 0 ? null : roles.join(',')
      },
      // Guests sign in with their home organisation's MFA; campaigns leave them out unless they name them.
      targetable: u.userType !== 'Guest'
    }
    // Absent from the report (it lags new users by hours): unknown, so the engine asks registrationStatus.
    if (methods !== undefined) user.methods = methods
    return user
  }
}

export function phoneOf (u: GraphUser, source: EntraConfig['phoneSource']): string | null {
  const value = source === 'mobilePhone' ? u.mobilePhone : u.onPremisesExtensionAttributes?.[source]
  return value === undefined || value === null || value.trim() === '' ? null : value.trim()
}
