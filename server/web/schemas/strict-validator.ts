import type { TSchema } from '@sinclair/typebox'
import { TypeCompiler } from '@sinclair/typebox/compiler'
import { Value } from '@sinclair/typebox/value'
import type { FastifySchemaCompiler } from 'fastify'

/**
 * A validator compiler for machine clients. Fastify's default Ajv setup coerces types ("123" for 123) and silently
 * drops properties a schema does not allow; an API must refuse both, so that a typo in a field name is an error
 * rather than a request that quietly did less. Bodies are checked as sent; path and query strings are converted
 * to the schema's types first (they are always text on the wire).
 */
export const strictValidatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = TypeCompiler.Compile(schema)
  return (value: unknown) => {
    const input = httpPart === 'body' ? value : Value.Convert(schema, value)
    if (check.Check(input)) return { value: input }
    const first = check.Errors(input).First()
    // Fastify reads Ajv-shaped errors: instancePath (a JSON pointer) and message.
    return { error: [{ keyword: 'schema', instancePath: first?.path ?? '', schemaPath: '', params: {}, message: first?.message ?? 'Invalid value' }] as never }
  }
}
