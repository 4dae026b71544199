import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs'
import { BlockList, isIP, isIPv6 } from 'node:net'
import { createHash } from 'node:crypto'
import path from 'node:path'
import { isSupportedCountry, type CountryCode } from 'libphonenumber-js'
import { ConfigError } from './config-error.ts'
import { isLocale, isTimeZone, LOCALES, type Locale } from './domain/i18n.ts'
import { AWS_IAM_VARIABLES, loadAwsConfig, type AwsConfig } from './providers/aws/config.ts'
import { ENTRA_VARIABLES, loadEntraConfig, type EntraConfig } from './providers/entra/config.ts'

export { ConfigError }

export interface Config {
  readonly env: 'production' | 'development' | 'test'
  readonly production: boolean
  /** No cloud provider configured and not production: demo data, banner, outbox-only mail. */
  readonly sandbox: boolean
  readonly host: string
  readonly port: number
  readonly publicUrl: URL
  readonly dataDir: string
  readonly databaseFile: string
  /** DATABASE_URL: PostgreSQL (postgres://…) shared by several instances; unset: the SQLite file databaseFile. */
  readonly databaseUrl?: string
  readonly sessionSecret: string
  readonly encryptionKey: Buffer
  /** Short fingerprint of the encryption key, stored beside every sealed secret so keys can be rotated. */
  readonly encryptionKeyId: string
  readonly session: {
    readonly cookieName: string
    readonly secureCookie: boolean
    readonly idleMs: number
    readonly absoluteMs: number
  }
  readonly signIn: {
    readonly maxFailuresPerAccount: number
    readonly maxFailuresPerIp: number
    readonly windowMs: number
    readonly lockoutMs: number
    /** How long a device cookie keeps a browser known after its last successful sign-in. */
    readonly deviceLifetimeMs: number
  }
  /**
   * The reverse proxies in front of the portal (TRUST_PROXY): their addresses/CIDRs, or how many there are. The
   * client address is the right-most X-Forwarded-For hop they did not add; false: the socket address.
   */
  readonly trustProxy: TrustProxy
  readonly logLevel: string
  readonly metricsToken: string | undefined
  /**
   * The audit chain's key (AUDIT_KEY; unset: derived from ENCRYPTION_KEY) and where its head is anchored outside the
   * database: the log stream always, AUDIT_ANCHOR_URL when set, every anchorEvery events and at least hourly.
   */
  readonly audit: { readonly key: Buffer | undefined, readonly anchorUrl: string | undefined, readonly anchorEvery: number }
  readonly providers: readonly string[]
  /** Set when PROVIDERS names entra (ENTRA_* variables; see server/providers/entra/config.ts). */
  readonly entra: EntraConfig | undefined
  /** Set when PROVIDERS names aws (AWS_IAM_* variables; see server/providers/aws/config.ts). */
  readonly aws: AwsConfig | undefined
  /** Region assumed for phone numbers written without a +country prefix. */
  readonly phoneDefaultRegion: CountryCode
  /** `directory`: users confirm the number from their directory record and cannot type another. */
  readonly phoneSource: 'self' | 'directory'
  /** Keys that sealed secrets may still be under, until `mfa-rollout rotate-key` re-seals them. */
  readonly previousEncryptionKeys: readonly Buffer[]
  readonly webauthn: {
    readonly rpId: string
    readonly rpName: string
    readonly origin: string
    /** AAGUIDs privileged users' passkeys must come from (attestation requested); empty = any. */
    readonly privilegedAaguids: readonly string[]
    /** FIDO_MDS_FILE: the FIDO Metadata Service BLOB (a signed JWT) that proves those AAGUIDs by attestation. */
    readonly metadataFile: string | undefined
    /** FIDO_MDS_ROOT_CERT: PEM of the root the BLOB must chain to; unset: the FIDO Alliance's (built in). */
    readonly metadataRoot: string | undefined
  }
  readonly totpIssuer: string
  /**
   * The language for people whose browser asks for none the portal speaks (DEFAULT_LOCALE, 'en' or 'de'), and the
   * time zone for people the portal has not learned one for yet, and for e-mails to them (DEFAULT_TIME_ZONE).
   */
  readonly defaultLocale: Locale
  readonly defaultTimeZone: string
  /** CIDRs from which a user may add a first method without a temporary access pass. */
  readonly trustedNetworks: readonly string[]
  /** How recent a step-up must be to add or remove a method when one already exists. */
  readonly stepUpMs: number
  /** Helpdesk-issued temporary access passes: lifetime bounds and default, in minutes (Entra's defaults). */
  readonly accessPass: { readonly minMinutes: number, readonly defaultMinutes: number, readonly maxMinutes: number }
  /** After a helpdesk reset, how long the user may set up a first method again from anywhere. */
  readonly resetWindowMs: number
  /**
   * Two-person rule: a pass, reset or invitation for a privileged or staff account is a request that a second
   * administrator approves before it takes effect; requests lapse after requestLifetimeMs.
   */
  readonly twoPersonRule: { readonly enabled: boolean, readonly requestLifetimeMs: number }
  /** Helpdesk and admin accounts that hold a passkey must use it to sign in and to confirm actions. */
  readonly staffPasskeyRequired: boolean
  /** PASSWORD_SIGNIN=false turns local password sign-in off (users sign in with Microsoft, a passkey or a pass). */
  readonly passwordSignIn: boolean
  /** Whether a phone (SMS) counts toward being enrolled. */
  readonly smsCounts: boolean
  /** How often the server sweeps (0: never; run `mfa-rollout sweep` from cron instead). */
  readonly sweepIntervalMs: number
  readonly mail: { readonly smtpUrl: string | undefined, readonly from: string }
  readonly sms: {
    readonly provider: 'outbox' | 'twilio' | 'aws-sns'
    readonly twilio: { readonly accountSid: string, readonly authToken: string, readonly from: string, readonly baseUrl: string } | undefined
    readonly sns: { readonly region: string, readonly endpoint: string | undefined } | undefined
  }
  /**
   * Toll-fraud limits on text messages: the countries codes may be texted to (SMS_ALLOWED_COUNTRIES, default the
   * PHONE_DEFAULT_REGION only) and hourly caps per number, per client address (IPv6 by /64) and for the portal.
   */
  readonly smsLimits: {
    readonly allowedCountries: readonly CountryCode[]
    readonly perNumberPerHour: number
    readonly perAddressPerHour: number
    readonly perHour: number
  }
  /** Non-fatal remarks made while loading (sandbox defaults); logged once at start. */
  readonly warnings: readonly string[]
}

