import { test } from 'node:test'
import assert from 'node:assert/strict'
import { dueOffset } from '../../server/domain/reminders.ts'

const DAY = 24 * 3_600_000
const deadline = new Date('2026-12-31T00:00:00Z')
const at = (daysBefore: number) => new Date(deadline.getTime() - daysBefore * DAY)

test('the reminder due is the latest offset whose moment has come, and none before the first or after the deadline', () => {
  const offsets = [30, 14, 7, 3, 1]
  assert.equal(dueOffset(offsets, deadline, at(31)), null)
  assert.equal(dueOffset(offsets, deadline, at(30)), 30)
  assert.equal(dueOffset(offsets, deadline, at(20)), 30)
  assert.equal(dueOffset(offsets, deadline, at(14)), 14)
  assert.equal(dueOffset(offsets, deadline, at(2)), 3, 'a late joiner gets the latest reminder, not all of them')
  assert.equal(dueOffset(offsets, deadline, at(0.5)), 1)
  assert.equal(dueOffset(offsets, deadline, at(0)), null)
})
