import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import pino from 'pino'
import { DrizzleQueryError } from 'drizzle-orm/errors'
import { loggerOptions } from '../../server/logging.ts'

test('a failed database statement is logged with its SQL and the database\'s words, never its parameters', () => {
  const lines: string[] = []
  const log = pino(loggerOptions({ logLevel: 'info' }), new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }))
  const cause = Object.assign(new Error('duplicate key value violates unique constraint "users_email_unique"'), { code: '23505' })
  log.error({ err: new DrizzleQueryError('insert into "users" ("email", "password_hash") values ($1, $2)', ['ann@example.org', 'scrypt$16384$secret-hash'], cause) }, 'request failed')
  log.error({ err: new Error('an ordinary failure') }, 'other')
  const [failed, ordinary] = lines.map((line) => JSON.parse(line) as { err: { message: string, stack: string } })
  assert.doesNotMatch(lines[0], /secret-hash|ann@example\.org/)
  assert.match(failed.err.message, /^Failed query: insert into "users"/)
  assert.match(failed.err.message, /duplicate key value/)
  assert.match(ordinary.err.stack, /an ordinary failure/, 'other errors keep their stack')
})
