import type { AddressInfo } from 'node:net'
import { simpleParser, type AddressObject } from 'mailparser'
import { SMTPServer } from 'smtp-server'

/** One message as the SMTP server received it. */
export interface ReceivedMail {
  /** Envelope sender (MAIL FROM). */
  from: string
  /** Envelope recipients (RCPT TO), which include Bcc. */
  to: string[]
  /** The message exactly as sent: headers and MIME body. */
  raw: string
  subject: string
  /** Plain-text body, decoded (quoted-printable, base64, multipart); '' when there is none. */
  text: string
  /** HTML body, decoded; '' when there is none. */
  html: string
  /** Addresses from the To: header, which may differ from the envelope. */
  headerTo: string[]
  /** The user name given with AUTH, if the client authenticated. */
  authUser: string | null
}

export interface SmtpSink {
  /** For SMTP_URL: `smtp://127.0.0.1:<port>`. */
  url: string
  port: number
  /** Every message received so far, oldest first. */
  messages: ReceivedMail[]
  /** Connection errors the server reported (e.g. a client hanging up mid-dialogue); they do not stop it. */
  errors: Error[]
  /** The first message (already received or arriving within timeoutMs) that matches. */
  waitFor(predicate: (mail: ReceivedMail) => boolean, timeoutMs?: number): Promise<ReceivedMail>
  close(): Promise<void>
}

function addresses (field: AddressObject | AddressObject[] | undefined): string[] {
  if (field === undefined) return []
  return (Array.isArray(field) ? field : [field]).flatMap((group) => group.value.map((entry) => entry.address ?? ''))
}

/**
 * An in-process SMTP server on 127.0.0.1 that accepts every message (plain text, no TLS, any or no AUTH)
 * and keeps it in memory, standing in for the organisation's mail relay.
 */
export async function startSmtpSink (): Promise<SmtpSink> {
  const messages: ReceivedMail[] = []
  const waiters = new Set<(mail: ReceivedMail) => void>()

  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    // Credentials in SMTP_URL must not make sending fail here; production relays enforce TLS themselves.
    allowInsecureAuth: true,
    onAuth (auth, _session, callback) {
      callback(null, { user: auth.username })
    },
    logger: false,
    onData (stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (chunk: Buffer) => chunks.push(chunk))
      stream.on('error', callback)
      stream.on('end', () => {
        const raw = Buffer.concat(chunks)
        simpleParser(raw).then((parsed) => {
          const mailFrom = session.envelope.mailFrom
          const mail: ReceivedMail = {
            from: mailFrom === false ? '' : mailFrom.address,
            to: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            raw: raw.toString('utf8'),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            html: typeof parsed.html === 'string' ? parsed.html : '',
            headerTo: addresses(parsed.to),
            authUser: typeof session.user === 'string' ? session.user : null
          }
          messages.push(mail)
          for (const waiter of waiters) waiter(mail)
          callback()
        }, callback)
      })
    }
  })

  // A client dropping its connection is reported as a server 'error' event; unheard, it would crash the test
  // process. Kept instead, for a test that wants to look.
  const errors: Error[] = []
  server.on('error', (err: Error) => errors.push(err))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.server.address() as AddressInfo

  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    messages,
    errors,
    waitFor (predicate, timeoutMs = 5000) {
      const already = messages.find(predicate)
      if (already !== undefined) return Promise.resolve(already)
      return new Promise((resolve, reject) => {
        const waiter = (mail: ReceivedMail): void => {
          if (!predicate(mail)) return
          clearTimeout(timer)
          waiters.delete(waiter)
          resolve(mail)
        }
        const timer = setTimeout(() => {
          waiters.delete(waiter)
          const seen = messages.map((mail) => `  to ${mail.to.join(', ')}: ${mail.subject}`).join('\n')
          reject(new Error(`no matching mail within ${timeoutMs} ms; received ${messages.length}:\n${seen}`))
        }, timeoutMs)
        waiters.add(waiter)
      })
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
