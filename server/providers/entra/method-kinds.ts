/**
 * How Entra's method names become the portal's method kinds (contracts 1.4, 1.5). 'passkey', 'totp' and 'phone'
 * are the portal's own kinds; the rest keep a kind of their own so a campaign policy can decide whether they
 * qualify. Device-bound, phishing-resistant credentials (Windows Hello for Business, macOS platform credential)
 * count as 'passkey'. Passwords, temporary access passes and security questions are not second factors and are
 * left out; so are names not known here (the report's list is open-ended).
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

function distinct (kinds: Array<EntraMethodKind | undefined>): EntraMethodKind[] {
  return [...new Set(kinds.filter((k): k is EntraMethodKind => k !== undefined))].sort()
}

/** Kinds from `/authentication/methods` items. */
export function kindsFromMethods (methods: ReadonlyArray<{ '@odata.type'?: string }>): EntraMethodKind[] {
  return distinct(methods.map((m) => BY_ODATA_TYPE[m['@odata.type'] ?? '']))
}

/** Kinds from a `userRegistrationDetails.methodsRegistered` list. */
export function kindsFromReport (names: readonly string[] | undefined): EntraMethodKind[] {
  return distinct((names ?? []).map((n) => BY_REPORT_NAME[n]))
}
