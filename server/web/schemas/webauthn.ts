import { Type } from '@sinclair/typebox'

// The JSON @simplewebauthn/browser posts for each ceremony, checked before it reaches the verifier.

/**
 * The browser's RegistrationResponseJSON (base64url strings). Limits are generous for real authenticators
 * (credential ids up to 1023 bytes, attestation with a certificate chain) and well inside the 64 KiB body limit.
 */
export const RegistrationResponse = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 1400 }),
  rawId: Type.String({ minLength: 1, maxLength: 1400 }),
  type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: Type.String({ minLength: 1, maxLength: 8192 }),
    attestationObject: Type.String({ minLength: 1, maxLength: 49152 }),
    authenticatorData: Type.Optional(Type.String({ maxLength: 16384 })),
    transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10 })),
    publicKeyAlgorithm: Type.Optional(Type.Integer()),
    publicKey: Type.Optional(Type.String({ maxLength: 4096 }))
  }),
  authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
  clientExtensionResults: Type.Object({})
})

/** The browser's AuthenticationResponseJSON (base64url strings), with room for real authenticators. */
export const AuthenticationResponse = Type.Object({
  id: Type.String({ minLength: 1, maxLength: 1400 }),
  rawId: Type.String({ minLength: 1, maxLength: 1400 }),
  type: Type.Literal('public-key'),
  response: Type.Object({
    clientDataJSON: Type.String({ minLength: 1, maxLength: 8192 }),
    authenticatorData: Type.String({ minLength: 1, maxLength: 16384 }),
    signature: Type.String({ minLength: 1, maxLength: 2048 }),
    userHandle: Type.Optional(Type.String({ maxLength: 256 }))
  }),
  authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
  clientExtensionResults: Type.Object({})
})
