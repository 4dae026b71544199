import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One request the fake received, as Twilio would see it. */
export interface TwilioRequest {
  method: string
  path: string
  contentType: string | undefined
  /** `sid:token` from the Basic authorization header, or null when there was none. */
  credentials: string | null
  form: Record<string, string>
}

/** Twilio's error body (https://www.twilio.com/docs/usage/twilios-response#response-formats-exceptions). */
export interface TwilioError {
  status: number
  code: number
  message: string
}

export interface FakeTwilio {
  url: string
  requests: TwilioRequest[]
  /** Answers every following send with this error, until cleared with null. */
  failWith(error: TwilioError | null): void
  close(): Promise<void>
}

/**
 * A stand-in for Twilio's Messages API on 127.0.0.1: checks the account's Basic auth like Twilio does
 * (401, code 20003), answers 201 with a message resource, or the error it was told to give.
 */
export async function startFakeTwilio (account: { accountSid: string, authToken: string }): Promise<FakeTwilio> {
  const requests: TwilioRequest[] = []
  let failure: TwilioError | null = null
  const messagesPath = `/2010-04-01/Accounts/${account.accountSid}/Messages.json`

  const server = createServer((req, res) => {
    readBody(req).then((body) => {
      const credentials = basicCredentials(req.headers.authorization)
      const form = Object.fromEntries(new URLSearchParams(body))
      requests.push({ method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'], credentials, form })
      if (credentials !== `${account.accountSid}:${account.authToken}`) {
        return answer(res, 401, { code: 20003, message: 'Authenticate', more_info: 'https://www.twilio.com/docs/errors/20003', status: 401 })
      }
      if (req.method !== 'POST' || req.url !== messagesPath) {
        return answer(res, 404, { code: 20404, message: 'The requested resource was not found', more_info: 'https://www.twilio.com/docs/errors/20404', status: 404 })
      }
      if (failure !== null) {
        return answer(res, failure.status, { code: failure.code, message: failure.message, more_info: `https://www.twilio.com/docs/errors/${failure.code}`, status: failure.status })
      }
      const sid = `SM${randomBytes(16).toString('hex')}`
      return answer(res, 201, {
        sid,
        account_sid: account.accountSid,
        to: form.To,
        from: form.From ?? null,
        messaging_service_sid: form.MessagingServiceSid ?? null,
        body: form.Body,
        status: 'queued',
        num_segments: '1',
        direction: 'outbound-api',
        api_version: '2010-04-01',
        uri: `/2010-04-01/Accounts/${account.accountSid}/Messages/${sid}.json`
      })
    }).catch((err: unknown) => answer(res, 500, { code: 20500, message: String(err), status: 500 }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failWith: (error) => { failure = error },
    close: () => new Promise((resolve, reject) => server.close((err) => err === undefined ? resolve() : reject(err)))
  }
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function basicCredentials (header: string | undefined): string | null {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '')
  return match === null ? null : Buffer.from(match[1], 'base64').toString('utf8')
}

function answer (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' })
  res.end(JSON.stringify(body))
}
