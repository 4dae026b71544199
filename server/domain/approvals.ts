import { randomUUID } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import type { IssuedPass, ResetOutcome } from './helpdesk.ts'
import type { SentInvitation } from './invitations.ts'
import { words, type AccountNotifier } from './notifications.ts'
import { minute } from './reasons.ts'
import type { Actor, Role, User, UserStore } from './users.ts'

/** A staff member acting in a console, as the rules need them: who, with which role, from where. */
export type StaffActor = Actor & { id: string, role: Role }

export type ApprovalKind = 'pass' | 'reset' | 'invitation'
export type ApprovalStatus = 'pending' | 'approved' | 'refused' | 'withdrawn' | 'expired'

/** What was asked for, with the options the requester chose; applied exactly so once approved. */
export type RequestedAction =
  | { kind: 'pass', lifetimeMinutes: number, oneTime: boolean }
  | { kind: 'reset', issuePass: boolean, lifetimeMinutes: number, oneTime: boolean }
  | { kind: 'invitation' }

export interface ApprovalRequest {
  id: string
  userId: string
  action: RequestedAction
  reason: string
  requestedBy: string
  requestedAt: Date
  expiresAt: Date
  status: ApprovalStatus
  decidedBy: string | null
  decidedAt: Date | null
}

/** A request with the people it names, for the pages that list requests. */
export interface ApprovalListing extends ApprovalRequest {
  subject: Pick<User, 'id' | 'email' | 'displayName'>
  requesterEmail: string
  deciderEmail: string | null
}

export interface ApprovalStore {
  /** Stores a new pending request; false when one of the same kind for the same person is already pending. */
  create(request: ApprovalRequest): Promise<boolean>
  find(id: string): Promise<ApprovalRequest | undefined>
  /** Decides a pending, unexpired request (compare-and-swap): false when it was decided or lapsed first. */
  decide(id: string, status: 'approved' | 'refused' | 'withdrawn', by: string, at: Date): Promise<boolean>
  /** Puts an approved request back to pending: carrying it out failed and nothing changed. */
  reopen(id: string): Promise<void>
  /** Marks every pending request whose time is up as expired and returns them. */
  expireDue(now: Date): Promise<ApprovalRequest[]>
  pending(limit: number): Promise<ApprovalListing[]>
  pendingFor(userId: string): Promise<ApprovalListing[]>
  /** Decided or lapsed requests, latest first. */
  recent(limit: number): Promise<ApprovalListing[]>
}

/** Carries out an approved request, as the approver (helpdesk and invitation services; bound in the wiring). */
export interface ApprovalActions {
  pass(request: ApprovalRequest, approver: StaffActor): Promise<IssuedPass>
  reset(request: ApprovalRequest, approver: StaffActor): Promise<ResetOutcome>
  invitation(request: ApprovalRequest, approver: StaffActor): Promise<SentInvitation>
}

/** What an approval carried out, for the page that tells the approver (and shows a pass once). */
export type ApprovalOutcome =
  | { kind: 'pass', issued: IssuedPass }
  | { kind: 'reset', result: ResetOutcome }
  | { kind: 'invitation', sent: SentInvitation }

export interface TwoPersonSettings {
  enabled: boolean
  requestLifetimeMs: number
}

/** What an action on a privileged account turned into when the two-person rule applies. */
export interface PendingApproval {
  pendingApproval: ApprovalListing
  /** Administrators who could approve it; 0 means no one can until a second administrator exists. */
  approvers: number
}

/**
 * Privileged accounts: directory administrators (synced with privileged = true, whatever their portal role) and
 * the portal's own helpdesk and administrator accounts. Whoever controls a pass, reset or invitation for one of
 * them controls the account, so these are treated alike.
 */
export function isPrivilegedAccount (user: Pick<User, 'role' | 'privileged'>): boolean {
  return user.privileged || user.role !== 'user'
}

/**
 * Whether `viewer` may act on `user` in the consoles at all: never on themselves, and only administrators on
 * privileged accounts. (Whether the action then needs a second administrator is ApprovalService.required.)
 */
export function actingPermission (viewer: Pick<User, 'id' | 'role'>, user: Pick<User, 'id' | 'role' | 'privileged'>): { allowed: boolean, why: string | null, variant?: 'own_account' | 'staff_account' | 'privileged_account' } {
  // `variant` names the refusal for the catalogue (errors.forbidden / errors.self_action); `why` is its English.
  if (viewer.id === user.id) return { allowed: false, why: 'You cannot act on your own account: ask a colleague.', variant: 'own_account' }
  if (viewer.role === 'admin') return { allowed: true, why: null }
  if (user.role !== 'user') return { allowed: false, why: 'Only administrators can act on helpdesk and administrator accounts.', variant: 'staff_account' }
  if (user.privileged) {
    return { allowed: false, why: 'This is a privileged account (an administrator in the directory): only administrators can act on it. Ask an administrator to help this person.', variant: 'privileged_account' }
  }
  return { allowed: true, why: null }
}

