import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { campaignDeadline, daysLeft, effectiveDeadline, type CampaignRule } from '../../server/domain/deadlines.ts'
import { loadCatalogues, Localiser, type Words } from '../../server/domain/i18n.ts'

/** A step's note as the helpdesk page writes it in English (UTC). */
const english = new Localiser(loadCatalogues(path.join(fileURLToPath(new URL('../../', import.meta.url)), 'locales')), { locale: 'en', timeZone: 'UTC' }).for()
const written = (note: Words | undefined): string => note === undefined ? '' : english.t(note.key, note.values)

const DAY = 24 * 3_600_000
const d = (iso: string) => new Date(iso)
const base: CampaignRule = {
  id: 'c1', name: 'MFA for everyone', startsAt: d('2026-11-01T00:00:00Z'), deadline: d('2026-12-31T00:00:00Z'),
  privilegedDeadline: d('2026-12-01T00:00:00Z'), newUserWindowDays: 14, maxExtensionDays: 30
}
const veteran = { firstSeenAt: d('2026-01-01T00:00:00Z'), privileged: false }

test('deadline rules, case by case', () => {
  const cases: Array<[string, Parameters<typeof campaignDeadline>, string, string[]]> = [
    ['an existing user gets the campaign deadline', [base, veteran, []], '2026-12-31T00:00:00.000Z', ['campaign_deadline']],
    ['a privileged user gets the shorter deadline', [base, { ...veteran, privileged: true }, []], '2026-12-01T00:00:00.000Z', ['campaign_deadline', 'privileged_deadline']],
    ['a late joiner gets the new-user window when it ends later', [base, { firstSeenAt: d('2026-12-25T00:00:00Z'), privileged: false }, []], '2027-01-08T00:00:00.000Z', ['campaign_deadline', 'new_user_window']],
    ['an early joiner keeps the campaign deadline', [base, { firstSeenAt: d('2026-11-02T00:00:00Z'), privileged: false }, []], '2026-12-31T00:00:00.000Z', ['campaign_deadline']],
    ['an extension moves the date later', [base, veteran, [{ campaignId: 'c1', days: 10 }]], '2027-01-10T00:00:00.000Z', ['campaign_deadline', 'extension']],
    ['extensions stop at the campaign budget', [base, veteran, [{ campaignId: 'c1', days: 20 }, { campaignId: 'c1', days: 20 }]], '2027-01-30T00:00:00.000Z', ['campaign_deadline', 'extension']],
    ['another campaign\'s extension does not count', [base, veteran, [{ campaignId: 'c2', days: 20 }]], '2026-12-31T00:00:00.000Z', ['campaign_deadline']],
    ['a negative extension cannot pull a deadline earlier', [base, veteran, [{ campaignId: 'c1', days: -20 }]], '2026-12-31T00:00:00.000Z', ['campaign_deadline']]
  ]
  for (const [name, args, expected, rules] of cases) {
    const result = campaignDeadline(...args)
    assert.equal(result.deadline.toISOString(), expected, name)
    assert.deepEqual(result.steps.map((s) => s.rule), rules, name)
  }
})

test('a user in several campaigns gets the earliest deadline', () => {
  const other: CampaignRule = { ...base, id: 'c2', name: 'Admins first', deadline: d('2026-12-10T00:00:00Z'), privilegedDeadline: null }
  assert.equal(effectiveDeadline([base, other], veteran, [])?.campaignId, 'c2')
  assert.equal(effectiveDeadline([], veteran, []), null)
})

test('days left round up and go negative once the deadline has passed', () => {
  assert.equal(daysLeft(d('2026-12-31T00:00:00Z'), d('2026-12-30T23:00:00Z')), 1)
  assert.equal(daysLeft(d('2026-12-31T00:00:00Z'), d('2026-12-31T00:00:00Z')), 0)
  assert.equal(daysLeft(d('2026-12-31T00:00:00Z'), d('2027-01-02T00:00:00Z')), -2)
})

const arbCampaign = fc.record({
  id: fc.constantFrom('c1', 'c2', 'c3'),
  name: fc.constant('campaign'),
  startsAt: fc.date({ min: d('2026-01-01T00:00:00Z'), max: d('2026-06-01T00:00:00Z'), noInvalidDate: true }),
  deadline: fc.date({ min: d('2026-06-01T00:00:00Z'), max: d('2027-06-01T00:00:00Z'), noInvalidDate: true }),
  privilegedDeadline: fc.option(fc.date({ min: d('2026-06-01T00:00:00Z'), max: d('2027-06-01T00:00:00Z'), noInvalidDate: true }), { nil: null }),
  newUserWindowDays: fc.integer({ min: 0, max: 90 }),
  maxExtensionDays: fc.integer({ min: 0, max: 90 })
})
const arbUser = fc.record({
  firstSeenAt: fc.date({ min: d('2025-01-01T00:00:00Z'), max: d('2027-06-01T00:00:00Z'), noInvalidDate: true }),
  directoryCreatedAt: fc.option(fc.date({ min: d('2020-01-01T00:00:00Z'), max: d('2027-06-01T00:00:00Z'), noInvalidDate: true }), { nil: null }),
  provider: fc.constantFrom('local', 'entra', 'aws'),
  privileged: fc.boolean()
})
const arbExtensions = fc.array(fc.record({ campaignId: fc.constantFrom('c1', 'c2', 'c3'), days: fc.integer({ min: -30, max: 60 }) }), { maxLength: 6 })

