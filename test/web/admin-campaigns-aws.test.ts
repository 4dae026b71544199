import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { sweep as sweepCli } from '../../server/cli/sweep.ts'
import { type Agent, createTestUser, FakeClock, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { awsEnv } from '../fakes/iam/harness.ts'
import { startFakeIam, type FakeIam } from '../fakes/iam/server.ts'

// Issue #14 item 11: AWS's documented deny-unless-MFA policy also stops every long-term access key of the users it
// is attached to. A campaign shows whose keys it would stop, and is not armed before an admin has seen them and
// chosen the policy: "console and API" (AWS's) or "console only" (a separate policy that leaves keys working).
const SYSTEM = { id: null, label: 'test' }
const DOCUMENTED = 'arn:aws:iam::123456789012:policy/mfa-rollout-force-mfa'
const CONSOLE_ONLY = 'arn:aws:iam::123456789012:policy/mfa-rollout-force-mfa-console-only'

const GROUPS = { console: ['kim', 'lou', 'max'], later: ['nia', 'ole', 'pam'], preview: ['quin', 'rob', 'sue'] }

let t: TestApp
let fake: FakeIam
let admin: Agent
let adminId: string

before(async () => {
  const clock = new FakeClock()
  fake = await startFakeIam({ now: () => clock.now() })
  fake.report.delayMs = 0
  t = await startTestApp({ PROVIDERS: 'aws', ...awsEnv(fake), TRUSTED_NETWORKS: '203.0.113.0/24' }, { clock })
  const { services } = t
  // Three groups of three users, one group per test (each test's campaign targets its own group).
  const longAgo = new Date(clock.now().getTime() - 400 * DAY)
  for (const [group, [withKey, without, inactive]] of Object.entries(GROUPS)) {
    fake.state.addUser({
      userName: withKey, consolePassword: true, createDate: longAgo, tags: { email: `${withKey}@example.org` }, groups: [group],
      accessKeys: [{ createDate: new Date('2025-03-01T00:00:00Z'), lastUsed: { date: new Date('2026-11-20T07:30:00Z'), serviceName: 's3', region: 'eu-west-1' } }]
    })
    fake.state.addUser({ userName: without, consolePassword: true, createDate: longAgo, tags: { email: `${without}@example.org` }, groups: [group] })
    fake.state.addUser({ userName: inactive, consolePassword: true, createDate: longAgo, tags: { email: `${inactive}@example.org` }, groups: [group], accessKeys: [{ status: 'Inactive' }] })
  }
  await services.directorySync.sync(services.providers.aws)
  const user = await createTestUser(services, { role: 'admin' })
  adminId = user.id
  admin = await signInStaff(t, user)
})
after(async () => {
  await t.close()
  await fake.close()
})

/** A disarmed campaign for one group of AWS users whose deadline passed yesterday. */
function overdueCampaign (name: string, group: keyof typeof GROUPS) {
  const now = t.clock.now().getTime()
  return t.services.campaigns.create(campaignInput(now, { name, targetKind: 'group', targetValue: group, deadline: new Date(now - DAY), privilegedMethods: 'any' }), SYSTEM)
}

async function audited (action: string): Promise<Array<Record<string, unknown>>> {
  return (await t.services.audit.list({ action })).map((e) => JSON.parse(e.details) as Record<string, unknown>)
}

async function flash (location: string): Promise<string> {
  return (await admin.get(location)).text
}

test('the campaign page lists the due AWS users\' active access keys with their last use, and the campaign is not armed until an admin confirms the policy with them in view (audited)', async () => {
  const campaign = await overdueCampaign('AWS console', 'console')
  const url = `/admin/campaigns/${campaign.id}`
  const kimKey = fake.state.user('kim').accessKeys[0].accessKeyId
  const maxKey = fake.state.user('max').accessKeys[0].accessKeyId

  const page = await admin.get(url)
  assert.equal(page.status, 200)
  const table = /<table class="data-table" id="aws-keys">([\s\S]*?)<\/table>/.exec(page.text)?.[1] ?? ''
  assert.match(table, new RegExp(`<td class="wrap-anywhere">kim \\(kim@example\\.org\\)</td>\\s*<td><code>${kimKey}</code></td>\\s*<td>1 March 2025</td>\\s*<td>20 November 2026, s3 in eu-west-1</td>`))
  assert.doesNotMatch(table, new RegExp(maxKey), 'an inactive key signs nothing and is not listed')
  assert.doesNotMatch(table, /lou/)
  assert.match(page.text, /id="aws-policy-unconfirmed"/)

  const refused = await submitForm(admin, url, `${url}/arm`)
  assert.equal(refused.status, 303)
  assert.equal(refused.headers.location, `${url}#aws-access-keys`)
  assert.match(await flash(refused.headers.location as string), /1 AWS user due in this campaign holds active access keys\. Review them under &quot;AWS access keys&quot; and confirm which policy AWS users get, then arm\./)
  assert.equal((await t.services.campaigns.find(campaign.id))!.armedAt, null, 'not armed')
  assert.equal((await audited('campaign.arming_refused')).at(-1)?.campaignId, campaign.id)

  const confirmed = await submitForm(admin, url, `${url}/aws-policy`, { awsPolicyVariant: 'console_only', seenKeys: kimKey })
  assert.equal(confirmed.status, 303)
  assert.match(await flash(confirmed.headers.location as string), /Confirmed: AWS users of this campaign get the &quot;console only&quot; policy\./)
  const stored = (await t.services.campaigns.find(campaign.id))!
  assert.equal(stored.awsPolicyVariant, 'console_only')
  assert.deepEqual(stored.accessKeyReview?.keyIds, [kimKey])
  const [event] = await t.services.audit.list({ action: 'campaign.aws_policy_confirmed' })
  assert.equal(event.actorId, adminId)
  assert.deepEqual(JSON.parse(event.details), { campaignId: campaign.id, name: 'AWS console', variant: 'console_only', from: 'console_and_api', keys: 1, usersWithKeys: [{ userName: 'kim', keys: [kimKey] }] })

  const armed = await submitForm(admin, url, `${url}/arm`)
  assert.equal(armed.status, 303)
  assert.notEqual((await t.services.campaigns.find(campaign.id))!.armedAt, null)

  // The sweep attaches the policy the campaign chose, and the drift check looks for that one.
  await t.services.engine.sweep()
  for (const userName of GROUPS.console) assert.deepEqual([...fake.state.user(userName).policies], [CONSOLE_ONLY], `${userName} holds the console-only policy`)
  assert.equal(fake.state.policies.has(DOCUMENTED), false)
  assert.deepEqual((await t.services.engine.checkDrift()).drifted, [])
  fake.state.detachUserPolicy('kim', CONSOLE_ONLY)
  fake.state.attachUserPolicy('kim', fake.state.createPolicy('mfa-rollout-force-mfa', '/', '{"Version":"2012-10-17","Statement":[]}').arn)
  const kim = (await t.services.users.findByEmail('kim@example.org'))!
  assert.deepEqual((await t.services.engine.checkDrift()).drifted, [kim.id], 'another policy in its place is drift')
  await t.services.campaigns.disarm(campaign.id, SYSTEM)
})

test('a key created after the confirmation blocks arming again, and a confirmation from a page that did not show it is refused', async () => {
  const campaign = await overdueCampaign('AWS later', 'later')
  const url = `/admin/campaigns/${campaign.id}`
  const niaKey = fake.state.user('nia').accessKeys[0].accessKeyId
  assert.equal((await submitForm(admin, url, `${url}/aws-policy`, { awsPolicyVariant: 'console_and_api', seenKeys: niaKey })).status, 303)
  const oleKey = fake.state.addAccessKey('ole').accessKeyId

  const refused = await submitForm(admin, url, `${url}/arm`)
  assert.match(await flash(refused.headers.location as string), /2 AWS users due in this campaign hold active access keys \(1 not shown when the policy was last confirmed\)/)
  assert.equal((await t.services.campaigns.find(campaign.id))!.armedAt, null)

  const stale = await submitForm(admin, url, `${url}/aws-policy`, { awsPolicyVariant: 'console_and_api', seenKeys: niaKey })
  assert.match(await flash(stale.headers.location as string), /1 access key was created since this page was shown\. Look at the list again, then confirm\./)
  assert.deepEqual((await t.services.campaigns.find(campaign.id))!.accessKeyReview?.keyIds, [niaKey], 'nothing recorded')

  const page = await admin.get(url)
  const seenKeys = /name="seenKeys" value="([^"]*)"/.exec(page.text)?.[1] ?? ''
  assert.deepEqual(seenKeys.split(',').sort(), [niaKey, oleKey].sort())
  await submitForm(admin, url, `${url}/aws-policy`, { awsPolicyVariant: 'console_and_api', seenKeys })
  await submitForm(admin, url, `${url}/arm`)
  assert.notEqual((await t.services.campaigns.find(campaign.id))!.armedAt, null)
  await t.services.campaigns.disarm(campaign.id, SYSTEM)
})

