import { normaliseEmail } from './users.ts'

/**
 * How automation names a user: the portal's id, `email:<address>`, or `external:<provider>:<id>` (the provider's
 * stable id: Entra object id, IAM user name). HR feeds rarely know the portal's ids, so the other two save a lookup.
 */
export type UserRef =
  | { kind: 'id', id: string }
  | { kind: 'email', email: string }
  | { kind: 'external', provider: string, externalId: string }

export function parseUserRef (text: string): UserRef {
  if (text.startsWith('email:')) return { kind: 'email', email: normaliseEmail(text.slice('email:'.length)) }
  if (text.startsWith('external:')) {
    const rest = text.slice('external:'.length)
    const colon = rest.indexOf(':')
    // Provider names hold no colon; external ids may (the rest is taken whole).
    return colon <= 0 ? { kind: 'id', id: text } : { kind: 'external', provider: rest.slice(0, colon), externalId: rest.slice(colon + 1) }
  }
  return { kind: 'id', id: text }
}

/** Storage port: the portal user id a reference names, if any. */
export interface UserRefResolver {
  resolve(ref: UserRef): Promise<string | undefined>
}
