import { randomUUID } from 'node:crypto'
import { and, asc, count, eq, isNull, lt, or } from 'drizzle-orm'
import type { AuthMethod, MethodStore, NewPasskey, PasskeyCredential } from '../../domain/methods.ts'
import type { Clock } from '../../domain/clock.ts'
import type { Sealer } from '../sealing.ts'
import { toCredential, toMethod } from '../methods.ts'
import type { PgAccess } from './access.ts'
import { authMethods } from './schema.ts'

export class PgMethodStore implements MethodStore {
  // Read on every sign-in (which second factor is owed) and step-up: prepared once per connection
  // (PgAccess.preparedRead). Oldest first, ties by id, as the home page lists them (the facts read, pg/engine.ts).
  private readonly listById

  constructor (private readonly access: PgAccess, private readonly sealer: Sealer, private readonly clock: Clock) {
    this.listById = access.preparedRead('methods_by_user', (db, userId) => db.select().from(authMethods).where(eq(authMethods.userId, userId)).orderBy(asc(authMethods.createdAt), asc(authMethods.id)))
  }

  async listFor (userId: string): Promise<AuthMethod[]> {
    const rows = await this.listById(userId)
    return rows.map(toMethod)
  }

  async findFor (userId: string, methodId: string): Promise<AuthMethod | undefined> {
    const [row] = await this.access.current.select().from(authMethods).where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId)))
    return row === undefined ? undefined : toMethod(row)
  }

  async countFor (userId: string): Promise<number> {
    const [row] = await this.access.current.select({ n: count() }).from(authMethods).where(eq(authMethods.userId, userId))
    return row?.n ?? 0
  }

  async addPasskey (userId: string, passkey: NewPasskey): Promise<AuthMethod> {
    return await this.insert({
      userId, kind: 'passkey', name: passkey.name, credentialId: passkey.credentialId,
      publicKey: Buffer.from(passkey.publicKey).toString('base64url'), signCount: passkey.counter,
      transports: JSON.stringify(passkey.transports), aaguid: passkey.aaguid, backedUp: passkey.backedUp
    })
  }

  async addTotp (userId: string, name: string, secretBase32: string, firstUsedStep: number): Promise<AuthMethod> {
    const id = randomUUID()
    return await this.insert({ id, userId, kind: 'totp', name, secretSealed: this.sealer.seal(secretBase32, `totp:${id}`), lastUsedStep: firstUsedStep })
  }

  async addPhone (userId: string, name: string, phone: string): Promise<AuthMethod> {
    return await this.insert({ userId, kind: 'phone', name, phone })
  }

  async rename (userId: string, methodId: string, name: string): Promise<boolean> {
    const renamed = await this.access.current.update(authMethods).set({ name }).where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId)))
    return renamed.rowCount === 1
  }

  async remove (userId: string, methodId: string): Promise<AuthMethod | undefined> {
    const [row] = await this.access.current.delete(authMethods).where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId))).returning()
    return row === undefined ? undefined : toMethod(row)
  }

  async passkeyByCredentialId (credentialId: string): Promise<PasskeyCredential | undefined> {
    const [row] = await this.access.current.select().from(authMethods).where(and(eq(authMethods.credentialId, credentialId), eq(authMethods.kind, 'passkey')))
    return row === undefined ? undefined : toCredential(row)
  }

  async passkeysFor (userId: string): Promise<PasskeyCredential[]> {
    const rows = await this.access.current.select().from(authMethods).where(and(eq(authMethods.userId, userId), eq(authMethods.kind, 'passkey')))
    return rows.map(toCredential)
  }

  /** One conditional UPDATE: of two uses presenting the same counter, on any instances, one wins. */
  async recordPasskeyUse (methodId: string, previousCounter: number, newCounter: number, at: Date): Promise<boolean> {
    const recorded = await this.access.current.update(authMethods).set({ signCount: newCounter, lastUsedAt: at.getTime() })
      .where(and(eq(authMethods.id, methodId), eq(authMethods.signCount, previousCounter)))
    return recorded.rowCount === 1
  }

  async totpSecret (userId: string, methodId: string): Promise<string | undefined> {
    const [row] = await this.access.current.select({ sealed: authMethods.secretSealed }).from(authMethods)
      .where(and(eq(authMethods.userId, userId), eq(authMethods.id, methodId), eq(authMethods.kind, 'totp')))
    return row?.sealed == null ? undefined : this.sealer.open(row.sealed, `totp:${methodId}`)
  }

  /** One conditional UPDATE: a code replayed on another instance finds its step already taken. */
  async claimTotpStep (methodId: string, step: number, at: Date): Promise<boolean> {
    const claimed = await this.access.current.update(authMethods).set({ lastUsedStep: step, lastUsedAt: at.getTime() })
      .where(and(eq(authMethods.id, methodId), or(isNull(authMethods.lastUsedStep), lt(authMethods.lastUsedStep, step))))
    return claimed.rowCount === 1
  }

  async markUsed (methodId: string, at: Date): Promise<void> {
    await this.access.current.update(authMethods).set({ lastUsedAt: at.getTime() }).where(eq(authMethods.id, methodId))
  }

  /**
   * Re-seals every TOTP secret not under the current key; returns how many were re-sealed. The rows are locked
   * while they are read, so a rotation run on two instances at once re-seals each secret once.
   */
  async resealAll (): Promise<number> {
    return await this.access.transaction(async () => {
      const db = this.access.current
      const rows = await db.select({ id: authMethods.id, sealed: authMethods.secretSealed }).from(authMethods).where(eq(authMethods.kind, 'totp')).for('update')
      // resealRows writes synchronously, and throws before returning if any secret will not open: nothing is written then.
      const writes: Array<{ id: string, sealed: string }> = []
      const resealed = this.sealer.resealRows(rows, (id) => `totp:${id}`, (id, sealed) => { writes.push({ id, sealed }) })
      for (const { id, sealed } of writes) await db.update(authMethods).set({ secretSealed: sealed }).where(eq(authMethods.id, id))
      return resealed
    })
  }

  private async insert (values: Partial<typeof authMethods.$inferInsert> & Pick<typeof authMethods.$inferInsert, 'userId' | 'kind' | 'name'>): Promise<AuthMethod> {
    const [row] = await this.access.current.insert(authMethods).values({ id: randomUUID(), createdAt: this.clock.now().getTime(), ...values }).returning()
    return toMethod(row)
  }
}