const KIND_WORDS: Record<ApprovalKind, string> = {
  pass: 'a temporary access pass',
  reset: 'a reset of the sign-in methods',
  invitation: 'a sign-in invitation'
}
const LIST_LIMIT = 200

/**
 * The two-person rule (DESIGN.md, security rules): a pass, a reset or an invitation for a privileged account is
 * first a request, recorded and audited, that a different administrator approves with a fresh step-up of their
 * own before anything happens. The requester can never approve their own request; requests lapse.
 *
 * Nothing secret waits here: the pass is created at approval and shown once, to the approver. So the person who
 * chose when to ask (the one an attacker with a single stolen admin account would be) never holds the pass.
 */
export class ApprovalService {
  constructor (
    private readonly store: ApprovalStore,
    private readonly users: Pick<UserStore, 'findById' | 'listByRole'>,
    private readonly audit: AuditLog,
    private readonly notifier: AccountNotifier,
    private readonly clock: Clock,
    private readonly settings: TwoPersonSettings,
    private readonly publicUrl: URL,
    /** Late-bound: the services that carry requests out also create them. */
    private readonly actions: () => ApprovalActions
  ) {}

  /** Whether a pass, reset or invitation for this account must be approved by a second administrator. */
  required (user: Pick<User, 'role' | 'privileged'>): boolean {
    return this.settings.enabled && isPrivilegedAccount(user)
  }

  get requestLifetimeMs (): number {
    return this.settings.requestLifetimeMs
  }

  /** Administrators who could approve what `requesterId` asks for `userId`: active, and neither of the two. */
  async approversFor (requesterId: string, userId: string): Promise<number> {
    return (await this.users.listByRole('admin')).filter((admin) => admin.id !== requesterId && admin.id !== userId).length
  }

  /** Records the request (the caller has checked that the actor may act on the user) and tells the other admins. */
  async request (user: User, action: RequestedAction, reason: string, actor: StaffActor): Promise<PendingApproval> {
    if (actor.role !== 'admin') throw new DomainError('forbidden', 'Only administrators can act on privileged accounts.', { variant: 'privileged_admins_only' })
    await this.expireDue()
    const now = this.clock.now()
    const request: ApprovalRequest = {
      id: randomUUID(), userId: user.id, action, reason, requestedBy: actor.id, requestedAt: now,
      expiresAt: new Date(now.getTime() + this.settings.requestLifetimeMs), status: 'pending', decidedBy: null, decidedAt: null
    }
    if (!await this.store.create(request)) {
      throw new DomainError('approval_pending', `A request for ${KIND_WORDS[action.kind]} for ${user.displayName} is already waiting for a second administrator. Approve, refuse or withdraw it on the Approvals page first.`, { kind: action.kind, name: user.displayName })
    }
    await this.audit.append({
      action: 'approval.requested', actorId: actor.id, actorLabel: actor.label, subjectUserId: user.id,
      details: { requestId: request.id, ...action, reason, expiresAt: request.expiresAt.toISOString() },
      ip: actor.ip, userAgent: actor.userAgent
    })
    await this.tellApprovers(user, request, actor)
    return { pendingApproval: (await this.store.pendingFor(user.id)).find((r) => r.id === request.id)!, approvers: await this.approversFor(actor.id, user.id) }
  }

  /**
   * Approves and carries out a request, as `approver`. The decision is claimed first (compare-and-swap), so two
   * approvals at once carry it out once; if carrying it out fails, nothing has changed and the request waits again.
   */
  async approve (id: string, approver: StaffActor): Promise<{ request: ApprovalRequest, outcome: ApprovalOutcome }> {
    const request = await this.decidable(id, approver)
    if (request.requestedBy === approver.id) {
      throw new DomainError('approval_own_request', 'You asked for this yourself, so a different administrator must approve it. That is the two-person rule.')
    }
    const now = this.clock.now()
    if (!await this.store.decide(id, 'approved', approver.id, now)) throw decided()
    const approved: ApprovalRequest = { ...request, status: 'approved', decidedBy: approver.id, decidedAt: now }
    await this.audit.append({
      action: 'approval.approved', actorId: approver.id, actorLabel: approver.label, subjectUserId: request.userId,
      details: { requestId: id, kind: request.action.kind, requestedBy: request.requestedBy, reason: request.reason },
      ip: approver.ip, userAgent: approver.userAgent
    })
    try {
      return { request: approved, outcome: await this.carryOut(approved, approver) }
    } catch (err) {
      await this.store.reopen(id)
      await this.audit.append({
        action: 'approval.failed', actorId: approver.id, actorLabel: approver.label, subjectUserId: request.userId,
        details: { requestId: id, kind: request.action.kind, message: (err as Error).message }, ip: approver.ip, userAgent: approver.userAgent
      })
      throw err
    }
  }

