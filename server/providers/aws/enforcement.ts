import {
  AddUserToGroupCommand, AttachUserPolicyCommand, CreatePolicyCommand, CreatePolicyVersionCommand, DeletePolicyVersionCommand,
  DetachUserPolicyCommand, GetPolicyCommand, GetPolicyVersionCommand, ListAttachedGroupPoliciesCommand, ListAttachedUserPoliciesCommand,
  ListGroupsForUserCommand, ListPolicyVersionsCommand, RemoveUserFromGroupCommand, type PolicyVersion
} from '@aws-sdk/client-iam'
import type { Clock } from '../../domain/clock.ts'
import { ProviderError, type AwsPolicyVariant } from '../../domain/provider.ts'
import type { AccountIdentity } from './account.ts'
import { collectPages, itemsOf, type IamCalls } from './client.ts'
import type { AwsConfig } from './config.ts'
import { hasCode, malformed } from './errors.ts'
import { forceMfaPolicyDocument, isShippedDocument } from './force-mfa-policy.ts'

/** IAM keeps at most five versions of a managed policy (IAM User Guide, "Versioning IAM policies"). */
const MAX_POLICY_VERSIONS = 5
/**
 * How long a check of the policy's content stands for drift checks: one drift run reads every enforced user, and
 * the policy is the account's, not the user's, so it is read once per run rather than once per user.
 */
const CONTENT_CHECK_MS = 60_000

/** Both variants; relax takes off whichever the portal attached. */
const VARIANTS: readonly AwsPolicyVariant[] = ['console_and_api', 'console_only']

/**
 * The enforcement switch for one IAM user: the deny-unless-MFA managed policy attached to the user (`policy`
 * mode), or membership of a group the operator attached that policy to (`group` mode). In policy mode each
 * campaign chooses a variant, a managed policy of its own: "console and API" (AWS's documented policy) or "console
 * only" (long-term access keys left alone); a user holds the one their campaign chose. Every change reads first
 * and writes only when the state differs (the port's idempotence), so a retried job never double-applies, and a
 * policy detached by hand reads as not enforced (drift) until enforce puts it back.
 */
export class IamEnforcement {
  /** Per variant: the policy exists and its version in force is the shipped document (until drift says otherwise). */
  private readonly policies = new Map<AwsPolicyVariant, Promise<string>>()
  /** Per variant: the last reading of the policy's content, for drift checks. */
  private readonly contentChecks = new Map<AwsPolicyVariant, { at: number, intact: Promise<boolean> }>()
  /** Versions this process put in force; an enforce that spans one reports a change. */
  private repairs = 0

  constructor (private readonly iam: IamCalls, private readonly config: AwsConfig, private readonly account: AccountIdentity, private readonly clock: Clock) {}

  /**
   * Enforcement is on when the chosen variant's policy is attached AND its version in force is that variant's
   * shipped document: a default version someone edited (without the Deny, say) attaches nothing that protects, and
   * the other variant is not what the campaign chose, so either reads as drift.
   */
  async isEnforced (userName: string, variant: AwsPolicyVariant = 'console_and_api'): Promise<boolean> {
    if (this.config.enforcement.mode === 'group') return (await this.groupsOf(userName)).includes(this.config.enforcement.group)
    const arn = await this.policyArn(variant)
    if (!(await this.attachedPolicies(userName)).includes(arn)) return false
    return await this.policyIntact(variant, arn)
  }