export type TrustProxy = false | { readonly proxies: readonly string[] } | { readonly hops: number }

type Env = Record<string, string | undefined>

/** Every variable loadConfig reads itself; the providers list theirs beside their loaders. */
const PORTAL_VARIABLES = [
  'NODE_ENV', 'PORT', 'HOST', 'DATA_DIR', 'DATABASE_FILE', 'DATABASE_URL', 'PUBLIC_URL', 'SESSION_SECRET', 'ENCRYPTION_KEY', 'ENCRYPTION_KEYS_PREVIOUS',
  'SESSION_IDLE_MINUTES', 'SESSION_ABSOLUTE_HOURS', 'SIGNIN_MAX_FAILURES', 'SIGNIN_MAX_FAILURES_PER_IP', 'SIGNIN_LOCKOUT_MINUTES',
  'TRUST_PROXY', 'TRUSTED_NETWORKS', 'LOG_LEVEL', 'METRICS_TOKEN', 'PROVIDERS', 'PHONE_DEFAULT_REGION', 'PHONE_SOURCE',
  'ORGANIZATION_NAME', 'RP_ID', 'PRIVILEGED_AAGUIDS', 'FIDO_MDS_FILE', 'FIDO_MDS_ROOT_CERT', 'TOTP_ISSUER', 'STEP_UP_MINUTES',
  'ACCESS_PASS_MIN_MINUTES', 'ACCESS_PASS_DEFAULT_MINUTES', 'ACCESS_PASS_MAX_MINUTES', 'RESET_WINDOW_DAYS', 'TWO_PERSON_RULE',
  'TWO_PERSON_REQUEST_HOURS', 'STAFF_PASSKEY_REQUIRED', 'PASSWORD_SIGNIN', 'SMS_COUNTS', 'SWEEP_INTERVAL', 'SMTP_URL', 'MAIL_FROM',
  'SMS_PROVIDER', 'TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_FROM', 'TWILIO_BASE_URL', 'SNS_REGION', 'SNS_ENDPOINT',
  'SMS_ALLOWED_COUNTRIES', 'SMS_MAX_PER_NUMBER_PER_HOUR', 'SMS_MAX_PER_ADDRESS_PER_HOUR', 'SMS_MAX_PER_HOUR',
  'AUDIT_KEY', 'AUDIT_ANCHOR_URL', 'AUDIT_ANCHOR_EVERY', 'DEFAULT_LOCALE', 'DEFAULT_TIME_ZONE'
]

