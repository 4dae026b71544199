import { actingPermission, assertApproved, type ApprovalListing, type ApprovalRequest, type ApprovalService, type PendingApproval, type StaffActor } from './approvals.ts'
import type { AuditLog, AuditRecord } from './audit.ts'
import { cleanReason } from './reasons.ts'
import type { CampaignService } from './campaigns.ts'
import type { Clock } from './clock.ts'
import type { CampaignDeadline } from './deadlines.ts'
import type { EnforcementEngine, Standing } from './engine.ts'
import { DomainError } from './errors.ts'
import type { AuthMethod, MethodStore } from './methods.ts'
import { words, type AccountNotifier, type Words } from './notifications.ts'
import type { AccessPassService } from './passes.ts'
import { ProviderError, type IdentityProvider, type ProviderName } from './provider.ts'
import type { SessionRevoker, User, UserStore, UserSummary } from './users.ts'

export interface HelpdeskSettings {
  accessPass: { minMinutes: number, defaultMinutes: number, maxMinutes: number }
  resetWindowMs: number
}

/** Everything the helpdesk sees about one person. */
export interface UserProfile {
  user: User
  standing: Standing | undefined
  deadline: CampaignDeadline | null
  methods: AuthMethod[]
  /** Method kinds the provider reports (synced), shown beside the portal's own. */
  providerMethods: string[]
  timeline: AuditRecord[]
  /** Whether the person looking may act on this account (not themselves; helpdesk staff not on staff or privileged accounts). */
  actionable: { allowed: boolean, why: string | null, variant?: 'own_account' | 'staff_account' | 'privileged_account' }
  /**
   * The two-person rule for this account: whether passes, resets and invitations are requests a second
   * administrator approves, how many administrators could approve one from the viewer, and what is waiting.
   */
  approval: { required: boolean, approvers: number, lifetimeHours: number, pending: ApprovalListing[] }
}

/** A pass to show once: issued by the portal (for the portal's pass sign-in) or by the user's provider. */
export interface IssuedPass {
  pass: string
  expiresAt: Date
  oneTime: boolean
  issuedBy: 'portal' | ProviderName
  /** Whom it was issued to, for the page that shows it once. */
  subject: Pick<User, 'id' | 'email' | 'displayName'>
}

/** What a reset did, for the page that reports it (and shows its pass once). */
export interface ResetOutcome { removed: number, reenrollUntil: Date, pass: IssuedPass | null }

export const SEARCH_PAGE = 20
const TIMELINE_LENGTH = 50

/**
 * The helpdesk's work (DESIGN.md personas): find a person, see where they stand and why, and unblock them safely.
 * Every action needs a reason, is audited, and tells the user by email. Staff never act on themselves, and
 * helpdesk staff only on ordinary users: not on staff, nor on privileged (directory administrator) accounts, which
 * a helpdesk account must not be able to take over. For those accounts a pass, a reset or an invitation is a
 * request a second administrator approves (the two-person rule, see approvals.ts).
 */
export class HelpdeskService {
  constructor (
    private readonly users: UserStore,
    private readonly methods: MethodStore,
    private readonly passes: AccessPassService,
    private readonly campaigns: Pick<CampaignService, 'extend'>,
    private readonly engine: Pick<EnforcementEngine, 'standing' | 'explainDeadline' | 'refreshUser'>,
    private readonly audit: AuditLog & { list(filter: { subjectUserId?: string, limit?: number }): Promise<AuditRecord[]> },
    private readonly sessions: SessionRevoker,
    private readonly notifier: AccountNotifier,
    private readonly clock: Clock,
    private readonly settings: HelpdeskSettings,
    private readonly approvals: ApprovalService,
    /** Configured providers by name: a provider with its own passes (Entra) issues them for its users. */
    private readonly providers: Readonly<Record<string, IdentityProvider>> = {},
    /** A reset voids the person's recovery codes too. */
    private readonly recoveryCodes: { voidAll(userId: string): Promise<number> } = { voidAll: async () => 0 }
  ) {}

