import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import type { Services } from '../../server/wiring.ts'
import { FakeClock, startTestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { fakeEnv } from '../fakes/graph/harness.ts'
import { startFakeEntra } from '../fakes/graph/server.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'
import { sqlOn } from '../helpers/sql.ts'

const SYSTEM = { id: null, label: 'test' }

async function portal (t: TestContext, env: Record<string, string>, clock: FakeClock): Promise<Services> {
  const { services, close } = await startTestApp(env, { clock, overrides: { sleep: async () => {}, engineSettings: { baseBackoffMs: 1, maxBackoffMs: 5 } } })
  t.after(close)
  return services
}

/** An armed campaign for `provider` whose deadline has passed. */
async function everyoneDue (services: Services, clock: FakeClock, provider: string): Promise<void> {
  const now = clock.now().getTime()
  // Seen long ago too, whichever date the new-user window counts from.
  await sqlOn(services).run('UPDATE users SET first_seen_at = ? WHERE provider = ?', now - 90 * DAY, provider)
  const campaign = await services.campaigns.create(campaignInput(now, { targetKind: 'provider', targetValue: provider, deadline: new Date(now + DAY), privilegedMethods: 'any' }), SYSTEM)
  await services.campaigns.arm(campaign.id, SYSTEM)
  clock.advance(2 * DAY)
}

async function idOf (services: Services, externalId: string): Promise<string> {
  return (await sqlOn(services).value('SELECT id FROM users WHERE external_id = ?', externalId)) as string
}

async function row (services: Services, userId: string) {
  return (await sqlOn(services).get(`SELECT s.state, u.disabled, u.enforced_at AS enforcedAt, (SELECT string_agg(status, ',') FROM enforcement_jobs WHERE user_id = u.id) AS jobs
    FROM users u JOIN user_states s ON s.user_id = u.id WHERE u.id = ?`, userId)) as { state: string, disabled: number, enforcedAt: number | null, jobs: string }
}

/** The same user, deleted at the directory between the sync and the sweep, through both providers' wire-level fakes. */
const DIRECTORIES = [
  {
    provider: 'aws',
    async start (t: TestContext, clock: FakeClock) {
      const fake = await startFakeIam({ now: () => clock.now() })
      t.after(async () => { await fake.close() })
      const longAgo = new Date(clock.now().getTime() - 90 * DAY)
      // The portal keys IAM users by user id; IAM's calls name them.
      const names = new Map(['ann', 'ben', 'cat'].map((userName) => [fake.state.addUser({ userName, consolePassword: true, createDate: longAgo }).userId, userName]))
      return {
        env: { PROVIDERS: 'aws', ...awsEnv(fake) },
        externalIds: [...names.keys()],
        remove: (externalId: string) => { deleteIamUser(fake, names.get(externalId)!) },
        callsFor: (externalId: string) => fake.calls.filter((c) => c.params.UserName === names.get(externalId)).length
      }
    }
  },
  {
    provider: 'entra',
    async start (t: TestContext, clock: FakeClock) {
      const fake = await startFakeEntra({ now: () => clock.now() })
      t.after(async () => { await fake.close() })
      const createdDateTime = new Date(clock.now().getTime() - 90 * DAY).toISOString()
      const users = [1, 2, 3].map(() => fake.tenant.addUser({ createdDateTime }))
      return {
        env: { PROVIDERS: 'entra', ...fakeEnv(fake) as Record<string, string> },
        externalIds: users.map((u) => u.id),
        remove: (externalId: string) => { fake.tenant.byId.delete(externalId) },
        callsFor: (externalId: string) => fake.calls.filter((c) => c.path.includes(externalId)).length
      }
    }
  }
]

/** IAM's DeleteUser, as an operator would run it in the console. */
function deleteIamUser (fake: FakeIam, userName: string): void {
  fake.state.users.delete(userName)
  fake.state.userOrder.splice(fake.state.userOrder.findIndex((u) => u.userName === userName), 1)
}

for (const directory of DIRECTORIES) {
  test(`${directory.provider}: a user deleted at the directory ends its job as superseded with an audit line, is switched off in the portal, and no later sweep or dry run lists it again`, async (t) => {
    const clock = new FakeClock()
    const fake = await directory.start(t, clock)
    const services = await portal(t, fake.env, clock)
    await services.directorySync.sync(services.providers[directory.provider])
    await everyoneDue(services, clock, directory.provider)
    const [goneId, ...stayIds] = fake.externalIds
    const gone = await idOf(services, goneId)

    fake.remove(goneId)
    const report = await services.engine.sweep()

    assert.equal(report.superseded, 1)
    assert.equal(report.failed, 0, 'not a failure')
    assert.equal(report.completed, stayIds.length)
    assert.deepEqual(await row(services, gone), { state: 'not_targeted', disabled: 1, enforcedAt: null, jobs: 'superseded' })
    const [event] = await services.audit.list({ subjectUserId: gone, action: 'enforcement.superseded' })
    assert.match(event.details, new RegExp(`"reason":"the user no longer exists at ${directory.provider}; the account is disabled in the portal"`))
    assert.equal((await services.audit.list({ action: 'enforcement.failed' })).length, 0)
    for (const id of stayIds) assert.equal((await row(services, await idOf(services, id))).state, 'enforced')

    const calls = fake.callsFor(goneId)
    clock.advance(DAY)
    await services.engine.refreshAll()
    assert.deepEqual(await services.engine.plan(), [], 'the dry run lists no one')
    const later = await services.engine.sweep()
    assert.equal(later.planned, 0, 'a later sweep has nothing to do')
    assert.equal(fake.callsFor(goneId), calls, 'and never asks the directory about the deleted user again')
    assert.equal((await row(services, gone)).state, 'not_targeted')
  })
}

test('aws: a missing enforcement group is not taken for a deleted user: the user needs attention, with what to do', async (t) => {
  const clock = new FakeClock()
  const fake = await startFakeIam({ now: () => clock.now() })
  t.after(async () => { await fake.close() })
  fake.state.addUser({ userName: 'ann', consolePassword: true, createDate: new Date(clock.now().getTime() - 90 * DAY) })
  const services = await portal(t, { PROVIDERS: 'aws', ...awsEnv(fake, { AWS_IAM_ENFORCEMENT: 'group', AWS_IAM_ENFORCEMENT_GROUP: 'mfa-required' }) }, clock)
  await services.directorySync.sync(services.providers.aws)
  await everyoneDue(services, clock, 'aws')

  const report = await services.engine.sweep()

  const ann = await idOf(services, fake.state.user('ann').userId)
  assert.equal(report.failed, 1)
  assert.equal(report.superseded, 0)
  const state = (await sqlOn(services).get('SELECT state, reason FROM user_states WHERE user_id = ?', ann)) as { state: string, reason: string }
  assert.equal(state.state, 'attention')
  assert.match(state.reason, /^Enforcement failed: not_found: .*What to do: The provider did not find something the portal needs \(the enforcement policy or group\): check that it exists, then press Retry on the dashboard\.$/)
  assert.equal((await row(services, ann)).disabled, 0, 'the user is not switched off')
})