  /**
   * Attaches the chosen variant (and takes the other off, so a campaign's choice is what holds). Returns whether
   * anything changed (the user attached or detached, or the policy's content put right).
   */
  async enforce (userName: string, variant: AwsPolicyVariant = 'console_and_api'): Promise<boolean> {
    if (this.config.enforcement.mode === 'group') {
      const group = this.config.enforcement.group
      if ((await this.groupsOf(userName)).includes(group)) return false
      await this.iam.run('AddUserToGroup', (c) => c.send(new AddUserToGroupCommand({ GroupName: group, UserName: userName })))
      return true
    }
    const repairsBefore = this.repairs
    const arn = await this.ensurePolicy(variant)
    const repaired = this.repairs > repairsBefore
    const attached = await this.attachedPolicies(userName)
    const other = await this.policyArn(variant === 'console_only' ? 'console_and_api' : 'console_only')
    const swapped = attached.includes(other) && await this.detach(userName, other)
    if (attached.includes(arn)) return repaired || swapped
    try {
      await this.attach(userName, arn)
    } catch (err) {
      if (!hasCode(err, 'not_found')) throw err
      // The user exists (we just listed its policies), so the policy is gone: deleted by hand since we made sure of
      // it. Make sure again, once.
      this.policies.delete(variant)
      await this.attach(userName, await this.ensurePolicy(variant))
    }
    return true
  }

  /** Takes off whichever variant is attached. Returns whether anything changed. */
  async relax (userName: string): Promise<boolean> {
    try {
      if (this.config.enforcement.mode === 'group') {
        const group = this.config.enforcement.group
        if (!(await this.groupsOf(userName)).includes(group)) return false
        await this.iam.run('RemoveUserFromGroup', (c) => c.send(new RemoveUserFromGroupCommand({ GroupName: group, UserName: userName })))
        return true
      }
      const attached = await this.attachedPolicies(userName)
      let changed = false
      for (const variant of VARIANTS) {
        const arn = await this.policyArn(variant)
        if (attached.includes(arn) && await this.detach(userName, arn)) changed = true
      }
      return changed
    } catch (err) {
      // Between our read and our write someone else detached it: the state we wanted holds, so this is a no-op.
      if (hasCode(err, 'not_found') && await this.userExists(userName)) return false
      throw err
    }
  }

  /** Whether the user's attached policies / groups (already listed by a sync) mean enforcement is on (either variant). */
  enforcedGiven (attachedPolicyArns: readonly string[], groups: readonly string[], policyArns: readonly string[]): boolean {
    return this.config.enforcement.mode === 'group' ? groups.includes(this.config.enforcement.group) : policyArns.some((arn) => attachedPolicyArns.includes(arn))
  }

  /** A variant's managed policy ARN (whether or not it exists yet). */
  async policyArn (variant: AwsPolicyVariant = 'console_and_api'): Promise<string> {
    const { partition, accountId } = await this.account.resolve()
    return `arn:${partition}:iam::${accountId}:policy${this.config.policyPath}${this.policyName(variant)}`
  }

  /** Both variants' ARNs. */
  async policyArns (): Promise<string[]> {
    return await Promise.all(VARIANTS.map(async (variant) => await this.policyArn(variant)))
  }

  private policyName (variant: AwsPolicyVariant): string {
    return variant === 'console_only' ? this.config.consoleOnlyPolicyName : this.config.policyName
  }

  /**
   * The variant's policy exists and its shipped document is in force: found by ARN (its default version put right
   * when it differs), else created from the document. Once per process and variant (a memoised promise, so
   * concurrent first enforcements share one check) until a drift check finds the content changed;
   * EntityAlreadyExists means another portal instance won the race, which is as good. A failure is not memoised,
   * so the next call tries again.
   */
  ensurePolicy (variant: AwsPolicyVariant = 'console_and_api'): Promise<string> {
    let policy = this.policies.get(variant)
    if (policy === undefined) {
      policy = this.findOrCreatePolicy(variant).catch((err: unknown) => {
        this.policies.delete(variant)
        throw err
      })
      this.policies.set(variant, policy)
    }
    return policy
  }

  /** Whether the variant's version in force is its shipped document (read at most once a minute; missing: false). */
  private async policyIntact (variant: AwsPolicyVariant, arn: string): Promise<boolean> {
    const now = this.clock.now().getTime()
    let check = this.contentChecks.get(variant)
    if (check === undefined || now - check.at >= CONTENT_CHECK_MS) {
      const intact = this.readPolicyIntact(variant, arn)
      check = { at: now, intact }
      this.contentChecks.set(variant, check)
      // A failed read is not an answer: the next check asks again.
      intact.catch(() => { if (this.contentChecks.get(variant)?.intact === intact) this.contentChecks.delete(variant) })
    }
    const intact = await check.intact
    // Drift in the content: the next enforce must look again (and put it right) rather than trust its memo.
    if (!intact) this.policies.delete(variant)
    return intact
  }

