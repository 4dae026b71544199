import { and, eq } from 'drizzle-orm'
import type { UserRef, UserRefResolver } from '../../domain/user-refs.ts'
import type { PgAccess } from './access.ts'
import { users } from './schema.ts'

/** Each reference kind is one unique-index lookup (primary key, users_email_unique, users_provider_external). */
export class PgUserRefResolver implements UserRefResolver {
  constructor (private readonly access: PgAccess) {}

  async resolve (ref: UserRef): Promise<string | undefined> {
    // PostgreSQL text cannot hold NUL (it refuses the query), so no user is referred to by a value with one.
    if (Object.values(ref).some((value) => value.includes('\u0000'))) return undefined
    const [row] = await this.access.current.select({ id: users.id }).from(users).where(matching(ref))
    return row?.id
  }
}

function matching (ref: UserRef) {
  switch (ref.kind) {
    case 'id': return eq(users.id, ref.id)
    case 'email': return eq(users.email, ref.email)
    case 'external': return and(eq(users.provider, ref.provider), eq(users.externalId, ref.externalId))
  }
}
