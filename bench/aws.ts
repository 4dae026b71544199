import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ProviderError } from '../server/domain/provider.ts'
import { loadAwsConfig } from '../server/providers/aws/config.ts'
import { AwsIamProvider } from '../server/providers/aws/provider.ts'
import type { FakeIamStats } from '../test/fakes/iam/process.ts'

/**
 * Enforcement through the AWS IAM adapter at scale: the deny-unless-MFA policy attached to `users` IAM users
 * (default 10,000) through the real SDK against the fake IAM, run as its own process behind a token-bucket rate
 * limit of RATE_LIMIT calls/s (beyond it: 400 Throttling, as IAM answers). An engine-like driver keeps
 * `--workers` enforce calls going and retries retryable ProviderErrors with backoff, as the sweep does.
 *
 *   npm run bench -- aws [users=10000] [--workers 24] [--concurrency 16] [--max-attempts 2] [--rate 1000]
 *
 * Each enforce is two calls (ListAttachedUserPolicies, then AttachUserPolicy), after one ListUsers walk (pages of 1,000)
 * that tells the adapter each user id's name. RATE_LIMIT is set below what the
 * adapter and SDK can push on this 2-core machine (~1,500 calls/s unthrottled: `--rate 100000`), so the
 * limit binds, yet high enough that each call's CPU, not idle waiting, dominates. achieved_ratio = calls IAM
 * admitted per second / RATE_LIMIT: how much of the account's allowance the adapter and retries put to use.
 * Targets: achieved_ratio >= 0.85, lost 0 (users not attached at the end), duplicated 0 (users attached twice),
 * policy_creates 1.
 */
const RATE_LIMIT = 1_000
const BURST = 100
const ACCOUNT = '123456789012'
const KEYS = { accessKeyId: 'AKIDBENCHIAM00000001', secretAccessKey: 'bench/iam/secret/key/not/a/real/one/00000' }

function log (message: string): void {
  process.stderr.write(`${message}\n`)
}

interface Fake { child: ChildProcess, url: string, userIds: string[] }

async function startFake (users: number, rate: number): Promise<Fake> {
  const script = fileURLToPath(new URL('../test/fakes/iam/process.ts', import.meta.url))
  const child = fork(script, [JSON.stringify({ users, accessKeyId: KEYS.accessKeyId, rateLimit: { perSecond: rate, burst: BURST } })], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const { url, userIds } = await new Promise<{ url: string, userIds: string[] }>((resolve, reject) => {
    child.once('message', (m: { url: string, userIds: string[] }) => resolve(m))
    child.once('exit', (code) => reject(new Error(`fake IAM exited with ${code}`)))
  })
  return { child, url, userIds }
}

async function statsOf (fake: Fake, policyArn: string): Promise<FakeIamStats> {
  fake.child.send({ type: 'stats', policyArn })
  return new Promise((resolve) => fake.child.once('message', (m: FakeIamStats) => resolve(m)))
}

export async function main (args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      workers: { type: 'string', default: '24' },
      concurrency: { type: 'string', default: '16' },
      'max-attempts': { type: 'string', default: '2' },
      rate: { type: 'string', default: String(RATE_LIMIT) }
    }
  })
  const users = Number(positionals[0] ?? 10_000)
  const workers = Number(values.workers)
  const rate = Number(values.rate)

  log(`starting fake IAM with ${users} users, ${rate} calls/s`)
  const fake = await startFake(users, rate)
  const config = loadAwsConfig({
    AWS_IAM_ENABLED: 'true',
    AWS_IAM_ENDPOINT: fake.url,
    AWS_IAM_ACCOUNT_ID: ACCOUNT,
    AWS_IAM_ACCESS_KEY_ID: KEYS.accessKeyId,
    AWS_IAM_SECRET_ACCESS_KEY: KEYS.secretAccessKey,
    AWS_IAM_CONCURRENCY: values.concurrency,
    AWS_IAM_MAX_ATTEMPTS: values['max-attempts']
  })!
  const provider = new AwsIamProvider(config)
  const policyArn = `arn:aws:iam::${ACCOUNT}:policy/${config.policyName}`

  let peakRss = 0
  const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss) }, 250)
  let next = 0
  let done = 0
  let retried = 0
  let failed = 0
  let changed = 0
  const started = performance.now()
  const progress = setInterval(() => log(`${done}/${users} enforced, ${retried} retries, ${((performance.now() - started) / 1000).toFixed(1)} s`), 5_000)

  // The sweep's shape: bounded workers, each user until it succeeds or fails for good, backoff with full jitter.
  const worker = async (): Promise<void> => {
    while (next < users) {
      // Keyed by IAM user id as the engine hands users over; the adapter looks the names up (one ListUsers walk).
      const subject = { userId: String(next), externalId: fake.userIds[next++], email: '', enrolled: false }
      for (let attempt = 1; ; attempt++) {
        try {
          if ((await provider.enforce(subject)).changed) changed++
          done++
          break
        } catch (err) {
          if (!(err instanceof ProviderError) || !err.retryable || attempt >= 10) {
            failed++
            log(`${subject.externalId}: ${err instanceof Error ? err.message : String(err)}`)
            break
          }
          retried++
          const ceiling = Math.min(2_000, 100 * 2 ** (attempt - 1))
          await new Promise((resolve) => setTimeout(resolve, Math.max(err.retryAfterMs ?? 0, Math.random() * ceiling)))
        }
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, worker))
  const seconds = (performance.now() - started) / 1000
  clearInterval(progress)
  clearInterval(sampler)

  const stats = await statsOf(fake, policyArn)
  const admitted = Object.values(stats.actions).reduce((sum, a) => sum + a.answered, 0)
  const totalCalls = Object.values(stats.actions).reduce((sum, a) => sum + a.calls, 0)
  provider.close()
  fake.child.send({ type: 'close' })

  const result = {
    bench: 'aws',
    users,
    rate_limit: rate,
    achieved_ratio: Number((admitted / seconds / rate).toFixed(3)),
    seconds: Number(seconds.toFixed(2)),
    users_per_s: Math.round(done / seconds),
    calls: totalCalls,
    admitted_calls_per_s: Math.round(admitted / seconds),
    throttled: stats.throttled,
    engine_retries: retried,
    failed,
    changed,
    lost: users - stats.attached,
    duplicated: stats.attachedTwice,
    policy_creates: stats.actions.CreatePolicy?.ok ?? 0,
    workers,
    concurrency: config.concurrency,
    max_attempts: config.maxAttempts,
    peak_rss_mb: Math.round(peakRss / 1048576)
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}