/** The one list of variables the portal knows: its own and each provider's. */
export const KNOWN_VARIABLES: ReadonlySet<string> = new Set([...PORTAL_VARIABLES, ...ENTRA_VARIABLES, ...AWS_IAM_VARIABLES])

/** Settings that were removed, with what took their place: named at start rather than silently ignored. */
const RETIRED_VARIABLES: Readonly<Record<string, string>> = {
  AWS_IAM_PRIVILEGED_NEED_FIDO: 'which methods privileged users need is the campaign\'s "privileged users need" setting, for every directory alike (a passkey or security key by default)'
}

/**
 * Beginnings that only this portal's settings have. An unknown variable that starts with one is almost surely a
 * typo (ENTRA_TENNANT_ID); anything else in the environment (PATH, NODE_OPTIONS, AWS_REGION, DATABASE_URL) belongs
 * to someone else and is none of the portal's business.
 */
const PROJECT_PREFIXES = [
  'ENTRA_', 'AWS_IAM_', 'SMS_', 'SMTP_', 'MAIL_', 'TWILIO_', 'SNS_', 'SESSION_', 'SIGNIN_', 'ACCESS_PASS_', 'TRUST', 'PHONE_',
  'TWO_PERSON_', 'FIDO_', 'METRICS_', 'ENCRYPTION_', 'PRIVILEGED_', 'STAFF_', 'PASSWORD_', 'SWEEP_', 'RESET_WINDOW', 'STEP_UP_',
  'TOTP_', 'RP_', 'PROVIDER', 'ORGANIZATION_', 'AUDIT_'
]

/** Warnings about variables set in the environment that the portal does not read: typos, and removed settings. */
export function unknownVariableWarnings (env: Env): string[] {
  const names = Object.keys(env).filter((name) => env[name] !== undefined)
  const retired = names.filter((name) => Object.hasOwn(RETIRED_VARIABLES, name)).sort()
  const unknown = names.filter((name) => !KNOWN_VARIABLES.has(name) && !Object.hasOwn(RETIRED_VARIABLES, name) && PROJECT_PREFIXES.some((prefix) => name.startsWith(prefix))).sort()
  return [
    ...(unknown.length === 0 ? [] : [`unknown environment variables ignored (not settings this portal reads; check the spelling): ${unknown.join(', ')}`]),
    ...retired.map((name) => `${name} is no longer read: ${RETIRED_VARIABLES[name]}`)
  ]
}

