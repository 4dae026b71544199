import assert from 'node:assert/strict'
import { test } from 'node:test'
import { verifyPassword } from '../../server/domain/passwords.ts'
import { createServices, type Services } from '../../server/wiring.ts'
import { testConfig } from '../helpers/app.ts'
import { runCli, scratchDir } from '../helpers/cli.ts'

async function open (dataDir: string, t: { after(fn: () => Promise<void>): void }): Promise<Services> {
  const services = await createServices(testConfig({}, dataDir))
  t.after(() => services.close())
  return services
}

test('create-user generates a password, shows it exactly once, and the new account accepts that password', async (t) => {
  const dataDir = scratchDir(t)
  const { code, stdout } = await runCli(['create-user', '--email', 'Ada@Example.org', '--name', 'Ada Admin', '--role', 'admin'], { dataDir })
  assert.equal(code, 0)
  const password = /^password: (\S+)$/m.exec(stdout)?.[1]
  assert.ok(password !== undefined, stdout)
  assert.equal(stdout.split(password).length - 1, 1, 'the password appears once')
  assert.match(stdout, /will not be shown again/)

  const services = await open(dataDir, t)
  const { user, passwordHash } = (await services.users.findCredentials('ada@example.org'))!
  assert.equal(user.role, 'admin')
  assert.equal(user.displayName, 'Ada Admin')
  assert.equal(await verifyPassword(password, passwordHash), true)
  const [created] = await services.audit.list({ action: 'user.created' })
  assert.equal(created.subjectUserId, user.id)
  assert.equal(created.actorLabel, 'cli')
})

test('create-user --password-stdin takes the typed password without its trailing newline and never prints it', async (t) => {
  const dataDir = scratchDir(t)
  const password = 'a long enough passphrase'
  const { code, stdout } = await runCli(['create-user', '--email', 'hal@example.org', '--name', 'Hal', '--password-stdin'], { dataDir, input: `${password}\n` })
  assert.equal(code, 0)
  assert.doesNotMatch(stdout, /passphrase/)

  const services = await open(dataDir, t)
  const { user, passwordHash } = (await services.users.findCredentials('hal@example.org'))!
  assert.equal(user.role, 'user')
  assert.equal(await verifyPassword(password, passwordHash), true)
})

test('create-user refuses a password from stdin shorter than the minimum and creates nobody', async (t) => {
  const dataDir = scratchDir(t)
  const { code, stderr } = await runCli(['create-user', '--email', 'hal@example.org', '--name', 'Hal', '--password-stdin'], { dataDir, input: 'too short\n' })
  assert.equal(code, 1)
  assert.match(stderr, /at least 12 characters/)
  assert.equal(await (await open(dataDir, t)).users.count(), 0)
})

test('create-user with an email already in use exits 1 with a clear message and leaves the existing user alone', async (t) => {
  const dataDir = scratchDir(t)
  const services = await open(dataDir, t)
  await services.userService.createUser({ email: 'ann@example.org', displayName: 'Ann' }, { id: null, label: 'test' })

  const { code, stdout, stderr } = await runCli(['create-user', '--email', 'ANN@example.org', '--name', 'Another Ann'], { dataDir })
  assert.equal(code, 1)
  assert.equal(stderr.trim(), 'mfa-rollout: A user with the email ann@example.org already exists.')
  assert.doesNotMatch(stdout, /password/)
  assert.equal(await services.users.count(), 1)
  assert.equal((await services.users.findByEmail('ann@example.org'))?.displayName, 'Ann')
})

test('create-user rejects a malformed email or an unknown role with exit 1 and creates nobody', async (t) => {
  const dataDir = scratchDir(t)
  const badEmail = await runCli(['create-user', '--email', 'not-an-email', '--name', 'X'], { dataDir })
  assert.equal(badEmail.code, 1)
  assert.match(badEmail.stderr, /"not-an-email" is not an email address/)

  const badRole = await runCli(['create-user', '--email', 'x@example.org', '--name', 'X', '--role', 'root'], { dataDir })
  assert.equal(badRole.code, 1)
  assert.match(badRole.stderr, /"root" is not a role; expected one of user, helpdesk, admin/)
  assert.equal(await (await open(dataDir, t)).users.count(), 0)
})
