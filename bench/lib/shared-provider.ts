import type { ChildProcess } from 'node:child_process'
import {
  ProviderError, type EnforcementOutcome, type EnforcementState, type IdentityProvider, type ProviderCapabilities, type ProviderName,
  type ProviderPage, type ProviderSubject, type RegistrationStatus
} from '../../server/domain/provider.ts'

/**
 * One provider shared by several engine processes, the way several portal instances share one cloud API and its
 * rate limit: the parent holds the provider (the fake and its token bucket) and serves each child's calls over the
 * child's IPC channel; in the child, RemoteProvider is the engine's provider and forwards every call there. The
 * limit, the enforcement switches and the count of flips are therefore one, whichever instance calls.
 */
type Op = 'listUsers' | 'registrationStatus' | 'enforcementState' | 'enforce' | 'relax'
const OPS: ReadonlySet<string> = new Set<Op>(['listUsers', 'registrationStatus', 'enforcementState', 'enforce', 'relax'])

interface CallMessage {
  kind: 'provider-call'
  id: number
  op: Op
  arg: unknown
}

interface AnswerMessage {
  kind: 'provider-answer'
  id: number
  value?: unknown
  error?: { message: string, retryable: boolean, retryAfterMs: number | null, code: string }
}

/** Parent side: answers the child's provider calls with `provider`. */
export function serveProvider (child: ChildProcess, provider: IdentityProvider): void {
  child.on('message', (message: Partial<CallMessage>) => {
    if (message.kind !== 'provider-call' || message.op === undefined || !OPS.has(message.op)) return
    const { id, op, arg } = message as CallMessage
    const call = provider[op] as (arg: unknown) => Promise<unknown>
    call.call(provider, arg).then((value) => {
      answer(child, { kind: 'provider-answer', id, value })
    }, (err: unknown) => {
      const error = err instanceof ProviderError
        ? { message: err.message, retryable: err.retryable, retryAfterMs: err.retryAfterMs, code: err.code }
        : { message: err instanceof Error ? err.message : String(err), retryable: false, retryAfterMs: null, code: 'provider_error' }
      answer(child, { kind: 'provider-answer', id, error })
    })
  })
}

function answer (child: ChildProcess, message: AnswerMessage): void {
  // A child that has gone (killed, crashed) cannot take its answer: nothing to do.
  if (child.connected) child.send(message)
}

/** Child side: the engine's provider, each call answered by the parent's. */
export class RemoteProvider implements IdentityProvider {
  private next = 0
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void, reject: (err: Error) => void }>()

  constructor (readonly name: ProviderName, readonly capabilities: ProviderCapabilities) {
    if (process.send === undefined) throw new Error('RemoteProvider runs in a child process with an IPC channel')
    process.on('message', (message: Partial<AnswerMessage>) => {
      if (message.kind !== 'provider-answer' || message.id === undefined) return
      const waiter = this.waiting.get(message.id)
      if (waiter === undefined) return
      this.waiting.delete(message.id)
      const { error } = message
      if (error === undefined) waiter.resolve(message.value)
      else waiter.reject(new ProviderError(error.message, error.retryable, error.retryAfterMs, error.code))
    })
  }

  async listUsers (cursor: string | null): Promise<ProviderPage> {
    return await this.call('listUsers', cursor) as ProviderPage
  }

  async registrationStatus (subject: ProviderSubject): Promise<RegistrationStatus> {
    return await this.call('registrationStatus', subject) as RegistrationStatus
  }

  async enforcementState (subject: ProviderSubject): Promise<EnforcementState> {
    return await this.call('enforcementState', subject) as EnforcementState
  }

  async enforce (subject: ProviderSubject): Promise<EnforcementOutcome> {
    return await this.call('enforce', subject) as EnforcementOutcome
  }

  async relax (subject: ProviderSubject): Promise<EnforcementOutcome> {
    return await this.call('relax', subject) as EnforcementOutcome
  }

  private call (op: Op, arg: unknown): Promise<unknown> {
    const id = this.next++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      process.send!({ kind: 'provider-call', id, op, arg } satisfies CallMessage)
    })
  }
}