  private async carryOut (request: ApprovalRequest, approver: StaffActor): Promise<ApprovalOutcome> {
    const actions = this.actions()
    switch (request.action.kind) {
      case 'pass': return { kind: 'pass', issued: await actions.pass(request, approver) }
      case 'reset': return { kind: 'reset', result: await actions.reset(request, approver) }
      case 'invitation': return { kind: 'invitation', sent: await actions.invitation(request, approver) }
    }
  }

  /** Refuses a request; the requester refusing their own withdraws it. Either way nothing happens to the account. */
  async refuse (id: string, admin: StaffActor): Promise<'refused' | 'withdrawn'> {
    const request = await this.decidable(id, admin)
    const status = request.requestedBy === admin.id ? 'withdrawn' : 'refused'
    if (!await this.store.decide(id, status, admin.id, this.clock.now())) throw decided()
    await this.audit.append({
      action: `approval.${status}`, actorId: admin.id, actorLabel: admin.label, subjectUserId: request.userId,
      details: { requestId: id, kind: request.action.kind, requestedBy: request.requestedBy }, ip: admin.ip, userAgent: admin.userAgent
    })
    return status
  }

  async pending (): Promise<ApprovalListing[]> {
    await this.expireDue()
    return this.store.pending(LIST_LIMIT)
  }

  async pendingFor (userId: string): Promise<ApprovalListing[]> {
    await this.expireDue()
    return this.store.pendingFor(userId)
  }

  async recent (limit: number): Promise<ApprovalListing[]> {
    await this.expireDue()
    return this.store.recent(limit)
  }

  /** Lapses requests whose time is up, each audited. Run before anything reads or decides requests. */
  async expireDue (): Promise<number> {
    const expired = await this.store.expireDue(this.clock.now())
    for (const request of expired) {
      await this.audit.append({
        action: 'approval.expired', actorLabel: 'system', subjectUserId: request.userId,
        details: { requestId: request.id, kind: request.action.kind, requestedBy: request.requestedBy, expiresAt: request.expiresAt.toISOString() }
      })
    }
    return expired.length
  }

  /** A pending request that `admin` may decide: admins only, never about their own account. */
  private async decidable (id: string, admin: StaffActor): Promise<ApprovalRequest> {
    if (admin.role !== 'admin') throw new DomainError('forbidden', 'Only administrators can decide requests.', { variant: 'decide' })
    await this.expireDue()
    const request = await this.store.find(id)
    if (request === undefined) throw new DomainError('approval_not_found', 'There is no such request.')
    if (request.status === 'expired') {
      throw new DomainError('approval_expired', `This request lapsed at ${minute(request.expiresAt)} without a decision. Ask again if it is still needed.`, { expiresAt: request.expiresAt })
    }
    if (request.status !== 'pending') throw decided()
    if (request.userId === admin.id) throw new DomainError('self_action', 'This request is about your own account, so another administrator must decide it.')
    return request
  }

  private async tellApprovers (user: User, request: ApprovalRequest, actor: StaffActor): Promise<void> {
    const approvers = (await this.users.listByRole('admin')).filter((admin) => admin.id !== actor.id && admin.id !== user.id)
    for (const admin of approvers) {
      try {
        await this.notifier.accountNotice(admin, {
          subject: words('email.approval_subject', { kind: request.action.kind, name: user.displayName }),
          lines: [
            words('email.approval_asks', { actor: actor.label, kind: request.action.kind, name: user.displayName, email: user.email, reason: request.reason }),
            words('email.approval_review', { url: new URL('/admin/approvals', this.publicUrl).toString(), expiresAt: request.expiresAt }),
            words('email.approval_unexpected')
          ]
        })
      } catch (err) {
        await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: 'approval request', to: admin.id, reason: (err as Error).message } })
      }
    }
  }
}

function decided (): DomainError {
  return new DomainError('approval_decided', 'This request was already decided (approved, refused or withdrawn). Nothing more was done.')
}

/** Checks that `request` is an approved request of `kind` for `userId` decided by `approver`, before carrying it out. */
export function assertApproved (request: ApprovalRequest, kind: ApprovalKind, userId: string, approver: StaffActor): void {
  if (request.status !== 'approved' || request.action.kind !== kind || request.userId !== userId || request.decidedBy !== approver.id || request.requestedBy === approver.id) {
    throw new DomainError('forbidden', 'This action needs a second administrator\'s approval.', { variant: 'needs_approval' })
  }
}
