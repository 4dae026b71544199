import type { Campaign, EnforcementEngine } from './engine.ts'
import type { AwsPolicyVariant } from './provider.ts'
import type { User } from './users.ts'

/**
 * Long-term access keys of AWS IAM users, and what a campaign's policy does to them (issue #14 item 11). AWS's
 * documented deny-unless-MFA policy ("console and API") also denies every request signed with a long-term access
 * key, even for a user who has MFA: a campaign must not switch it on for users with keys in use before an admin
 * has seen who they are and chosen the policy.
 */

/** One long-term access key as IAM reports it (ListAccessKeys, GetAccessKeyLastUsed); never its secret. */
export interface AccessKey {
  accessKeyId: string
  createdAt: Date | null
  /** When IAM last saw a request signed with it; null when never (since IAM began tracking). */
  lastUsedAt: Date | null
  lastUsedService: string | null
  lastUsedRegion: string | null
}

/** The provider port: the user's active access keys (inactive ones sign nothing and are left out). */
export interface AccessKeySource {
  activeAccessKeys(externalId: string): Promise<AccessKey[]>
}

/** A due user with keys, as the campaign page and the dry run list them. */
export interface UserAccessKeys {
  userId: string
  email: string
  /** The IAM user name, as the AWS console shows it. */
  userName: string
  keys: AccessKey[]
}

export interface AccessKeyListing {
  users: UserAccessKeys[]
  /** Due AWS users whose keys were read. */
  checked: number
  /** Due AWS users IAM could not be asked about, and the first reason: the listing is not complete. */
  unchecked: number
  firstError: string | null
}

/** What an admin confirmed: the variant chosen and the keys seen when choosing it. */
export interface AccessKeyReview {
  variant: AwsPolicyVariant
  keyIds: string[]
  at: Date
  by: string | null
}

/** In words, for the campaign form and page. */
export const POLICY_VARIANT_LABELS: Record<AwsPolicyVariant, string> = {
  console_and_api: 'Console and API: AWS\'s documented policy. Until the person signs in with MFA, AWS refuses everything but setting up MFA, in the console and through the API. Requests signed with a long-term access key never carry MFA, so AWS refuses them too: scripts and tools using the person\'s access keys stop working, even after they have set up MFA.',
  console_only: 'Console only: the same policy, except that requests signed with a long-term access key are not refused. The console (and temporary credentials obtained without MFA) still need MFA. Access keys keep working as before, without MFA: retire or rotate them separately.'
}

/** Who a listing says holds keys, with their key ids, for comparing with what an admin confirmed. */
export function keyIdsOf (listing: AccessKeyListing): string[] {
  return listing.users.flatMap((u) => u.keys.map((k) => k.accessKeyId)).sort()
}

/**
 * Why a campaign may not be armed yet, or null when it may: its due AWS users hold active access keys that an
 * admin has not confirmed with the campaign's current policy choice, or the keys could not all be read.
 */
export function armingRefusal (campaign: Pick<Campaign, 'awsPolicyVariant'> & { accessKeyReview: AccessKeyReview | null }, listing: AccessKeyListing): string | null {
  if (listing.unchecked > 0) {
    return `The access keys of ${listing.unchecked} AWS user${listing.unchecked === 1 ? '' : 's'} due in this campaign could not be read (${listing.firstError ?? 'no reason given'}), so the campaign cannot be armed yet. Try again when AWS answers.`
  }
  const keys = keyIdsOf(listing)
  if (keys.length === 0) return null
  const review = campaign.accessKeyReview
  const unseen = review === null ? keys : keys.filter((id) => !review.keyIds.includes(id))
  if (review === null || review.variant !== campaign.awsPolicyVariant || unseen.length > 0) {
    return `${listing.users.length} AWS user${listing.users.length === 1 ? '' : 's'} due in this campaign hold${listing.users.length === 1 ? 's' : ''} active access keys${review !== null && unseen.length > 0 ? ` (${unseen.length} not shown when the policy was last confirmed)` : ''}. Review them under "AWS access keys" and confirm which policy AWS users get, then arm.`
  }
  return null
}

export interface DueUser { userId: string, email: string, provider: string, externalId: string | null, userName: string }

/**
 * Reads the active access keys of a campaign's due AWS users (those arming it, or its next sweep, would make use
 * MFA), a few users at a time. A user IAM could not be asked about is counted, not hidden.
 */
export async function listDueAccessKeys (dueUsers: Iterable<DueUser>, source: AccessKeySource, concurrency = 4): Promise<AccessKeyListing> {
  const listing: AccessKeyListing = { users: [], checked: 0, unchecked: 0, firstError: null }
  const queue = [...dueUsers].filter((u) => u.provider === 'aws' && u.externalId !== null)
  const results = new Array<UserAccessKeys | null>(queue.length).fill(null)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < queue.length) {
      const index = next++
      const user = queue[index]
      try {
        const keys = await source.activeAccessKeys(user.externalId!)
        listing.checked++
        if (keys.length > 0) results[index] = { userId: user.userId, email: user.email, userName: user.userName, keys }
      } catch (err) {
        listing.unchecked++
        listing.firstError ??= err instanceof Error ? err.message : String(err)
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker))
  listing.users = results.filter((r): r is UserAccessKeys => r !== null)
  return listing
}

/**
 * The access keys of one campaign's due AWS users: those arming it would make use MFA (or, once armed, its part of
 * the next sweep), the same users its page and `sweep --dry-run --campaign` list.
 */
export class CampaignAccessKeys {
  constructor (
    private readonly engine: Pick<EnforcementEngine, 'campaignPlanItems'>,
    private readonly users: { findById(id: string): Promise<User | undefined> },
    private readonly source: () => AccessKeySource | undefined,
    // The adapter's own limit (AWS_IAM_CONCURRENCY) still caps the calls in flight; this keeps it busy.
    private readonly concurrency = 8
  ) {}

  /** Null when AWS is not connected (no one can hold an IAM access key then). */
  async list (campaign: Pick<Campaign, 'id' | 'armedAt'>): Promise<AccessKeyListing | null> {
    const source = this.source()
    if (source === undefined) return null
    return await listDueAccessKeys(await this.dueAwsUsers(campaign), source, this.concurrency)
  }

  /** The AWS users among a dry run's rows (enforce only: lifting enforcement never blocks a key). */
  async dueUsersOf (items: Iterable<{ userId: string, action: string }> | AsyncIterable<{ userId: string, action: string }>): Promise<DueUser[]> {
    const due: DueUser[] = []
    for await (const item of items) {
      if (item.action !== 'enforce') continue
      const user = await this.users.findById(item.userId)
      if (user === undefined || user.provider !== 'aws' || user.externalId === null) continue
      due.push({ userId: user.id, email: user.email, provider: user.provider, externalId: user.externalId, userName: user.displayName })
    }
    return due
  }

  /** Reads the keys of given dry-run rows (the CLI's dry run over every campaign). Null without AWS. */
  async listFor (items: Iterable<{ userId: string, action: string }>): Promise<AccessKeyListing | null> {
    const source = this.source()
    if (source === undefined) return null
    return await listDueAccessKeys(await this.dueUsersOf(items), source, this.concurrency)
  }

  private async dueAwsUsers (campaign: Pick<Campaign, 'id' | 'armedAt'>): Promise<DueUser[]> {
    return this.dueUsersOf(this.engine.campaignPlanItems(campaign))
  }
}
