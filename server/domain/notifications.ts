import type { AuthMethod } from './methods.ts'
import type { User } from './users.ts'

/** What happened to a user's sign-in methods, for the email that tells them. */
export interface MethodChangeNotice {
  change: 'added' | 'removed'
  method: Pick<AuthMethod, 'kind' | 'name'>
  at: Date
  /** Opens the "This wasn't me" page for this change. */
  notMeUrl: string
}

export interface AdminAlert {
  subject: string
  /** Plain sentences; the notifier formats them. */
  lines: string[]
  subjectUser: Pick<User, 'email' | 'displayName'>
}

/** A plain notice about someone's own account (helpdesk actions): a subject and a few sentences. */
export interface AccountNotice {
  subject: string
  lines: string[]
}

export interface AccountNotifier {
  accountNotice(user: Pick<User, 'email' | 'displayName'>, notice: AccountNotice): Promise<void>
}

/** Messages to people. Implementations format and deliver (SMTP, or the sandbox outbox). */
export interface Notifier extends AccountNotifier {
  methodChanged(user: Pick<User, 'email' | 'displayName'>, notice: MethodChangeNotice): Promise<void>
  alertAdmins(admins: Array<Pick<User, 'email' | 'displayName'>>, alert: AdminAlert): Promise<void>
}

/** A text message sender (SMS). */
export interface SmsSender {
  send(to: string, text: string): Promise<void>
}
