/**
 * How Entra's method names become the portal's method kinds (contracts 1.4, 1.5). 'passkey', 'totp' and 'phone'
 * are the portal's own kinds; the rest keep a kind of their own so a campaign policy can decide whether they
 * qualify. Device-bound, phishing-resistant credentials (Windows Hello for Business, macOS platform credential)
 * count as 'passkey'. Passwords, temporary access passes and security questions are not second factors and are
 * left out. Names not known here (the report's list is open-ended, contracts 1.4) never count either, but they are
 * returned as `unrecognised`, to be shown and logged rather than silently dropped.
 */
export type EntraMethodKind = 'passkey' | 'totp' | 'phone' | 'authenticator' | 'email' | 'external' | 'qr_code_pin'

const BY_ODATA_TYPE: Record<string, EntraMethodKind> = {
  '#microsoft.graph.fido2AuthenticationMethod': 'passkey',
  '#microsoft.graph.windowsHelloForBusinessAuthenticationMethod': 'passkey',
  '#microsoft.graph.platformCredentialAuthenticationMethod': 'passkey',
  '#microsoft.graph.softwareOathAuthenticationMethod': 'totp',
  '#microsoft.graph.hardwareOathAuthenticationMethod': 'totp',
  '#microsoft.graph.phoneAuthenticationMethod': 'phone',
  '#microsoft.graph.microsoftAuthenticatorAuthenticationMethod': 'authenticator',
  '#microsoft.graph.passwordlessMicrosoftAuthenticatorAuthenticationMethod': 'authenticator',
  '#microsoft.graph.emailAuthenticationMethod': 'email',
  '#microsoft.graph.externalAuthenticationMethod': 'external',
  '#microsoft.graph.qrCodePinAuthenticationMethod': 'qr_code_pin'
}

const BY_REPORT_NAME: Record<string, EntraMethodKind> = {
  fido2SecurityKey: 'passkey',
  passKeyDeviceBound: 'passkey',
  passKeyDeviceBoundAuthenticator: 'passkey',
  passKeyDeviceBoundWindowsHello: 'passkey',
  passKeySynced: 'passkey',
  windowsHelloForBusiness: 'passkey',
  macOsSecureEnclaveKey: 'passkey',
  softwareOneTimePasscode: 'totp',
  hardwareOneTimePasscode: 'totp',
  mobilePhone: 'phone',
  alternateMobilePhone: 'phone',
  officePhone: 'phone',
  microsoftAuthenticatorPush: 'authenticator',
  microsoftAuthenticatorPasswordless: 'authenticator',
  email: 'email',
  externalAuthMethod: 'external'
}

/** Known, and known not to be second factors. */
const NOT_FACTORS_BY_ODATA_TYPE = new Set(['#microsoft.graph.passwordAuthenticationMethod', '#microsoft.graph.temporaryAccessPassAuthenticationMethod'])
const NOT_FACTORS_BY_REPORT_NAME = new Set(['temporaryAccessPass', 'securityQuestion'])

/** What a listing says a user has registered: the portal's kinds, and the names it does not know. */
export interface ReadMethods {
  kinds: EntraMethodKind[]
  unrecognised: string[]
}

/** An own entry only: a name from the wire such as "constructor" must not find Object.prototype's. */
function lookup (table: Record<string, EntraMethodKind>, name: string): EntraMethodKind | undefined {
  return Object.hasOwn(table, name) ? table[name] : undefined
}

function distinct (kinds: Array<EntraMethodKind | undefined>): EntraMethodKind[] {
  return [...new Set(kinds.filter((k): k is EntraMethodKind => k !== undefined))].sort()
}

/** Kinds from `/authentication/methods` items. */
export function kindsFromMethods (methods: ReadonlyArray<{ '@odata.type'?: string }>): EntraMethodKind[] {
  return distinct(methods.map((m) => lookup(BY_ODATA_TYPE, m['@odata.type'] ?? '')))
}

/** Kinds from a `userRegistrationDetails.methodsRegistered` list. */
export function kindsFromReport (names: readonly string[] | undefined): EntraMethodKind[] {
  return distinct((names ?? []).map((n) => lookup(BY_REPORT_NAME, n)))
}

/** Kinds and unrecognised `@odata.type`s (without the namespace) of `/authentication/methods` items. */
export function readMethods (methods: ReadonlyArray<{ '@odata.type'?: string }>): ReadMethods {
  const types = methods.map((m) => m['@odata.type'] ?? '')
  const unrecognised = types.filter((t) => t !== '' && lookup(BY_ODATA_TYPE, t) === undefined && !NOT_FACTORS_BY_ODATA_TYPE.has(t))
  return { kinds: kindsFromMethods(methods), unrecognised: [...new Set(unrecognised.map((t) => t.replace(/^#microsoft\.graph\./, '')))].sort() }
}

/** Kinds and unrecognised names of a `methodsRegistered` list. */
export function readReport (names: readonly string[] | undefined): ReadMethods {
  const unrecognised = (names ?? []).filter((n) => lookup(BY_REPORT_NAME, n) === undefined && !NOT_FACTORS_BY_REPORT_NAME.has(n))
  return { kinds: kindsFromReport(names), unrecognised: [...new Set(unrecognised)].sort() }
}