const KNOWN_PROVIDERS = ['entra', 'aws']
// Loopback and private ranges: where a sandbox's users sit. Anything else (production, or a directory connected)
// starts with none.
const SANDBOX_TRUSTED_NETWORKS = ['127.0.0.0/8', '::1/128', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7']
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/**
 * Reads the environment once into a frozen Config. Throws ConfigError naming the first bad variable.
 * Outside production, missing secrets are generated once and kept in DATA_DIR so restarts keep sessions
 * and sealed secrets readable.
 */
export function loadConfig (env: Env = process.env): Config {
  const warnings: string[] = unknownVariableWarnings(env)
  const nodeEnv = env.NODE_ENV ?? 'development'
  if (!['production', 'development', 'test'].includes(nodeEnv)) {
    throw new ConfigError('NODE_ENV', 'expected production, development or test')
  }
  const production = nodeEnv === 'production'

  const port = integer(env, 'PORT', 3000, 0, 65535)
  const host = nonEmpty(env, 'HOST') ?? 'localhost'
  const dataDir = path.resolve(nonEmpty(env, 'DATA_DIR') ?? './data')

  const publicUrlText = nonEmpty(env, 'PUBLIC_URL')
  if (production && publicUrlText === undefined) {
    throw new ConfigError('PUBLIC_URL', 'required in production: the https address users open, e.g. https://mfa.example.org')
  }
  const publicUrl = parseUrl(publicUrlText ?? `http://localhost:${port === 0 ? 3000 : port}`)

  let sessionSecret = nonEmpty(env, 'SESSION_SECRET')
  if (sessionSecret !== undefined && sessionSecret.length < 32) {
    throw new ConfigError('SESSION_SECRET', 'must be at least 32 characters of random text')
  }
  const encryptionKeyText = nonEmpty(env, 'ENCRYPTION_KEY')
  let encryptionKey = encryptionKeyText === undefined ? undefined : parseKey(encryptionKeyText)
  if (production) {
    if (sessionSecret === undefined) {
      throw new ConfigError('SESSION_SECRET', 'required in production: at least 32 characters of random text')
    }
    if (encryptionKey === undefined) {
      throw new ConfigError('ENCRYPTION_KEY', 'required in production: 32 random bytes as base64 or 64 hex characters (openssl rand -base64 32)')
    }
  }

  const providers = list(env.PROVIDERS)
  for (const name of providers) {
    if (!KNOWN_PROVIDERS.includes(name)) {
      throw new ConfigError('PROVIDERS', `unknown provider "${name}"; expected a comma-separated list of ${KNOWN_PROVIDERS.join(', ')}`)
    }
  }

  if (sessionSecret === undefined || encryptionKey === undefined) {
    const generated = developmentSecrets(dataDir)
    sessionSecret ??= generated.sessionSecret
    encryptionKey ??= parseKey(generated.encryptionKey)
    warnings.push(`development defaults in use: SESSION_SECRET and ENCRYPTION_KEY were generated and kept in ${generated.file}; set both (and PUBLIC_URL) for production`)
  }

  const region = (nonEmpty(env, 'PHONE_DEFAULT_REGION') ?? 'US').toUpperCase()
  if (!isSupportedCountry(region)) {
    throw new ConfigError('PHONE_DEFAULT_REGION', `expected a two-letter country code such as US, GB or DE, got "${region}"`)
  }

  const phoneSource = nonEmpty(env, 'PHONE_SOURCE') ?? 'self'
  if (phoneSource !== 'self' && phoneSource !== 'directory') {
    throw new ConfigError('PHONE_SOURCE', `expected self or directory, got "${phoneSource}"`)
  }
  const previousEncryptionKeys = list(env.ENCRYPTION_KEYS_PREVIOUS).map((text) => {
    try {
      return parseKey(text)
    } catch {
      throw new ConfigError('ENCRYPTION_KEYS_PREVIOUS', 'expected a comma-separated list of keys in the same form as ENCRYPTION_KEY')
    }
  })
  const sandbox = !production && providers.length === 0
  // A trusted network lets a signed-in password set up the first method: outside the sandbox only the operator
  // names them, never a default (NODE_ENV alone must not decide that private ranges are the office).
  const trustedNetworks = env.TRUSTED_NETWORKS === undefined
    ? (sandbox ? SANDBOX_TRUSTED_NETWORKS : [])
    : list(env.TRUSTED_NETWORKS)
  for (const cidr of trustedNetworks) {
    if (!isCidr(cidr, false)) {
      throw new ConfigError('TRUSTED_NETWORKS', `expected a comma-separated list of CIDRs such as 10.0.0.0/8, got "${cidr}"`)
    }
  }
  const trustProxy = parseTrustProxy(env.TRUST_PROXY)
  if (trustProxy !== false && 'proxies' in trustProxy) warnings.push(...proxiesOnTrustedNetworks(trustProxy.proxies, trustedNetworks))
  const accessPass = {
    minMinutes: integer(env, 'ACCESS_PASS_MIN_MINUTES', 60, 10, 43_200),
    defaultMinutes: integer(env, 'ACCESS_PASS_DEFAULT_MINUTES', 60, 10, 43_200),
    maxMinutes: integer(env, 'ACCESS_PASS_MAX_MINUTES', 480, 10, 43_200)
  }
  if (accessPass.minMinutes > accessPass.defaultMinutes || accessPass.defaultMinutes > accessPass.maxMinutes) {
    throw new ConfigError('ACCESS_PASS_DEFAULT_MINUTES', `expected ACCESS_PASS_MIN_MINUTES <= ACCESS_PASS_DEFAULT_MINUTES <= ACCESS_PASS_MAX_MINUTES, got ${accessPass.minMinutes}, ${accessPass.defaultMinutes}, ${accessPass.maxMinutes}`)
  }
  const rpName = nonEmpty(env, 'ORGANIZATION_NAME') ?? 'MFA enrollment'
  const smsProvider = nonEmpty(env, 'SMS_PROVIDER') ?? 'outbox'
  if (!['outbox', 'twilio', 'aws-sns'].includes(smsProvider)) {
    throw new ConfigError('SMS_PROVIDER', `expected outbox, twilio or aws-sns, got "${smsProvider}"`)
  }
  const required = (name: string, why: string): string => {
    const value = nonEmpty(env, name)
    if (value === undefined) throw new ConfigError(name, `required ${why}`)
    return value
  }
  const twilio = smsProvider === 'twilio'
    ? {
        accountSid: required('TWILIO_ACCOUNT_SID', 'when SMS_PROVIDER=twilio'),
        authToken: required('TWILIO_AUTH_TOKEN', 'when SMS_PROVIDER=twilio'),
        from: required('TWILIO_FROM', 'when SMS_PROVIDER=twilio: the sending number in E.164 or a messaging service SID'),
        baseUrl: nonEmpty(env, 'TWILIO_BASE_URL') ?? 'https://api.twilio.com'
      }
    : undefined
  const sns = smsProvider === 'aws-sns'
    ? { region: required('SNS_REGION', 'when SMS_PROVIDER=aws-sns'), endpoint: nonEmpty(env, 'SNS_ENDPOINT') }
    : undefined
  const smtpUrl = nonEmpty(env, 'SMTP_URL')
  if (smtpUrl !== undefined && !/^smtps?:\/\//.test(smtpUrl)) {
    throw new ConfigError('SMTP_URL', 'expected smtp://user:pass@host:port or smtps://…')
  }

  const defaultLocale = nonEmpty(env, 'DEFAULT_LOCALE') ?? 'en'
  if (!isLocale(defaultLocale)) {
    throw new ConfigError('DEFAULT_LOCALE', `expected one of the shipped languages ${LOCALES.join(', ')}, got "${defaultLocale}"`)
  }
  const defaultTimeZone = nonEmpty(env, 'DEFAULT_TIME_ZONE') ?? 'UTC'
  if (!isTimeZone(defaultTimeZone)) {
    throw new ConfigError('DEFAULT_TIME_ZONE', `expected an IANA time zone such as Europe/Berlin or America/New_York, got "${defaultTimeZone}"`)
  }

  const logLevel = nonEmpty(env, 'LOG_LEVEL') ?? (nodeEnv === 'test' ? 'silent' : 'info')
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `expected one of ${LOG_LEVELS.join(', ')}`)
  }

  const config: Config = {
    env: nodeEnv as Config['env'],
    production,
    sandbox,
    host,
    port,
    publicUrl,
    dataDir,
    databaseFile: path.resolve(dataDir, nonEmpty(env, 'DATABASE_FILE') ?? 'mfa-rollout.db'),
    databaseUrl: databaseUrl(env),
    sessionSecret,
    encryptionKey,
    encryptionKeyId: createHash('sha256').update(encryptionKey).digest('hex').slice(0, 8),
    session: {
      cookieName: 'mfa_session',
      secureCookie: publicUrl.protocol === 'https:',
      idleMs: integer(env, 'SESSION_IDLE_MINUTES', 30, 1, 24 * 60) * 60_000,
      absoluteMs: integer(env, 'SESSION_ABSOLUTE_HOURS', 12, 1, 24 * 30) * 3_600_000
    },
    signIn: {
      maxFailuresPerAccount: integer(env, 'SIGNIN_MAX_FAILURES', 5, 1, 100),
      // Counts only browsers without a device cookie for the account (domain/signin.ts), so it can be high: it
      // stops one address spraying many accounts, not people who share an office's address.
      maxFailuresPerIp: integer(env, 'SIGNIN_MAX_FAILURES_PER_IP', 100, 1, 10_000),
      windowMs: 60_000,
      lockoutMs: integer(env, 'SIGNIN_LOCKOUT_MINUTES', 15, 1, 24 * 60) * 60_000,
      deviceLifetimeMs: 180 * 86_400_000
    },
    trustProxy,
    logLevel,
    metricsToken: nonEmpty(env, 'METRICS_TOKEN'),
    audit: {
      key: keyOf(env, 'AUDIT_KEY'),
      anchorUrl: httpUrl(env, 'AUDIT_ANCHOR_URL'),
      anchorEvery: integer(env, 'AUDIT_ANCHOR_EVERY', 1000, 1, 1_000_000)
    },
    providers,
    entra: providers.includes('entra') ? requireProvider('entra', loadEntraConfig(env), 'ENTRA_TENANT_ID') : undefined,
    aws: providers.includes('aws') ? loadAwsConfig({ ...env, AWS_IAM_ENABLED: 'true' }) : undefined,
    phoneDefaultRegion: region,
    phoneSource,
    previousEncryptionKeys,
    webauthn: {
      rpId: nonEmpty(env, 'RP_ID') ?? publicUrl.hostname,
      rpName,
      origin: publicUrl.origin,
      privilegedAaguids: list(env.PRIVILEGED_AAGUIDS).map((a) => a.toLowerCase()),
      ...fidoMetadata(env, sandbox)
    },
    totpIssuer: nonEmpty(env, 'TOTP_ISSUER') ?? rpName,
    defaultLocale,
    defaultTimeZone,
    trustedNetworks,
    stepUpMs: integer(env, 'STEP_UP_MINUTES', 10, 1, 60) * 60_000,
    accessPass,
    resetWindowMs: integer(env, 'RESET_WINDOW_DAYS', 3, 1, 30) * 86_400_000,
    twoPersonRule: {
      enabled: flag(env, 'TWO_PERSON_RULE', true),
      requestLifetimeMs: integer(env, 'TWO_PERSON_REQUEST_HOURS', 24, 1, 24 * 7) * 3_600_000
    },
    staffPasskeyRequired: flag(env, 'STAFF_PASSKEY_REQUIRED', true),
    passwordSignIn: flag(env, 'PASSWORD_SIGNIN', true),
    smsCounts: flag(env, 'SMS_COUNTS', true),
    sweepIntervalMs: integer(env, 'SWEEP_INTERVAL', 5, 0, 24 * 60) * 60_000,
    mail: { smtpUrl, from: nonEmpty(env, 'MAIL_FROM') ?? `${rpName} <no-reply@${publicUrl.hostname}>` },
    sms: { provider: smsProvider as Config['sms']['provider'], twilio, sns },
    smsLimits: {
      allowedCountries: smsAllowedCountries(env, region),
      perNumberPerHour: integer(env, 'SMS_MAX_PER_NUMBER_PER_HOUR', 5, 1, 1000),
      perAddressPerHour: integer(env, 'SMS_MAX_PER_ADDRESS_PER_HOUR', 20, 1, 100_000),
      perHour: integer(env, 'SMS_MAX_PER_HOUR', 500, 1, 1_000_000)
    },
    warnings
  }
  // Without passwords, Microsoft sign-in must exist, or nobody without a passkey yet could get in at all.
  if (!config.passwordSignIn && config.entra?.signIn === undefined) {
    throw new ConfigError('PASSWORD_SIGNIN', 'false needs "Sign in with Microsoft": add entra to PROVIDERS and set ENTRA_REDIRECT_URI')
  }
  if (production && !config.session.secureCookie) {
    throw new ConfigError('PUBLIC_URL', 'must be an https:// address in production (session cookies are Secure)')
  }
  return deepFreeze(config)
}