test('property: extensions never move a deadline earlier and never past the budget', () => {
  fc.assert(fc.property(arbCampaign, arbUser, arbExtensions, (campaign, user, extensions) => {
    const without = campaignDeadline(campaign, user, []).deadline.getTime()
    const withExt = campaignDeadline(campaign, user, extensions).deadline.getTime()
    return withExt >= without && withExt - without <= campaign.maxExtensionDays * DAY
  }))
})

test('property: adding an extension never moves a deadline earlier', () => {
  fc.assert(fc.property(arbCampaign, arbUser, arbExtensions, fc.integer({ min: 0, max: 60 }), (campaign, user, extensions, extra) => {
    const before = campaignDeadline(campaign, user, extensions).deadline.getTime()
    const after = campaignDeadline(campaign, user, [...extensions, { campaignId: campaign.id, days: extra }]).deadline.getTime()
    return after >= before
  }))
})

test('property: a late joiner always has at least the new-user window; a privileged user never a later base date', () => {
  fc.assert(fc.property(arbCampaign, arbUser, (campaign, user) => {
    const result = campaignDeadline(campaign, user, []).deadline.getTime()
    // Joined: the directory's creation date where known, else first seen.
    const joined = user.directoryCreatedAt ?? user.firstSeenAt
    const windowEnd = joined.getTime() + campaign.newUserWindowDays * DAY
    const lateOk = joined <= campaign.startsAt || result >= windowEnd
    const privilegedOk = !user.privileged || campaignDeadline(campaign, user, []).deadline.getTime() <= campaignDeadline(campaign, { ...user, privileged: false }, []).deadline.getTime()
    return lateOk && privilegedOk
  }))
})

test('property: the effective deadline is the earliest of the campaigns\' deadlines', () => {
  fc.assert(fc.property(fc.array(arbCampaign, { minLength: 1, maxLength: 4 }), arbUser, arbExtensions, (campaigns, user, extensions) => {
    const effective = effectiveDeadline(campaigns, user, extensions)!.deadline.getTime()
    return campaigns.every((c) => campaignDeadline(c, user, extensions).deadline.getTime() >= effective)
  }))
})

test('the new-user window runs from the directory\'s own creation date, and the explanation names where the date came from', () => {
  const cases: Array<[string, Parameters<typeof campaignDeadline>[1], string, RegExp | null]> = [
    // Created long before the campaign, first synced after it started (a directory connected late): no window.
    ['an Entra account created before the campaign, first seen after it, keeps the campaign deadline',
      { firstSeenAt: d('2026-12-25T00:00:00Z'), directoryCreatedAt: d('2025-03-01T00:00:00Z'), provider: 'entra', privileged: false }, '2026-12-31T00:00:00.000Z', null],
    ['an Entra account created after the start gets the window from its creation date',
      { firstSeenAt: d('2026-12-28T00:00:00Z'), directoryCreatedAt: d('2026-12-20T00:00:00Z'), provider: 'entra', privileged: false }, '2027-01-03T00:00:00.000Z',
      /^joined after the campaign started: 14 days from when the account was created in Entra on 20 December 2026$/],
    ['an IAM user created after the start says so',
      { firstSeenAt: d('2026-12-28T00:00:00Z'), directoryCreatedAt: d('2026-12-22T00:00:00Z'), provider: 'aws', privileged: false }, '2027-01-05T00:00:00.000Z',
      /created in AWS IAM on 22 December 2026$/],
    ['without a creation date the window runs from when the portal first saw the account',
      { firstSeenAt: d('2026-12-25T00:00:00Z'), directoryCreatedAt: null, provider: 'local', privileged: false }, '2027-01-08T00:00:00.000Z',
      /^joined after the campaign started: 14 days from when the account was first seen by the portal on 25 December 2026$/]
  ]
  for (const [name, user, expected, note] of cases) {
    const result = campaignDeadline(base, user, [])
    assert.equal(result.deadline.toISOString(), expected, name)
    const step = result.steps.find((s) => s.rule === 'new_user_window')
    if (note === null) assert.equal(step, undefined, name)
    else assert.match(written(step?.note), note, name)
    assert.doesNotMatch(written(step?.note), /first sign-in/, name)
  }
})
