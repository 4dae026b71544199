import { execFile } from 'node:child_process'
import { rmSync } from 'node:fs'
import type { TestContext } from 'node:test'
import { fileURLToPath } from 'node:url'
import { TEST_SECRETS, tempDir } from './app.ts'

const BIN = fileURLToPath(new URL('../../bin/mfa-rollout.js', import.meta.url))

// The developer's own shell must not steer a test: drop what loadConfig reads (and the test runner's marker).
const INHERITED_OUT = [
  'NODE_ENV', 'DATA_DIR', 'DATABASE_FILE', 'DATABASE_URL', 'SESSION_SECRET', 'ENCRYPTION_KEY', 'PUBLIC_URL', 'PROVIDERS', 'HOST', 'PORT',
  'PHONE_DEFAULT_REGION', 'LOG_LEVEL', 'TRUST_PROXY', 'METRICS_TOKEN', 'NODE_TEST_CONTEXT', 'NODE_OPTIONS',
  'ENCRYPTION_KEYS_PREVIOUS', 'TRUSTED_NETWORKS', 'TOTP_ISSUER', 'ORGANIZATION_NAME', 'SMTP_URL', 'SMS_PROVIDER', 'PHONE_SOURCE',
  'AUDIT_KEY', 'AUDIT_ANCHOR_URL', 'AUDIT_ANCHOR_EVERY'
]

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export interface CliOptions {
  /** DATA_DIR of the run, also its working directory (the CLI must not depend on being run from the repo). */
  dataDir: string
  /** Added to (or, with undefined, removed from) the test environment. */
  env?: Record<string, string | undefined>
  /** Written to the CLI's standard input, which is then closed. */
  input?: string
  /** Killed after this long (default 30 s): a run over thousands of users may need more. */
  timeoutMs?: number
}

/** Runs the real `mfa-rollout` bin in a child process, as an operator would. */
export function runCli (args: string[], { dataDir, env = {}, input = '', timeoutMs = 30_000 }: CliOptions): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([name]) => !INHERITED_OUT.includes(name)))
  const merged = { ...base, NODE_ENV: 'test', DATA_DIR: dataDir, ...TEST_SECRETS, ...env }
  const childEnv = Object.fromEntries(Object.entries(merged).filter((entry): entry is [string, string] => entry[1] !== undefined))
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [BIN, ...args], { cwd: dataDir, env: childEnv, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      if (code === null) reject(err as Error)
      else resolve({ code, stdout, stderr })
    })
    child.stdin?.end(input)
  })
}

/** A fresh DATA_DIR for one test, removed when the test ends. */
export function scratchDir (t: TestContext): string {
  const dir = tempDir('mfa-cli-')
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}
