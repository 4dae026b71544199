import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { ConfigError } from '../../server/config.ts'
import { loadAwsConfig } from '../../server/providers/aws/config.ts'

const ON = { AWS_IAM_ENABLED: 'true' }

function refusal (env: Record<string, string>): ConfigError {
  try {
    loadAwsConfig({ ...ON, ...env })
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`)
    return err
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`)
}

test('the AWS provider is off unless AWS_IAM_ENABLED=true, whatever else is set', () => {
  assert.equal(loadAwsConfig({}), undefined)
  assert.equal(loadAwsConfig({ AWS_IAM_ENABLED: 'false', AWS_IAM_REGION: 'nowhere' }), undefined)
})

test('enabled with nothing else, the defaults use the SDK credential chain, policy mode and AdministratorAccess as privileged', () => {
  const config = loadAwsConfig(ON)!
  assert.equal(config.region, 'us-east-1')
  assert.equal(config.endpoint, undefined)
  assert.equal(config.credentials, undefined)
  assert.equal(config.policyName, 'mfa-rollout-force-mfa')
  assert.equal(config.consoleOnlyPolicyName, 'mfa-rollout-force-mfa-console-only', 'the "console only" variant is a policy of its own')
  assert.equal(config.policyPath, '/')
  assert.deepEqual(config.enforcement, { mode: 'policy' })
  assert.deepEqual(config.privileged, { adminPolicyArns: ['arn:aws:iam::aws:policy/AdministratorAccess'], groups: [] })
  assert.equal(config.sync, 'login-profile')
  assert.equal(config.emailTag, 'email')
  assert.equal(config.pendingMfaMs, 15 * 60_000)
  assert.equal(config.maxAttempts, 2)
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.privileged))
})

test('every setting can be given', () => {
  const config = loadAwsConfig({
    ...ON,
    AWS_IAM_REGION: 'eu-west-1',
    AWS_IAM_ENDPOINT: 'http://127.0.0.1:4566',
    AWS_IAM_ACCOUNT_ID: '210987654321',
    AWS_IAM_POLICY_NAME: 'Force_MFA',
    AWS_IAM_CONSOLE_ONLY_POLICY_NAME: 'Force_MFA_Console',
    AWS_IAM_POLICY_PATH: '/portal/',
    AWS_IAM_ENFORCEMENT: 'group',
    AWS_IAM_ENFORCEMENT_GROUP: 'RequireMFA',
    AWS_IAM_ADMIN_POLICY_ARNS: 'none',
    AWS_IAM_PRIVILEGED_GROUPS: 'Admins, BreakGlass',
    AWS_IAM_SYNC: 'credential-report',
    AWS_IAM_USER_PATH: '/staff/',
    AWS_IAM_EMAIL_TAG: 'none',
    AWS_IAM_PENDING_MFA_MINUTES: '30',
    AWS_IAM_CONCURRENCY: '4',
    AWS_IAM_PAGE_SIZE: '1000',
    AWS_IAM_MAX_ATTEMPTS: '3',
    AWS_IAM_TIMEOUT_SECONDS: '20'
  })!
  assert.deepEqual({ ...config, privileged: { ...config.privileged } }, {
    region: 'eu-west-1',
    endpoint: 'http://127.0.0.1:4566',
    credentials: undefined,
    accountId: '210987654321',
    policyName: 'Force_MFA',
    consoleOnlyPolicyName: 'Force_MFA_Console',
    policyPath: '/portal/',
    enforcement: { mode: 'group', group: 'RequireMFA' },
    privileged: { adminPolicyArns: [], groups: ['Admins', 'BreakGlass'] },
    sync: 'credential-report',
    userPathPrefix: '/staff/',
    emailTag: null,
    pendingMfaMs: 30 * 60_000,
    concurrency: 4,
    pageSize: 1000,
    maxAttempts: 3,
    timeoutMs: 20_000
  })
})

test('explicit keys are used but never appear when the config is logged or printed', () => {
  const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'
  const config = loadAwsConfig({ ...ON, AWS_IAM_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE', AWS_IAM_SECRET_ACCESS_KEY: secret })!
  assert.equal(config.credentials?.accessKeyId, 'AKIAIOSFODNN7EXAMPLE')
  assert.equal(config.credentials?.secretAccessKey, secret)
  assert.ok(!JSON.stringify(config).includes(secret))
  assert.ok(!inspect(config, { depth: 5 }).includes(secret))
})

test('each bad variable is refused in one line that names it', () => {
  const cases: Array<[Record<string, string>, string]> = [
    [{ AWS_IAM_ENABLED: 'yes' }, 'AWS_IAM_ENABLED'],
    [{ AWS_IAM_REGION: 'Frankfurt' }, 'AWS_IAM_REGION'],
    [{ AWS_REGION: 'moon' }, 'AWS_REGION'],
    [{ AWS_IAM_ENDPOINT: 'iam.local' }, 'AWS_IAM_ENDPOINT'],
    [{ AWS_IAM_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE' }, 'AWS_IAM_SECRET_ACCESS_KEY'],
    [{ AWS_IAM_SECRET_ACCESS_KEY: 'x' }, 'AWS_IAM_ACCESS_KEY_ID'],
    [{ AWS_IAM_SESSION_TOKEN: 'x' }, 'AWS_IAM_SESSION_TOKEN'],
    [{ AWS_IAM_ACCOUNT_ID: '1234' }, 'AWS_IAM_ACCOUNT_ID'],
    [{ AWS_IAM_POLICY_NAME: 'no spaces please' }, 'AWS_IAM_POLICY_NAME'],
    [{ AWS_IAM_POLICY_PATH: 'portal' }, 'AWS_IAM_POLICY_PATH'],
    [{ AWS_IAM_ENFORCEMENT: 'scp' }, 'AWS_IAM_ENFORCEMENT'],
    [{ AWS_IAM_ENFORCEMENT: 'group' }, 'AWS_IAM_ENFORCEMENT_GROUP'],
    [{ AWS_IAM_ADMIN_POLICY_ARNS: 'AdministratorAccess' }, 'AWS_IAM_ADMIN_POLICY_ARNS'],
    [{ AWS_IAM_PRIVILEGED_GROUPS: 'Admins,bad group' }, 'AWS_IAM_PRIVILEGED_GROUPS'],
    [{ AWS_IAM_SYNC: 'scim' }, 'AWS_IAM_SYNC'],
    [{ AWS_IAM_USER_PATH: '/staff' }, 'AWS_IAM_USER_PATH'],
    [{ AWS_IAM_EMAIL_TAG: 'e mail' }, 'AWS_IAM_EMAIL_TAG'],
    [{ AWS_IAM_PENDING_MFA_MINUTES: '0' }, 'AWS_IAM_PENDING_MFA_MINUTES'],
    [{ AWS_IAM_CONCURRENCY: 'lots' }, 'AWS_IAM_CONCURRENCY'],
    [{ AWS_IAM_PAGE_SIZE: '1001' }, 'AWS_IAM_PAGE_SIZE'],
    [{ AWS_IAM_MAX_ATTEMPTS: '0' }, 'AWS_IAM_MAX_ATTEMPTS'],
    [{ AWS_IAM_TIMEOUT_SECONDS: '1.5' }, 'AWS_IAM_TIMEOUT_SECONDS']
  ]
  for (const [env, variable] of cases) {
    const err = refusal(env)
    assert.equal(err.variable, variable, `${JSON.stringify(env)} should name ${variable}, named ${err.variable}`)
    assert.ok(err.message.startsWith(`${variable}: `))
    assert.doesNotMatch(err.message, /\n/)
  }
})
