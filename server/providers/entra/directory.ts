import { ProviderError, type ProviderPage, type ProviderUser } from '../../domain/provider.ts'
import { mapLimit } from './concurrency.ts'
import type { EntraConfig } from './config.ts'
import { hasStatus } from './errors.ts'
import type { GraphApi } from './graph-client.ts'
import { REGISTRATION_SOURCE, RegistrationReader, type Registration, type RegistrationOptions } from './registration.ts'

export { REGISTRATION_SOURCE } from './registration.ts'

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

/** A role assignment or PIM eligibility, with the principal expanded (its @odata.type says user or group). */
interface RoleGrant {
  principalId: string
  roleDefinitionId: string
  principal?: { '@odata.type'?: string } | null
}

/**
 * What one listing run needs besides the users themselves, read once when a run starts (cursor null) and reused
 * for every page of that run: who holds a privileged role (actively, PIM-eligible, or through a role-assignable
 * group), members of the groups campaigns target, and the registration report's method names by user (null when
 * the tenant has no Entra ID P1 licence).
 */
export interface ListingRun {
  rolesByUser: Map<string, string[]>
  groupsByUser: Map<string, string[]>
  registration: Map<string, string[]> | null
}

export interface DirectoryOptions extends RegistrationOptions {
  /** Users per page, 1..999 (Graph's default is 100). */
  pageSize: number
  /** Groups whose members to report; campaigns' group targets, resolved when a run starts. */
  groupIds: () => readonly string[] | Promise<readonly string[]>
}

/** Reads users page by page, with privilege, groups, phone and registered methods filled in. */
export class DirectoryReader {
  private run: ListingRun | null = null
  private readonly registration: RegistrationReader

  constructor (private readonly graph: GraphApi, private readonly config: EntraConfig, private readonly options: DirectoryOptions) {
    this.registration = new RegistrationReader(graph, config, options)
  }

  async page (cursor: string | null): Promise<ProviderPage> {
    // A cursor comes back from outside (the engine stores it): it must be a Graph link before anything is sent.
    if (cursor !== null && !this.graph.isGraphLink(cursor)) {
      throw new ProviderError('A paging link does not point at Microsoft Graph', false, null, 'invalid_cursor')
    }
    if (cursor === null || this.run === null) this.run = await this.startRun()
    const run = this.run
    const first = `/users?$select=${USER_SELECT}&$top=${this.options.pageSize}`
    const { items, next } = await this.graph.page<GraphUser>(cursor ?? first)
    const registrations = await this.registration.forPage(items, run.registration)
    const registrationSource = run.registration !== null ? REGISTRATION_SOURCE.report : REGISTRATION_SOURCE.methods
    if (next === null) this.run = null
    return { users: items.map((u) => this.toProviderUser(u, run, registrations.get(u.id))), next, registrationSource }
  }

  private async startRun (): Promise<ListingRun> {
    const [rolesByUser, groupsByUser, registration] = await Promise.all([this.roleHolders(), this.groupMembers(), this.registration.report()])
    return { rolesByUser, groupsByUser, registration }
  }

  /**
   * Who holds a privileged role the way Entra grants it, one filtered query per role and kind (contracts 1.11):
   * active assignments and PIM-eligible ones (an eligible administrator is one activation away from the role), to
   * users or to role-assignable groups, whose members (read transitively, once per group) then hold the role.
   */
  private async roleHolders (): Promise<Map<string, string[]>> {
    const byPrincipal = new Map<string, string[]>()
    const groups = new Set<string>()
    const add = (principalId: string, roleId: string): void => {
      const roles = byPrincipal.get(principalId) ?? []
      if (!roles.includes(roleId)) roles.push(roleId)
      byPrincipal.set(principalId, roles)
    }
    await mapLimit(this.config.privilegedRoles, this.config.concurrency, async (roleId) => {
      const [active, eligible] = await Promise.all([
        this.graph.all<RoleGrant>(`/roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq '${roleId}'&$expand=principal`),
        this.eligibleGrants(roleId)
      ])
      for (const grant of [...active, ...eligible]) {
        add(grant.principalId, roleId)
        if (grant.principal?.['@odata.type'] === '#microsoft.graph.group') groups.add(grant.principalId)
      }
    })
    const byUser = new Map([...byPrincipal].filter(([id]) => !groups.has(id)))
    await mapLimit([...groups], this.config.concurrency, async (groupId) => {
      // Nested groups and devices come back too; only user ids ever match a listed user, so no cast is needed.
      const members = await this.graph.all<{ id: string }>(`/groups/${encodeURIComponent(groupId)}/transitiveMembers?$select=id&$top=999`)
      for (const member of members) {
        const roles = byUser.get(member.id) ?? []
        for (const roleId of byPrincipal.get(groupId) ?? []) if (!roles.includes(roleId)) roles.push(roleId)
        byUser.set(member.id, roles)
      }
    })
    return byUser
  }

