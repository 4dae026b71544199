import type { SNSClient } from '@aws-sdk/client-sns'
import type { Clock } from '../domain/clock.ts'
import type { Outbox, SmsSender } from '../domain/notifications.ts'

/** Sandbox: text messages are kept in the outbox, readable by admins at /admin/outbox, never shown to the user. */
export class OutboxSms implements SmsSender {
  constructor (private readonly outbox: Outbox, private readonly clock: Clock) {}

  async send (to: string, text: string): Promise<void> {
    await this.outbox.add({ channel: 'sms', recipient: to, subject: null, bodyText: text, bodyHtml: null }, this.clock.now())
  }
}

/** Twilio's Messages REST API over fetch (base URL configurable for a local stand-in). */
export class TwilioSms implements SmsSender {
  constructor (private readonly settings: { accountSid: string, authToken: string, from: string, baseUrl: string }) {}

  async send (to: string, text: string): Promise<void> {
    const { accountSid, authToken, from, baseUrl } = this.settings
    const body = new URLSearchParams({ To: to, Body: text })
    // A messaging service SID (MG…) goes in its own field; otherwise From is a number.
    body.set(from.startsWith('MG') ? 'MessagingServiceSid' : 'From', from)
    const response = await fetch(`${baseUrl.replace(/\/$/, '')}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages.json`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body,
      signal: AbortSignal.timeout(10_000)
    })
    if (!response.ok) {
      const detail = await response.json().catch(() => ({})) as { code?: number, message?: string }
      throw new Error(`Twilio refused the message: HTTP ${response.status}${detail.code === undefined ? '' : ` code ${detail.code}`}${detail.message === undefined ? '' : `: ${detail.message}`}`)
    }
  }
}

/**
 * Amazon SNS direct-to-phone publishing, marked transactional (endpoint configurable). The SDK is loaded with the
 * first message: a portal (or a CLI run) that sends none does not pay for loading it.
 */
export class SnsSms implements SmsSender {
  private client: Promise<{ client: SNSClient, PublishCommand: typeof import('@aws-sdk/client-sns').PublishCommand }> | undefined

  constructor (private readonly settings: { region: string, endpoint: string | undefined }) {}

  async send (to: string, text: string): Promise<void> {
    this.client ??= import('@aws-sdk/client-sns').then(({ SNSClient, PublishCommand }) =>
      ({ client: new SNSClient({ region: this.settings.region, endpoint: this.settings.endpoint }), PublishCommand }))
    const { client, PublishCommand } = await this.client
    await client.send(new PublishCommand({
      PhoneNumber: to,
      Message: text,
      MessageAttributes: { 'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' } }
    }))
  }
}
