import type { TSchema } from '@sinclair/typebox'
import { SCOPE_LABELS } from '../../domain/api-tokens.ts'
import { ApiError, type ApiOperation } from './api.ts'

const RESPONSES: Record<number, string> = {
  200: 'Done',
  400: 'Malformed request: invalid_json, invalid_request (with the field), invalid_phone',
  401: 'invalid_token: the bearer token is missing, unknown, expired or revoked',
  403: 'insufficient_scope: the token may not do this',
  404: 'user_not_found',
  413: 'payload_too_large',
  415: 'unsupported_media_type: send application/json'
}

/** Plain JSON (TypeBox schemas carry symbol keys for their own use). */
function json (schema: TSchema): Record<string, unknown> {
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>
}

function parameters (schema: TSchema | undefined, where: 'path' | 'query'): unknown[] {
  if (schema === undefined) return []
  const plain = json(schema) as { properties: Record<string, Record<string, unknown>>, required?: string[] }
  return Object.entries(plain.properties).map(([name, property]) => {
    const { description, ...rest } = property
    return { name, in: where, required: where === 'path' || (plain.required ?? []).includes(name), description, schema: rest }
  })
}

/** The OpenAPI 3.1 document, built from the very schemas the routes validate and serialise with. */
export function openApiDocument (operations: ApiOperation[], options: { prefix: string, version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const op of operations) {
    const path = options.prefix + op.url.replace(/:(\w+)/g, '{$1}')
    const responses = Object.fromEntries(Object.entries(op.schema.response).map(([status, schema]) => [status, {
      description: RESPONSES[Number(status)] ?? 'See the error code',
      content: { 'application/json': { schema: schema === ApiError ? { $ref: '#/components/schemas/Error' } : json(schema) } }
    }]))
    paths[path] ??= {}
    paths[path][op.method.toLowerCase()] = {
      operationId: op.operationId,
      summary: op.summary,
      description: op.scope === null ? op.description : `${op.description}\n\nNeeds a token with the scope \`${op.scope}\`.`,
      ...(op.scope === null ? { security: [] } : { 'x-required-scope': op.scope }),
      parameters: [...parameters(op.schema.params, 'path'), ...parameters(op.schema.querystring, 'query')],
      ...(op.schema.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: json(op.schema.body) } } } }),
      responses
    }
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'mfa-rollout automation API',
      version: options.version,
      description: 'Pre-populate users\' mobile numbers from HR or directory data, read rollout status, export compliance. ' +
        'Tokens are created by administrators under /admin/tokens, each with scopes: ' +
        Object.entries(SCOPE_LABELS).map(([scope, label]) => `\`${scope}\` (${label.toLowerCase()})`).join(', ') + '.'
    },
    security: [{ bearerAuth: [] }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token: "mfr_" followed by 43 characters.' } },
      schemas: { Error: json(ApiError) }
    }
  }
}