  private async readPolicyIntact (variant: AwsPolicyVariant, arn: string): Promise<boolean> {
    try {
      const out = await this.iam.run('GetPolicy', (c) => c.send(new GetPolicyCommand({ PolicyArn: arn })))
      return await this.defaultIsShipped(variant, arn, out.Policy?.DefaultVersionId)
    } catch (err) {
      if (hasCode(err, 'not_found')) return false
      throw err
    }
  }

  private async defaultIsShipped (variant: AwsPolicyVariant, arn: string, versionId: string | undefined): Promise<boolean> {
    if (versionId === undefined) throw malformed('GetPolicy', 'Policy.DefaultVersionId')
    const out = await this.iam.run('GetPolicyVersion', (c) => c.send(new GetPolicyVersionCommand({ PolicyArn: arn, VersionId: versionId })))
    const document = out.PolicyVersion?.Document
    if (document === undefined) throw malformed('GetPolicyVersion', 'PolicyVersion.Document')
    const { partition } = await this.account.resolve()
    return isShippedDocument(document, partition, variant)
  }

  /**
   * Puts the shipped document in force as a new default version. IAM keeps five versions, so when five exist the
   * oldest one not in force is deleted first (the default cannot be, and is the one being replaced anyway).
   */
  private async putShippedVersion (variant: AwsPolicyVariant, arn: string): Promise<void> {
    const { partition } = await this.account.resolve()
    const create = async (): Promise<void> => {
      await this.iam.run('CreatePolicyVersion', (c) => c.send(new CreatePolicyVersionCommand({ PolicyArn: arn, PolicyDocument: forceMfaPolicyDocument(partition, variant), SetAsDefault: true })))
    }
    await this.pruneOldestVersion(arn)
    try {
      await create()
    } catch (err) {
      // Another portal instance (or a person) added a version between our listing and our create: make room once more.
      if (!hasCode(err, 'limit_exceeded')) throw err
      await this.pruneOldestVersion(arn)
      await create()
    }
    this.repairs++
  }