  /** Name or email prefix, a page at a time (keyset by email). */
  async search (query: string, after: string | null): Promise<{ users: UserSummary[], next: string | null }> {
    const term = query.trim()
    if (term.length < 2) return { users: [], next: null }
    const rows = await this.users.search(term.slice(0, 100), after, SEARCH_PAGE + 1)
    const more = rows.length > SEARCH_PAGE
    const page = rows.slice(0, SEARCH_PAGE)
    return { users: page, next: more ? page[page.length - 1].email : null }
  }

  async profile (userId: string, viewer: Pick<User, 'id' | 'role'>): Promise<UserProfile | undefined> {
    const user = await this.users.findById(userId)
    if (user === undefined) return undefined
    return {
      user,
      standing: await this.engine.standing(userId),
      deadline: await this.engine.explainDeadline(userId),
      methods: await this.methods.listFor(userId),
      providerMethods: user.providerMethods,
      timeline: await this.audit.list({ subjectUserId: userId, limit: TIMELINE_LENGTH }),
      actionable: actingPermission(viewer, user),
      approval: {
        required: this.approvals.required(user),
        approvers: await this.approvals.approversFor(viewer.id, user.id),
        lifetimeHours: Math.round(this.approvals.requestLifetimeMs / 3_600_000),
        pending: await this.approvals.pendingFor(userId)
      }
    }
  }

  /**
   * A temporary access pass, shown once to the caller and never stored in the clear. One per user: it replaces any
   * other. For a privileged account under the two-person rule it is only requested here (see issueApprovedPass).
   */
  async issuePass (userId: string, options: { lifetimeMinutes: number, oneTime: boolean, reason: string }, actor: StaffActor): Promise<IssuedPass | PendingApproval> {
    const user = await this.target(userId, actor)
    const reason = cleanReason(options.reason)
    if (this.approvals.required(user)) {
      this.validRequestedLifetime(user, options.lifetimeMinutes)
      return await this.approvals.request(user, { kind: 'pass', lifetimeMinutes: options.lifetimeMinutes, oneTime: options.oneTime }, reason, actor)
    }
    return await this.makePass(user, { ...options, reason }, actor, null)
  }

  /** Carries out an approved pass request: the pass is made now and shown once, to the approving administrator. */
  async issueApprovedPass (request: ApprovalRequest, approver: StaffActor): Promise<IssuedPass> {
    const user = await this.target(request.userId, approver)
    assertApproved(request, 'pass', user.id, approver)
    if (request.action.kind !== 'pass') throw new DomainError('forbidden', 'Not a pass request.', { variant: 'not_pass_request' })
    return await this.makePass(user, { lifetimeMinutes: request.action.lifetimeMinutes, oneTime: request.action.oneTime, reason: request.reason }, approver, request)
  }

  private async makePass (user: User, options: { lifetimeMinutes: number, oneTime: boolean, reason: string }, actor: StaffActor, approval: ApprovalRequest | null): Promise<IssuedPass> {
    const provider = this.providers[user.provider]
    if (provider !== undefined && this.nativePasses(user)) return await this.issueNativePass(user, provider, options, actor, approval)
    this.validLifetime(options.lifetimeMinutes)
    const issued = await this.passes.issue(user, { lifetimeMinutes: options.lifetimeMinutes, oneTime: options.oneTime, reason: options.reason }, actor)
    await this.notifier.accountNotice(user, {
      subject: words('email.pass_subject'),
      lines: [
        words('email.pass_issued', { expiresAt: issued.expiresAt, oneTime: options.oneTime ? 'yes' : 'no' }),
        ...approvedLine(approval),
        words('email.pass_told_directly'),
        words('email.pass_not_asked')
      ]
    })
    return { ...issued, oneTime: options.oneTime, issuedBy: 'portal', subject: user }
  }

  /** Whether the user's provider issues its own passes (Entra), which then stand in for the portal's. */
  private nativePasses (user: User): boolean {
    const provider = this.providers[user.provider]
    return provider?.capabilities.nativeAccessPass === true && provider.issueAccessPass !== undefined
  }

