import { createHash, createHmac, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One Publish call the fake received (Query protocol: a form-encoded POST). */
export interface SnsRequest {
  form: Record<string, string>
  /** The access key id the request was signed with, or null when it was not signed. */
  accessKeyId: string | null
  /** The credential scope's region and service, e.g. `eu-west-1/sns`. */
  scope: string | null
  signatureValid: boolean
}

/** An SNS error as the Query protocol returns it (ErrorResponse XML). */
export interface SnsError {
  status: number
  code: string
  message: string
}

export interface FakeSns {
  url: string
  requests: SnsRequest[]
  /** Answers every following Publish with this error, until cleared with null. */
  failWith(error: SnsError | null): void
  close(): Promise<void>
}

/**
 * A stand-in for Amazon SNS on 127.0.0.1 speaking the Query protocol the SDK uses for SNS: verifies the
 * Signature Version 4 signature against the one known key pair, and answers PublishResponse XML.
 */
export async function startFakeSns (credentials: { accessKeyId: string, secretAccessKey: string }): Promise<FakeSns> {
  const requests: SnsRequest[] = []
  let failure: SnsError | null = null

  const server = createServer((req, res) => {
    readBody(req).then((body) => {
      const form = Object.fromEntries(new URLSearchParams(body))
      const signature = checkSignature(req, body, credentials)
      requests.push({ form, ...signature })
      if (signature.accessKeyId !== credentials.accessKeyId) {
        return answer(res, 403, errorXml('InvalidClientTokenId', 'The security token included in the request is invalid.'))
      }
      if (!signature.signatureValid) {
        return answer(res, 403, errorXml('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'))
      }
      if (form.Action !== 'Publish') return answer(res, 400, errorXml('InvalidAction', `The action ${form.Action} is not valid for this web service.`))
      if (failure !== null) return answer(res, failure.status, errorXml(failure.code, failure.message))
      return answer(res, 200, `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <PublishResult>
    <MessageId>${randomUUID()}</MessageId>
  </PublishResult>
  <ResponseMetadata>
    <RequestId>${randomUUID()}</RequestId>
  </ResponseMetadata>
</PublishResponse>`)
    }).catch((err: unknown) => answer(res, 500, errorXml('InternalError', String(err))))
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

// Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), recomputed
// from the request so a test proves the configured secret, not just the key id, was used.
function checkSignature (req: IncomingMessage, body: string, known: { accessKeyId: string, secretAccessKey: string }): Omit<SnsRequest, 'form'> {
  const match = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(req.headers.authorization ?? '')
  if (match === null) return { accessKeyId: null, scope: null, signatureValid: false }
  const [, accessKeyId, date, region, service, signedHeaders, signature] = match
  const url = new URL(req.url ?? '/', 'http://fake')
  const query = [...url.searchParams].map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).sort().join('&')
  const headers = signedHeaders.split(';').map((name) => `${name}:${headerValue(req, name)}\n`).join('')
  const payloadHash = headerValue(req, 'x-amz-content-sha256') || sha256(body)
  const canonicalRequest = [req.method, url.pathname, query, headers, signedHeaders, payloadHash].join('\n')
  const amzDate = headerValue(req, 'x-amz-date')
  const scope = `${date}/${region}/${service}/aws4_request`
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n')
  let key: Buffer = hmac(`AWS4${known.secretAccessKey}`, date)
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part)
  const expected = createHmac('sha256', key).update(stringToSign).digest('hex')
  return { accessKeyId, scope: `${region}/${service}`, signatureValid: expected === signature }
}

function headerValue (req: IncomingMessage, name: string): string {
  const value = req.headers[name]
  return (Array.isArray(value) ? value.join(',') : value ?? '').trim().replace(/\s+/g, ' ')
}

function rfc3986 (text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

function sha256 (text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

function hmac (key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest()
}

function errorXml (code: string, message: string): string {
  return `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">
  <Error>
    <Type>Sender</Type>
    <Code>${code}</Code>
    <Message>${message.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</Message>
  </Error>
  <RequestId>${randomUUID()}</RequestId>
</ErrorResponse>`
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function answer (res: ServerResponse, status: number, xml: string): void {
  res.writeHead(status, { 'content-type': 'text/xml' })
  res.end(xml)
}
