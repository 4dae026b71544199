import { eq } from 'drizzle-orm'
import type { Clock } from '../../domain/clock.ts'
import type { DirectoryPhoneStore } from '../../domain/directory-phones.ts'
import type { PgAccess } from './access.ts'
import { users } from './schema.ts'

export class PgDirectoryPhoneStore implements DirectoryPhoneStore {
  constructor (private readonly access: PgAccess, private readonly clock: Clock) {}

  /**
   * Read FOR UPDATE: inside `atomically` the row stays locked until the change is written, so two instances setting
   * the same user's number take turns and each sees what the other wrote (SQLite's single writer gave that for free).
   */
  async phoneOf (userId: string): Promise<string | null | undefined> {
    const [row] = await this.access.current.select({ phone: users.phone }).from(users).where(eq(users.id, userId)).for('update')
    return row?.phone
  }

  async setPhone (userId: string, phone: string): Promise<void> {
    await this.access.current.update(users).set({ phone, updatedAt: this.clock.now().getTime() }).where(eq(users.id, userId))
  }

  /** Work may still be synchronous (the port's shape today) or asynchronous (the shape it is turning into). */
  async atomically<T> (work: () => T | Promise<T>): Promise<T> {
    return await this.access.transaction(async () => await work())
  }
}
