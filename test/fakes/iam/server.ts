import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { iamActions } from './actions.ts'
import { CredentialReportLifecycle } from './credential-report.ts'
import { IamFault, IamState } from './state.ts'
import { errorXml, IAM_NAMESPACE, successXml } from './xml.ts'

/** One request the fake received and how it answered. */
export interface IamCall {
  action: string
  /** Every form parameter except Action and Version. */
  params: Record<string, string>
  status: number
  /** The error Code answered, or null on success (also null for a malformed or hung answer). */
  code: string | null
  /** What was answered instead of IAM's own answer, when a fault was injected. */
  injected: Injection | null
  /** Access key id from the SigV4 Authorization header. */
  accessKeyId: string | null
  at: Date
}

/**
 * Scripted misbehaviour: `throttle` (400 Throttling "Rate exceeded"), `server-error` (500 ServiceFailure),
 * `malformed-xml` (200 with a cut-off document), `html` (200 with a web page, as a captive proxy answers),
 * `unknown-error` (400 with a Code no model knows), `hang` (never answers, so the client's timeout fires).
 */
export type Injection = 'throttle' | 'server-error' | 'malformed-xml' | 'html' | 'unknown-error' | 'hang'

export interface FakeIamOptions {
  accountId?: string
  /** The fake's clock: TOTP checks, creation dates, the credential report's age. */
  now?: () => Date
  /** Only this access key id is accepted (403 InvalidClientTokenId otherwise); any signed request when unset. */
  accessKeyId?: string
  /** How long a credential report takes to generate (GetCredentialReport answers ReportInProgress meanwhile). */
  reportDelayMs?: number
  /** Pages never hold more than this, whatever MaxItems asks (IAM "may return fewer than MaxItems"). */
  maxPageSize?: number
  /** A token bucket over every call: beyond it, 400 Throttling. Starts with `burst` tokens (default: one second's). */
  rateLimit?: { perSecond: number, burst?: number } | null
}

export interface FakeIam {
  url: string
  state: IamState
  report: CredentialReportLifecycle
  calls: IamCall[]
  /** Calls of one action; `answered` filters to those IAM itself answered (not throttled or injected). */
  callsTo(action: string, filter?: { answered?: boolean, ok?: boolean }): IamCall[]
  /** The next `times` calls (of `action`, or any) get this fault instead of IAM's answer. */
  inject(kind: Injection, options?: { times?: number, action?: string }): void
  /**
   * An outage: after `afterCalls` more calls (default 0), every call gets `kind` (default server-error) until
   * `forMs` have passed on the fake's clock since the first one it refused.
   */
  outage(options: { forMs: number, afterCalls?: number, kind?: Injection }): void
  /** Replaces the rate limit from now on (null: none). */
  setRateLimit(limit: { perSecond: number, burst?: number } | null): void
  /** How many calls the rate limit turned away. */
  throttled(): number
  close(): Promise<void>
}

interface PendingInjection { kind: Injection, remaining: number, action: string | undefined }

const VERSION = '2010-05-08'

/**
 * A stand-in for AWS IAM on 127.0.0.1 speaking the Query protocol as contracts/api-contracts.md Part 2 and Part 3
 * ("IAM") describe it: POST / with a form body, namespaced XML answers and ErrorResponse documents with the model's
 * status codes, Marker paging, the credential-report lifecycle, TOTP-checked EnableMFADevice, plus switches for
 * throttling, 500s, malformed XML, unknown error codes and hangs.
 */
