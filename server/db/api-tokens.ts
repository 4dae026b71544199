import { and, desc, eq, isNull, lte, or } from 'drizzle-orm'
import { isApiScope, type ApiToken, type ApiTokenStore } from '../domain/api-tokens.ts'
import { apiTokens } from './schema.ts'
import type { SqliteAccess } from './sqlite-access.ts'

type Row = typeof apiTokens.$inferSelect

export class SqliteApiTokenStore implements ApiTokenStore {
  constructor (private readonly access: SqliteAccess) {}

  async insert (token: ApiToken, tokenHash: string): Promise<void> {
    return await this.access.run(() => {
      this.access.db.insert(apiTokens).values({
        id: token.id,
        name: token.name,
        tokenHash,
        scopes: JSON.stringify(token.scopes),
        createdBy: token.createdBy,
        createdAt: token.createdAt.getTime(),
        expiresAt: token.expiresAt?.getTime() ?? null,
        lastUsedAt: null,
        revokedAt: null
      }).run()
    })
  }

  async list (): Promise<ApiToken[]> {
    return await this.access.run(() => {
      return this.access.db.select().from(apiTokens).orderBy(desc(apiTokens.createdAt), desc(apiTokens.id)).all().map(toToken)
    })
  }

  async find (id: string): Promise<ApiToken | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(apiTokens).where(eq(apiTokens.id, id)).get()
      return row === undefined ? undefined : toToken(row)
    })
  }

  async findByHash (tokenHash: string): Promise<ApiToken | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(apiTokens).where(eq(apiTokens.tokenHash, tokenHash)).get()
      return row === undefined ? undefined : toToken(row)
    })
  }

  async revoke (id: string, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(apiTokens).set({ revokedAt: at.getTime() }).where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt))).run().changes === 1
    })
  }

  async touch (id: string, at: Date, intervalMs: number): Promise<void> {
    return await this.access.run(() => {
      // Conditional, so two concurrent calls within the interval write once.
      this.access.db.update(apiTokens).set({ lastUsedAt: at.getTime() })
        .where(and(eq(apiTokens.id, id), or(isNull(apiTokens.lastUsedAt), lte(apiTokens.lastUsedAt, at.getTime() - intervalMs)))).run()
    })
  }

  async rehash (id: string, tokenHash: string): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(apiTokens).set({ tokenHash }).where(eq(apiTokens.id, id)).run()
    })
  }
}

export function toToken (row: Row): ApiToken {
  return {
    id: row.id,
    name: row.name,
    // Unknown scopes (from a newer version, or edited by hand) grant nothing.
    scopes: (JSON.parse(row.scopes) as unknown[]).filter(isApiScope),
    createdBy: row.createdBy,
    createdAt: new Date(row.createdAt),
    expiresAt: row.expiresAt === null ? null : new Date(row.expiresAt),
    lastUsedAt: row.lastUsedAt === null ? null : new Date(row.lastUsedAt),
    revokedAt: row.revokedAt === null ? null : new Date(row.revokedAt)
  }
}
