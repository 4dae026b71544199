import { randomUUID } from 'node:crypto'
import { and, asc, count, eq, isNull, lt, or, sql } from 'drizzle-orm'
import type { AuthMethod, MethodStore, NewPasskey, PasskeyCredential } from '../domain/methods.ts'
import type { Clock } from '../domain/clock.ts'
import { authMethods } from './schema.ts'
import type { Sealer } from './sealing.ts'
import type { SqliteAccess } from './sqlite-access.ts'

type Row = typeof authMethods.$inferSelect

/** The columns of a method that say what it is, not how it is checked (no key, secret or counter). */
export type MethodRow = Pick<Row, 'id' | 'userId' | 'kind' | 'name' | 'createdAt' | 'lastUsedAt' | 'phone' | 'aaguid'>

export class SqliteMethodStore implements MethodStore {
  // On every sign-in (which second factor is owed) and step-up: prepared once. Oldest first, ties by id, as the
  // home page lists them (the facts read, db/engine.ts).
  private readonly listQuery

  constructor (private readonly access: SqliteAccess, private readonly sealer: Sealer, private readonly clock: Clock) {
    const { db } = access
    this.listQuery = db.select().from(authMethods).where(eq(authMethods.userId, sql.placeholder('userId'))).orderBy(asc(authMethods.createdAt), asc(authMethods.id)).prepare()
  }

  async listFor (userId: string): Promise<AuthMethod[]> {
    return await this.access.run(() => {
      return this.listQuery.all({ userId }).map(toMethod)
    })
  }

  async findFor (userId: string, methodId: string): Promise<AuthMethod | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(authMethods).where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId))).get()
      return row === undefined ? undefined : toMethod(row)
    })
  }

  async countFor (userId: string): Promise<number> {
    return await this.access.run(() => {
      return this.access.db.select({ n: count() }).from(authMethods).where(eq(authMethods.userId, userId)).get()?.n ?? 0
    })
  }

  async addPasskey (userId: string, passkey: NewPasskey): Promise<AuthMethod> {
    return await this.access.run(() => {
      return this.insert({
        userId, kind: 'passkey', name: passkey.name, credentialId: passkey.credentialId,
        publicKey: Buffer.from(passkey.publicKey).toString('base64url'), signCount: passkey.counter,
        transports: JSON.stringify(passkey.transports), aaguid: passkey.aaguid, backedUp: passkey.backedUp
      })
    })
  }

  async addTotp (userId: string, name: string, secretBase32: string, firstUsedStep: number): Promise<AuthMethod> {
    return await this.access.run(() => {
      const id = randomUUID()
      return this.insert({ id, userId, kind: 'totp', name, secretSealed: this.sealer.seal(secretBase32, `totp:${id}`), lastUsedStep: firstUsedStep })
    })
  }

  async addPhone (userId: string, name: string, phone: string): Promise<AuthMethod> {
    return await this.access.run(() => {
      return this.insert({ userId, kind: 'phone', name, phone })
    })
  }

  async rename (userId: string, methodId: string, name: string): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(authMethods).set({ name }).where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId))).run().changes === 1
    })
  }

  async remove (userId: string, methodId: string): Promise<AuthMethod | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.delete(authMethods).where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId))).returning().get()
      return row === undefined ? undefined : toMethod(row)
    })
  }

  async passkeyByCredentialId (credentialId: string): Promise<PasskeyCredential | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(authMethods).where(and(eq(authMethods.credentialId, credentialId), eq(authMethods.kind, 'passkey'))).get()
      return row === undefined ? undefined : toCredential(row)
    })
  }

  async passkeysFor (userId: string): Promise<PasskeyCredential[]> {
    return await this.access.run(() => {
      return this.access.db.select().from(authMethods).where(and(eq(authMethods.userId, userId), eq(authMethods.kind, 'passkey'))).all().map(toCredential)
    })
  }

  async recordPasskeyUse (methodId: string, previousCounter: number, newCounter: number, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(authMethods).set({ signCount: newCounter, lastUsedAt: at.getTime() })
        .where(and(eq(authMethods.id, methodId), eq(authMethods.signCount, previousCounter))).run().changes === 1
    })
  }

  async totpSecret (userId: string, methodId: string): Promise<string | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select({ sealed: authMethods.secretSealed }).from(authMethods)
        .where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId), eq(authMethods.kind, 'totp'))).get()
      return row?.sealed == null ? undefined : this.sealer.open(row.sealed, `totp:${methodId}`)
    })
  }

  async claimTotpStep (methodId: string, step: number, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(authMethods).set({ lastUsedStep: step, lastUsedAt: at.getTime() })
        .where(and(eq(authMethods.id, methodId), or(isNull(authMethods.lastUsedStep), lt(authMethods.lastUsedStep, step)))).run().changes === 1
    })
  }

  async markUsed (methodId: string, at: Date): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(authMethods).set({ lastUsedAt: at.getTime() }).where(eq(authMethods.id, methodId)).run()
    })
  }

  /** Re-seals every TOTP secret not under the current key; returns how many were re-sealed. */
  async resealAll (): Promise<number> {
    return await this.access.run(() => {
      return this.access.db.transaction((tx) => this.sealer.resealRows(
        tx.select({ id: authMethods.id, sealed: authMethods.secretSealed }).from(authMethods).where(eq(authMethods.kind, 'totp')).all(),
        (id) => `totp:${id}`,
        (id, sealed) => { tx.update(authMethods).set({ secretSealed: sealed }).where(eq(authMethods.id, id)).run() }
      ))
    })
  }

  private insert (values: Partial<typeof authMethods.$inferInsert> & Pick<typeof authMethods.$inferInsert, 'userId' | 'kind' | 'name'>): AuthMethod {
    const row = this.access.db.insert(authMethods).values({ id: randomUUID(), createdAt: this.clock.now().getTime(), ...values }).returning().get()
    return toMethod(row)
  }
}

export function toMethod (row: MethodRow): AuthMethod {
  return {
    id: row.id,
    userId: row.userId,
    kind: row.kind,
    name: row.name,
    createdAt: new Date(row.createdAt),
    lastUsedAt: row.lastUsedAt === null ? null : new Date(row.lastUsedAt),
    phone: row.phone,
    aaguid: row.aaguid
  }
}

export function toCredential (row: Row): PasskeyCredential {
  return {
    methodId: row.id,
    userId: row.userId,
    credentialId: row.credentialId!,
    publicKey: new Uint8Array(Buffer.from(row.publicKey!, 'base64url')),
    counter: row.signCount ?? 0,
    transports: JSON.parse(row.transports ?? '[]') as string[]
  }
}
