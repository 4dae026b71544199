import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SERVER = fileURLToPath(new URL('../../server/', import.meta.url))

function sources (dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    return statSync(full).isDirectory() ? sources(full) : name.endsWith('.ts') ? [full] : []
  })
}

function imports (file: string): string[] {
  const text = readFileSync(file, 'utf8')
  return [...text.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm), ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1])
}

// Dependencies point one way: web, jobs, cli -> domain <- db, providers, notify (STYLE.md).
const FORBIDDEN_IN_DOMAIN = [/^fastify/, /^@fastify\//, /^drizzle-orm/, /^better-sqlite3/, /^@aws-sdk\//, /^@azure\//, /^@microsoft\//, /^nodemailer/, /^eta/, /^pino/, /\/(web|db|providers|notify|jobs|cli)\//, /^\.\.\/(config|app|wiring)/]

test('domain code imports no framework, database, SDK or outer layer', () => {
  const offenders = sources(path.join(SERVER, 'domain')).flatMap((file) =>
    imports(file).filter((spec) => FORBIDDEN_IN_DOMAIN.some((re) => re.test(spec))).map((spec) => `${path.relative(SERVER, file)} imports ${spec}`))
  assert.deepEqual(offenders, [])
})

test('only db/ holds SQL and the database driver', () => {
  const offenders = sources(SERVER)
    .filter((file) => !file.includes(`${path.sep}db${path.sep}`))
    .flatMap((file) => imports(file).filter((spec) => /^drizzle-orm|^better-sqlite3$/.test(spec) && !/^drizzle-orm\/sqlite-core/.test(spec)).map((spec) => `${path.relative(SERVER, file)} imports ${spec}`))
  assert.deepEqual(offenders, [])
})

test('routes do not reach into the database directly', () => {
  const offenders = sources(path.join(SERVER, 'web')).flatMap((file) =>
    imports(file).filter((spec) => /\/db\/(?!sessions\.ts$|migrate\.ts$)/.test(spec)).map((spec) => `${path.relative(SERVER, file)} imports ${spec}`))
  assert.deepEqual(offenders, [])
})
