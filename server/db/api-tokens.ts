import { and, desc, eq, isNull, lte, or } from 'drizzle-orm'
import { isApiScope, type ApiToken, type ApiTokenStore } from '../domain/api-tokens.ts'
import type { Db } from './connection.ts'
import { apiTokens } from './schema.ts'

type Row = typeof apiTokens.$inferSelect

export class SqliteApiTokenStore implements ApiTokenStore {
  constructor (private readonly db: Db) {}

  insert (token: ApiToken, tokenHash: string): void {
    this.db.insert(apiTokens).values({
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
  }

  list (): ApiToken[] {
    return this.db.select().from(apiTokens).orderBy(desc(apiTokens.createdAt), desc(apiTokens.id)).all().map(toToken)
  }

  find (id: string): ApiToken | undefined {
    const row = this.db.select().from(apiTokens).where(eq(apiTokens.id, id)).get()
    return row === undefined ? undefined : toToken(row)
  }

  findByHash (tokenHash: string): ApiToken | undefined {
    const row = this.db.select().from(apiTokens).where(eq(apiTokens.tokenHash, tokenHash)).get()
    return row === undefined ? undefined : toToken(row)
  }

  revoke (id: string, at: Date): boolean {
    return this.db.update(apiTokens).set({ revokedAt: at.getTime() }).where(and(eq(apiTokens.id, id), isNull(apiTokens.revokedAt))).run().changes === 1
  }

  touch (id: string, at: Date, intervalMs: number): void {
    // Conditional, so two concurrent calls within the interval write once.
    this.db.update(apiTokens).set({ lastUsedAt: at.getTime() })
      .where(and(eq(apiTokens.id, id), or(isNull(apiTokens.lastUsedAt), lte(apiTokens.lastUsedAt, at.getTime() - intervalMs)))).run()
  }

  rehash (id: string, tokenHash: string): void {
    this.db.update(apiTokens).set({ tokenHash }).where(eq(apiTokens.id, id)).run()
  }
}

function toToken (row: Row): ApiToken {
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