/**
 * SMS_ALLOWED_COUNTRIES: two-letter codes of the countries whose mobile numbers may be texted. By default only the
 * PHONE_DEFAULT_REGION's country: toll fraud pays out on numbers abroad, so every other country is the operator's
 * explicit choice.
 */
function smsAllowedCountries (env: Env, region: CountryCode): CountryCode[] {
  const codes = list(env.SMS_ALLOWED_COUNTRIES).map((code) => code.toUpperCase())
  for (const code of codes) {
    if (!isSupportedCountry(code)) throw new ConfigError('SMS_ALLOWED_COUNTRIES', `expected a comma-separated list of two-letter country codes such as US,CA,GB, got "${code}"`)
  }
  return codes.length === 0 ? [region] : [...new Set(codes)] as CountryCode[]
}

/**
 * FIDO_MDS_FILE and FIDO_MDS_ROOT_CERT. With PRIVILEGED_AAGUIDS the AAGUID must be proven by attestation against
 * the metadata, or the allow-list only checks what an authenticator claims; so outside the sandbox it is required.
 */
function fidoMetadata (env: Env, sandbox: boolean): { metadataFile: string | undefined, metadataRoot: string | undefined } {
  const file = nonEmpty(env, 'FIDO_MDS_FILE')
  if (file === undefined && list(env.PRIVILEGED_AAGUIDS).length > 0 && !sandbox) {
    throw new ConfigError('FIDO_MDS_FILE', 'required when PRIVILEGED_AAGUIDS is set: the path of the FIDO Metadata Service BLOB downloaded from https://mds3.fidoalliance.org/')
  }
  if (file !== undefined && !existsSync(file)) throw new ConfigError('FIDO_MDS_FILE', `no such file: ${file}`)
  const rootFile = nonEmpty(env, 'FIDO_MDS_ROOT_CERT')
  const root = rootFile !== undefined && existsSync(rootFile) ? readFileSync(rootFile, 'utf8') : undefined
  if (rootFile !== undefined && root?.includes('-----BEGIN CERTIFICATE-----') !== true) {
    throw new ConfigError('FIDO_MDS_ROOT_CERT', `expected a PEM certificate file, got ${rootFile}`)
  }
  return { metadataFile: file === undefined ? undefined : path.resolve(file), metadataRoot: root }
}

