/** The Entra ID adapter's public surface, for the wiring. */
export { loadEntraConfig, DEFAULT_PRIVILEGED_ROLES, type EntraConfig, type EntraPhoneSource, type EntraEnforcement, type EntraCredential } from './config.ts'
export { EntraProvider, type EntraProviderOptions } from './provider.ts'
export type { AccessPassPolicy, AccessPassRequest, IssuedAccessPass } from './access-pass.ts'
export type { BulkResult } from './enforcement.ts'
export type { PhoneAction, PhonePlan } from './phones.ts'
export type { NewOathToken, OathDevice, OathRemoval } from './oath.ts'
export { createPkce, validateNonce, type MicrosoftSignInResult, type IdTokenClaims } from './oidc.ts'
export type { EntraMethodKind } from './method-kinds.ts'
