import { randomBytes, randomUUID } from 'node:crypto'
import { actingPermission, assertApproved, type ApprovalRequest, type ApprovalService, type PendingApproval, type StaffActor } from './approvals.ts'
import { cleanReason } from './reasons.ts'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import { DomainError } from './errors.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import { words, type AccountNotifier } from './notifications.ts'
import type { RequestContext } from './signin.ts'
import type { User, UserStore } from './users.ts'

export const INVITATION_LIFETIME_MS = 7 * 24 * 3_600_000
const HASH_CONTEXT = 'invitation'

export interface Invitation {
  id: string
  userId: string
  createdBy: string | null
  createdAt: Date
  expiresAt: Date
  usedAt: Date | null
}

/** An invitation that went out: to whom, and until when its link works. */
export interface SentInvitation { expiresAt: Date, sentTo: string }

export interface InvitationStore {
  /** Stores a new invitation and ends the user's earlier unused ones (one active invitation per user). */
  replace(invitation: Omit<Invitation, 'usedAt'> & { tokenHash: string }): Promise<void>
  findByTokenHash(tokenHash: string): Promise<Invitation | undefined>
  /** Uses the invitation once (compare-and-swap on unused and unexpired); false when it was used or lapsed. */
  consume(id: string, now: Date): Promise<boolean>
  /** Ends an unused invitation now (its email could not be sent). */
  expire(id: string, now: Date): Promise<void>
}

/**
 * Sign-in invitations for people the portal cannot sign in otherwise (IAM users have no OIDC and no portal
 * password; issue #7 item 5). The link is e-mailed and exists in the clear nowhere else; the database holds a keyed
 * hash. Opening the link only shows a button: link scanners fetch links in mail, so only the POST uses it. Using it
 * opens the same restricted session as a temporary access pass: enrollment pages and sign-out only.
 */
export class InvitationService {
  constructor (
    private readonly store: InvitationStore,
    private readonly users: Pick<UserStore, 'findById'>,
    private readonly hasher: KeyedHasher,
    private readonly notifier: AccountNotifier,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly publicUrl: URL,
    private readonly approvals: ApprovalService,
    /**
     * Whether mail really leaves the portal. Without a relay it lands in the admin outbox, where every
     * administrator could read the link and sign in as the person: outside the sandbox invitations are then refused.
     */
    private readonly mail: { delivered: boolean } = { delivered: true }
  ) {}

  /**
   * Issues (or re-issues) the user's invitation and e-mails the link. Helpdesk staff act on ordinary users only;
   * for a privileged account under the two-person rule the invitation is only requested here (see issueApproved).
   */
  async issue (userId: string, reasonInput: string, actor: StaffActor): Promise<SentInvitation | PendingApproval> {
    const user = await this.target(userId, actor)
    const reason = cleanReason(reasonInput)
    this.sendable(user)
    if (this.approvals.required(user)) return await this.approvals.request(user, { kind: 'invitation' }, reason, actor)
    return await this.send(user, reason, actor, null)
  }

  /** Carries out an approved invitation request: the link goes to the person by e-mail, as always. */
  async issueApproved (request: ApprovalRequest, approver: StaffActor): Promise<SentInvitation> {
    const user = await this.target(request.userId, approver)
    assertApproved(request, 'invitation', user.id, approver)
    this.sendable(user)
    return await this.send(user, request.reason, approver, request)
  }

  private async target (userId: string, actor: StaffActor): Promise<User> {
    const user = await this.users.findById(userId)
    if (user === undefined) throw new DomainError('user_not_found', 'No such user.')
    const permission = actingPermission(actor, user)
    if (!permission.allowed) throw new DomainError(actor.id === user.id ? 'self_action' : 'forbidden', permission.why ?? 'Not allowed.', { variant: permission.variant })
    return user
  }

  /** Refuses people an invitation could not reach or would not let in. */
  private sendable (user: User): void {
    if (!this.mail.delivered) {
      throw new DomainError('no_mail_relay',
        'Invitations are sent by e-mail, and this portal has no mail relay (SMTP_URL), so the link would only sit in the admin outbox, where any administrator could use it. ' +
        'Issue a temporary access pass instead, or ask an administrator to configure SMTP_URL.')
    }
    if (user.disabled) throw new DomainError('user_disabled', 'This account is disabled, so an invitation would not let them in.')
    // Directory users without an e-mail address get a placeholder in the reserved .invalid domain (RFC 2606).
    if (user.email.endsWith('.invalid')) {
      throw new DomainError('no_email_address',
        `${user.displayName} has no e-mail address the portal can write to (${user.email} is a placeholder). ` +
        'Add their address to the directory (for AWS, the e-mail tag of the IAM user) and sync, or issue a temporary access pass instead.',
        { name: user.displayName, email: user.email })
    }
  }

