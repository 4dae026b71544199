import { afterEach, test } from 'node:test'
import assert from 'node:assert/strict'
import type { Campaign } from '../../server/domain/engine.ts'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { type Agent, createTestUser, readable, signIn, signInStaff, startTestApp, submitForm, type TestApp } from '../helpers/app.ts'
import { sqlOn } from '../helpers/sql.ts'

let t: TestApp | undefined
afterEach(async () => { await t?.close() })

/** An admin, two existing users (first seen long ago) and a campaign for everyone whose deadline is 10 days away. */
async function withCampaign (): Promise<{ t: TestApp, admin: Agent, adminId: string, campaign: Campaign, users: string[] }> {
  t = await startTestApp()
  const user = await createTestUser(t.services, { role: 'admin' })
  const users = [(await createTestUser(t.services)).id, (await createTestUser(t.services)).id]
  for (const id of users) await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', t.clock.now().getTime() - 90 * DAY, id)
  const campaign = await t.services.campaigns.create(campaignInput(t.clock.now(), {
    name: 'Spring rollout', startsAt: new Date('2026-11-01T00:00:00Z'), deadline: new Date('2026-12-05T00:00:00Z')
  }), { id: user.id, label: user.email })
  return { t, admin: await signInStaff(t, user), adminId: user.id, campaign, users }
}

/** The edit form as a browser sends it: every field, as the page showed it, with `changes` applied. */
async function editFields (admin: Agent, campaignId: string, changes: Record<string, string>): Promise<Record<string, string>> {
  const page = await admin.get(`/admin/campaigns/${campaignId}/edit`)
  const fields: Record<string, string> = {}
  for (const m of page.text.matchAll(/<input id="([A-Za-z]+)" name="\1" type="(?:text|date)"[^>]*value="([^"]*)"/g)) fields[m[1]] = m[2]
  for (const m of page.text.matchAll(/<input id="[A-Za-z]+-[a-z_]+" name="([A-Za-z]+)" type="radio" value="([a-z_]+)" checked>/g)) fields[m[1]] = m[2]
  return { ...fields, ...changes }
}

test('the edit form shows the campaign\'s current settings, posts to its own address and says "Save changes"', async () => {
  const { admin, campaign } = await withCampaign()
  const show = await admin.get(`/admin/campaigns/${campaign.id}`)
  assert.match(show.text, new RegExp(`href="/admin/campaigns/${campaign.id}/edit">Edit settings`))
  const page = await admin.get(`/admin/campaigns/${campaign.id}/edit`)
  assert.equal(page.status, 200)
  assert.match(readable(page.text), /<h1>Edit “Spring rollout”<\/h1>/)
  assert.match(page.text, new RegExp(`<form method="post" action="/admin/campaigns/${campaign.id}/edit"`))
  assert.match(page.text, />Save changes<\/button>/)
  assert.deepEqual(await editFields(admin, campaign.id, {}), {
    name: 'Spring rollout', targetValue: '', startsAt: '2026-11-01', deadline: '2026-12-05', privilegedDeadline: '', newUserWindowDays: '14',
    reminderOffsets: '30, 14, 7, 3, 1', maxExtensionDays: '30', softBlockDays: '', targetKind: 'all', smsPolicy: 'counts', privilegedMethods: 'phishing_resistant', driftPolicy: 'reapply',
    awsPolicyVariant: 'console_and_api', methodsRequired: 'one', smsSunsetAt: '', smsAfterSunset: 'excluded', smsSunsetGraceDays: '30',
    wavePilotKind: 'none', wavePilot: '', waveOffsets: '', breakerPasses: '15', breakerFailures: '20', breakerNotMe: '3', breakerMinFlips: '10'
  })
})

