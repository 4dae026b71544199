import { randomBytes } from 'node:crypto'
import type { AuditLog } from './audit.ts'
import type { Clock } from './clock.ts'
import type { ChangeContext, EnrollmentGuard } from './enrollment-guard.ts'
import { DomainError } from './errors.ts'
import type { KeyedHasher } from './keyed-hash.ts'
import { cleanMethodName, type AuthMethod, type MethodStore } from './methods.ts'
import { words, type Notifier } from './notifications.ts'
import type { SessionRevoker, User, UserStore } from './users.ts'

const NOTICE_LIFETIME_MS = 30 * 24 * 3_600_000

export interface MethodNotice {
  id: string
  userId: string
  methodId: string
  methodName: string
  change: 'added' | 'removed'
  expiresAt: Date
  usedAt: Date | null
}

export interface NoticeStore {
  create(notice: Omit<MethodNotice, 'id' | 'usedAt'> & { tokenHash: string }): Promise<MethodNotice>
  findByTokenHash(tokenHash: string): Promise<MethodNotice | undefined>
  /** Marks a notice used once (compare-and-swap); false if it was used already. */
  claim(id: string, at: Date): Promise<boolean>
}

export interface Logger {
  error(fields: object, message: string): void
}

/**
 * What happens around every method change, whatever the kind: the audit event, the email to the user with a
 * "This wasn't me" link, and the revocation that link allows.
 */
export class MethodLifecycle {
  constructor (
    private readonly methods: MethodStore,
    private readonly notices: NoticeStore,
    private readonly users: UserStore,
    private readonly sessions: SessionRevoker,
    private readonly guard: EnrollmentGuard,
    private readonly hasher: KeyedHasher,
    private readonly notifier: Notifier,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly publicUrl: URL,
    private readonly log: Logger,
    /** Rollout hooks: is this a break-glass account, and re-derive the user's state after a change. */
    private readonly rollout: { isBreakGlass(userId: string): Promise<boolean>, methodsChanged(userId: string): Promise<void> } = { isBreakGlass: async () => false, methodsChanged: async () => {} }
  ) {}

  async added (user: User, method: AuthMethod, context: ChangeContext | null): Promise<void> {
    await this.audit.append({ action: 'method.added', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { methodId: method.id, kind: method.kind, name: method.name, passSession: context?.passSession ?? false } })
    await this.afterChange(user, method, 'added')
  }

