import { ConfigError } from '../../config-error.ts'

/**
 * Settings of the AWS IAM provider, read once from the environment.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `AWS_IAM_ENABLED` | `false` | `true` turns the provider on; every other variable is read only then |
 * | `AWS_IAM_REGION` | `AWS_REGION`, else `us-east-1` | signing region (IAM is global: `us-east-1` in the `aws` partition) |
 * | `AWS_IAM_ENDPOINT` | the SDK's | an http(s) URL standing in for IAM (emulators, the test fake) |
 * | `AWS_IAM_ACCESS_KEY_ID`, `AWS_IAM_SECRET_ACCESS_KEY`, `AWS_IAM_SESSION_TOKEN` | unset | explicit keys (both or neither); unset: the SDK's default chain (env, profile, SSO, container/instance role) |
 * | `AWS_IAM_ACCOUNT_ID` | learnt from user ARNs | 12 digits; names the policy ARN before any user is listed |
 * | `AWS_IAM_POLICY_NAME` | `mfa-rollout-force-mfa` | the managed deny-unless-MFA policy the portal creates once and attaches ("console and API": also blocks long-term access keys) |
 * | `AWS_IAM_CONSOLE_ONLY_POLICY_NAME` | `<AWS_IAM_POLICY_NAME>-console-only` | the same policy for campaigns that chose "console only" (requests signed with long-term access keys are not denied) |
 * | `AWS_IAM_POLICY_PATH` | `/` | its IAM path, e.g. `/mfa-rollout/` |
 * | `AWS_IAM_ENFORCEMENT` | `policy` | `policy`: attach the policy to each user; `group`: add users to `AWS_IAM_ENFORCEMENT_GROUP` |
 * | `AWS_IAM_ENFORCEMENT_GROUP` | (required for `group`) | an existing group the operator has attached the policy to |
 * | `AWS_IAM_ADMIN_POLICY_ARNS` | `arn:aws:iam::aws:policy/AdministratorAccess` | comma list; a user with one attached, directly or through any of their groups, is privileged (`none`: no policy makes anyone privileged) |
 * | `AWS_IAM_PRIVILEGED_GROUPS` | none | comma list of group names whose members are privileged |
 * | `AWS_IAM_SYNC` | `login-profile` | `login-profile`: GetLoginProfile per user (fresh); `credential-report`: one report per sync (up to 4 h old, far fewer calls) |
 * | `AWS_IAM_USER_PATH` | `/` | only users under this path prefix are listed, e.g. `/staff/` |
 * | `AWS_IAM_EMAIL_TAG` | `email` | the user tag holding the address (IAM has none); `none`: do not read tags |
 * | `AWS_IAM_PENDING_MFA_MINUTES` | `15` | how long an unconfirmed virtual MFA device lives before cleanup deletes it |
 * | `AWS_IAM_CONCURRENCY` | `8` | IAM calls in flight at once from this process (IAM throttles per account) |
 * | `AWS_IAM_PAGE_SIZE` | `100` | users per listUsers page (1..1000) |
 * | `AWS_IAM_MAX_ATTEMPTS` | `2` | SDK attempts per call before the engine's own retry takes over |
 * | `AWS_IAM_TIMEOUT_SECONDS` | `10` | one IAM request's time limit |
 */
export interface AwsConfig {
  readonly region: string
  readonly endpoint: string | undefined
  /** Explicit keys, or undefined for the SDK's default credential chain. */
  readonly credentials: AwsKeys | undefined
  readonly accountId: string | undefined
  readonly policyName: string
  /** The "console only" variant's policy (campaigns choose per campaign, issue #14 item 11). */
  readonly consoleOnlyPolicyName: string
  readonly policyPath: string
  readonly enforcement: { readonly mode: 'policy' } | { readonly mode: 'group', readonly group: string }
  readonly privileged: {
    readonly adminPolicyArns: readonly string[]
    readonly groups: readonly string[]
  }
  readonly sync: 'login-profile' | 'credential-report'
  readonly userPathPrefix: string
  /** Tag key holding the user's e-mail address, or null to skip ListUserTags. */
  readonly emailTag: string | null
  readonly pendingMfaMs: number
  readonly concurrency: number
  readonly pageSize: number
  readonly maxAttempts: number
  readonly timeoutMs: number
}

export interface AwsKeys {
  readonly accessKeyId: string
  /** Not enumerable, so JSON.stringify, loggers and util.inspect of the config never print it. */
  readonly secretAccessKey: string
  readonly sessionToken?: string
}

type Env = Record<string, string | undefined>