/** DATABASE_URL, when set: a postgres:// or postgresql:// URL (its password is never repeated in an error). */
function databaseUrl (env: Env): string | undefined {
  const text = nonEmpty(env, 'DATABASE_URL')
  if (text === undefined) return undefined
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ConfigError('DATABASE_URL', 'expected a PostgreSQL URL such as postgres://portal:password@db.example.org:5432/mfa')
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError('DATABASE_URL', `expected a postgres:// URL, not ${url.protocol}//… (leave DATABASE_URL unset for the SQLite file in DATA_DIR)`)
  }
  if (url.pathname.length <= 1) throw new ConfigError('DATABASE_URL', 'name the database in the URL, e.g. postgres://portal@db.example.org/mfa')
  return text
}

function nonEmpty (env: Env, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

function requireProvider<T> (name: string, config: T | undefined, variable: string): T {
  if (config === undefined) throw new ConfigError(variable, `required when PROVIDERS includes ${name}`)
  return config
}

function integer (env: Env, name: string, fallback: number, min: number, max: number): number {
  const text = nonEmpty(env, name)
  if (text === undefined) return fallback
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${text}"`)
  }
  return value
}

function flag (env: Env, name: string, fallback: boolean): boolean {
  const text = nonEmpty(env, name)
  if (text === undefined) return fallback
  if (text !== 'true' && text !== 'false') throw new ConfigError(name, `expected true or false, got "${text}"`)
  return text === 'true'
}

