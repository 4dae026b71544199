import { Type, type Static, type TSchema } from '@sinclair/typebox'
import type { ApiScope } from '../../domain/api-tokens.ts'
import { COMPLIANCE_PAGE_MAX, type ComplianceRow as ComplianceRowFacts } from '../../domain/compliance.ts'
import { BULK_MAX_ITEMS } from '../../domain/directory-phones.ts'
import { USER_STATES } from '../../domain/states.ts'

// The automation API's schemas: requests are validated against them (strictly: no coercion, no unknown fields,
// see api-validation.ts), responses are serialised through them, and /api/v1/openapi.json is built from them.

const closed = { additionalProperties: false } as const
const nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()])
const Timestamp = Type.String({ format: 'date-time', description: 'ISO 8601, UTC' })

export const ApiError = Type.Object({
  error: Type.Object({
    code: Type.String({ description: 'Stable, snake_case: what went wrong, for programs.' }),
    message: Type.String({ description: 'What went wrong, for people.' }),
    field: Type.Optional(Type.String({ description: 'The request field at fault (invalid_request only), e.g. "items.3.phone".' }))
  }, closed)
}, { ...closed, title: 'Error' })

export const UserParams = Type.Object({
  id: Type.String({
    minLength: 1,
    maxLength: 400,
    description: 'The portal user id; or "email:<address>"; or "external:<provider>:<external id>" (the Entra object id or IAM user name).'
  })
}, closed)

const Phone = Type.String({ minLength: 1, maxLength: 40, description: 'A mobile number; without a +country prefix it is read in the portal\'s default region. Stored as E.164.', examples: ['+4915112345678'] })
const Change = Type.Union([Type.Literal('updated'), Type.Literal('unchanged')])

export const PhoneBody = Type.Object({ phone: Phone }, closed)

export const PhoneResult = Type.Object({
  user: Type.String({ description: 'The user reference as sent.' }),
  phone: Type.String({ description: 'The stored number, E.164.' }),
  result: Change
}, closed)

export const BulkBody = Type.Object({
  items: Type.Array(Type.Object({
    user: Type.String({ minLength: 1, maxLength: 400, description: 'As the {id} of PUT /users/{id}/phone.' }),
    phone: Phone
  }, closed), { minItems: 1, maxItems: BULK_MAX_ITEMS })
}, closed)

export const BulkResult = Type.Object({
  updated: Type.Integer(),
  unchanged: Type.Integer(),
  errors: Type.Integer(),
  results: Type.Array(Type.Union([
    Type.Object({ index: Type.Integer(), user: Type.String(), result: Change, phone: Type.String() }, closed),
    Type.Object({
      index: Type.Integer(),
      user: Type.String(),
      result: Type.Literal('error'),
      error: Type.Object({ code: Type.String({ examples: ['invalid_phone', 'user_not_found', 'duplicate_user'] }), message: Type.String() }, closed)
    }, closed)
  ]), { description: 'One per item, in order; index is the item\'s position (from 0).' })
}, closed)

const State = nullable(Type.Union(USER_STATES.map((s) => Type.Literal(s)), { description: 'Null until the portal has evaluated the user.' }))
const Kinds = Type.Array(Type.String(), { description: 'Method kinds, e.g. passkey, totp, phone, hardware_totp.' })

export const UserStatus = Type.Object({
  id: Type.String(),
  provider: Type.String(),
  state: State,
  deadline: nullable(Timestamp),
  daysLeft: nullable(Type.Integer({ description: 'Whole days to the deadline, rounded up; negative once passed.' })),
  softBlocked: Type.Boolean({ description: 'In the campaign\'s soft-block stage without a qualifying method.' }),
  enrolled: Type.Boolean({ description: 'Holds a method that qualifies under the user\'s campaign policy.' }),
  methods: Kinds,
  enforcedAt: nullable(Timestamp)
}, closed)

export const ComplianceQuery = Type.Object({
  cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 400, description: 'The "next" value of the previous page.' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: COMPLIANCE_PAGE_MAX, default: 100 }))
}, closed)