  /**
   * The provider's own pass (Entra: a Graph TAP), so it works where the user's methods are registered. The tenant's
   * policy bounds it, not the portal's settings; the pass is returned once and never stored, only audited.
   */
  private async issueNativePass (user: User, provider: IdentityProvider, options: { lifetimeMinutes: number, oneTime: boolean, reason: string }, actor: StaffActor, approval: ApprovalRequest | null): Promise<IssuedPass> {
    if (user.externalId === null) {
      throw new DomainError('not_synced', `This person has not been read from ${provider.name} yet, so no pass can be issued there. Run a directory sync first.`, { provider: provider.name })
    }
    if (!Number.isInteger(options.lifetimeMinutes)) throw new DomainError('invalid_lifetime', 'Give the lifetime as a whole number of minutes.')
    let issued
    try {
      issued = await provider.issueAccessPass!(user.externalId, { lifetimeMinutes: options.lifetimeMinutes, oneTime: options.oneTime })
    } catch (err) {
      if (!(err instanceof ProviderError)) throw err
      // Policy refusals (lifetime, one-time only, passes off) carry the tenant's bounds in plain words.
      if (err.code.startsWith('access_pass_')) throw new DomainError(err.code === 'access_pass_lifetime_out_of_policy' ? 'invalid_lifetime' : err.code, err.message, { variant: 'directory_policy', policy: err.message })
      throw new DomainError('provider_unavailable', `${provider.name === 'entra' ? 'Microsoft Entra' : provider.name} could not issue the pass right now (${err.message}). Try again in a minute.`,
        { variant: 'pass', provider: provider.name === 'entra' ? 'Microsoft Entra' : provider.name, problem: err.message })
    }
    await this.audit.append({
      action: 'pass.issued', actorId: actor.id, actorLabel: actor.label, subjectUserId: user.id,
      details: { provider: provider.name, lifetimeMinutes: issued.lifetimeMinutes, oneTime: issued.oneTime, expiresAt: issued.expiresAt.toISOString(), reason: options.reason, approvalId: approval?.id },
      ip: actor.ip, userAgent: actor.userAgent
    })
    await this.notifier.accountNotice(user, {
      subject: words('email.pass_subject'),
      lines: [
        words('email.pass_issued_microsoft', { expiresAt: issued.expiresAt, oneTime: issued.oneTime ? 'yes' : 'no' }),
        ...approvedLine(approval),
        words('email.pass_told_directly'),
        words('email.pass_not_asked')
      ]
    })
    return { pass: issued.pass, expiresAt: issued.expiresAt, oneTime: issued.oneTime, issuedBy: provider.name, subject: user }
  }

  /** Extends the user's grace period within their campaign's budget. */
  async extend (userId: string, days: number, reason: string, actor: StaffActor): Promise<Date> {
    const user = await this.target(userId, actor)
    const deadline = await this.engine.explainDeadline(userId)
    if (deadline === null) throw new DomainError('no_deadline', 'No campaign gives this person a deadline, so there is nothing to extend.')
    const until = await this.campaigns.extend(userId, deadline.campaignId, days, cleanReason(reason), actor)
    await this.notifier.accountNotice(user, {
      subject: words('email.extended_subject'),
      lines: [words('email.extended_until', { deadline: until }), words('email.extended_before')]
    })
    return until
  }

  /**
   * Removes the user's portal methods (lost phone, compromised device), ends their sessions, and opens a short
   * window in which they may set up a first method again from any network. A pass can be issued with it.
   */
  async resetMethods (userId: string, options: { reason: string, issuePass: boolean, lifetimeMinutes?: number, oneTime?: boolean }, actor: StaffActor): Promise<ResetOutcome | PendingApproval> {
    const user = await this.target(userId, actor)
    const reason = cleanReason(options.reason)
    const lifetimeMinutes = options.lifetimeMinutes ?? this.settings.accessPass.defaultMinutes
    const oneTime = options.oneTime ?? true
    if (this.approvals.required(user)) {
      if (options.issuePass) this.validRequestedLifetime(user, lifetimeMinutes)
      return await this.approvals.request(user, { kind: 'reset', issuePass: options.issuePass, lifetimeMinutes, oneTime }, reason, actor)
    }
    return await this.reset(user, { reason, issuePass: options.issuePass, lifetimeMinutes, oneTime }, actor, null)
  }

