import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import path from 'node:path'
import { test, type TestContext } from 'node:test'
import { createServices, type Services } from '../../server/wiring.ts'
import { testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

const HEADER = 'email,display_name,phone,groups,privileged'

function csv (dataDir: string, name: string, lines: string[]): string {
  const file = path.join(dataDir, name)
  writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}

async function open (t: TestContext, dataDir: string, env: Record<string, string> = {}): Promise<Services> {
  const services = await createServices(testConfig(env, dataDir))
  t.after(() => services.close())
  return services
}

const ONE_BAD_ROW = [
  HEADER,
  'ann@example.org,Ann Example,+1 415 555 0100,sales;emea,no',
  'not-an-email,Bob Example,,sales,no',
  'carol@example.org,Carol Example,,engineering|cloud-admins,yes'
]

test('import-users with one bad row imports nothing, names the bad line and exits 1', async (t) => {
  const dataDir = scratchDir(t)
  const file = csv(dataDir, 'people.csv', ONE_BAD_ROW)

  const { code, stdout, stderr } = await runCli(['import-users', file], { dataDir })
  assert.equal(code, 1)
  assert.equal(stdout, '')
  assert.match(stderr, /^line 3: "not-an-email" is not an email address$/m)
  assert.match(stderr, /^nothing imported$/m)

  const services = await open(t, dataDir)
  assert.equal(await services.users.count(), 0)
  assert.deepEqual(await services.audit.list({ action: 'users.imported' }), [])
})

test('import-users --skip-invalid imports the good rows and reports the skipped line', async (t) => {
  const dataDir = scratchDir(t)
  const file = csv(dataDir, 'people.csv', ONE_BAD_ROW)

  const { code, stdout, stderr } = await runCli(['import-users', file, '--skip-invalid'], { dataDir })
  assert.equal(code, 0)
  assert.match(stderr, /^line 3: .* \(skipped\)$/m)
  assert.equal(stdout.trim(), 'imported: 2 created, 0 updated, 1 skipped')

  const services = await open(t, dataDir)
  assert.equal(await services.users.count(), 2)
  const carol = await services.users.findByEmail('carol@example.org')
  assert.equal(carol?.privileged, true)
  assert.deepEqual(carol?.groups.sort(), ['cloud-admins', 'engineering'])
  const [imported] = await services.audit.list({ action: 'users.imported' })
  assert.equal(imported.actorLabel, 'cli')
  assert.deepEqual(JSON.parse(imported.details), { file: 'people.csv', created: 2, updated: 0, skipped: 1 })
})

test('importing again updates the same users instead of duplicating them', async (t) => {
  const dataDir = scratchDir(t)
  const first = csv(dataDir, 'hr-monday.csv', [
    HEADER,
    'ann@example.org,Ann Example,,sales;emea,no',
    'bob@example.org,Bob Example,,sales,no'
  ])
  assert.equal((await runCli(['import-users', first], { dataDir })).stdout.trim(), 'imported: 2 created, 0 updated')

  const second = csv(dataDir, 'hr-tuesday.csv', [
    HEADER,
    'ANN@example.org,Ann Married-Name,,apac,no',
    'bob@example.org,Bob Example,,sales|cloud-admins,yes'
  ])
  const { code, stdout } = await runCli(['import-users', second], { dataDir })
  assert.equal(code, 0)
  assert.equal(stdout.trim(), 'imported: 0 created, 2 updated')

  const services = await open(t, dataDir)
  assert.equal(await services.users.count(), 2)
  const ann = await services.users.findByEmail('ann@example.org')
  assert.equal(ann?.displayName, 'Ann Married-Name')
  assert.deepEqual(ann?.groups, ['apac'])
  const bob = await services.users.findByEmail('bob@example.org')
  assert.equal(bob?.privileged, true)
  assert.deepEqual(bob?.groups.sort(), ['cloud-admins', 'sales'])
  assert.equal((await services.audit.list({ action: 'users.imported' })).length, 2)
})

test('phone numbers are stored in E.164, national ones read in PHONE_DEFAULT_REGION', async (t) => {
  const dataDir = scratchDir(t)
  const file = csv(dataDir, 'phones.csv', [
    HEADER,
    'ann@example.org,Ann,020 7946 0018,,no',
    'bob@example.org,Bob,+1 (415) 555-0100,,no'
  ])
  const { code } = await runCli(['import-users', file], { dataDir, env: { PHONE_DEFAULT_REGION: 'GB' } })
  assert.equal(code, 0)

  const services = await open(t, dataDir, { PHONE_DEFAULT_REGION: 'GB' })
  assert.equal((await services.users.findByEmail('ann@example.org'))?.phone, '+442079460018')
  assert.equal((await services.users.findByEmail('bob@example.org'))?.phone, '+14155550100')
})

test('line numbers are the lines of the file, counting blank lines and quoted line breaks (Windows line endings)', async (t) => {
  const dataDir = scratchDir(t)
  const file = path.join(dataDir, 'excel.csv')
  writeFileSync(file, [
    `\ufeff${HEADER}`,
    'ann@example.org,Ann,,,no',
    '',
    '"bob@example.org","Bob',
    'Example",,,no',
    'carol@example.org,Carol,,,maybe'
  ].join('\r\n'))

  const { code, stderr } = await runCli(['import-users', file], { dataDir })
  assert.equal(code, 1)
  assert.deepEqual(stderr.split('\n').slice(0, 2), [
    'line 4: display_name contains a line break or control character',
    'line 6: privileged must be true or false, not "maybe"'
  ])
})

test('a missing file or malformed CSV is one clear error line, exit 1, and nothing imported', async (t) => {
  const dataDir = scratchDir(t)
  const missing = await runCli(['import-users', 'no-such-file.csv'], { dataDir })
  assert.equal(missing.code, 1)
  assert.match(missing.stderr.trim(), /^mfa-rollout: cannot read no-such-file\.csv: ENOENT/)
  assert.equal(missing.stderr.trim().split('\n').length, 1)

  const file = csv(dataDir, 'short-row.csv', [HEADER, 'ann@example.org,Ann,,,no', 'bob@example.org,Bob'])
  const malformed = await runCli(['import-users', file], { dataDir })
  assert.equal(malformed.code, 1)
  assert.match(malformed.stderr.trim(), /^mfa-rollout: .*short-row\.csv is not valid CSV: .*line 3$/)
  assert.equal(await (await open(t, dataDir)).users.count(), 0)
})

test('a file with the wrong header is refused even with --skip-invalid', async (t) => {
  const dataDir = scratchDir(t)
  const file = csv(dataDir, 'wrong.csv', ['mail,name,phone,groups,privileged', 'ann@example.org,Ann,,,no'])
  const { code, stderr } = await runCli(['import-users', file, '--skip-invalid'], { dataDir })
  assert.equal(code, 1)
  assert.match(stderr, /^line 1: the header must be email,display_name,phone,groups,privileged; missing email, display_name$/m)
  assert.equal(await (await open(t, dataDir)).users.count(), 0)
})

test('a file that is not UTF-8 (Latin-1 from an old spreadsheet) is refused naming its first such line, and nothing is imported', async (t) => {
  const dataDir = scratchDir(t)
  const file = path.join(dataDir, 'latin1.csv')
  writeFileSync(file, Buffer.from(`${HEADER}\nann@example.org,Ann Example,,,no\nrene@example.org,Ren\xe9 Dupr\xe9,,,no\n`, 'latin1'))

  const { code, stdout, stderr } = await runCli(['import-users', file], { dataDir })
  assert.equal(code, 1)
  assert.equal(stdout, '')
  assert.equal(stderr.trim(), `mfa-rollout: ${file} is not UTF-8 text: line 3 is in another encoding (Latin-1 or Windows-1252, perhaps). Save the file as "CSV UTF-8" and import it again`)
  assert.equal(await (await open(t, dataDir)).users.count(), 0)
})

test('a quote that is never closed is reported on the line where it opens', async (t) => {
  const dataDir = scratchDir(t)
  const file = csv(dataDir, 'open-quote.csv', [
    HEADER,
    'ann@example.org,Ann,,,no',
    'bob@example.org,Bob,,,no',
    'carol@example.org,Carol,,,no',
    'dan@example.org,"Dan Example,,,no',
    'eve@example.org,Eve,,,no'
  ])

  const { code, stderr } = await runCli(['import-users', file], { dataDir })
  assert.equal(code, 1)
  assert.equal(stderr.trim(), `mfa-rollout: ${file} is not valid CSV: the quote opened on line 5 is never closed`)
  assert.equal(await (await open(t, dataDir)).users.count(), 0)
})
