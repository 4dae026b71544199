import { test } from 'node:test'
import assert from 'node:assert/strict'
import { sql } from 'drizzle-orm'
import { PgDialect } from 'drizzle-orm/pg-core'
import { jsonObjectOf } from '../../server/db/pg/json-object.ts'
import { users } from '../../server/db/pg/schema.ts'

test('columns become one json_build_object keyed by their property names, their values as parameters or column references', () => {
  const query = new PgDialect().sqlToQuery(jsonObjectOf({ id: users.id, displayName: users.displayName, flag: sql`${true}` }))
  assert.equal(query.sql, 'json_build_object(\'id\', "users"."id", \'displayName\', "users"."display_name", \'flag\', $1)')
  assert.deepEqual(query.params, [true])
})

test('a key that is not a plain property name, or more fields than PostgreSQL takes in one call, is refused when the read is built', () => {
  assert.throws(() => jsonObjectOf({ "x', (SELECT 1), '": users.id }), /not a plain property name/)
  const fiftyOne = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`f${i}`, users.id]))
  assert.throws(() => jsonObjectOf(fiftyOne), /51 fields.*at most 50/)
  assert.doesNotThrow(() => jsonObjectOf(Object.fromEntries(Object.entries(fiftyOne).slice(0, 50))))
})