  private async send (user: User, reason: string, actor: StaffActor, approval: ApprovalRequest | null): Promise<SentInvitation> {
    const token = randomBytes(32).toString('base64url')
    const id = randomUUID()
    const now = this.clock.now()
    const expiresAt = new Date(now.getTime() + INVITATION_LIFETIME_MS)
    await this.store.replace({ id, userId: user.id, tokenHash: this.hasher.hash(token, HASH_CONTEXT), createdBy: actor.id, createdAt: now, expiresAt })
    await this.audit.append({ action: 'invitation.issued', actorId: actor.id, actorLabel: actor.label, subjectUserId: user.id, details: { reason, expiresAt: expiresAt.toISOString(), approvalId: approval?.id }, ip: actor.ip, userAgent: actor.userAgent })

    const link = new URL(`/invite/${token}`, this.publicUrl).toString()
    try {
      await this.notifier.accountNotice(user, {
        subject: words('email.invitation_subject'),
        lines: [
          words('email.invitation_intro'),
          words('email.plain_url', { url: link }),
          words('email.invitation_once', { expiresAt }),
          ...(approval === null ? [] : [words('email.invitation_approved')]),
          words('email.invitation_unexpected')
        ]
      })
    } catch (err) {
      // A link nobody received must not stay usable.
      await this.store.expire(id, this.clock.now())
      await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: 'invitation', reason: (err as Error).message } })
      throw new DomainError('invitation_not_sent', 'The invitation e-mail could not be sent, so the invitation was withdrawn. Try again later.')
    }
    return { expiresAt, sentTo: user.email }
  }

  /** What the confirmation page shows; changes nothing (GET). */
  async preview (token: string): Promise<{ user: User, expiresAt: Date }> {
    const { invitation, user } = await this.valid(token)
    return { user, expiresAt: invitation.expiresAt }
  }

  /** Uses the invitation, once; returns the user to open a restricted (pass) session for. */
  /** Uses the link once; returns until when the session it opens may last (see invitationSessionMs). */
  async redeem (token: string, context: RequestContext): Promise<{ user: User, sessionUntil: Date }> {
    const { invitation, user } = await this.valid(token)
    if (!await this.store.consume(invitation.id, this.clock.now())) throw used()
    const meta = { ip: context.ip, userAgent: context.userAgent }
    await this.audit.append({ action: 'invitation.redeemed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { invitationId: invitation.id }, ...meta })
    await this.audit.append({ action: 'signin.success', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { method: 'invitation' }, ...meta })
    const now = this.clock.now().getTime()
    return { user, sessionUntil: new Date(Math.min(now + INVITATION_SESSION_MS, invitation.expiresAt.getTime())) }
  }

  private async valid (token: string): Promise<{ invitation: Invitation, user: User }> {
    const invitation = /^[\w-]{20,100}$/.test(token) ? await this.store.findByTokenHash(this.hasher.hash(token, HASH_CONTEXT)) : undefined
    if (invitation === undefined) {
      throw new DomainError('invitation_not_found', 'This invitation link is not valid. Check that you opened the whole link from the e-mail, or ask the helpdesk for a new one.', { variant: 'whole_link' })
    }
    if (invitation.usedAt !== null) throw used()
    if (invitation.expiresAt <= this.clock.now()) {
      throw new DomainError('invitation_expired', 'This invitation has expired. Ask the helpdesk for a new one.')
    }
    const user = await this.users.findById(invitation.userId)
    if (user === undefined || user.disabled) throw new DomainError('invitation_not_found', 'This invitation link is not valid. Ask the helpdesk for a new one.')
    return { invitation, user }
  }
}

/** An invitation session is for setting up a method now, like a pass: it ends after an hour (Entra's default pass lifetime). */
export const INVITATION_SESSION_MS = 60 * 60_000

function used (): DomainError {
  return new DomainError('invitation_used', 'This invitation was already used. Each link works once: ask the helpdesk for a new one if you still need to set up your sign-in methods.')
}
