import type { AccessKeyListing } from '../domain/access-keys.ts'
import { describeDriftCheck } from '../domain/drift-checks.ts'
import { DomainError } from '../domain/errors.ts'
import type { Campaign } from '../domain/engine.ts'
import type { Services } from '../wiring.ts'
import type { Command } from './main.ts'

/** The same sweep the scheduler runs: refresh states, plan, and (unless --dry-run) enforce. */
export const sweep: Command = {
  name: 'sweep',
  summary: 'Enforce MFA for users whose deadline has passed in an armed campaign. With --dry-run, only show what would happen; ' +
    'with --dry-run --campaign ID, what arming that campaign would do (before it is armed) or its part of the next sweep.',
  options: {
    'dry-run': { type: 'boolean', help: 'show, per user, what the next sweep would do and why (and, when it would do nothing, why not), whether the breaker would pause a campaign on today\'s figures, and where its waves stand; change nothing at any provider' },
    campaign: { type: 'string', value: 'ID', help: 'with --dry-run: only this campaign; before it is armed, the users arming it would make use MFA (as its page in the admin console shows)' },
    json: { type: 'boolean', help: 'print one JSON document instead of lines (for scripts)' },
    'check-drift': { type: 'boolean', help: 'first re-read the provider for enforced users; enforcement switched off by hand is re-applied. Exits 1 when some users could not be checked' }
  },
  async run ({ options }, services, io) {
    const dryRun = options['dry-run'] === true
    const campaignId = typeof options.campaign === 'string' ? options.campaign.trim() : undefined
    if (campaignId !== undefined && !dryRun) {
      io.err('mfa-rollout sweep: --campaign needs --dry-run (a real sweep always covers every armed campaign)')
      return 2
    }
    if (dryRun) {
      // Read-only apart from bringing lapsed states up to date, exactly as the real sweep starts.
      await services.engine.refreshLapsed()
      const campaign = campaignId === undefined ? undefined : await findCampaign(services, campaignId)
      // Streamed row by row: a million due users never sit in memory at once. One campaign's rows are the ones its
      // page in the admin console shows (the same engine method).
      const items = campaign === undefined ? services.engine.planItems() : services.engine.campaignPlanItems(campaign)
      let count = 0
      if (options.json === true) io.out(`{"dryRun":true,"at":${JSON.stringify(services.clock.now().toISOString())},${campaignJson(campaign)}"planned":[`)
      for await (const item of items) {
        if (options.json === true) io.out(`${count === 0 ? '' : ','}${JSON.stringify(item)}`)
        else io.out(`${item.action}\t${item.email}\t${item.reason}`)
        count++
      }
      // An empty list says why: not armed, everyone inside the new-user window, already enforced, …
      const why = count === 0 ? await services.engine.whyNothingPlanned(campaign) : []
      // Due AWS users' active access keys, which AWS's documented policy would stop working (issue #14 item 11).
      const keys = count === 0 ? [] : await awsAccessKeys(services, campaign)
      // Whether the breaker would pause a campaign on today's figures (issue #17 item 2), and where its waves stand.
      const breaker = await breakerLines(services, campaign)
      if (options.json === true) {
        io.out(`],"why":${JSON.stringify(why)}${keys.length === 0 ? '' : `,"awsAccessKeys":${JSON.stringify(keys)}`},"breaker":${JSON.stringify(breaker)}}`)
      } else {
        const scope = campaign === undefined ? '' : campaign.armedAt === null ? ` of arming "${campaign.name}" (not armed yet)` : ` of "${campaign.name}"`
        io.out(`dry run${scope}: ${count} user${count === 1 ? '' : 's'} would be changed; nothing was changed`)
        for (const line of why) io.out(`why: ${line}`)
        for (const line of keys.flatMap(accessKeyLines)) io.out(line)
        for (const line of breaker) io.out(line)
      }
      return 0
    }
    // A drift check that could not read the provider for some users is no all-clear: it is recorded, said, and fails the run.
    const drift = options['check-drift'] === true ? await services.driftChecks.run() : null
    if (drift !== null && options.json !== true) io.out(`drift check: ${describeDriftCheck(drift)}`)
    const drifted = drift?.driftedUserIds ?? []
    // A campaign's SMS sunset re-derives states on its date (new deadlines with grace) before the sweep plans.
    const sunset = await services.smsSunset.run(await services.engine.campaigns())
    const report = await services.engine.sweep()
    const reminders = await services.reminders.send(await services.engine.campaigns()) + sunset.reminders
    if (options.json === true) {
      io.out(JSON.stringify({
        dryRun: false, at: services.clock.now().toISOString(), planned: report.planned, enqueued: report.enqueued, completed: report.completed, retried: report.retried,
        waiting: report.waiting, failed: report.failed, superseded: report.superseded, reminders, drifted: drifted.length,
        ...(drift === null ? {} : { driftChecked: drift.checked, driftUnchecked: drift.unchecked, driftError: drift.error })
      }))
    } else {
      io.out(`sweep: ${report.planned} planned, ${report.completed} done, ${report.retried} to retry, ${report.waiting} waiting for the provider (retried by themselves later), ` +
        `${report.failed} failed (see the admin page for users needing attention)${report.superseded > 0 ? `, ${report.superseded} no longer at their directory` : ''}; ` +
        `${reminders} reminder${reminders === 1 ? '' : 's'} sent`)
    }
    return report.failed > 0 || (drift?.unchecked ?? 0) > 0 ? 1 : 0
  }
}