export const ComplianceRow = Type.Object({
  userId: Type.String(),
  email: Type.String(),
  provider: Type.String(),
  externalId: nullable(Type.String()),
  privileged: Type.Boolean(),
  disabled: Type.Boolean(),
  methods: Kinds,
  portalMethods: Kinds,
  providerMethods: Kinds,
  enrolled: Type.Boolean(),
  weak: Type.Boolean({ description: 'Enrolled only through text messages while the policy calls them weak.' }),
  meetsPolicy: Type.Boolean({ description: 'Also holds the second method (or recovery codes) the campaign asks for: counts as enrolled in the rollout.' }),
  methodsHeld: Type.Integer({ minimum: 0, description: 'Qualifying methods held, counted by kind, where the user signs in.' }),
  methodsRequired: Type.Union([Type.Literal('one'), Type.Literal('two'), Type.Literal('one_plus_recovery')], { description: 'What the campaign asks for; one_plus_recovery means two methods at the directory for directory users.' }),
  hasRecoveryCodes: Type.Boolean({ description: 'Holds unused recovery codes (portal accounts only).' }),
  state: State,
  deadline: nullable(Timestamp),
  enforcedAt: nullable(Timestamp),
  consolePassword: nullable(Type.Boolean({ description: 'AWS IAM: the user has a console password; null when the provider does not say.' }))
}, { ...closed, title: 'ComplianceRow' })

export const CompliancePage = Type.Object({
  rows: Type.Array(ComplianceRow),
  next: nullable(Type.String({ description: 'Pass as cursor for the next page; null on the last page.' }))
}, closed)

export const PrepopulateBody = Type.Object({
  dryRun: Type.Boolean({ description: 'true: report what would change and change nothing.' }),
  fromDirectory: Type.Optional(Type.Boolean({ description: 'Read numbers live from the configured Entra attribute instead of the portal\'s pinned copy.' })),
  includePrivileged: Type.Optional(Type.Boolean({ description: 'Also create mobile methods for privileged users (directory administrators, staff). Needs the phones:write-privileged scope as well (403 insufficient_scope without it); they are skipped otherwise.' }))
}, closed)

export const PrepopulateReport = Type.Object({
  dryRun: Type.Boolean(),
  source: Type.Union([Type.Literal('portal'), Type.Literal('directory')]),
  includePrivileged: Type.Boolean(),
  counts: Type.Record(Type.String(), Type.Integer()),
  users: Type.Array(Type.Object({
    userId: nullable(Type.String()),
    email: nullable(Type.String()),
    externalId: Type.String({ description: 'The Entra object id.' }),
    action: Type.Union(['create', 'unchanged', 'conflict', 'skipped_privileged', 'invalid'].map((a) => Type.Literal(a)), {
      description: 'create: no mobile method yet, one is (or would be) created. unchanged: Entra already has this number. conflict: Entra has another number; it is left as it is for a person to resolve. skipped_privileged: a privileged user, not touched without includePrivileged. invalid: the number cannot be used.'
    }),
    phone: nullable(Type.String({ description: 'E.164 from the directory; null when the number is not valid or the user was skipped.' })),
    previous: nullable(Type.String({ description: 'The mobile number Entra holds, E.164; null when none (or not read).' })),
    reason: Type.Optional(Type.String()),
    applied: Type.Boolean({ description: 'Written to Entra in this call.' })
  }))
}, closed)

const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [s, ApiError]))

/** One API operation: its address, the scope it needs (null: public) and its schemas. */
export interface ApiOperation {
  method: 'GET' | 'PUT' | 'POST'
  /** Fastify's form, relative to /api/v1: "/users/:id/phone". */
  url: string
  operationId: string
  summary: string
  description: string
  scope: ApiScope | null
  schema: { params?: TSchema, querystring?: TSchema, body?: TSchema, response: Record<number, TSchema> }
}