function parseUrl (text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ConfigError('PUBLIC_URL', `expected an absolute http(s) URL, got "${text}"`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ConfigError('PUBLIC_URL', `expected an http:// or https:// URL, got "${text}"`)
  }
  return url
}

function keyOf (env: Env, name: string): Buffer | undefined {
  const text = nonEmpty(env, name)
  if (text === undefined) return undefined
  try {
    return parseKey(text)
  } catch {
    throw new ConfigError(name, 'expected 32 random bytes as base64 or 64 hex characters (openssl rand -base64 32)')
  }
}

function httpUrl (env: Env, name: string): string | undefined {
  const text = nonEmpty(env, name)
  if (text === undefined) return undefined
  let url: URL | undefined
  try { url = new URL(text) } catch {}
  if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new ConfigError(name, `expected an http:// or https:// URL, got "${text}"`)
  return url.toString()
}

function parseKey (text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64')
  if (key.length !== 32 || (!/^[0-9a-fA-F]{64}$/.test(text) && key.toString('base64') !== text)) {
    throw new ConfigError('ENCRYPTION_KEY', 'expected 32 random bytes as base64 or 64 hex characters (openssl rand -base64 32)')
  }
  return key
}

/**
 * TRUST_PROXY: a list of proxy addresses/CIDRs, or a hop count. "true" is refused: Fastify would then take the
 * left-most X-Forwarded-For entry, which the client writes itself, as the client address.
 */
function parseTrustProxy (text: string | undefined): TrustProxy {
  const value = text?.trim() ?? ''
  if (value === '' || value === 'false' || /^0+$/.test(value)) return false
  if (value === 'true') {
    throw new ConfigError('TRUST_PROXY', 'true would believe any address a client writes in X-Forwarded-For; list the proxy addresses or CIDRs in front of the portal (e.g. 10.20.0.5,10.20.0.6) or give the number of proxies (e.g. 1)')
  }
  if (/^\d+$/.test(value)) {
    if (Number(value) > 10) throw new ConfigError('TRUST_PROXY', `expected a number of proxies from 1 to 10, got "${value}"`)
    return { hops: Number(value) }
  }
  const proxies = list(value)
  for (const entry of proxies) {
    if (!isCidr(entry, true)) {
      throw new ConfigError('TRUST_PROXY', `expected false, a comma-separated list of proxy IPs/CIDRs or a number of proxies, got "${entry}"`)
    }
  }
  return { proxies }
}

function isCidr (text: string, addressAlone: boolean): boolean {
  const [address, prefix, extra] = text.split('/')
  const family = isIP(address)
  if (family === 0 || extra !== undefined) return false
  if (prefix === undefined) return addressAlone
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32)
}

