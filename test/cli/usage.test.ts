import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { MIGRATIONS_DIR } from '../../server/db/migrate.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

const EVERY_COMMAND = ['migrate', 'create-user', 'set-role', 'import-users', 'backup', 'audit verify', 'copy-database']

test('--help lists every command with what it does, and so do `help` and no arguments', async (t) => {
  const dataDir = scratchDir(t)
  for (const args of [['--help'], ['help'], []]) {
    const { code, stdout } = await runCli(args, { dataDir })
    assert.equal(code, 0, `mfa-rollout ${args.join(' ')}`)
    for (const command of EVERY_COMMAND) assert.match(stdout, new RegExp(`^  ${command}\\b.*\\n {6}\\S`, 'm'), `${command} is listed with a description`)
    assert.match(stdout, /--password-stdin/)
    assert.match(stdout, /--skip-invalid/)
  }
})

test('an unknown command prints the usage on stderr and exits 2 without touching the database', async (t) => {
  const dataDir = scratchDir(t)
  const { code, stdout, stderr } = await runCli(['frobnicate'], { dataDir })
  assert.equal(code, 2)
  assert.equal(stdout, '')
  assert.match(stderr, /unknown command 'frobnicate'/)
  assert.match(stderr, /^Usage: mfa-rollout <command>/m)
  assert.equal(existsSync(path.join(dataDir, 'mfa-rollout.db')), false)
})

test('a missing required option or an unknown option is a usage error (exit 2) naming the problem', async (t) => {
  const dataDir = scratchDir(t)
  const missing = await runCli(['set-role', '--email', 'ann@example.org'], { dataDir })
  assert.equal(missing.code, 2)
  assert.match(missing.stderr, /--role is required/)
  assert.match(missing.stderr, /^Usage: mfa-rollout set-role --email E --role ROLE/m)

  const unknown = await runCli(['backup', 'copy.db', '--overwrite'], { dataDir })
  assert.equal(unknown.code, 2)
  assert.match(unknown.stderr, /--overwrite/)
})

test('in production a missing SESSION_SECRET stops the CLI with exit 1 and one line naming it', async (t) => {
  const dataDir = scratchDir(t)
  const { code, stderr } = await runCli(['migrate'], {
    dataDir,
    env: { NODE_ENV: 'production', PUBLIC_URL: 'https://mfa.example.org', SESSION_SECRET: undefined }
  })
  assert.equal(code, 1)
  assert.equal(stderr.trimEnd().split('\n').length, 1, stderr)
  assert.match(stderr, /^mfa-rollout: configuration error: SESSION_SECRET: /)
  assert.equal(existsSync(path.join(dataDir, 'mfa-rollout.db')), false)
})

test('migrate can be run again and again and reports the schema as current', async (t) => {
  const dataDir = scratchDir(t)
  const expected = (JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }).entries.length
  for (let run = 1; run <= 2; run++) {
    const { code, stdout } = await runCli(['migrate'], { dataDir })
    assert.equal(code, 0, `run ${run}`)
    assert.match(stdout, new RegExp(`^migrations applied: ${expected} of ${expected}, current$`, 'm'))
    assert.match(stdout, new RegExp(`^database: ${path.join(dataDir, 'mfa-rollout.db')}$`, 'm'))
  }
})