  /**
   * PIM-eligible grants of a role. A tenant without Entra ID P2 (or Governance) has no PIM, and Graph says so with
   * 400 AadPremiumLicenseRequired: there is nobody eligible then, which is not an error.
   */
  private async eligibleGrants (roleId: string): Promise<RoleGrant[]> {
    try {
      return await this.graph.all<RoleGrant>(`/roleManagement/directory/roleEligibilityScheduleInstances?$filter=roleDefinitionId eq '${roleId}'&$expand=principal`)
    } catch (err) {
      if (hasStatus(err, 400) && err.code === 'AadPremiumLicenseRequired') return []
      throw err
    }
  }

  /**
   * Membership of the targeted groups only, read from each group (transitive, ids only): the cost follows the
   * size of the groups campaigns name rather than users × groups, and nested groups count as Conditional Access does.
   */
  private async groupMembers (): Promise<Map<string, string[]>> {
    const byUser = new Map<string, string[]>()
    const groupIds = [...new Set([...this.config.syncGroupIds, ...await this.options.groupIds()])]
    await mapLimit(groupIds, this.config.concurrency, async (groupId) => {
      let members: Array<{ id: string }>
      try {
        members = await this.graph.all<{ id: string }>(`/groups/${encodeURIComponent(groupId)}/transitiveMembers?$select=id&$top=999`)
      } catch (err) {
        // A group deleted in Entra must not stop every sync: it has no members now, and an admin is told.
        if (!hasStatus(err, 404)) throw err
        this.options.log?.warn({ groupId }, 'a group named by a campaign or ENTRA_SYNC_GROUP_IDS no longer exists in Entra: skipped (nobody is in it); fix the campaign or the setting')
        return
      }
      for (const m of members) byUser.set(m.id, [...byUser.get(m.id) ?? [], groupId])
    })
    return byUser
  }

  private toProviderUser (u: GraphUser, run: ListingRun, registration: Registration | undefined): ProviderUser {
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
        privilegedRoles: roles.length === 0 ? null : roles.join(','),
        // Methods Entra reports under names the portal does not know: shown on the person's page, never counted.
        unrecognisedMethods: registration === undefined || registration.unrecognised.length === 0 ? null : registration.unrecognised.join(','),
        // Disabled accounts are read per user once (the report leaves them out); the portal keeps what was read.
        ...(registration?.readWhileDisabled == null ? {} : { methodsReadWhileDisabled: registration.readWhileDisabled })
      },
      // Guests sign in with their home organisation's MFA; campaigns leave them out unless they name them.
      targetable: u.userType !== 'Guest',
      createdAt: u.createdDateTime == null ? null : new Date(u.createdDateTime)
    }
    // Absent from the report (it lags new users by hours): unknown, so the engine asks registrationStatus.
    if (registration !== undefined) user.methods = registration.kinds
    return user
  }
}

export function phoneOf (u: GraphUser, source: EntraConfig['phoneSource']): string | null {
  const value = source === 'mobilePhone' ? u.mobilePhone : u.onPremisesExtensionAttributes?.[source]
  return value === undefined || value === null || value.trim() === '' ? null : value.trim()
}
