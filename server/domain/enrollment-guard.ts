import { BlockList, isIPv4, isIPv6 } from 'node:net'
import { DomainError } from './errors.ts'
import type { User } from './users.ts'

/** What the guard needs to know about the request making a change. */
export interface ChangeContext {
  clientIp: string
  /** The session was opened with a temporary access pass (helpdesk-issued). */
  passSession: boolean
  /** When the session last proved a second factor, ms since epoch. */
  stepUpAt: number | null
  /** A helpdesk reset opened a re-enrollment window until then (ms since epoch), or null. */
  reenrollUntil: number | null
  now: number
}

/**
 * Who may add or remove methods (DESIGN.md security rules): the first method only from a trusted network or
 * with a pass; any change once a method exists needs a recent step-up with an existing method.
 */
export class EnrollmentGuard {
  private readonly trusted = new BlockList()

  constructor (trustedNetworks: readonly string[], private readonly stepUpMs: number) {
    for (const cidr of trustedNetworks) {
      const [address, prefix] = cidr.split('/')
      this.trusted.addSubnet(address, Number(prefix), isIPv6(address) ? 'ipv6' : 'ipv4')
    }
  }

  isTrusted (ip: string): boolean {
    // An IPv4 client seen through an IPv6 socket arrives as ::ffff:a.b.c.d.
    const v4 = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : undefined
    if (v4 !== undefined) return this.trusted.check(v4, 'ipv4')
    if (isIPv4(ip)) return this.trusted.check(ip, 'ipv4')
    return isIPv6(ip) && this.trusted.check(ip, 'ipv6')
  }

  hasFreshStepUp (context: ChangeContext): boolean {
    return context.passSession || (context.stepUpAt !== null && context.now - context.stepUpAt < this.stepUpMs)
  }

  /**
   * May this session add a method for `user`, who holds `portalMethods` here? Methods their directory reports
   * (Entra, IAM: `providerMethods`) count as much as the portal's own: an account with Microsoft Authenticator in
   * Entra is not setting up a "first" method, whichever page the next one is added on. Taking the user (not a
   * count) is what keeps a caller from forgetting the directory.
   */
  assertMayAdd (user: Pick<User, 'providerMethods'>, portalMethods: number, context: ChangeContext): void {
    const existingMethods = portalMethods + user.providerMethods.length
    if (existingMethods === 0) {
      if (context.passSession || this.isTrusted(context.clientIp)) return
      if (context.reenrollUntil !== null && context.reenrollUntil > context.now) return
      throw new DomainError('untrusted_network',
        'For your security, your first sign-in method can only be set up from your organisation\'s network, ' +
        'with a temporary access pass from the helpdesk, or within a few days of the helpdesk resetting your methods. Connect to the office network or VPN, or ask the helpdesk for a pass.')
    }
    if (portalMethods === 0 && !this.hasFreshStepUp(context)) {
      throw new DomainError('step_up_required',
        'Your account already has a sign-in method in your organisation\'s directory, so to add another, first confirm it\'s you: ' +
        'sign in again using that method (for a Microsoft account, "Sign in with Microsoft"), or ask the helpdesk for a temporary access pass.',
        { heldAt: 'directory' })
    }
    this.assertStepUp(context)
  }

  /**
   * May this session overwrite or remove a method held at the directory (Entra's mobile MFA number, an IAM device)?
   * That replaces what the owner relies on to sign in everywhere, not only here, so only with a recent step-up with
   * an existing method. A pass session or a helpdesk reset window is no such proof: both exist because the user may
   * have lost their methods, so they let a user add, never take the place of what the account already holds.
   */
  hasProvenExistingMethod (context: ChangeContext): boolean {
    if (context.passSession) return false
    if (context.reenrollUntil !== null && context.reenrollUntil > context.now) return false
    return context.stepUpAt !== null && context.now - context.stepUpAt < this.stepUpMs
  }

  assertMayRemove (user: Pick<User, 'enforcedAt'>, existingMethods: number, context: ChangeContext): void {
    this.assertStepUp(context)
    if (user.enforcedAt !== null && existingMethods <= 1) {
      throw new DomainError('last_method_required',
        'This is your only sign-in method and multi-factor sign-in is required for your account, so it cannot be removed. Add another method first.')
    }
  }

  private assertStepUp (context: ChangeContext): void {
    if (!this.hasFreshStepUp(context)) {
      throw new DomainError('step_up_required', 'To change your sign-in methods, first confirm it\'s you with a method you already have.', { heldAt: 'portal' })
    }
  }
}
