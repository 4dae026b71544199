import nodemailer, { type Transporter } from 'nodemailer'
import type { Clock } from '../domain/clock.ts'
import type { Outbox } from '../domain/notifications.ts'

export interface MailMessage {
  to: string
  subject: string
  text: string
  html: string
  /** Files sent with the message (the deadline's .ics on reminders); the sandbox outbox keeps only the text. */
  attachments?: MailAttachment[]
}

export interface MailAttachment {
  filename: string
  content: string
  contentType: string
}

/** Delivers one message or throws. */
export interface MailTransport {
  send(message: MailMessage): Promise<void>
}

export class SmtpTransport implements MailTransport {
  private readonly transporter: Transporter

  constructor (smtpUrl: string, private readonly from: string) {
    this.transporter = nodemailer.createTransport(smtpUrl)
  }

  async send (message: MailMessage): Promise<void> {
    await this.transporter.sendMail({ from: this.from, ...message })
  }
}

/** Sandbox: messages are kept in the outbox for admins to read instead of being sent. */
export class OutboxMailTransport implements MailTransport {
  constructor (private readonly outbox: Outbox, private readonly clock: Clock) {}

  async send (message: MailMessage): Promise<void> {
    await this.outbox.add({ channel: 'email', recipient: message.to, subject: message.subject, bodyText: message.text, bodyHtml: message.html }, this.clock.now())
  }
}