/** Every variable loadAwsConfig reads (server/config.ts warns about unknown AWS_IAM_* names, typos). */
export const AWS_IAM_VARIABLES: readonly string[] = Object.freeze([
  'AWS_IAM_ENABLED', 'AWS_IAM_REGION', 'AWS_REGION', 'AWS_IAM_ENDPOINT', 'AWS_IAM_ACCESS_KEY_ID', 'AWS_IAM_SECRET_ACCESS_KEY',
  'AWS_IAM_SESSION_TOKEN', 'AWS_IAM_ACCOUNT_ID', 'AWS_IAM_POLICY_NAME', 'AWS_IAM_CONSOLE_ONLY_POLICY_NAME', 'AWS_IAM_POLICY_PATH', 'AWS_IAM_ENFORCEMENT',
  'AWS_IAM_ENFORCEMENT_GROUP', 'AWS_IAM_ADMIN_POLICY_ARNS', 'AWS_IAM_PRIVILEGED_GROUPS', 'AWS_IAM_SYNC', 'AWS_IAM_USER_PATH',
  'AWS_IAM_EMAIL_TAG', 'AWS_IAM_PENDING_MFA_MINUTES', 'AWS_IAM_CONCURRENCY', 'AWS_IAM_PAGE_SIZE', 'AWS_IAM_MAX_ATTEMPTS',
  'AWS_IAM_TIMEOUT_SECONDS'
])

export const DEFAULT_POLICY_NAME = 'mfa-rollout-force-mfa'
export const DEFAULT_ADMIN_POLICY_ARNS = ['arn:aws:iam::aws:policy/AdministratorAccess']
// IAM name rules: policy names, group names and tag keys.
const IAM_NAME = /^[\w+=,.@-]{1,128}$/
const IAM_PATH = /^\/(?:[\x21-\x2e\x30-\x7e]+\/)*$/

/** Reads the AWS IAM provider's settings; undefined unless AWS_IAM_ENABLED=true. Throws ConfigError naming the variable. */
export function loadAwsConfig (env: Env = process.env): AwsConfig | undefined {
  const enabled = oneOf(env, 'AWS_IAM_ENABLED', ['true', 'false'], 'false')
  if (enabled !== 'true') return undefined

  const region = text(env, 'AWS_IAM_REGION') ?? text(env, 'AWS_REGION') ?? 'us-east-1'
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new ConfigError(text(env, 'AWS_IAM_REGION') === undefined ? 'AWS_REGION' : 'AWS_IAM_REGION', `expected an AWS region such as us-east-1, got "${region}"`)
  }

  const endpoint = text(env, 'AWS_IAM_ENDPOINT')
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint)) {
    throw new ConfigError('AWS_IAM_ENDPOINT', `expected an http(s) URL such as https://iam.amazonaws.com, got "${endpoint}"`)
  }

  const accountId = text(env, 'AWS_IAM_ACCOUNT_ID')
  if (accountId !== undefined && !/^\d{12}$/.test(accountId)) {
    throw new ConfigError('AWS_IAM_ACCOUNT_ID', 'expected the 12-digit AWS account id')
  }

  const policyName = name(env, 'AWS_IAM_POLICY_NAME') ?? DEFAULT_POLICY_NAME
  const consoleOnlyPolicyName = name(env, 'AWS_IAM_CONSOLE_ONLY_POLICY_NAME') ?? `${policyName.slice(0, 128 - '-console-only'.length)}-console-only`
  if (consoleOnlyPolicyName === policyName) throw new ConfigError('AWS_IAM_CONSOLE_ONLY_POLICY_NAME', 'must differ from AWS_IAM_POLICY_NAME: the two variants are separate policies')
  const policyPath = text(env, 'AWS_IAM_POLICY_PATH') ?? '/'
  if (!IAM_PATH.test(policyPath)) throw new ConfigError('AWS_IAM_POLICY_PATH', `expected an IAM path that starts and ends with /, got "${policyPath}"`)
  const userPathPrefix = text(env, 'AWS_IAM_USER_PATH') ?? '/'
  if (!IAM_PATH.test(userPathPrefix)) throw new ConfigError('AWS_IAM_USER_PATH', `expected an IAM path that starts and ends with /, got "${userPathPrefix}"`)

  const mode = oneOf(env, 'AWS_IAM_ENFORCEMENT', ['policy', 'group'], 'policy')
  let enforcement: AwsConfig['enforcement'] = { mode: 'policy' }
  if (mode === 'group') {
    const group = name(env, 'AWS_IAM_ENFORCEMENT_GROUP')
    if (group === undefined) throw new ConfigError('AWS_IAM_ENFORCEMENT_GROUP', 'required when AWS_IAM_ENFORCEMENT=group: the group carrying the deny-unless-MFA policy')
    enforcement = Object.freeze({ mode: 'group', group })
  }

  const adminPolicyArns = list(env, 'AWS_IAM_ADMIN_POLICY_ARNS') ?? DEFAULT_ADMIN_POLICY_ARNS
  for (const arn of adminPolicyArns) {
    if (!/^arn:aws[\w-]*:iam::(aws|\d{12}):policy\/\S+$/.test(arn)) {
      throw new ConfigError('AWS_IAM_ADMIN_POLICY_ARNS', `expected policy ARNs such as arn:aws:iam::aws:policy/AdministratorAccess, got "${arn}"`)
    }
  }
  const privilegedGroups = list(env, 'AWS_IAM_PRIVILEGED_GROUPS') ?? []
  for (const group of privilegedGroups) {
    if (!IAM_NAME.test(group)) throw new ConfigError('AWS_IAM_PRIVILEGED_GROUPS', `"${group}" is not a valid IAM group name`)
  }

  const emailTagText = name(env, 'AWS_IAM_EMAIL_TAG', ['none']) ?? 'email'

  return Object.freeze({
    region,
    endpoint,
    credentials: keys(env),
    accountId,
    policyName,
    consoleOnlyPolicyName,
    policyPath,
    enforcement,
    privileged: Object.freeze({
      adminPolicyArns: Object.freeze(adminPolicyArns),
      groups: Object.freeze(privilegedGroups)
    }),
    sync: oneOf(env, 'AWS_IAM_SYNC', ['login-profile', 'credential-report'], 'login-profile'),
    userPathPrefix,
    emailTag: emailTagText === 'none' ? null : emailTagText,
    pendingMfaMs: integer(env, 'AWS_IAM_PENDING_MFA_MINUTES', 15, 1, 24 * 60) * 60_000,
    concurrency: integer(env, 'AWS_IAM_CONCURRENCY', 8, 1, 64),
    pageSize: integer(env, 'AWS_IAM_PAGE_SIZE', 100, 1, 1000),
    maxAttempts: integer(env, 'AWS_IAM_MAX_ATTEMPTS', 2, 1, 10),
    timeoutMs: integer(env, 'AWS_IAM_TIMEOUT_SECONDS', 10, 1, 300) * 1000
  })
}

