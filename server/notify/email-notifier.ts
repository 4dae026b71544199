import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import { CALENDAR_CONTENT_TYPE, CALENDAR_FILENAME } from '../domain/calendar.ts'
import type { AccountNotice, AdminAlert, MethodChangeNotice, Notifier } from '../domain/notifications.ts'
import type { ReminderMailer } from '../domain/reminders.ts'
import type { User } from '../domain/users.ts'
import type { MailTransport } from './mail.ts'

const EMAIL_VIEWS = fileURLToPath(new URL('../../views/email/', import.meta.url))

const KIND_NAMES = { passkey: 'passkey', totp: 'authenticator app', phone: 'phone for text-message codes' } as const

/** Formats notifications as plain text + HTML emails (eta templates, escaped) and hands them to a transport. */
export class EmailNotifier implements Notifier, ReminderMailer {
  private readonly html = new Eta({ views: EMAIL_VIEWS, cache: true, autoEscape: true })
  // Plain text must not be HTML-escaped, and its line breaks are the layout.
  private readonly text = new Eta({ views: EMAIL_VIEWS, cache: true, autoEscape: false, autoTrim: false })

  constructor (private readonly transport: MailTransport, private readonly organisation: string) {}

  async methodChanged (user: Pick<User, 'email' | 'displayName'>, notice: MethodChangeNotice): Promise<void> {
    const data = {
      organisation: this.organisation,
      name: user.displayName,
      added: notice.change === 'added',
      methodName: notice.method.name,
      kindName: KIND_NAMES[notice.method.kind],
      when: `${notice.at.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
      notMeUrl: notice.notMeUrl
    }
    await this.transport.send({
      to: user.email,
      subject: notice.change === 'added' ? `A sign-in method was added to your account: ${notice.method.name}` : `A sign-in method was removed from your account: ${notice.method.name}`,
      text: this.text.render('method-changed.txt.eta', data),
      html: this.html.render('method-changed.html.eta', data)
    })
  }

  async alertAdmins (admins: Array<Pick<User, 'email' | 'displayName'>>, alert: AdminAlert): Promise<void> {
    for (const admin of admins) await this.accountNotice(admin, alert)
  }

  async accountNotice (user: Pick<User, 'email' | 'displayName'>, notice: AccountNotice): Promise<void> {
    const data = { organisation: this.organisation, name: user.displayName, lines: notice.lines }
    await this.transport.send({
      to: user.email,
      subject: notice.subject,
      text: this.text.render('notice.txt.eta', data),
      html: this.html.render('notice.html.eta', data)
    })
  }

  async remind (to: { email: string, displayName: string }, reminder: { deadline: Date, daysLeft: number, enrollUrl: string, calendar: string }): Promise<void> {
    const data = { organisation: this.organisation, name: to.displayName, daysLeft: reminder.daysLeft, day: reminder.deadline.toISOString().slice(0, 10), enrollUrl: reminder.enrollUrl }
    await this.transport.send({
      to: to.email,
      subject: reminder.daysLeft === 1 ? 'Tomorrow: set up your second sign-in method' : `${reminder.daysLeft} days left to set up your second sign-in method`,
      text: this.text.render('reminder.txt.eta', data),
      html: this.html.render('reminder.html.eta', data),
      attachments: [{ filename: CALENDAR_FILENAME, content: reminder.calendar, contentType: CALENDAR_CONTENT_TYPE }]
    })
  }
}