export async function startFakeIam (options: FakeIamOptions = {}): Promise<FakeIam> {
  const now = options.now ?? (() => new Date())
  const state = new IamState(options.accountId ?? '123456789012', now)
  const report = new CredentialReportLifecycle(state, now, options.reportDelayMs ?? 50)
  const actions = iamActions({ state, report, maxPageSize: options.maxPageSize ?? 1000 })
  const calls: IamCall[] = []
  const injections: PendingInjection[] = []
  let bucket = options.rateLimit == null ? null : new Bucket(options.rateLimit)
  let throttledCount = 0
  let outage: { callsLeft: number, forMs: number, kind: Injection, endsAt: number | null } | null = null
  const outageFault = (): Injection | null => {
    if (outage === null) return null
    if (outage.callsLeft > 0) { outage.callsLeft--; return null }
    const at = now().getTime()
    outage.endsAt ??= at + outage.forMs
    if (at < outage.endsAt) return outage.kind
    outage = null
    return null
  }

  const handle = (req: IncomingMessage, res: ServerResponse, body: string): void => {
    const form = new URLSearchParams(body)
    const action = form.get('Action') ?? ''
    const params = Object.fromEntries([...form].filter(([k]) => k !== 'Action' && k !== 'Version'))
    const accessKeyId = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1] ?? null
    const call: IamCall = { action, params, status: 200, code: null, injected: null, accessKeyId, at: now() }
    calls.push(call)
    const requestId = randomUUID()
    const fail = (status: number, code: string, message: string): void => {
      call.status = status
      call.code = code
      send(res, status, errorXml(status, code, message, requestId), requestId)
    }

    if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') return fail(400, 'InvalidAction', 'IAM answers POST / only.')
    if (accessKeyId === null) return fail(403, 'MissingAuthenticationToken', 'Request is missing Authentication Token')
    if (options.accessKeyId !== undefined && accessKeyId !== options.accessKeyId) return fail(403, 'InvalidClientTokenId', 'The security token included in the request is invalid.')
    const handler = Object.hasOwn(actions, action) ? actions[action] : undefined
    if (handler === undefined || form.get('Version') !== VERSION) return fail(400, 'InvalidAction', `Could not find operation ${action} for version ${form.get('Version') ?? ''}`)

    const injected = outageFault() ?? takeInjection(injections, action)
    if (injected !== null) {
      call.injected = injected
      switch (injected) {
        case 'throttle': return fail(400, 'Throttling', 'Rate exceeded')
        case 'server-error': return fail(500, 'ServiceFailure', 'The request processing has failed because of an unknown error, exception or failure.')
        case 'unknown-error': return fail(400, 'QuantumFluxDisrupted', 'The flux capacitor is out of alignment.')
        case 'malformed-xml':
          return send(res, 200, `<${action}Response xmlns="${IAM_NAMESPACE}"><${action}Result><Users><member><UserName>trunc`, requestId)
        case 'html':
          res.writeHead(200, { 'content-type': 'text/html' })
          res.end('<html><body><h1>Sign in to the network</h1></body></html>')
          return
        case 'hang':
          call.status = 0
          return // never answered: the client's request timeout fires, close() drops the socket
      }
    }
    if (bucket !== null && !bucket.take()) {
      throttledCount++
      return fail(400, 'Throttling', 'Rate exceeded')
    }

    try {
      send(res, 200, successXml(action, handler(form), requestId), requestId)
    } catch (err) {
      if (err instanceof IamFault) return fail(err.status, err.code, err.message)
      fail(500, 'ServiceFailure', err instanceof Error ? err.message : String(err))
    }
  }

  const server = createServer((req, res) => {
    readBody(req).then((body) => handle(req, res, body), (err: unknown) => {
      send(res, 500, errorXml(500, 'ServiceFailure', String(err), 'x'), 'x')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  return {
    url: `http://127.0.0.1:${port}`,
    state,
    report,
    calls,
    callsTo: (action, filter = {}) => calls.filter((c) => c.action === action &&
      (filter.answered === undefined || filter.answered === (c.injected === null && c.code !== 'Throttling')) &&
      (filter.ok === undefined || filter.ok === (c.status === 200 && c.injected === null))),
    inject: (kind, { times = 1, action } = {}) => { injections.push({ kind, remaining: times, action }) },
    outage: ({ forMs, afterCalls = 0, kind = 'server-error' }) => { outage = { callsLeft: afterCalls, forMs, kind, endsAt: null } },
    setRateLimit: (limit) => { bucket = limit === null ? null : new Bucket(limit) },
    throttled: () => throttledCount,
    close: () => new Promise((resolve, reject) => {
      server.closeAllConnections()
      server.close((err) => err === undefined ? resolve() : reject(err))
    })
  }
}

function takeInjection (injections: PendingInjection[], action: string): Injection | null {
  const index = injections.findIndex((i) => i.remaining > 0 && (i.action === undefined || i.action === action))
  if (index === -1) return null
  const found = injections[index]
  if (--found.remaining === 0) injections.splice(index, 1)
  return found.kind
}

/** A token bucket on the real clock, as AWS rate-limits an account's IAM calls. */
class Bucket {
  private tokens: number
  private last = performance.now()
  private readonly capacity: number

  constructor (private readonly limit: { perSecond: number, burst?: number }) {
    this.capacity = limit.burst ?? limit.perSecond
    this.tokens = this.capacity
  }

  take (): boolean {
    const now = performance.now()
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.last) * this.limit.perSecond / 1000)
    this.last = now
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

async function readBody (req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

function send (res: ServerResponse, status: number, xml: string, requestId: string): void {
  res.writeHead(status, { 'content-type': 'text/xml', 'x-amzn-requestid': requestId })
  res.end(xml)
}