/** The breaker's verdict on today's figures and the waves' standing, for the campaign previewed or every armed one. */
async function breakerLines (services: Services, campaign: Campaign | undefined): Promise<string[]> {
  const campaigns = campaign === undefined ? (await services.campaigns.list()).filter((c) => c.armedAt !== null) : [campaign]
  const lines: string[] = []
  for (const c of campaigns) {
    const waves = c.waves === null ? [] : [`waves of "${c.name}": ${(await services.rollout.waves(c)).map((w) => `wave ${w.wave} ${w.state} (deadline ${w.deadline.toISOString().slice(0, 10)}, ${w.notYetEnrolled} of ${w.total} not enrolled)`).join('; ')}`]
    lines.push(...(await services.rollout.dryRunLines(c)).map((line) => `"${c.name}": ${line}`), ...waves)
  }
  return lines
}

interface CampaignKeys { campaignId: string, name: string, awsPolicyVariant: Campaign['awsPolicyVariant'], listing: AccessKeyListing }

/** Per campaign in the dry run (the one previewed, or every armed one): its due AWS users' access keys. */
async function awsAccessKeys (services: Services, campaign: Campaign | undefined): Promise<CampaignKeys[]> {
  const campaigns = campaign === undefined ? (await services.campaigns.list()).filter((c) => c.armedAt !== null) : [campaign]
  const out: CampaignKeys[] = []
  for (const c of campaigns) {
    const listing = await services.campaigns.dueAccessKeys(c)
    if (listing !== null && (listing.users.length > 0 || listing.unchecked > 0)) out.push({ campaignId: c.id, name: c.name, awsPolicyVariant: c.awsPolicyVariant, listing })
  }
  return out
}

function accessKeyLines ({ name, awsPolicyVariant, listing }: CampaignKeys): string[] {
  const effect = awsPolicyVariant === 'console_and_api'
    ? 'the campaign\'s "console and API" policy would stop them working until MFA, and requests signed with them never carry MFA'
    : 'the campaign\'s "console only" policy leaves them working, without MFA'
  const lines = listing.users.length === 0 ? [] : [`aws access keys of "${name}": ${listing.users.length} due AWS user${listing.users.length === 1 ? ' holds' : 's hold'} active access keys; ${effect}`]
  for (const user of listing.users) {
    for (const key of user.keys) {
      const used = key.lastUsedAt === null ? 'never used' : `last used ${key.lastUsedAt.toISOString().slice(0, 10)}${key.lastUsedService === null ? '' : ` (${key.lastUsedService}${key.lastUsedRegion === null ? '' : `, ${key.lastUsedRegion}`})`}`
      lines.push(`access key\t${user.userName}\t${user.email}\t${key.accessKeyId}\tcreated ${key.createdAt?.toISOString().slice(0, 10) ?? 'unknown'}\t${used}`)
    }
  }
  if (listing.unchecked > 0) lines.push(`aws access keys of "${name}": ${listing.unchecked} due AWS user${listing.unchecked === 1 ? '' : 's'} could not be read (${listing.firstError ?? 'no reason given'})`)
  return lines
}

async function findCampaign (services: Services, id: string): Promise<Campaign> {
  const campaign = await services.campaigns.find(id)
  if (campaign !== undefined) return campaign
  const known = (await services.campaigns.list()).map((c) => `${c.id} (${c.name}${c.armedAt === null ? ', not armed' : ''})`)
  throw new DomainError('campaign_not_found', `No campaign has the id "${id}". Campaigns in force: ${known.length === 0 ? 'none' : known.join(', ')}.`,
    { variant: 'cli', id, known: known.join(', '), count: known.length })
}

function campaignJson (campaign: Campaign | undefined): string {
  return campaign === undefined ? '' : `"campaign":${JSON.stringify({ id: campaign.id, name: campaign.name, armed: campaign.armedAt !== null })},`
}