export const OPERATIONS = {
  setPhone: {
    method: 'PUT',
    url: '/users/:id/phone',
    operationId: 'setUserPhone',
    summary: 'Set a user\'s directory mobile number',
    description: 'Sets the number the user confirms by text message when phones are pinned to the directory. Idempotent: sending the same number again changes nothing and records nothing.',
    scope: 'phones:write',
    schema: { params: UserParams, body: PhoneBody, response: { 200: PhoneResult, ...errors(400, 401, 403, 404, 413, 415) } }
  },
  bulkPhones: {
    method: 'POST',
    url: '/phones/bulk',
    operationId: 'setPhonesInBulk',
    summary: 'Set many users\' mobile numbers',
    description: `Up to ${BULK_MAX_ITEMS} items. Every valid item is applied and every item gets a result: an unknown user or an unusable number is reported in its row and does not stop the others. A request that does not match the schema is refused as a whole (400) and changes nothing.`,
    scope: 'phones:write',
    schema: { body: BulkBody, response: { 200: BulkResult, ...errors(400, 401, 403, 413, 415) } }
  },
  userStatus: {
    method: 'GET',
    url: '/users/:id/status',
    operationId: 'getUserStatus',
    summary: 'A user\'s rollout status',
    description: 'State, effective deadline, enrollment and enforcement for one user.',
    scope: 'status:read',
    schema: { params: UserParams, response: { 200: UserStatus, ...errors(400, 401, 403, 404) } }
  },
  compliance: {
    method: 'GET',
    url: '/compliance',
    operationId: 'listCompliance',
    summary: 'The compliance export, page by page',
    description: `One row per user, ordered by user id. Follow "next" until it is null. At most ${COMPLIANCE_PAGE_MAX} rows per page.`,
    scope: 'compliance:read',
    schema: { querystring: ComplianceQuery, response: { 200: CompliancePage, ...errors(400, 401, 403) } }
  },
  entraPhones: {
    method: 'POST',
    url: '/entra/phones/prepopulate',
    operationId: 'prepopulateEntraPhones',
    summary: 'Push directory phone numbers to Entra as MFA phones',
    description: 'Creates each Entra user\'s "mobile" authentication phone from their directory number where they have none. Never replaces a number: a user whose mobile method holds another number is reported as a conflict, and one with the same number as unchanged. Privileged users are skipped unless includePrivileged is sent with a token that also holds phones:write-privileged. Numbers that are not valid are reported, never pushed. Each created, conflicting, skipped or failed user is audited. Run with dryRun: true first. 409 provider_not_configured when Entra is not connected.',
    scope: 'phones:write',
    schema: { body: PrepopulateBody, response: { 200: PrepopulateReport, ...errors(400, 401, 403, 409, 413, 415) } }
  },
  openapi: {
    method: 'GET',
    url: '/openapi.json',
    operationId: 'getOpenApiDocument',
    summary: 'This document',
    description: 'The OpenAPI 3.1 description of this API. No token needed.',
    scope: null,
    schema: { response: { 200: Type.Object({}, { description: 'An OpenAPI 3.1 document.' }) } }
  }
} as const satisfies Record<string, ApiOperation>


export function iso (date: Date | null): string | null {
  return date === null ? null : date.toISOString()
}

/** A compliance row as the API and the JSON download send it (the ComplianceRow schema). */
export function complianceJson (row: ComplianceRowFacts): Static<typeof ComplianceRow> {
  return {
    userId: row.userId,
    email: row.email,
    provider: row.provider,
    externalId: row.externalId,
    privileged: row.privileged,
    disabled: row.disabled,
    methods: row.methods,
    portalMethods: row.portalMethods,
    providerMethods: row.providerMethods,
    enrolled: row.enrolled,
    weak: row.weak,
    meetsPolicy: row.meetsPolicy,
    methodsHeld: row.methodsHeld,
    methodsRequired: row.methodsRequired,
    hasRecoveryCodes: row.hasRecoveryCodes,
    state: row.state,
    deadline: iso(row.deadline),
    enforcedAt: iso(row.enforcedAt),
    consolePassword: row.consolePassword
  }
}
