import { test } from 'node:test'
import assert from 'node:assert/strict'
import { campaignDeadline, type CampaignRule } from '../../server/domain/deadlines.ts'
import { assessMethods, dropsAtSmsSunset, type MethodPolicy } from '../../server/domain/methods.ts'
import { countingMethods } from '../../server/domain/protection.ts'
import { sunsetEffect } from '../../server/domain/sms-sunset.ts'

const DAY = 24 * 3_600_000
const NOW = new Date('2027-01-10T09:00:00Z')
const base: MethodPolicy = { smsPolicy: 'counts', privilegedMethods: 'phishing_resistant' }

test('one method is enough unless the campaign asks for two; two are counted by kind', () => {
  assert.equal(assessMethods(false, ['totp'], base, NOW).enrolled, true)
  const two = { ...base, methodsRequired: 'two' as const }
  assert.deepEqual(pick(assessMethods(false, ['totp'], two, NOW)), { enrolled: false, needsSecond: true, held: 1, required: 2 })
  assert.deepEqual(pick(assessMethods(false, ['phone', 'totp'], two, NOW)), { enrolled: true, needsSecond: false, held: 2, required: 2 })
  assert.equal(assessMethods(false, ['hardware_totp', 'totp'], two, NOW).enrolled, true, 'a directory\'s hardware token is a kind of its own')
  assert.equal(assessMethods(false, ['email', 'totp'], two, NOW).enrolled, false, 'an e-mail address is no method')
  assert.equal(assessMethods(false, [], two, NOW).needsSecond, false, 'no method at all is not "one short"')
})

test('text messages that do not count are not a second method; privileged users still need their passkey', () => {
  const two: MethodPolicy = { ...base, smsPolicy: 'excluded', methodsRequired: 'two' }
  assert.equal(assessMethods(false, ['phone', 'totp'], two, NOW).enrolled, false)
  const privileged = { ...base, methodsRequired: 'two' as const }
  assert.equal(assessMethods(true, ['phone', 'totp'], privileged, NOW).enrolled, false)
  assert.equal(assessMethods(true, ['passkey'], privileged, NOW).needsSecond, true)
  assert.equal(assessMethods(true, ['passkey', 'phone'], privileged, NOW).enrolled, true)
})

test('recovery codes stand in for the second method only for portal accounts, and only under "one plus recovery codes"', () => {
  const policy: MethodPolicy = { ...base, methodsRequired: 'one_plus_recovery' }
  const local = countingMethods({ provider: 'local', portalMethods: ['totp'], providerMethods: [], recoveryCodes: 10 })
  assert.deepEqual(local, ['recovery_codes', 'totp'])
  assert.equal(assessMethods(false, local, policy, NOW).enrolled, true)
  assert.equal(assessMethods(false, local, { ...base, methodsRequired: 'two' }, NOW).enrolled, false)
  assert.equal(assessMethods(false, ['recovery_codes'], policy, NOW).enrolled, false, 'codes alone are no method')
  const directory = countingMethods({ provider: 'entra', portalMethods: ['totp'], providerMethods: ['totp'], recoveryCodes: 10 })
  assert.deepEqual(directory, ['totp'], 'directory users hold no recovery codes here')
  assert.equal(assessMethods(false, directory, policy, NOW).enrolled, false)
  assert.equal(assessMethods(false, ['passkey', 'totp'], policy, NOW).enrolled, true)
})

test('from the SMS sunset on, text messages count as the campaign says; who relied on them drops', () => {
  const sunset = { ...base, smsSunsetAt: new Date('2027-02-01T00:00:00Z'), smsAfterSunset: 'excluded' as const }
  assert.equal(assessMethods(false, ['phone'], sunset, new Date('2027-01-31T23:59:59Z')).enrolled, true)
  assert.equal(assessMethods(false, ['phone'], sunset, new Date('2027-02-01T00:00:00Z')).enrolled, false)
  assert.equal(dropsAtSmsSunset(false, ['phone'], sunset), true)
  assert.equal(dropsAtSmsSunset(false, ['phone', 'totp'], sunset), false)
  assert.equal(sunsetEffect(false, ['phone'], { ...sunset, smsAfterSunset: 'weak' }), 'weakens')
  assert.equal(sunsetEffect(false, [], sunset), null)
})

test('the SMS sunset gives those who drop a new deadline, the sunset plus its grace, only once the date has come and never to the enforced', () => {
  const sunsetAt = new Date(NOW.getTime() + 20 * DAY)
  const campaign: CampaignRule & MethodPolicy = {
    id: 'c', name: 'Everyone', startsAt: new Date(NOW.getTime() - 60 * DAY), deadline: new Date(NOW.getTime() + 10 * DAY), privilegedDeadline: null,
    newUserWindowDays: 0, maxExtensionDays: 30, ...base, smsSunsetAt: sunsetAt, smsAfterSunset: 'excluded', smsSunsetGraceDays: 14
  }
  const user = { firstSeenAt: new Date(NOW.getTime() - 90 * DAY), privileged: false, methodKinds: ['phone'], enforcedAt: null }
  assert.equal(campaignDeadline(campaign, user, [], new Date(sunsetAt.getTime() - 1)).deadline.getTime(), campaign.deadline.getTime(), 'before the date, nothing moves')
  const after = campaignDeadline(campaign, user, [{ campaignId: 'c', days: 3 }], sunsetAt)
  assert.equal(after.deadline.getTime(), sunsetAt.getTime() + 17 * DAY, 'sunset + 14 days of grace, then the extension')
  assert.deepEqual(after.steps.map((s) => s.rule), ['campaign_deadline', 'sms_sunset', 'extension'])
  assert.deepEqual(after.smsSunset, { at: sunsetAt, graceDays: 14 })
  assert.equal(campaignDeadline(campaign, { ...user, methodKinds: ['phone', 'totp'] }, [], sunsetAt).smsSunset, null)
  assert.equal(campaignDeadline(campaign, { ...user, enforcedAt: new Date(NOW.getTime() + 11 * DAY) }, [], sunsetAt).smsSunset, null, 'enforced before the sunset')
  const late = { ...campaign, deadline: new Date(sunsetAt.getTime() + 60 * DAY) }
  assert.equal(campaignDeadline(late, user, [], sunsetAt).deadline.getTime(), late.deadline.getTime(), 'a later deadline stays')
})

function pick (a: ReturnType<typeof assessMethods>) {
  return { enrolled: a.enrolled, needsSecond: a.needsSecond, held: a.held, required: a.required }
}
