import { sql, type SQL, type SQLWrapper } from 'drizzle-orm'

/** PostgreSQL takes at most 100 arguments in a function call: a key and a value each. */
const MAX_FIELDS = 50

/**
 * Columns (or expressions) as one JSON object, `json_build_object('key', value, …)`, keyed by their property names.
 * For a read that brings whole rows of other tables along (the session with its user, their state and deadline facts):
 * one column instead of one per field. node-postgres describes a prepared statement's result anew on every execution
 * and sets up a parser for each column, and drizzle then maps each column back by name; for the home page's session
 * read, some fifty columns, that was about a third of what the read cost the portal (`npm run bench -- pages` on
 * PostgreSQL, the home page: 251 µs of CPU before, 213 µs after).
 * The values read back as the columns' own do through drizzle: text as strings, booleans as booleans, bigint times
 * and counts as numbers (all below 2^53), arrays and JSON as JSON.
 */
export function jsonObjectOf (fields: Readonly<Record<string, SQLWrapper>>): SQL {
  const entries = Object.entries(fields)
  if (entries.length > MAX_FIELDS) throw new Error(`jsonObjectOf: ${entries.length} fields, PostgreSQL's json_build_object takes at most ${MAX_FIELDS}`)
  return sql`json_build_object(${sql.join(entries.map(([key, value]) => {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(key)) throw new Error(`jsonObjectOf: "${key}" is not a plain property name`)
    return sql`${sql.raw(`'${key}'`)}, ${value}`
  }), sql`, `)})`
}
