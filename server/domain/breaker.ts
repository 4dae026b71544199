/**
 * The breaker (issue #17 item 2): what rollout teams fear is the Monday after the flip, with the helpdesk flooded
 * by locked-out people. After each sweep the engine reads, per campaign over a rolling 24 hours, the signals that
 * this is happening, and pauses the campaign when one passes its threshold. Pure: the figures come from the
 * database (one grouped query), the verdict and the words are decided here.
 */
import type { Words } from './i18n.ts'

export const BREAKER_WINDOW_MS = 24 * 3_600_000

/** A campaign's thresholds, over the rolling window. */
export interface BreakerThresholds {
  /** Passes issued plus helpdesk resets, for users already flipped, per 100 users flipped. */
  passesPer100: number
  /** Enforcement failures (failed for good) as a percentage of enforcement attempts. */
  failurePercent: number
  /** "This wasn't me" reports per 100 users flipped. */
  notMePer100: number
  /** No signal counts until this many users were flipped (or attempted) in the window: 1 pass after 1 flip is no trend. */
  minFlips: number
}

export const DEFAULT_BREAKER: BreakerThresholds = { passesPer100: 15, failurePercent: 20, notMePer100: 3, minFlips: 10 }

/** What the database counted for one campaign over the window. */
export interface BreakerCounts {
  /** Users whose enforcement the engine carried out. */
  flipped: number
  /** Enforcement attempts that failed for good. */
  failures: number
  /** Passes issued to users already flipped. */
  passes: number
  /** Helpdesk resets of users already flipped. */
  resets: number
  /** "This wasn't me" reports by the campaign's users. */
  notMe: number
}

export interface BreakerFigures extends BreakerCounts {
  since: Date
  until: Date
}

export type BreakerSignal = 'passes' | 'failures' | 'not_me'

export interface BreakerReading {
  signal: BreakerSignal
  /** The figure compared with the threshold (per 100 flipped, or a percentage). */
  value: number
  threshold: number
  /** Enough flips (or attempts) in the window for the figure to count. */
  sampled: boolean
  tripped: boolean
}

export const SIGNAL_NAMES: Record<BreakerSignal, string> = {
  passes: 'passes issued and helpdesk resets per 100 users flipped',
  failures: 'enforcement failures as a share of attempts',
  not_me: '"This wasn\'t me" reports per 100 users flipped'
}

function round1 (n: number): number {
  return Math.round(n * 10) / 10
}

/** Every signal's reading, in a fixed order; the first tripped one names the pause. */
export function readBreaker (counts: BreakerCounts, thresholds: BreakerThresholds): BreakerReading[] {
  const attempts = counts.flipped + counts.failures
  const per100 = (n: number): number => counts.flipped === 0 ? 0 : round1(n * 100 / counts.flipped)
  const flippedEnough = counts.flipped >= thresholds.minFlips
  const readings: Array<Omit<BreakerReading, 'tripped'>> = [
    { signal: 'passes', value: per100(counts.passes + counts.resets), threshold: thresholds.passesPer100, sampled: flippedEnough },
    { signal: 'failures', value: attempts === 0 ? 0 : round1(counts.failures * 100 / attempts), threshold: thresholds.failurePercent, sampled: attempts >= thresholds.minFlips },
    { signal: 'not_me', value: per100(counts.notMe), threshold: thresholds.notMePer100, sampled: flippedEnough }
  ]
  // "Passes its threshold": strictly above it, and only on a sample large enough to mean something.
  return readings.map((r) => ({ ...r, tripped: r.sampled && r.value > r.threshold }))
}

/** The signal that trips the breaker, or null. */
export function breakerVerdict (counts: BreakerCounts, thresholds: BreakerThresholds): BreakerReading | null {
  return readBreaker(counts, thresholds).find((r) => r.tripped) ?? null
}

/** "23.1 passes issued and helpdesk resets per 100 users flipped (threshold 15)". */
export function describeReading (reading: Pick<BreakerReading, 'signal' | 'value' | 'threshold'>): string {
  const unit = reading.signal === 'failures' ? '%' : ''
  return `${reading.value}${unit} ${SIGNAL_NAMES[reading.signal]} (threshold ${reading.threshold}${unit})`
}

/** The window's counts in one sentence. */
export function describeCounts (counts: BreakerCounts): string {
  return `${counts.flipped} user${counts.flipped === 1 ? '' : 's'} flipped, ${counts.failures} enforcement failure${counts.failures === 1 ? '' : 's'}, ` +
    `${counts.passes} pass${counts.passes === 1 ? '' : 'es'} and ${counts.resets} helpdesk reset${counts.resets === 1 ? '' : 's'} for flipped users, ` +
    `${counts.notMe} "This wasn't me" report${counts.notMe === 1 ? '' : 's'}`
}

/**
 * Field-by-field problems with a campaign's thresholds: the catalogue's words (`campaign-form.*`) for the form, and
 * the same in English for the API's message.
 */
export function breakerProblems (thresholds: BreakerThresholds | undefined): Record<string, Words & { english: string }> {
  if (thresholds === undefined) return {}
  const fields: Record<string, Words & { english: string }> = {}
  const whole = (n: number, min: number, max: number): boolean => Number.isInteger(n) && n >= min && n <= max
  if (!whole(thresholds.passesPer100, 1, 100)) fields.breakerPasses = { key: 'campaign-form.breaker_passes', english: 'Passes and resets per 100 users flipped: a whole number from 1 to 100.' }
  if (!whole(thresholds.failurePercent, 1, 100)) fields.breakerFailures = { key: 'campaign-form.breaker_failures', english: 'Enforcement failures: a whole percentage from 1 to 100.' }
  if (!whole(thresholds.notMePer100, 1, 100)) fields.breakerNotMe = { key: 'campaign-form.breaker_not_me', english: '"This wasn\'t me" reports per 100 users flipped: a whole number from 1 to 100.' }
  if (!whole(thresholds.minFlips, 1, 100_000)) fields.breakerMinFlips = { key: 'campaign-form.breaker_min_flips', english: 'The minimum sample is a whole number of users flipped, at least 1.' }
  return fields
}
