import { and, desc, eq, isNull, lte, or } from 'drizzle-orm'
import type { ApiToken, ApiTokenStore } from '../../domain/api-tokens.ts'
import { toToken } from '../api-tokens.ts'
import type { PgAccess } from './access.ts'
import { apiTokens } from './schema.ts'

export class PgApiTokenStore implements ApiTokenStore {
  constructor (private readonly access: PgAccess) {}

  async insert (token: ApiToken, tokenHash: string): Promise<void> {
    await this.access.current.insert(apiTokens).values({
      id: token.id,
      name: token.name,
      tokenHash,
      scopes: JSON.stringify(token.scopes),
      createdBy: token.createdBy,
      createdAt: token.createdAt.getTime(),
      expiresAt: token.expiresAt?.getTime() ?? null,
      lastUsedAt: null,
      revokedAt: null
    })
  }

  async list (): Promise<ApiToken[]> {
    const rows = await this.access.current.select().from(apiTokens).orderBy(desc(apiTokens.createdAt), desc(apiTokens.id))
    return rows.map(toToken)
  }

  async find (id: string): Promise<ApiToken | undefined> {
    const [row] = await this.access.current.select().from(apiTokens).where(eq(apiTokens.id, id))
    return row === undefined ? undefined : toToken(row)
  }

  async findByHash (tokenHash: string): Promise<ApiToken | undefined> {
    const [row] = await this.access.current.select().from(apiTokens).where(eq(apiTokens.tokenHash, tokenHash))
    return row === undefined ? undefined : toToken(row)
  }

  async revoke (id: string, at: Date): Promise<boolean> {
    const revoked = await this.access.current.update(apiTokens).set({ revokedAt: at.getTime() }).where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt)))
    return revoked.rowCount === 1
  }

  async touch (id: string, at: Date, intervalMs: number): Promise<void> {
    // Conditional, so two concurrent calls within the interval write once.
    await this.access.current.update(apiTokens).set({ lastUsedAt: at.getTime() })
      .where(and(eq(apiTokens.id, id), or(isNull(apiTokens.lastUsedAt), lte(apiTokens.lastUsedAt, at.getTime() - intervalMs))))
  }

  async rehash (id: string, tokenHash: string): Promise<void> {
    await this.access.current.update(apiTokens).set({ tokenHash }).where(eq(apiTokens.id, id))
  }
}