function keys (env: Env): AwsKeys | undefined {
  const accessKeyId = text(env, 'AWS_IAM_ACCESS_KEY_ID')
  const secretAccessKey = text(env, 'AWS_IAM_SECRET_ACCESS_KEY')
  if (accessKeyId === undefined && secretAccessKey === undefined) {
    if (text(env, 'AWS_IAM_SESSION_TOKEN') !== undefined) throw new ConfigError('AWS_IAM_SESSION_TOKEN', 'set only together with AWS_IAM_ACCESS_KEY_ID and AWS_IAM_SECRET_ACCESS_KEY')
    return undefined
  }
  if (accessKeyId === undefined) throw new ConfigError('AWS_IAM_ACCESS_KEY_ID', 'required when AWS_IAM_SECRET_ACCESS_KEY is set (or unset both to use the default credential chain)')
  if (secretAccessKey === undefined) throw new ConfigError('AWS_IAM_SECRET_ACCESS_KEY', 'required when AWS_IAM_ACCESS_KEY_ID is set (or unset both to use the default credential chain)')
  if (!/^[A-Z0-9]{16,128}$/.test(accessKeyId)) throw new ConfigError('AWS_IAM_ACCESS_KEY_ID', 'expected an access key id such as AKIA… (letters and digits)')
  const sessionToken = text(env, 'AWS_IAM_SESSION_TOKEN')
  const result = { accessKeyId, ...(sessionToken === undefined ? {} : { sessionToken }) }
  Object.defineProperty(result, 'secretAccessKey', { value: secretAccessKey, enumerable: false })
  return Object.freeze(result as AwsKeys)
}

function text (env: Env, variable: string): string | undefined {
  const value = env[variable]?.trim()
  return value === undefined || value === '' ? undefined : value
}

function name (env: Env, variable: string, also: string[] = []): string | undefined {
  const value = text(env, variable)
  if (value !== undefined && !IAM_NAME.test(value) && !also.includes(value)) {
    throw new ConfigError(variable, `"${value}" is not a valid IAM name (letters, digits and +=,.@_- up to 128 characters)`)
  }
  return value
}

function list (env: Env, variable: string): string[] | undefined {
  const value = text(env, variable)
  if (value === undefined) return undefined
  if (value === 'none') return []
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '')
}

function oneOf<T extends string> (env: Env, variable: string, allowed: readonly T[], fallback: T): T {
  const value = text(env, variable) ?? fallback
  if (!(allowed as readonly string[]).includes(value)) throw new ConfigError(variable, `expected ${allowed.join(' or ')}, got "${value}"`)
  return value as T
}

function integer (env: Env, variable: string, fallback: number, min: number, max: number): number {
  const value = text(env, variable)
  if (value === undefined) return fallback
  const number = Number(value)
  if (!/^\d+$/.test(value) || number < min || number > max) throw new ConfigError(variable, `expected a whole number from ${min} to ${max}, got "${value}"`)
  return number
}
