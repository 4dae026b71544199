import type Sqlite from 'better-sqlite3'
import type { UserRef, UserRefResolver } from '../domain/user-refs.ts'

/** Each reference kind is one unique-index lookup (primary key, users_email_unique, users_provider_external). */
export class SqliteUserRefResolver implements UserRefResolver {
  private readonly byId
  private readonly byEmail
  private readonly byExternal

  constructor (sqlite: Sqlite.Database) {
    this.byId = sqlite.prepare('SELECT id FROM users WHERE id = ?').pluck()
    this.byEmail = sqlite.prepare('SELECT id FROM users WHERE email = ?').pluck()
    this.byExternal = sqlite.prepare('SELECT id FROM users WHERE provider = ? AND external_id = ?').pluck()
  }

  resolve (ref: UserRef): string | undefined {
    switch (ref.kind) {
      case 'id': return this.byId.get(ref.id) as string | undefined
      case 'email': return this.byEmail.get(ref.email) as string | undefined
      case 'external': return this.byExternal.get(ref.provider, ref.externalId) as string | undefined
    }
  }
}
