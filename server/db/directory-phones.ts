import type Sqlite from 'better-sqlite3'
import type { Clock } from '../domain/clock.ts'
import type { DirectoryPhoneStore } from '../domain/directory-phones.ts'

export class SqliteDirectoryPhoneStore implements DirectoryPhoneStore {
  private readonly select
  private readonly update

  constructor (private readonly sqlite: Sqlite.Database, private readonly clock: Clock) {
    this.select = sqlite.prepare('SELECT phone FROM users WHERE id = ?')
    this.update = sqlite.prepare('UPDATE users SET phone = ?, updated_at = ? WHERE id = ?')
  }

  phoneOf (userId: string): string | null | undefined {
    return (this.select.get(userId) as { phone: string | null } | undefined)?.phone
  }

  setPhone (userId: string, phone: string): void {
    this.update.run(phone, this.clock.now().getTime(), userId)
  }

  atomically<T> (work: () => T): T {
    return this.sqlite.transaction(work).immediate()
  }
}
