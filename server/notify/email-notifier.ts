import { fileURLToPath } from 'node:url'
import { Eta } from 'eta'
import { CALENDAR_CONTENT_TYPE, CALENDAR_FILENAME } from '../domain/calendar.ts'
import type { Localiser, MessageValues, Translator } from '../domain/i18n.ts'
import type { AccountNotice, AdminAlert, MethodChangeNotice, Notifier, Recipient, Words } from '../domain/notifications.ts'
import type { ReminderMailer, ReminderRecipient } from '../domain/reminders.ts'
import type { MailTransport } from './mail.ts'

const EMAIL_VIEWS = fileURLToPath(new URL('../../views/email/', import.meta.url))

/**
 * Formats notifications as plain text + HTML emails (eta templates, escaped) and hands them to a transport. Each
 * e-mail is written in its recipient's language and time zone (their saved choice, else DEFAULT_LOCALE and
 * DEFAULT_TIME_ZONE), subject included; every word comes from locales/<language>/email.json.
 */
export class EmailNotifier implements Notifier, ReminderMailer {
  private readonly html = new Eta({ views: EMAIL_VIEWS, cache: true, autoEscape: true })
  // Plain text must not be HTML-escaped, and its line breaks are the layout.
  private readonly text = new Eta({ views: EMAIL_VIEWS, cache: true, autoEscape: false, autoTrim: false })

  constructor (private readonly transport: MailTransport, private readonly organisation: string, private readonly localiser: Localiser) {}

  async methodChanged (user: Recipient, notice: MethodChangeNotice): Promise<void> {
    const tr = this.translatorFor(user)
    const data = {
      ...this.common(tr, user),
      added: notice.change === 'added',
      methodName: notice.method.name,
      kind: notice.method.kind,
      when: tr.dateTime(notice.at),
      notMeUrl: notice.notMeUrl
    }
    await this.transport.send({
      to: user.email,
      subject: tr.t(notice.change === 'added' ? 'email.method_added_subject' : 'email.method_removed_subject', { name: notice.method.name }),
      text: this.text.render('method-changed.txt.eta', data),
      html: this.html.render('method-changed.html.eta', data)
    })
  }

  async alertAdmins (admins: Recipient[], alert: AdminAlert): Promise<void> {
    for (const admin of admins) await this.accountNotice(admin, alert)
  }

  async accountNotice (user: Recipient, notice: AccountNotice): Promise<void> {
    const tr = this.translatorFor(user)
    const say = (words: Words): string => tr.t(words.key, shown(tr, words.values))
    const data = {
      ...this.common(tr, user),
      lines: notice.lines.map(say),
      link: notice.link === undefined ? null : { label: say(notice.link.label), url: notice.link.url }
    }
    await this.transport.send({
      to: user.email,
      subject: say(notice.subject),
      text: this.text.render('notice.txt.eta', data),
      html: this.html.render('notice.html.eta', data)
    })
  }

  async remind (to: ReminderRecipient, reminder: { deadline: Date, daysLeft: number, enrollUrl: string, calendar: string }): Promise<void> {
    const tr = this.translatorFor(to)
    const data = { ...this.common(tr, to), daysLeft: reminder.daysLeft, deadline: tr.dateTime(reminder.deadline), enrollUrl: reminder.enrollUrl, file: CALENDAR_FILENAME }
    await this.transport.send({
      to: to.email,
      subject: tr.t('email.reminder_subject', { daysLeft: reminder.daysLeft }),
      text: this.text.render('reminder.txt.eta', data),
      html: this.html.render('reminder.html.eta', data),
      attachments: [{ filename: CALENDAR_FILENAME, content: reminder.calendar, contentType: CALENDAR_CONTENT_TYPE }]
    })
  }

  private translatorFor (user: { locale?: string | null, timeZone?: string | null }): Translator {
    return this.localiser.for({ locale: user.locale, timeZone: user.timeZone })
  }

  /** What every e-mail template gets: the translator (`t`, `fmt`), the language, the greeting's name, the portal. */
  private common (tr: Translator, user: Pick<Recipient, 'displayName'>): Record<string, unknown> {
    return { t: tr.t, fmt: tr, locale: tr.locale, name: user.displayName, organisation: this.organisation }
  }
}

/** Values as the reader sees them: a Date becomes a moment with its time and zone, in the reader's language. */
function shown (tr: Translator, values: MessageValues | undefined): MessageValues | undefined {
  if (values === undefined) return undefined
  const result: MessageValues = {}
  for (const [name, value] of Object.entries(values)) result[name] = value instanceof Date ? tr.dateTime(value) : value
  return result
}
