import type { Clock } from '../domain/clock.ts'
import type { DirectoryPhoneStore } from '../domain/directory-phones.ts'
import type { SqliteAccess } from './sqlite-access.ts'

export class SqliteDirectoryPhoneStore implements DirectoryPhoneStore {
  private readonly select
  private readonly update

  constructor (private readonly access: SqliteAccess, private readonly clock: Clock) {
    const { sqlite } = access
    this.select = sqlite.prepare('SELECT phone FROM users WHERE id = ?')
    this.update = sqlite.prepare('UPDATE users SET phone = ?, updated_at = ? WHERE id = ?')
  }

  async phoneOf (userId: string): Promise<string | null | undefined> {
    return await this.access.run(() => {
      return (this.select.get(userId) as { phone: string | null } | undefined)?.phone
    })
  }

  async setPhone (userId: string, phone: string): Promise<void> {
    return await this.access.run(() => {
      this.update.run(phone, this.clock.now().getTime(), userId)
    })
  }

  async atomically<T> (work: () => Promise<T>): Promise<T> {
    return await this.access.transaction(work)
  }
}
