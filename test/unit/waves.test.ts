import { test } from 'node:test'
import assert from 'node:assert/strict'
import { breakerVerdict, DEFAULT_BREAKER, readBreaker } from '../../server/domain/breaker.ts'
import { campaignDeadline, type CampaignRule } from '../../server/domain/deadlines.ts'
import { pauseShiftMs, waveOf, waveProblems, waveSchedule, type WavePlan } from '../../server/domain/waves.ts'

const DAY = 86_400_000
const T0 = Date.parse('2027-01-01T00:00:00Z')
const plan: WavePlan = { pilot: { kind: 'share', percent: 10 }, offsetsDays: [7, 14] }

function rule (fields: Partial<CampaignRule> = {}): CampaignRule {
  return { id: 'c1', name: 'Rollout', startsAt: new Date(T0 - 30 * DAY), deadline: new Date(T0 + 10 * DAY), privilegedDeadline: null, newUserWindowDays: 14, maxExtensionDays: 30, waves: plan, ...fields }
}

test('a user\'s wave is stable across runs, and the pilot share is about what was asked', () => {
  const ids = Array.from({ length: 5000 }, (_, i) => `user-${i}`)
  const first = ids.map((id) => waveOf('c1', plan, { userId: id }))
  assert.deepEqual(ids.map((id) => waveOf('c1', plan, { userId: id })), first)
  const pilots = first.filter((w) => w === 1).length
  assert.ok(pilots > 400 && pilots < 600, `about 10% in the pilot, got ${pilots}`)
  const w2 = first.filter((w) => w === 2).length
  const w3 = first.filter((w) => w === 3).length
  assert.ok(Math.abs(w2 - w3) < 300, `the rest spread evenly: ${w2} and ${w3}`)
  assert.notDeepEqual(ids.map((id) => waveOf('c2', plan, { userId: id })), first, 'another campaign draws another pilot')
})

test('a pilot group takes its members, whatever their bucket', () => {
  const byGroup: WavePlan = { pilot: { kind: 'group', group: 'pilot' }, offsetsDays: [7] }
  assert.equal(waveOf('c1', byGroup, { userId: 'x', groups: ['pilot'] }), 1)
  assert.equal(waveOf('c1', byGroup, { userId: 'x', groups: [] }), 2)
})

test('a waiting wave shows the earliest its deadline can be; once started it counts from the later of its start and the previous deadline', () => {
  const waiting = waveSchedule(rule())
  assert.deepEqual(waiting.map((w) => [w.counting, w.deadline.getTime() - T0]), [[true, 10 * DAY], [false, 17 * DAY], [false, 31 * DAY]])
  // Wave 2 started early (the pilot was done before its deadline): the date promised stays.
  const early = waveSchedule(rule({ waveStarts: [{ wave: 2, at: new Date(T0 + 2 * DAY), by: null }] }))
  assert.equal(early[1].deadline.getTime(), T0 + 17 * DAY)
  // Started late (the pilot was unhealthy): a full offset from the start.
  const late = waveSchedule(rule({ waveStarts: [{ wave: 2, at: new Date(T0 + 20 * DAY), by: null }] }))
  assert.equal(late[1].deadline.getTime(), T0 + 27 * DAY)
  assert.equal(late[2].deadline.getTime(), T0 + 41 * DAY)
})

test('a completed pause moves the deadline of users not yet flipped, and only theirs', () => {
  const pauses = [{ pausedAt: new Date(T0 + 11 * DAY), resumedAt: new Date(T0 + 14 * DAY) }]
  const r = rule({ waves: null, pauses })
  const pilot = waveSchedule(r)[0]
  assert.equal(pauseShiftMs(r, pilot, null), 3 * DAY)
  assert.equal(pauseShiftMs(r, pilot, new Date(T0 + 10 * DAY + 3_600_000)), 0, 'flipped before the pause: no shift')
  assert.equal(pauseShiftMs(r, pilot, new Date(T0 + 15 * DAY)), 3 * DAY, 'flipped after the resume, at the moved date: it stays')
  const open = rule({ waves: null, pauses: [{ pausedAt: new Date(T0 + 11 * DAY), resumedAt: null }] })
  assert.equal(pauseShiftMs(open, pilot, null), 0, 'an open pause moves nothing yet')

  const subject = { firstSeenAt: new Date(T0 - 90 * DAY), privileged: false, userId: 'u' }
  const d = campaignDeadline(r, subject, [])
  assert.equal(d.deadline.getTime(), T0 + 13 * DAY)
  assert.deepEqual(d.steps.map((s) => s.rule), ['campaign_deadline', 'campaign_paused'])
})

test('privileged users keep their lead in a later wave', () => {
  const r = rule({ privilegedDeadline: new Date(T0 + 5 * DAY), waves: { pilot: { kind: 'group', group: 'p' }, offsetsDays: [7] } })
  const d = campaignDeadline(r, { firstSeenAt: new Date(T0 - 90 * DAY), privileged: true, userId: 'u', groups: [] }, [])
  assert.equal(d.deadline.getTime(), T0 + 12 * DAY, '5 days before wave 2\'s deadline, as in the campaign')
  assert.deepEqual(d.wave, { number: 2, of: 2, counting: false, startedAt: null })
})

test('wave plans with no later wave, a zero share or a fractional offset are refused by field', () => {
  assert.deepEqual(Object.keys(waveProblems({ pilot: { kind: 'share', percent: 0 }, offsetsDays: [] })).sort(), ['waveOffsets', 'wavePilot'])
  assert.deepEqual(Object.keys(waveProblems({ pilot: { kind: 'group', group: 'g' }, offsetsDays: [1.5] })), ['waveOffsets'])
  assert.deepEqual(waveProblems({ pilot: { kind: 'share', percent: 5 }, offsetsDays: [7] }), {})
})

test('the breaker needs its minimum sample, and trips only above a threshold', () => {
  assert.equal(breakerVerdict({ flipped: 1, failures: 0, passes: 1, resets: 0, notMe: 0 }, DEFAULT_BREAKER), null, '1 pass after 1 flip')
  assert.equal(breakerVerdict({ flipped: 20, failures: 0, passes: 3, resets: 0, notMe: 0 }, DEFAULT_BREAKER), null, '15 per 100 is not above 15')
  assert.equal(breakerVerdict({ flipped: 20, failures: 0, passes: 2, resets: 2, notMe: 0 }, DEFAULT_BREAKER)?.signal, 'passes', 'resets count with passes')
  assert.equal(breakerVerdict({ flipped: 8, failures: 3, passes: 0, resets: 0, notMe: 0 }, DEFAULT_BREAKER)?.signal, 'failures', '3 of 11 attempts')
  assert.deepEqual(readBreaker({ flipped: 100, failures: 0, passes: 0, resets: 0, notMe: 4 }, DEFAULT_BREAKER).map((r) => r.tripped), [false, false, true])
})