/**
 * A trusted network that holds a proxy makes everyone look "on the office network" whenever the proxy's own
 * address is taken as the client's (a request without X-Forwarded-For, a proxy that does not add it).
 * CIDR ranges are nested or apart, so two overlap exactly when one holds an address of the other.
 */
function proxiesOnTrustedNetworks (proxies: readonly string[], trustedNetworks: readonly string[]): string[] {
  const warnings: string[] = []
  for (const cidr of trustedNetworks) {
    const trusted = blockListOf(cidr)
    for (const proxy of proxies) {
      const proxyAddress = proxy.split('/')[0]
      if (trusted.check(proxyAddress, familyOf(proxyAddress)) || blockListOf(proxy).check(cidr.split('/')[0], familyOf(cidr))) {
        warnings.push(`TRUSTED_NETWORKS: ${cidr} contains the proxy ${proxy} (TRUST_PROXY); a request that reaches the portal with the proxy's address would count as on the trusted network. Keep proxies out of TRUSTED_NETWORKS.`)
      }
    }
  }
  return warnings
}

function familyOf (cidrOrAddress: string): 'ipv4' | 'ipv6' {
  return isIPv6(cidrOrAddress.split('/')[0]) ? 'ipv6' : 'ipv4'
}

function blockListOf (cidrOrAddress: string): BlockList {
  const [address, prefix] = cidrOrAddress.split('/')
  const family = familyOf(address)
  const blockList = new BlockList()
  blockList.addSubnet(address, prefix === undefined ? (family === 'ipv6' ? 128 : 32) : Number(prefix), family)
  return blockList
}

/**
 * Fastify's trustProxy for the setting. A hop count is given as "the first n hops from the socket are proxies":
 * Fastify 5 takes a bare number as trusting no hop at all, which would make every user look like the proxy.
 */
export function fastifyTrustProxy (setting: TrustProxy): false | string[] | ((address: string, hop: number) => boolean) {
  if (setting === false) return false
  if ('proxies' in setting) return [...setting.proxies]
  const { hops } = setting
  return (_address, hop) => hop < hops
}

function list (text: string | undefined): string[] {
  return (text ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
}

/**
 * Secrets generated for development and kept in DATA_DIR, so sessions and sealed secrets survive a restart. A file
 * that cannot be read, parsed or written is a ConfigError naming it and what to do, never a stack trace.
 */
function developmentSecrets (dataDir: string): { file: string, sessionSecret: string, encryptionKey: string } {
  const file = path.join(dataDir, 'development-secrets.json')
  const keepOrReplace = 'Restore it, or set SESSION_SECRET and ENCRYPTION_KEY; deleting it generates new ones (everyone is signed out and secrets sealed with the old key can no longer be opened)'
  if (existsSync(file)) {
    let saved: unknown
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'))
    } catch (err) {
      throw new ConfigError(file, `${err instanceof SyntaxError ? 'is not valid JSON' : `cannot be read (${fileProblem(err)})`}. ${keepOrReplace}`)
    }
    const { sessionSecret, encryptionKey } = (saved ?? {}) as Record<string, unknown>
    if (typeof sessionSecret !== 'string' || sessionSecret.length < 32 || typeof encryptionKey !== 'string') {
      throw new ConfigError(file, `does not hold the generated sessionSecret and encryptionKey. ${keepOrReplace}`)
    }
    return { file, sessionSecret, encryptionKey }
  }
  const secrets = { sessionSecret: randomBytes(32).toString('base64url'), encryptionKey: randomBytes(32).toString('base64') }
  try {
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(file, JSON.stringify(secrets), { mode: 0o600 })
  } catch (err) {
    // A half-written file would be refused at the next start; these secrets were never used, so nothing is lost.
    rmSync(file, { force: true })
    const remedy = (err as { code?: unknown }).code === 'ENOSPC' ? 'free space on its volume' : `make ${dataDir} writable for the user running mfa-rollout`
    throw new ConfigError(file, `cannot be written (${fileProblem(err)}): ${remedy}, or set SESSION_SECRET and ENCRYPTION_KEY`)
  }
  return { file, ...secrets }
}

function fileProblem (err: unknown): string {
  switch ((err as { code?: unknown }).code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    case 'EROFS':
      return 'read-only file system'
    case 'ENOSPC':
      return 'the disk is full'
  }
  return (err as Error).message
}

function deepFreeze<T> (value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value) && !Buffer.isBuffer(value) && !(value instanceof URL)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}