  /** Carries out an approved reset request; a pass that comes with it is shown once, to the approving administrator. */
  async resetApproved (request: ApprovalRequest, approver: StaffActor): Promise<ResetOutcome> {
    const user = await this.target(request.userId, approver)
    assertApproved(request, 'reset', user.id, approver)
    if (request.action.kind !== 'reset') throw new DomainError('forbidden', 'Not a reset request.', { variant: 'not_reset_request' })
    const { issuePass, lifetimeMinutes, oneTime } = request.action
    return await this.reset(user, { reason: request.reason, issuePass, lifetimeMinutes, oneTime }, approver, request)
  }

  private async reset (user: User, options: { reason: string, issuePass: boolean, lifetimeMinutes: number, oneTime: boolean }, actor: StaffActor, approval: ApprovalRequest | null): Promise<ResetOutcome> {
    const { reason, lifetimeMinutes, oneTime } = options
    const userId = user.id
    const provider = this.providers[user.provider]
    const native = this.nativePasses(user)
    if (options.issuePass && !native) this.validLifetime(lifetimeMinutes)
    // A directory's own pass (Entra) is asked for first: if the directory refuses, nothing has been reset yet.
    const nativePass = options.issuePass && native && provider !== undefined ? await this.issueNativePass(user, provider, { lifetimeMinutes, oneTime, reason }, actor, approval) : null
    const removed = await this.methods.listFor(userId)
    for (const method of removed) await this.methods.remove(userId, method.id)
    const recoveryCodesVoided = await this.recoveryCodes.voidAll(userId)
    const reenrollUntil = new Date(this.clock.now().getTime() + this.settings.resetWindowMs)
    await this.users.setReenrollUntil(userId, reenrollUntil)
    const sessionsEnded = await this.sessions.revokeAllFor(userId)
    await this.audit.append({
      action: 'methods.reset', actorId: actor.id, actorLabel: actor.label, subjectUserId: userId,
      details: { reason, removed: removed.map((m) => ({ kind: m.kind, name: m.name })), recoveryCodesVoided, reenrollUntil: reenrollUntil.toISOString(), sessionsEnded, approvalId: approval?.id },
      ip: actor.ip, userAgent: actor.userAgent
    })
    await this.engine.refreshUser(userId)
    const pass = nativePass ?? (options.issuePass ? { ...await this.passes.issue(user, { lifetimeMinutes, oneTime, reason }, actor), oneTime, issuedBy: 'portal' as const, subject: user } : null)
    await this.notifier.accountNotice(user, {
      subject: words('email.reset_subject'),
      lines: [
        words('email.reset_removed', { count: removed.length }),
        words('email.reset_until', { until: reenrollUntil, pass: pass === null ? 'no' : 'yes' }),
        ...approvedLine(approval),
        words('email.reset_not_asked')
      ]
    })
    return { removed: removed.length, reenrollUntil, pass }
  }

  private async target (userId: string, actor: StaffActor): Promise<User> {
    const user = await this.users.findById(userId)
    if (user === undefined) throw new DomainError('user_not_found', 'No such user.')
    const allowed = actingPermission(actor, user)
    if (!allowed.allowed) throw new DomainError(user.id === actor.id ? 'self_action' : 'forbidden', allowed.why ?? 'Not allowed.', { variant: allowed.variant })
    return user
  }

  /**
   * A requested pass's lifetime is checked when it is asked for, so an approver is not handed an impossible one.
   * A directory's own pass is bounded by the directory's policy, which answers only when the pass is made.
   */
  private validRequestedLifetime (user: User, minutes: number): void {
    if (!this.nativePasses(user)) this.validLifetime(minutes)
    else if (!Number.isInteger(minutes)) throw new DomainError('invalid_lifetime', 'Give the lifetime as a whole number of minutes.')
  }

  private validLifetime (minutes: number): void {
    const { minMinutes, maxMinutes } = this.settings.accessPass
    if (!Number.isInteger(minutes) || minutes < minMinutes || minutes > maxMinutes) {
      throw new DomainError('invalid_lifetime', `A pass lasts from ${minMinutes} to ${maxMinutes} minutes.`, { variant: 'range', min: minMinutes, max: maxMinutes })
    }
  }
}

/** The sentence an email adds when a second administrator approved the action (two-person rule). */
function approvedLine (approval: ApprovalRequest | null): Words[] {
  return approval === null ? [] : [words('email.approved_by_two')]
}