test('saving an edit is audited with exactly the changed fields, and every user\'s deadline is worked out again', async () => {
  const { t, admin, adminId, campaign, users } = await withCampaign()
  assert.equal((await t.services.engine.standing(users[0]))?.deadline?.toISOString(), '2026-12-05T00:00:00.000Z')
  const res = await submitForm(admin, `/admin/campaigns/${campaign.id}/edit`, `/admin/campaigns/${campaign.id}/edit`,
    await editFields(admin, campaign.id, { name: 'Spring rollout, extended', deadline: '2026-12-20', reminderOffsets: '7, 1' }))
  assert.equal(res.status, 303)
  assert.equal(res.headers.location, `/admin/campaigns/${campaign.id}`)
  const stored = await t.services.campaigns.find(campaign.id)
  assert.equal(stored?.name, 'Spring rollout, extended')
  assert.equal(stored?.deadline.toISOString(), '2026-12-20T00:00:00.000Z')
  assert.deepEqual(stored?.reminderOffsets, [7, 1])
  for (const id of users) assert.equal((await t.services.engine.standing(id))?.deadline?.toISOString(), '2026-12-20T00:00:00.000Z')

  const [event] = await t.services.audit.list({ action: 'campaign.updated' })
  assert.equal(event.actorId, adminId)
  assert.deepEqual(JSON.parse(event.details), {
    campaignId: campaign.id,
    name: 'Spring rollout, extended',
    changes: {
      name: { from: 'Spring rollout', to: 'Spring rollout, extended' },
      deadline: { from: '2026-12-05T00:00:00.000Z', to: '2026-12-20T00:00:00.000Z' },
      reminderOffsets: { from: '30,14,7,3,1', to: '7,1' }
    }
  })
  assert.match((await admin.get(res.headers.location)).text, /Saved\. Everyone&#39;s deadline has been worked out again\./)
})

test('moving an armed campaign\'s deadline into the past shows the new dry run on the campaign page', async () => {
  const { t, admin, adminId, campaign, users } = await withCampaign()
  await t.services.campaigns.arm(campaign.id, { id: adminId, label: 'admin' })
  assert.deepEqual(await t.services.engine.plan(), [], 'nothing is due before the edit')
  const res = await submitForm(admin, `/admin/campaigns/${campaign.id}/edit`, `/admin/campaigns/${campaign.id}/edit`,
    await editFields(admin, campaign.id, { deadline: '2026-11-20' }))
  assert.equal(res.status, 303)
  const page = await admin.get(res.headers.location)
  assert.match(page.text, /This campaign is armed: the dry run below shows what the next sweep will do with the new settings\./)
  assert.match(page.text, /2 users would be made to use multi-factor sign-in/)
  assert.deepEqual((await t.services.engine.plan()).map((item) => item.userId).sort(), [...users].sort())
  assert.notEqual((await t.services.campaigns.find(campaign.id))?.armedAt, null, 'editing does not disarm')
})

test('an edit with mistakes comes back with each message at its field and what was typed, and changes nothing', async () => {
  const { t, admin, campaign, users } = await withCampaign()
  const res = await submitForm(admin, `/admin/campaigns/${campaign.id}/edit`, `/admin/campaigns/${campaign.id}/edit`,
    await editFields(admin, campaign.id, { name: '', deadline: '2026-10-01', maxExtensionDays: 'lots' }))
  assert.equal(res.status, 400)
  assert.match(res.text, /<title>Error: Edit Spring rollout/)
  assert.deepEqual([...res.text.matchAll(/<li><a href="#([A-Za-z-]+)">/g)].map((m) => m[1]), ['name', 'deadline', 'maxExtensionDays'])
  assert.match(res.text, /<p id="deadline-error" class="field-error"><span class="visually-hidden">Error: <\/span>The deadline must be after the start\.<\/p>/)
  assert.match(res.text, /id="maxExtensionDays"[^>]*value="lots"/)
  assert.match(res.text, new RegExp(`action="/admin/campaigns/${campaign.id}/edit"`), 'the form still saves this campaign')
  assert.equal((await t.services.campaigns.find(campaign.id))?.name, 'Spring rollout')
  assert.equal((await t.services.campaigns.find(campaign.id))?.deadline.toISOString(), '2026-12-05T00:00:00.000Z')
  assert.equal((await t.services.engine.standing(users[0]))?.deadline?.toISOString(), '2026-12-05T00:00:00.000Z')
  assert.equal((await t.services.audit.list({ action: 'campaign.updated' })).length, 0)
})

test('saving the form unchanged records nothing and says so', async () => {
  const { t, admin, campaign } = await withCampaign()
  const res = await submitForm(admin, `/admin/campaigns/${campaign.id}/edit`, `/admin/campaigns/${campaign.id}/edit`, await editFields(admin, campaign.id, {}))
  assert.equal(res.status, 303)
  assert.match((await admin.get(res.headers.location)).text, /Nothing was changed\./)
  assert.equal((await t.services.audit.list({ action: 'campaign.updated' })).length, 0)
})

test('editing an unknown campaign is a 404; a forged form or a non-admin changes nothing', async () => {
  const { t, admin, campaign } = await withCampaign()
  assert.equal((await admin.get('/admin/campaigns/nope/edit')).status, 404)
  const fields = await editFields(admin, campaign.id, { name: 'Hijacked' })
  assert.equal((await submitForm(admin, `/admin/campaigns/${campaign.id}/edit`, '/admin/campaigns/nope/edit', fields)).status, 404)
  assert.equal((await admin.post(`/admin/campaigns/${campaign.id}/edit`).type('form').send({ ...fields, _csrf: 'forged' })).status, 403)
  const helpdesk = await signIn(t, (await createTestUser(t.services, { role: 'helpdesk' })).email)
  assert.equal((await helpdesk.get(`/admin/campaigns/${campaign.id}/edit`)).status, 403)
  assert.equal((await submitForm(helpdesk, '/', `/admin/campaigns/${campaign.id}/edit`, fields)).status, 403)
  assert.equal((await t.services.campaigns.find(campaign.id))?.name, 'Spring rollout')
  assert.equal((await t.services.audit.list({ action: 'campaign.updated' })).length, 0)
})