  private async pruneOldestVersion (arn: string): Promise<void> {
    const versions = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListPolicyVersions', (c) => c.send(new ListPolicyVersionsCommand({ PolicyArn: arn, Marker })))
      return { ...out, items: itemsOf('ListPolicyVersions', 'Versions', out.Versions, out.IsTruncated) }
    })
    if (versions.length < MAX_POLICY_VERSIONS) return
    const oldest = versions.filter((v) => v.IsDefaultVersion !== true).sort(olderFirst)[0]
    if (oldest?.VersionId === undefined) return
    try {
      await this.iam.run('DeletePolicyVersion', (c) => c.send(new DeletePolicyVersionCommand({ PolicyArn: arn, VersionId: oldest.VersionId })))
    } catch (err) {
      // Deleted meanwhile by someone else: the room is there all the same.
      if (!hasCode(err, 'not_found')) throw err
    }
  }

  private async findOrCreatePolicy (variant: AwsPolicyVariant): Promise<string> {
    const arn = await this.policyArn(variant)
    try {
      const out = await this.iam.run('GetPolicy', (c) => c.send(new GetPolicyCommand({ PolicyArn: arn })))
      const intact = await this.defaultIsShipped(variant, arn, out.Policy?.DefaultVersionId)
      if (!intact) await this.putShippedVersion(variant, arn)
      this.contentChecks.set(variant, { at: this.clock.now().getTime(), intact: Promise.resolve(true) })
      return arn
    } catch (err) {
      if (!hasCode(err, 'not_found')) throw err
    }
    const { partition } = await this.account.resolve()
    try {
      const out = await this.iam.run('CreatePolicy', (c) => c.send(new CreatePolicyCommand({
        PolicyName: this.policyName(variant),
        Path: this.config.policyPath,
        PolicyDocument: forceMfaPolicyDocument(partition, variant),
        Description: variant === 'console_only'
          ? 'Denies everything except setting up MFA until the user signs in with MFA; requests signed with long-term access keys are not denied (managed by mfa-rollout)'
          : 'Denies everything except setting up MFA until the user signs in with MFA (managed by mfa-rollout)'
      })))
      if (out.Policy?.Arn === undefined) throw malformed('CreatePolicy', 'Policy.Arn')
      return out.Policy.Arn
    } catch (err) {
      if (hasCode(err, 'already_exists')) return arn
      throw err
    }
  }

  private async attach (userName: string, arn: string): Promise<void> {
    await this.iam.run('AttachUserPolicy', (c) => c.send(new AttachUserPolicyCommand({ UserName: userName, PolicyArn: arn })))
  }

  /** Detaches; false when someone else detached it between our read and this write (the state wanted holds). */
  private async detach (userName: string, arn: string): Promise<boolean> {
    try {
      await this.iam.run('DetachUserPolicy', (c) => c.send(new DetachUserPolicyCommand({ UserName: userName, PolicyArn: arn })))
      return true
    } catch (err) {
      if (hasCode(err, 'not_found') && await this.userExists(userName)) return false
      throw err
    }
  }

  async attachedPolicies (userName: string): Promise<string[]> {
    const attached = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListAttachedUserPolicies', (c) => c.send(new ListAttachedUserPoliciesCommand({ UserName: userName, Marker })))
      return { ...out, items: itemsOf('ListAttachedUserPolicies', 'AttachedPolicies', out.AttachedPolicies, out.IsTruncated) }
    })
    return attached.flatMap((p) => p.PolicyArn === undefined ? [] : [p.PolicyArn])
  }

  /** Managed policies attached to a group (its members hold them all). */
  async groupPolicies (groupName: string): Promise<string[]> {
    const attached = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListAttachedGroupPolicies', (c) => c.send(new ListAttachedGroupPoliciesCommand({ GroupName: groupName, Marker })))
      return { ...out, items: itemsOf('ListAttachedGroupPolicies', 'AttachedPolicies', out.AttachedPolicies, out.IsTruncated) }
    })
    return attached.flatMap((p) => p.PolicyArn === undefined ? [] : [p.PolicyArn])
  }

  async groupsOf (userName: string): Promise<string[]> {
    const groups = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListGroupsForUser', (c) => c.send(new ListGroupsForUserCommand({ UserName: userName, Marker })))
      return { ...out, items: itemsOf('ListGroupsForUser', 'Groups', out.Groups, out.IsTruncated) }
    })
    return groups.flatMap((g) => g.GroupName === undefined ? [] : [g.GroupName])
  }

  private async userExists (userName: string): Promise<boolean> {
    try {
      await this.groupsOf(userName)
      return true
    } catch (err) {
      if (hasCode(err, 'not_found')) return false
      throw err
    }
  }
}

/** Oldest first by CreateDate; IAM's dates have whole seconds, so version numbers break ties (v2 before v10). */
function olderFirst (a: PolicyVersion, b: PolicyVersion): number {
  const byDate = (a.CreateDate?.getTime() ?? 0) - (b.CreateDate?.getTime() ?? 0)
  return byDate !== 0 ? byDate : versionNumber(a.VersionId) - versionNumber(b.VersionId)
}

function versionNumber (versionId: string | undefined): number {
  return Number(/^v(\d+)/.exec(versionId ?? '')?.[1] ?? Number.MAX_SAFE_INTEGER)
}

/** The subject's IAM user id, or a non-retryable error when the portal never learnt it. */
export function iamUserId (externalId: string | null): string {
  if (externalId === null || externalId === '') throw new ProviderError('This user has no IAM user id on record (sync the AWS provider first)', false, null, 'no_external_id')
  return externalId
}
