import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createTestUser, signIn, startTestApp, stepUp, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam } from '../fakes/iam/server.ts'

const day = (at: number): string => new Date(at).toISOString().slice(0, 10)
/** A day as the pages write it in English (DEFAULT_TIME_ZONE is UTC in tests): "20 December 2026". */
const shownDay = (at: number): string => new Intl.DateTimeFormat('en-GB', { dateStyle: 'long', timeZone: 'UTC' }).format(new Date(at))

test('the new-user window counts from the day the directory created the account, and the helpdesk and home pages say which date it used', async () => {
  let app: TestApp | undefined
  const fake = await startFakeIam({ now: () => app?.clock.now() ?? new Date() })
  app = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake) })
  const t = app
  try {
    const now = t.clock.now().getTime()
    // Created in IAM long before the campaign, but seen by the portal only now (AWS connected late): no newcomer.
    fake.state.addUser({ userName: 'veteran', consolePassword: true, createDate: new Date(now - 400 * DAY) })
    // Created in IAM two days ago, well after the campaign started 60 days ago: the window runs from then.
    fake.state.addUser({ userName: 'newbie', consolePassword: true, createDate: new Date(now - 2 * DAY) })
    await t.services.campaigns.create(campaignInput(now, { targetKind: 'all', newUserWindowDays: 14, privilegedMethods: 'any' }), { id: null, label: 'test' })
    await t.services.directorySync.sync(t.services.providers.aws)
    const local = await createTestUser(t.services, { displayName: 'Late Local' })
    await t.services.engine.refreshUser(local.id)

    const idOf = (name: string): string => t.services.database.sqlite.prepare("SELECT id FROM users WHERE display_name = ? AND provider = 'aws'").pluck().get(name) as string
    const deadline = async (userId: string): Promise<string> => day((await t.services.engine.explainDeadline(userId))!.deadline.getTime())
    assert.equal(await deadline(idOf('veteran')), day(now + 10 * DAY), 'the campaign deadline, not 14 days from the first sync')
    assert.equal(await deadline(idOf('newbie')), day(now + 12 * DAY))
    assert.equal(await deadline(local.id), day(now + 14 * DAY), 'no directory date: from when the portal first saw the account')

    const helpdesk = await createTestUser(t.services, { role: 'helpdesk' })
    const agent = await signIn(t, helpdesk.email)
    await stepUp(t, agent, helpdesk)
    const newbiePage = (await agent.get(`/helpdesk/users/${idOf('newbie')}`)).text
    assert.match(newbiePage, new RegExp(`joined after the campaign started: 14 days from when the account was created in AWS IAM on ${shownDay(now - 2 * DAY)}`))
    const localPage = (await agent.get(`/helpdesk/users/${local.id}`)).text
    assert.match(localPage, new RegExp(`14 days from when the account was first seen by the portal on ${shownDay(now)}`))
    assert.doesNotMatch(newbiePage + localPage, /first sign-in/)
    assert.doesNotMatch((await agent.get(`/helpdesk/users/${idOf('veteran')}`)).text, /joined after the campaign started/)
    // The person sees the same explanation on their own page.
    const home = (await (await signIn(t, local.email)).get('/')).text
    assert.match(home, new RegExp(`Your account is new, so your deadline allows 14 days from when the account was first seen by the portal on ${shownDay(now)}`))
  } finally {
    await t.close()
    await fake.close()
  }
})
