import type { MessageValues, Words } from './i18n.ts'
import type { AuthMethod } from './methods.ts'
import type { User } from './users.ts'

/**
 * Notices and alerts are Words: a catalogue key (locales/<language>/email.json, `email.…`) and its values, written
 * in the recipient's language where they are delivered. In e-mails a Date value is shown as a moment with its time
 * and zone, in the recipient's zone ("4 December 2026 at 00:07 (Berlin)").
 */
export type { Words }

export interface OutboxMessage {
  id: number
  channel: 'email' | 'sms'
  recipient: string
  subject: string | null
  bodyText: string
  bodyHtml: string | null
  createdAt: Date
}

/** The sandbox outbox: e-mails and text messages kept instead of sent, newest first for admins. */
export interface Outbox {
  add(message: Omit<OutboxMessage, 'id' | 'createdAt'>, at: Date): Promise<void>
  latest(limit?: number): Promise<OutboxMessage[]>
}

/** Words in a catalogue message: `words('email.x', { name })`. */
export function words (key: string, values?: MessageValues): Words {
  return values === undefined ? { key } : { key, values }
}

/** Whom a message goes to, and the language and time zone to write it in (DEFAULT_LOCALE / DEFAULT_TIME_ZONE else). */
export type Recipient = Pick<User, 'email' | 'displayName'> & Partial<Pick<User, 'locale' | 'timeZone'>>

/** What happened to a user's sign-in methods, for the email that tells them. */
export interface MethodChangeNotice {
  change: 'added' | 'removed'
  method: Pick<AuthMethod, 'kind' | 'name'>
  at: Date
  /** Opens the "This wasn't me" page for this change. */
  notMeUrl: string
}

export interface AdminAlert {
  subject: Words
  /** Sentences (one paragraph each); the notifier writes them in each administrator's language. */
  lines: Words[]
  /** The user the alert is about; absent when it is about a campaign (the breaker). */
  subjectUser?: Pick<User, 'email' | 'displayName'>
}

/** A plain notice about someone's own account (helpdesk actions): a subject and a few sentences. */
export interface AccountNotice {
  subject: Words
  /** Sentences (one paragraph each), written in the recipient's language. */
  lines: Words[]
  /** One link after the lines (e.g. "This wasn't me"), shown as a link in HTML and as the address in plain text. */
  link?: { label: Words, url: string }
}

export interface AccountNotifier {
  accountNotice(user: Recipient, notice: AccountNotice): Promise<void>
}

/** Messages to people. Implementations format and deliver (SMTP, or the sandbox outbox). */
export interface Notifier extends AccountNotifier {
  methodChanged(user: Recipient, notice: MethodChangeNotice): Promise<void>
  alertAdmins(admins: Recipient[], alert: AdminAlert): Promise<void>
}

/** A text message sender (SMS). */
export interface SmsSender {
  send(to: string, text: string): Promise<void>
}
