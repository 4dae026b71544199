import { startFakeIam, type FakeIamOptions } from './server.ts'

/**
 * The fake IAM as a process of its own (a benchmark's stand-in for a remote IAM, so the fake's CPU is not the
 * measured client's). Started with `fork(…, [JSON options])`; seeds `users` users named user00000…, then sends
 * { url, userIds }. Answers { type: 'stats', policyArn } with what the account holds, and { type: 'close' } by exiting.
 */
interface Options extends Pick<FakeIamOptions, 'accessKeyId' | 'rateLimit'> { users: number }

export interface FakeIamStats {
  /** Calls per action: all, answered by IAM itself (not throttled), and successful. */
  actions: Record<string, { calls: number, answered: number, ok: number }>
  throttled: number
  /** Users the policy is attached to. */
  attached: number
  /** Users with more than one successful AttachUserPolicy. */
  attachedTwice: number
}

const options = JSON.parse(process.argv[2] ?? '{}') as Options
const fake = await startFakeIam({ accessKeyId: options.accessKeyId, rateLimit: options.rateLimit })
for (let i = 0; i < options.users; i++) fake.state.addUser({ userName: userName(i), consolePassword: true })

function userName (i: number): string {
  return `user${String(i).padStart(5, '0')}`
}

process.on('message', (message: { type: 'stats', policyArn: string } | { type: 'close' }) => {
  if (message.type === 'close') {
    void fake.close().then(() => process.exit(0))
    return
  }
  const actions: FakeIamStats['actions'] = {}
  const attaches = new Map<string, number>()
  for (const call of fake.calls) {
    const entry = actions[call.action] ??= { calls: 0, answered: 0, ok: 0 }
    entry.calls++
    if (call.code !== 'Throttling' && call.injected === null) entry.answered++
    if (call.status === 200 && call.injected === null) {
      entry.ok++
      if (call.action === 'AttachUserPolicy') attaches.set(call.params.UserName, (attaches.get(call.params.UserName) ?? 0) + 1)
    }
  }
  const stats: FakeIamStats = {
    actions,
    throttled: fake.throttled(),
    attached: [...fake.state.users.values()].filter((u) => u.policies.has(message.policyArn)).length,
    attachedTwice: [...attaches.values()].filter((n) => n > 1).length
  }
  process.send?.(stats)
})

// The users' ids (AIDA…), in seeding order: the portal keys IAM users by id, never by name.
process.send?.({ url: fake.url, userIds: fake.state.userOrder.map((u) => u.userId) })
