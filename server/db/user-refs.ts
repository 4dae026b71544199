import type { UserRef, UserRefResolver } from '../domain/user-refs.ts'
import type { SqliteAccess } from './sqlite-access.ts'

/** Each reference kind is one unique-index lookup (primary key, users_email_unique, users_provider_external). */
export class SqliteUserRefResolver implements UserRefResolver {
  private readonly byId
  private readonly byEmail
  private readonly byExternal

  constructor (private readonly access: SqliteAccess) {
    const { sqlite } = access
    this.byId = sqlite.prepare('SELECT id FROM users WHERE id = ?').pluck()
    this.byEmail = sqlite.prepare('SELECT id FROM users WHERE email = ?').pluck()
    this.byExternal = sqlite.prepare('SELECT id FROM users WHERE provider = ? AND external_id = ?').pluck()
  }

  async resolve (ref: UserRef): Promise<string | undefined> {
    return await this.access.run(() => {
      switch (ref.kind) {
        case 'id': return this.byId.get(ref.id) as string | undefined
        case 'email': return this.byEmail.get(ref.email) as string | undefined
        case 'external': return this.byExternal.get(ref.provider, ref.externalId) as string | undefined
      }
    })
  }
}
