import type { ComplianceFacts, ComplianceStore } from '../domain/compliance.ts'
import type { UserState } from '../domain/states.ts'
import type { SqliteAccess } from './sqlite-access.ts'

// One statement per page: users by primary key, their state by primary key, their portal method kinds through
// auth_methods_user. No query per user from the application.
const SELECT = `SELECT u.id AS userId, u.email, u.provider, u.external_id AS externalId, u.privileged, u.disabled,
    u.enforced_at AS enforcedAt, u.provider_methods AS providerMethods,
    json_extract(u.provider_attributes, '$.consolePassword') AS consolePassword,
    (SELECT group_concat(DISTINCT kind) FROM auth_methods WHERE user_id = u.id) AS portalMethods,
    (SELECT count(*) FROM recovery_codes WHERE user_id = u.id AND used_at IS NULL AND voided_at IS NULL) AS recoveryCodes,
    s.state, s.deadline, s.campaign_id AS campaignId
  FROM users u LEFT JOIN user_states s ON s.user_id = u.id`

interface Row {
  userId: string
  email: string
  provider: string
  externalId: string | null
  privileged: number
  disabled: number
  enforcedAt: number | null
  providerMethods: string
  consolePassword: number | string | null
  portalMethods: string | null
  recoveryCodes: number
  state: UserState | null
  deadline: number | null
  campaignId: string | null
}

export class SqliteComplianceStore implements ComplianceStore {
  private readonly first
  private readonly after
  private readonly one

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    this.first = sqlite.prepare(`${SELECT} ORDER BY u.id LIMIT ?`)
    this.after = sqlite.prepare(`${SELECT} WHERE u.id > ? ORDER BY u.id LIMIT ?`)
    this.one = sqlite.prepare(`${SELECT} WHERE u.id = ?`)
  }

  async factsAfter (cursor: string | null, limit: number): Promise<ComplianceFacts[]> {
    return await this.access.run(() => {
      const rows = (cursor === null ? this.first.all(limit) : this.after.all(cursor, limit)) as Row[]
      return rows.map(toFacts)
    })
  }

  async factsFor (userId: string): Promise<ComplianceFacts | undefined> {
    return await this.access.run(() => {
      const row = this.one.get(userId) as Row | undefined
      return row === undefined ? undefined : toFacts(row)
    })
  }
}

function toFacts (row: Row): ComplianceFacts {
  return {
    userId: row.userId,
    email: row.email,
    provider: row.provider,
    externalId: row.externalId,
    privileged: row.privileged === 1,
    disabled: row.disabled === 1,
    portalMethods: row.portalMethods === null ? [] : row.portalMethods.split(',').sort(),
    providerMethods: providerKinds(row.providerMethods),
    // json_extract gives 1/0 for JSON true/false; anything else (absent, a string) says nothing.
    consolePassword: row.consolePassword === 1 ? true : row.consolePassword === 0 ? false : null,
    state: row.state,
    deadline: row.deadline === null ? null : new Date(row.deadline),
    campaignId: row.campaignId,
    enforcedAt: row.enforcedAt === null ? null : new Date(row.enforcedAt),
    recoveryCodes: row.recoveryCodes
  }
}

function providerKinds (json: string): string[] {
  const parsed = JSON.parse(json) as unknown
  return Array.isArray(parsed) ? [...new Set(parsed.filter((k): k is string => typeof k === 'string'))].sort() : []
}
