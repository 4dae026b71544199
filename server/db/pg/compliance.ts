import { sql, type SQL } from 'drizzle-orm'
import type { ComplianceFacts, ComplianceStore } from '../../domain/compliance.ts'
import type { UserState } from '../../domain/states.ts'
import type { PgAccess } from './access.ts'

interface Row extends Record<string, unknown> {
  userId: string
  email: string
  provider: string
  externalId: string | null
  privileged: boolean
  disabled: boolean
  enforcedAt: string | null
  providerMethods: string
  consolePassword: unknown
  portalMethods: string[] | null
  recoveryCodes: number
  state: UserState | null
  deadline: string | null
  campaignId: string | null
}

export class PgComplianceStore implements ComplianceStore {
  constructor (private readonly access: PgAccess) {}

  async factsAfter (cursor: string | null, limit: number): Promise<ComplianceFacts[]> {
    const rows = await this.select(cursor === null ? sql`ORDER BY u.id LIMIT ${limit}` : sql`WHERE u.id > ${cursor} ORDER BY u.id LIMIT ${limit}`)
    return rows.map(toFacts)
  }

  async factsFor (userId: string): Promise<ComplianceFacts | undefined> {
    const [row] = await this.select(sql`WHERE u.id = ${userId}`)
    return row === undefined ? undefined : toFacts(row)
  }

  /**
   * One statement per page: users by primary key, their state by primary key, their portal method kinds through
   * auth_methods_user. No query per user from the application.
   */
  private async select (rest: SQL): Promise<Row[]> {
    const { rows } = await this.access.current.execute<Row>(sql`SELECT u.id AS "userId", u.email, u.provider, u.external_id AS "externalId", u.privileged, u.disabled,
        u.enforced_at AS "enforcedAt", u.provider_methods AS "providerMethods",
        u.provider_attributes::jsonb -> 'consolePassword' AS "consolePassword",
        (SELECT array_agg(DISTINCT kind) FROM auth_methods WHERE user_id = u.id) AS "portalMethods",
        (SELECT count(*)::int FROM recovery_codes WHERE user_id = u.id AND used_at IS NULL AND voided_at IS NULL) AS "recoveryCodes",
        s.state, s.deadline, s.campaign_id AS "campaignId"
      FROM users u LEFT JOIN user_states s ON s.user_id = u.id ${rest}`)
    return rows
  }
}

function toFacts (row: Row): ComplianceFacts {
  return {
    userId: row.userId,
    email: row.email,
    provider: row.provider,
    externalId: row.externalId,
    privileged: row.privileged,
    disabled: row.disabled,
    portalMethods: row.portalMethods === null ? [] : [...row.portalMethods].sort(),
    providerMethods: providerKinds(row.providerMethods),
    consolePassword: consolePassword(row.consolePassword),
    state: row.state,
    // Raw statements bypass the schema's bigint mapping: pg hands bigints over as strings.
    deadline: row.deadline === null ? null : new Date(Number(row.deadline)),
    campaignId: row.campaignId,
    enforcedAt: row.enforcedAt === null ? null : new Date(Number(row.enforcedAt)),
    recoveryCodes: row.recoveryCodes
  }
}

/** JSON true/false, or 1/0 as the SQLite store reads them (json_extract gives 1/0 for true/false); anything else says nothing. */
function consolePassword (value: unknown): boolean | null {
  if (value === true || value === 1) return true
  if (value === false || value === 0) return false
  return null
}

function providerKinds (json: string): string[] {
  const parsed = JSON.parse(json) as unknown
  return Array.isArray(parsed) ? [...new Set(parsed.filter((k): k is string => typeof k === 'string'))].sort() : []
}
