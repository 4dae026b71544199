/**
 * Geometry of the burn-down chart (users not yet enrolled per day, with deadline markers), computed here so the
 * view only draws numbers: scales, "nice" ticks, the line's path. Days are UTC calendar days ('YYYY-MM-DD').
 */

export interface ChartPoint { day: string, value: number }
export interface ChartMarker { day: string, kind: 'deadline' | 'privileged', label: string }

export interface ChartSize {
  width: number
  height: number
  margin: { top: number, right: number, bottom: number, left: number }
}

// Small enough that its text stays readable when a 360 px phone shrinks it; the stylesheet caps how far it grows.
export const DEFAULT_CHART_SIZE: ChartSize = { width: 440, height: 250, margin: { top: 24, right: 14, bottom: 34, left: 40 } }

export interface BurndownGeometry {
  width: number
  height: number
  plot: { left: number, top: number, right: number, bottom: number }
  xTicks: Array<{ x: number, day: string, label: string }>
  yTicks: Array<{ y: number, value: number }>
  /** SVG path data for the line through the points ("M x y L x y …"). */
  path: string
  dots: Array<{ x: number, y: number, day: string, value: number }>
  /** Markers numbered from 1 in day order, so a legend can name them. */
  markers: Array<{ x: number, day: string, kind: ChartMarker['kind'], label: string, number: number }>
}

const DAY_MS = 86_400_000
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/** Days since the epoch for 'YYYY-MM-DD'. */
export function dayNumber (day: string): number {
  return Math.round(Date.parse(`${day}T00:00:00Z`) / DAY_MS)
}

export function dayFromNumber (n: number): string {
  return new Date(n * DAY_MS).toISOString().slice(0, 10)
}

/** A linear map from [d0, d1] onto [r0, r1]; a zero-width domain maps to the middle of the range. */
export function linearScale (domain: [number, number], range: [number, number]): (value: number) => number {
  const [d0, d1] = domain
  const [r0, r1] = range
  if (d1 === d0) return () => (r0 + r1) / 2
  return (value) => r0 + ((value - d0) / (d1 - d0)) * (r1 - r0)
}

/** The smallest of 1, 2 or 5 times a power of ten that is at least `rough` (and at least `min`). */
export function niceStep (rough: number, min = 1): number {
  if (!(rough > min)) return min
  const power = 10 ** Math.floor(Math.log10(rough))
  for (const multiple of [1, 2, 5, 10]) {
    if (multiple * power >= rough) return multiple * power
  }
  return 10 * power
}

/** Whole-number ticks from 0 up to the first tick at or above `max`, at most about `count` + 1 of them. */
export function valueTicks (max: number, count = 4): number[] {
  const step = niceStep(Math.max(max, 1) / count)
  const top = Math.max(step, Math.ceil(max / step) * step)
  const ticks: number[] = []
  for (let value = 0; value <= top; value += step) ticks.push(value)
  return ticks
}

// Calendar-ish spacings, smallest first: a tick every day, every other day, weekly, fortnightly, ~monthly, …
const DAY_STEPS = [1, 2, 7, 14, 28, 56, 91, 182, 364]

/** Day ticks from the first day, evenly spaced, at most `count` of them. */
export function dayTicks (first: number, last: number, count = 6): number[] {
  const span = last - first
  const step = DAY_STEPS.find((s) => span / s < count) ?? Math.ceil(span / count)
  const ticks: number[] = []
  for (let n = first; n <= last; n += step) ticks.push(n)
  return ticks
}

/** "25 Nov", with the year when the chart spans more than one. */
export function dayLabel (day: string, withYear: boolean): string {
  const [year, month, date] = day.split('-')
  return `${Number(date)} ${MONTHS[Number(month) - 1]}${withYear ? ` ${year}` : ''}`
}

function round (n: number): number {
  return Math.round(n * 10) / 10
}

/**
 * Lays out the chart. The days shown run from the earliest point or marker to the latest, so every deadline is
 * visible even when it is still ahead; a single day is widened by a day either side.
 */
export function burndownGeometry (points: ChartPoint[], markers: ChartMarker[], size: ChartSize = DEFAULT_CHART_SIZE): BurndownGeometry {
  const days = [...points.map((p) => dayNumber(p.day)), ...markers.map((m) => dayNumber(m.day))]
  let first = days.length === 0 ? 0 : Math.min(...days)
  let last = days.length === 0 ? 0 : Math.max(...days)
  if (first === last) { first -= 1; last += 1 }

  const plot = { left: size.margin.left, top: size.margin.top, right: size.width - size.margin.right, bottom: size.height - size.margin.bottom }
  const yValues = valueTicks(Math.max(0, ...points.map((p) => p.value)))
  const x = linearScale([first, last], [plot.left, plot.right])
  const y = linearScale([0, yValues[yValues.length - 1]], [plot.bottom, plot.top])
  const withYear = dayFromNumber(first).slice(0, 4) !== dayFromNumber(last).slice(0, 4)

  const sorted = [...points].sort((a, b) => a.day.localeCompare(b.day))
  const dots = sorted.map((p) => ({ x: round(x(dayNumber(p.day))), y: round(y(p.value)), day: p.day, value: p.value }))
  const path = dots.map((d, i) => `${i === 0 ? 'M' : 'L'}${d.x} ${d.y}`).join(' ')

  return {
    width: size.width,
    height: size.height,
    plot,
    xTicks: dayTicks(first, last, withYear ? 4 : 6).map((n) => ({ x: round(x(n)), day: dayFromNumber(n), label: dayLabel(dayFromNumber(n), withYear) })),
    yTicks: yValues.map((value) => ({ y: round(y(value)), value })),
    path,
    dots,
    markers: [...markers].sort((a, b) => a.day.localeCompare(b.day) || a.label.localeCompare(b.label))
      .map((m, i) => ({ x: round(x(dayNumber(m.day))), day: m.day, kind: m.kind, label: m.label, number: i + 1 }))
  }
}
