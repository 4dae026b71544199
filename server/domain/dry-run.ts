/**
 * Why a dry run lists no one, in words an operator can act on (DESIGN.md "Dry run"). An empty list alone reads
 * as "nothing to do" when the truth may be "the campaign is not armed" or "everyone is still inside the new-user
 * window". Pure: the engine hands in what the database counted.
 */
import type { CampaignRule } from './deadlines.ts'
import type { UserState } from './states.ts'

/** How one campaign's users stand, counted by the database. */
export interface CampaignOutlook {
  /** Users whose deadline comes from this campaign, by state. */
  byState: Partial<Record<UserState, number>>
  /** Users whose deadline is still ahead because they joined after the start (new-user window), and when the last window ends. */
  inWindow: { count: number, until: Date | null }
  /** Other users whose deadline is still ahead, and the first of those deadlines. */
  ahead: { count: number, next: Date | null }
}

export interface OutlookEntry {
  campaign: Pick<CampaignRule, 'id' | 'name' | 'newUserWindowDays'> & { armedAt: Date | null, pauses?: Array<{ pausedAt: Date, resumedAt: Date | null }> }
  outlook: CampaignOutlook
}

/**
 * One sentence per reason. `previewing`: the operator already asked for one campaign's preview (`--campaign`), so
 * "not armed" is not a reason there.
 */
export function explainEmptyDryRun (entries: OutlookEntry[], options: { previewing: boolean }): string[] {
  if (entries.length === 0) return ['No campaign is in force: create one on the admin console\'s Campaigns page, then preview it with --campaign ID.']
  return entries.flatMap(({ campaign, outlook }) => campaignReasons(campaign, outlook, options.previewing).map((line) => `"${campaign.name}": ${line}`))
}

function campaignReasons (campaign: OutlookEntry['campaign'], outlook: CampaignOutlook, previewing: boolean): string[] {
  const count = (state: UserState): number => outlook.byState[state] ?? 0
  const targeted = Object.values(outlook.byState).reduce((sum, n) => sum + (n ?? 0), 0)
  if (targeted === 0) return ['it targets no user yet (no user matches it, or another campaign\'s deadline comes first for them).']
  const lines: string[] = []
  if (!previewing && campaign.armedAt === null) lines.push(`the campaign is not armed: use --campaign ${campaign.id} to preview what arming it would do.`)
  const pause = campaign.pauses?.find((p) => p.resumedAt === null)
  if (pause !== undefined) lines.push(`the campaign is paused by its breaker since ${day(pause.pausedAt)}: nobody is flipped until an admin resumes it on the campaign page.`)
  if (outlook.inWindow.count > 0) {
    lines.push(`${users(outlook.inWindow.count, 'targeted user is', 'targeted users are')} still inside the ${campaign.newUserWindowDays}-day new-user window, until ${day(outlook.inWindow.until)}.`)
  }
  if (outlook.ahead.count > 0) {
    lines.push(`${users(outlook.ahead.count, 'targeted user has', 'targeted users have')} a deadline still ahead (the first on ${day(outlook.ahead.next)}).`)
  }
  if (count('enforced') > 0) lines.push(`${users(count('enforced'), 'targeted user already has', 'targeted users already have')} MFA enforced.`)
  if (count('attention') > 0) lines.push(`${users(count('attention'), 'targeted user needs', 'targeted users need')} attention and wait for an admin (Needs attention, on the dashboard).`)
  if (count('exempt') > 0) lines.push(`${users(count('exempt'), 'targeted user is', 'targeted users are')} exempt.`)
  return lines
}

function users (n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`
}

function day (at: Date | null): string {
  return at === null ? 'an unknown date' : at.toISOString().slice(0, 10)
}
