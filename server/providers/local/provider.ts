import type { IdentityProvider, ProviderPage, ProviderSubject, RegistrationStatus, EnforcementState } from '../../domain/provider.ts'
import type { MethodStore } from '../../domain/methods.ts'

/** Where the local provider keeps its switch: the portal's own users table. */
export interface LocalEnforcementStore {
  enforcedAt(userId: string): Promise<Date | null>
  setEnforcedAt(userId: string, at: Date | null): Promise<void>
}

/**
 * The embedded default: identities are the portal's own users, registration truth is the portal's own methods,
 * and "enforced" means the portal itself demands a second factor at sign-in.
 */
export class LocalProvider implements IdentityProvider {
  readonly name = 'local' as const
  readonly capabilities = { enrollInPortal: { passkey: true, totp: true, phone: true }, nativeAccessPass: false, enforce: true }

  constructor (private readonly store: LocalEnforcementStore, private readonly methods: MethodStore, private readonly now: () => Date) {}

  async listUsers (): Promise<ProviderPage> {
    // Local users are the portal's table already: there is nothing to import.
    return { users: [], next: null }
  }

  async registrationStatus (subject: ProviderSubject): Promise<RegistrationStatus> {
    return { methods: [...new Set((await this.methods.listFor(subject.userId)).map((m) => m.kind))], source: 'portal' }
  }

  async enforcementState (subject: ProviderSubject): Promise<EnforcementState> {
    return await this.store.enforcedAt(subject.userId) === null ? 'not_enforced' : 'enforced'
  }

  async enforce (subject: ProviderSubject): Promise<{ changed: boolean }> {
    if (await this.store.enforcedAt(subject.userId) !== null) return { changed: false }
    await this.store.setEnforcedAt(subject.userId, this.now())
    return { changed: true }
  }

  async relax (subject: ProviderSubject): Promise<{ changed: boolean }> {
    if (await this.store.enforcedAt(subject.userId) === null) return { changed: false }
    await this.store.setEnforcedAt(subject.userId, null)
    return { changed: true }
  }
}