  async rename (user: User, methodId: string, nameInput: string): Promise<AuthMethod> {
    const method = await this.methods.findFor(user.id, methodId)
    if (method === undefined) throw new DomainError('method_not_found', 'That sign-in method does not exist.')
    const name = cleanMethodName(nameInput)
    if (name === undefined) throw new DomainError('invalid_name', 'Give the method a name of 1 to 60 characters.', { variant: 'method' })
    await this.methods.rename(user.id, methodId, name)
    await this.audit.append({ action: 'method.renamed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { methodId, from: method.name, to: name } })
    return { ...method, name }
  }

  async remove (user: User, methodId: string, context: ChangeContext): Promise<AuthMethod> {
    const method = await this.methods.findFor(user.id, methodId)
    if (method === undefined) throw new DomainError('method_not_found', 'That sign-in method does not exist.')
    this.guard.assertMayRemove(user, await this.methods.countFor(user.id), context)
    const removed = await this.methods.remove(user.id, methodId)
    if (removed === undefined) throw new DomainError('method_not_found', 'That sign-in method does not exist.')
    await this.audit.append({ action: 'method.removed', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { methodId, kind: method.kind, name: method.name } })
    await this.afterChange(user, method, 'removed')
    return removed
  }

  /** The notice behind a "This wasn't me" link, if the link is genuine, unused, unexpired and the signed-in user's. */
  async noticeFor (user: User, token: string): Promise<MethodNotice> {
    const notice = await this.notices.findByTokenHash(this.hasher.hash(token, 'method-notice'))
    if (notice === undefined || notice.userId !== user.id) {
      throw new DomainError('notice_not_found', 'This link is not valid for your account. Make sure you are signed in as the person the email was sent to.')
    }
    if (notice.usedAt !== null) throw new DomainError('notice_used', 'This link was already used. Your helpdesk and administrators have been told.')
    if (notice.expiresAt <= this.clock.now()) throw new DomainError('notice_expired', 'This link has expired. If something looks wrong with your account, contact your helpdesk.')
    return notice
  }

  /**
   * "This wasn't me": removes the method the email was about (if it is still there), ends every session of the
   * account (whoever added the method may still be signed in; the reporting browser is signed in again by the
   * caller), records it and alerts the admins. No step-up is asked for: the person reporting may have lost their
   * factors to whoever added this one.
   */
  async reportNotMe (user: User, token: string): Promise<{ revoked: boolean, notice: MethodNotice }> {
    const notice = await this.noticeFor(user, token)
    if (!await this.notices.claim(notice.id, this.clock.now())) {
      throw new DomainError('notice_used', 'This link was already used. Your helpdesk and administrators have been told.')
    }
    const revoked = notice.change === 'added' && await this.methods.remove(user.id, notice.methodId) !== undefined
    if (revoked) await this.rollout.methodsChanged(user.id)
    const sessionsEnded = await this.sessions.revokeAllFor(user.id)
    await this.audit.append({ action: 'method.reported_not_me', actorId: user.id, actorLabel: user.email, subjectUserId: user.id, details: { methodId: notice.methodId, name: notice.methodName, change: notice.change, revoked, sessionsEnded } })
    await this.alert(user, {
      subject: words('email.alert_not_me_subject', { name: user.displayName }),
      subjectUser: user,
      lines: [
        words('email.alert_not_me_said', { name: user.displayName, email: user.email, change: notice.change, method: notice.methodName }),
        words('email.alert_not_me_outcome', { outcome: revoked ? 'revoked' : notice.change === 'added' ? 'already_removed' : 'unchanged' }),
        words('email.alert_sessions_ended'),
        words('email.alert_not_me_check')
      ]
    })
    return { revoked, notice }
  }

  private async afterChange (user: User, method: AuthMethod, change: 'added' | 'removed'): Promise<void> {
    await this.rollout.methodsChanged(user.id)
    await this.tellUser(user, method, change)
    // Break-glass accounts are the keys to the kingdom: any change to them is the admins' business.
    if (await this.rollout.isBreakGlass(user.id)) {
      await this.alert(user, {
        subject: words('email.alert_break_glass_subject', { change, email: user.email }),
        subjectUser: user,
        lines: [
          words('email.alert_break_glass_change', { method: method.name, kind: method.kind, change, name: user.displayName, email: user.email }),
          words('email.alert_break_glass_act')
        ]
      })
    }
  }

  private async alert (user: User, alert: Parameters<Notifier['alertAdmins']>[1]): Promise<void> {
    try {
      await this.notifier.alertAdmins(await this.users.listByRole('admin'), alert)
    } catch (err) {
      this.log.error({ err }, 'admin alert could not be sent')
      await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: 'admin alert', reason: (err as Error).message } })
    }
  }

  private async tellUser (user: User, method: AuthMethod, change: 'added' | 'removed'): Promise<void> {
    const token = randomBytes(32).toString('base64url')
    const now = this.clock.now()
    await this.notices.create({
      userId: user.id, methodId: method.id, methodName: method.name, change,
      tokenHash: this.hasher.hash(token, 'method-notice'),
      expiresAt: new Date(now.getTime() + NOTICE_LIFETIME_MS)
    })
    const notMeUrl = new URL(`/methods/not-me?token=${token}`, this.publicUrl).toString()
    try {
      await this.notifier.methodChanged(user, { change, method, at: now, notMeUrl })
    } catch (err) {
      // The change stands; the failure is visible in the log and the audit trail.
      this.log.error({ err }, 'method change email could not be sent')
      await this.audit.append({ action: 'notification.failed', actorLabel: 'system', subjectUserId: user.id, details: { message: `method ${change}`, reason: (err as Error).message } })
    }
  }
}
