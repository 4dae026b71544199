import { ProviderError } from '../../domain/provider.ts'
import { runBatch } from './batch.ts'
import type { EntraConfig } from './config.ts'
import { hasStatus, type GraphRequestError } from './errors.ts'
import type { GraphApi } from './graph-client.ts'
import { readMethods, readReport, type ReadMethods } from './method-kinds.ts'

export const REGISTRATION_SOURCE = { report: 'userRegistrationDetails', methods: 'authentication/methods' } as const

/** Graph's 403 code for a tenant without Entra ID P1 (contracts 1.4): the one refusal that means "read per user". */
const NO_PREMIUM_LICENCE = 'Authentication_RequestFromNonPremiumTenantOrB2CTenant'

/**
 * The report's other 403 codes name a missing consent (contracts 1.4; the first as Graph answered it for this
 * report, microsoft-graph-docs-contrib#1852). Each maps to the permission to grant, in the operator's words.
 */
const MISSING_PERMISSION: Record<string, string> = {
  Authentication_MSGraphPermissionMissing: 'AuditLog.Read.All',
  Authentication_ApplicationHasNoReadAuditLogDataAccess: 'AuditLog.Read.All',
  Authentication_ApplicationHasNoDirectoryReadAccess: 'Directory.Read.All',
  Authorization_RequestDenied: 'AuditLog.Read.All (and Directory.Read.All)'
}

/** The methods the portal already holds for a disabled user it knows, read once while they were disabled. */
export interface DisabledUserRecord {
  methods: readonly string[]
  /** When their methods were read while disabled (ISO 8601); null: not read yet. */
  readAt: string | null
  unrecognisedMethods: string | null
}

export interface RegistrationOptions {
  now: () => Date
  log?: { warn(fields: object, message: string): void }
  /**
   * Disabled users the portal knows, by object id (users it never synced are absent). Disabled accounts are not in the
   * registration report (contracts 1.4), so each is read per user once and the portal keeps the answer.
   */
  disabledUsers?: (externalIds: readonly string[]) => Promise<ReadonlyMap<string, DisabledUserRecord>>
}

/** What one listed user has registered at Entra, as far as the listing can tell. */
export interface Registration extends ReadMethods {
  /** For a disabled user: when their methods were read per user (kept in the portal, so not read again). */
  readWhileDisabled: string | null
}

/**
 * Registered methods for pages of users: from the tenant-wide report when it serves, per user (20 to a $batch)
 * when the tenant has no P1 licence, and per user once for disabled accounts the report leaves out. Method names the
 * portal does not know are kept (shown on the user's page) and logged once each.
 */
export class RegistrationReader {
  private readonly logged = new Set<string>()

  constructor (private readonly graph: GraphApi, private readonly config: EntraConfig, private readonly options: RegistrationOptions) {}

  /**
   * The whole report, as raw method names by user id; null without an Entra ID P1 licence. Any other 403 is a missing
   * consent: the sync stops and says which permission to grant, instead of quietly reading every user one by one.
   */
  async report (): Promise<Map<string, string[]> | null> {
    try {
      const rows = await this.graph.all<{ id: string, methodsRegistered?: string[] }>(
        '/reports/authenticationMethods/userRegistrationDetails?$select=id,methodsRegistered&$top=999')
      return new Map(rows.map((r) => [r.id, r.methodsRegistered ?? []]))
    } catch (err) {
      if (!hasStatus(err, 403)) throw err
      if (err.code === NO_PREMIUM_LICENCE) return null
      throw missingPermission(err)
    }
  }

  /** Registrations of one page's users; a user left out is unknown (the caller asks for it live). */
  async forPage (users: ReadonlyArray<{ id: string, accountEnabled?: boolean | null }>, report: Map<string, string[]> | null): Promise<Map<string, Registration>> {
    const disabledIds = users.filter((u) => u.accountEnabled === false).map((u) => u.id)
    const known = disabledIds.length === 0 || this.options.disabledUsers === undefined ? new Map<string, DisabledUserRecord>() : await this.options.disabledUsers(disabledIds)
    const found = new Map<string, Registration>()
    const toRead: string[] = []
    for (const user of users) {
      const disabled = user.accountEnabled === false
      const kept = disabled ? known.get(user.id) : undefined
      if (kept !== undefined && kept.readAt !== null) {
        found.set(user.id, { kinds: [...kept.methods] as Registration['kinds'], unrecognised: splitNames(kept.unrecognisedMethods), readWhileDisabled: kept.readAt })
        continue
      }
      const names = report?.get(user.id)
      if (names !== undefined) found.set(user.id, { ...this.noted(readReport(names)), readWhileDisabled: null })
      // Without the report every user is read; with it, only disabled users the portal knows (never the report's
      // lagging new users, whom the caller reads live, nor disabled strangers the portal will not bring in).
      else if (report === null || kept !== undefined) toRead.push(user.id)
    }
    const readAt = this.options.now().toISOString()
    for (const [id, read] of await this.methodsOf(toRead)) {
      found.set(id, { ...this.noted(read), readWhileDisabled: known.has(id) ? readAt : null })
    }
    return found
  }

  /** Each user's live `authentication/methods`, 20 users per $batch. A user whose read fails is left unknown. */
  private async methodsOf (userIds: string[]): Promise<Map<string, ReadMethods>> {
    if (userIds.length === 0) return new Map()
    const version = this.config.hardwareOath ? 'beta' : 'v1.0'
    const outcomes = await runBatch(this.graph, userIds.map((id) => ({ method: 'GET' as const, url: `/users/${encodeURIComponent(id)}/authentication/methods` })), { version, concurrency: this.config.concurrency })
    const methods = new Map<string, ReadMethods>()
    outcomes.forEach((o, i) => {
      if (o.ok) methods.set(userIds[i], readMethods((o.body as { value?: Array<{ '@odata.type'?: string }> }).value ?? []))
    })
    return methods
  }

  /** Logs each method name the portal does not know, once per process: new Entra methods should be noticed. */
  noted (read: ReadMethods): ReadMethods {
    for (const name of read.unrecognised) {
      if (this.logged.has(name)) continue
      this.logged.add(name)
      this.options.log?.warn({ method: name }, 'Entra reports a registered method the portal does not know: it is shown on the person\'s helpdesk page and does not count toward enrollment')
    }
    return read
  }
}

function splitNames (value: string | null): string[] {
  return value === null || value === '' ? [] : value.split(',')
}

function missingPermission (err: GraphRequestError): ProviderError {
  const permission = (Object.hasOwn(MISSING_PERMISSION, err.code) ? MISSING_PERMISSION[err.code] : undefined) ?? /permissions? ([A-Za-z]+\.[A-Za-z.]+)/.exec(err.message)?.[1] ?? 'AuditLog.Read.All'
  return new ProviderError(
    `Microsoft Graph refused the registration report (userRegistrationDetails): the portal's app registration lacks the application permission ${permission}. ` +
    `Grant it with admin consent (Entra admin center > App registrations > API permissions), then sync again. Graph answered 403 ${err.code}.`,
    false, null, 'entra_permission_missing')
}
