import assert from 'node:assert/strict'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import Sqlite from 'better-sqlite3'
import { createServices } from '../../server/wiring.ts'
import { testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

function emailsIn (file: string): string[] {
  const copy = new Sqlite(file, { readonly: true })
  try {
    return (copy.prepare('SELECT email FROM users ORDER BY email').pluck().all() as string[])
  } finally {
    copy.close()
  }
}

test('backup copies the live database, including writes not yet checkpointed, while another process has it open', async (t) => {
  const dataDir = scratchDir(t)
  // Stays open during the backup, as the running server would.
  const services = await createServices(testConfig({}, dataDir))
  t.after(() => services.close())
  for (const name of ['ann', 'bob', 'carol']) {
    await services.userService.createUser({ email: `${name}@example.org`, displayName: name }, { id: null, label: 'test' })
  }

  assert.ok(statSync(path.join(dataDir, 'mfa-rollout.db-wal')).size > 0, 'the new rows are still in the write-ahead log')

  const target = path.join(dataDir, 'nightly.db')
  const { code, stdout } = await runCli(['backup', target], { dataDir })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), `backup written: ${target} (${statSync(target).size} bytes)`)
  assert.deepEqual(emailsIn(target), ['ann@example.org', 'bob@example.org', 'carol@example.org'])
  assert.equal(statSync(target).mode & 0o077, 0, 'the copy is readable by its owner only')
})

test('backup refuses to overwrite an existing file unless --force is given', async (t) => {
  const dataDir = scratchDir(t)
  const services = await createServices(testConfig({}, dataDir))
  t.after(() => services.close())
  await services.userService.createUser({ email: 'ann@example.org', displayName: 'Ann' }, { id: null, label: 'test' })
  const target = path.join(dataDir, 'nightly.db')
  assert.equal((await runCli(['backup', target], { dataDir })).code, 0)
  const before = readFileSync(target)

  await services.userService.createUser({ email: 'bob@example.org', displayName: 'Bob' }, { id: null, label: 'test' })
  const refused = await runCli(['backup', target], { dataDir })
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /already exists; pass --force to replace it/)
  assert.deepEqual(readFileSync(target), before)

  const forced = await runCli(['backup', target, '--force'], { dataDir })
  assert.equal(forced.code, 0)
  assert.deepEqual(emailsIn(target), ['ann@example.org', 'bob@example.org'])
})

test('backup will not write over the live database itself, even with --force', async (t) => {
  const dataDir = scratchDir(t)
  const { code, stderr } = await runCli(['backup', 'mfa-rollout.db', '--force'], { dataDir })
  assert.equal(code, 1)
  assert.match(stderr, /is the live database/)
})