test('the dry run lists each due AWS user\'s active access keys and what the campaign\'s policy does to them', async () => {
  const campaign = await overdueCampaign('AWS preview', 'preview')
  const out: string[] = []
  const io = { out: (line: string) => { out.push(line) }, err: (line: string) => { out.push(line) } }
  const code = await sweepCli.run({ args: [], options: { 'dry-run': true, campaign: campaign.id } }, t.services, io as never)
  assert.equal(code, 0)
  const quinKey = fake.state.user('quin').accessKeys[0].accessKeyId
  assert.ok(out.includes('aws access keys of "AWS preview": 1 due AWS user holds active access keys; the campaign\'s "console and API" policy would stop them working until MFA, and requests signed with them never carry MFA'), out.join('\n'))
  assert.ok(out.includes(`access key\tquin\tquin@example.org\t${quinKey}\tcreated 2025-03-01\tlast used 2026-11-20 (s3, eu-west-1)`), out.join('\n'))

  const json: string[] = []
  await sweepCli.run({ args: [], options: { 'dry-run': true, campaign: campaign.id, json: true } }, t.services, { out: (line: string) => { json.push(line) }, err: () => {} } as never)
  const result = JSON.parse(json.join('')) as { awsAccessKeys: Array<{ campaignId: string, listing: { users: Array<{ userName: string, keys: Array<{ accessKeyId: string }> }> } }> }
  assert.deepEqual(result.awsAccessKeys[0].listing.users.map((u) => [u.userName, u.keys.map((k) => k.accessKeyId)]), [['quin', [quinKey]]])
})
