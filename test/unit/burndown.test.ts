import { test } from 'node:test'
import assert from 'node:assert/strict'
import { burndownGeometry, dayLabel, dayTicks, dayNumber, linearScale, niceStep, valueTicks, type ChartSize } from '../../server/domain/burndown.ts'
import { burndownSeries, notYetEnrolled } from '../../server/domain/dashboard.ts'

// A plot area of exactly 100 x 100 at (10, 10): positions are easy to read in the assertions.
const SQUARE: ChartSize = { width: 120, height: 120, margin: { top: 10, right: 10, bottom: 10, left: 10 } }

test('value ticks are whole, evenly spaced "nice" numbers from zero to at least the largest value', () => {
  assert.deepEqual(valueTicks(0), [0, 1])
  assert.deepEqual(valueTicks(3), [0, 1, 2, 3])
  assert.deepEqual(valueTicks(10), [0, 5, 10])
  assert.deepEqual(valueTicks(37), [0, 10, 20, 30, 40])
  assert.deepEqual(valueTicks(1234), [0, 500, 1000, 1500])
  assert.equal(niceStep(0.3), 1, 'never a fraction of a user')
  assert.equal(niceStep(7), 10)
  assert.equal(niceStep(20), 20)
})

test('day ticks start on the first day and are spaced by a calendar-like step, at most the requested number', () => {
  const first = dayNumber('2026-11-01')
  assert.deepEqual(dayTicks(first, first + 3), [first, first + 1, first + 2, first + 3])
  const month = dayTicks(first, first + 30)
  assert.deepEqual(month, [first, first + 7, first + 14, first + 21, first + 28])
  const year = dayTicks(first, first + 365)
  assert.ok(year.length <= 6)
  assert.equal(year[0], first)
})

test('day labels are short, and carry the year only when asked', () => {
  assert.equal(dayLabel('2026-11-05', false), '5 Nov')
  assert.equal(dayLabel('2027-01-31', true), '31 Jan 2027')
})

test('a linear scale maps its domain onto its range, flipped ranges included; an empty domain maps to the middle', () => {
  const y = linearScale([0, 40], [110, 10])
  assert.equal(y(0), 110)
  assert.equal(y(40), 10)
  assert.equal(y(10), 85)
  assert.equal(linearScale([5, 5], [0, 100])(5), 50)
})

test('the chart places each day left to right and each count bottom to top, and draws the line through them in day order', () => {
  const g = burndownGeometry([
    { day: '2026-11-03', value: 10 },
    { day: '2026-11-01', value: 40 },
    { day: '2026-11-02', value: 20 }
  ], [], SQUARE)
  assert.deepEqual(g.plot, { left: 10, top: 10, right: 110, bottom: 110 })
  assert.deepEqual(g.dots.map((d) => [d.day, d.x, d.y, d.value]), [
    ['2026-11-01', 10, 10, 40],
    ['2026-11-02', 60, 60, 20],
    ['2026-11-03', 110, 85, 10]
  ])
  assert.equal(g.path, 'M10 10 L60 60 L110 85')
  assert.deepEqual(g.yTicks.map((t) => [t.value, t.y]), [[0, 110], [10, 85], [20, 60], [30, 35], [40, 10]])
  assert.deepEqual(g.xTicks.map((t) => t.label), ['1 Nov', '2 Nov', '3 Nov'])
})

test('deadlines ahead of today widen the chart so their markers show, numbered in day order', () => {
  const g = burndownGeometry([{ day: '2026-11-01', value: 5 }, { day: '2026-11-11', value: 3 }], [
    { day: '2026-11-21', kind: 'deadline', label: 'Everyone' },
    { day: '2026-11-16', kind: 'privileged', label: 'Everyone (privileged users)' }
  ], SQUARE)
  assert.deepEqual(g.dots.map((d) => d.x), [10, 60])
  assert.deepEqual(g.markers.map((m) => [m.number, m.day, m.kind, m.x]), [[1, '2026-11-16', 'privileged', 85], [2, '2026-11-21', 'deadline', 110]])
})

test('a chart of a single day shows it in the middle, and a chart across New Year labels days with their year', () => {
  const single = burndownGeometry([{ day: '2026-11-25', value: 0 }], [], SQUARE)
  assert.equal(single.dots[0].x, 60)
  assert.equal(single.dots[0].y, 110, 'zero sits on the axis')
  assert.equal(single.path, 'M60 110')
  const across = burndownGeometry([{ day: '2026-12-20', value: 2 }], [{ day: '2027-01-31', kind: 'deadline', label: 'x' }], SQUARE)
  assert.match(across.xTicks[0].label, /^20 Dec 2026$/)
  assert.ok(across.xTicks.length <= 4)
})

test('"not yet enrolled" is pending plus overdue; the series ends with today\'s live counts instead of today\'s snapshot', () => {
  assert.equal(notYetEnrolled({ pending: 4, overdue: 2, enrolled: 9, enforced: 1, attention: 3 }), 6)
  assert.equal(notYetEnrolled({}), 0)
  const series = burndownSeries([
    { day: '2026-11-23', counts: { pending: 10, overdue: 0 } },
    { day: '2026-11-24', counts: { pending: 7, overdue: 1 } },
    { day: '2026-11-25', counts: { pending: 99 } }
  ], { pending: 3, overdue: 2 }, new Date('2026-11-25T15:00:00Z'))
  assert.deepEqual(series, [{ day: '2026-11-23', value: 10 }, { day: '2026-11-24', value: 8 }, { day: '2026-11-25', value: 5 }])
})
