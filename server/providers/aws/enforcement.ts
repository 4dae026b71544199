import {
  AddUserToGroupCommand, AttachUserPolicyCommand, CreatePolicyCommand, DetachUserPolicyCommand, GetPolicyCommand,
  ListAttachedUserPoliciesCommand, ListGroupsForUserCommand, RemoveUserFromGroupCommand
} from '@aws-sdk/client-iam'
import { ProviderError } from '../../domain/provider.ts'
import type { AccountIdentity } from './account.ts'
import { collectPages, itemsOf, type IamCalls } from './client.ts'
import type { AwsConfig } from './config.ts'
import { hasCode, malformed } from './errors.ts'
import { forceMfaPolicyDocument } from './force-mfa-policy.ts'

/**
 * The enforcement switch for one IAM user: the deny-unless-MFA managed policy attached to the user (`policy`
 * mode), or membership of a group the operator attached that policy to (`group` mode). Every change reads first
 * and writes only when the state differs (the port's idempotence), so a retried job never double-applies, and a
 * policy detached by hand reads as not enforced (drift) until enforce puts it back.
 */
export class IamEnforcement {
  private policy: Promise<string> | null = null

  constructor (private readonly iam: IamCalls, private readonly config: AwsConfig, private readonly account: AccountIdentity) {}

  async isEnforced (userName: string): Promise<boolean> {
    if (this.config.enforcement.mode === 'group') return (await this.groupsOf(userName)).includes(this.config.enforcement.group)
    const arn = await this.policyArn()
    return (await this.attachedPolicies(userName)).includes(arn)
  }

  /** Returns whether anything changed. */
  async enforce (userName: string): Promise<boolean> {
    if (this.config.enforcement.mode === 'group') {
      const group = this.config.enforcement.group
      if ((await this.groupsOf(userName)).includes(group)) return false
      await this.iam.run('AddUserToGroup', (c) => c.send(new AddUserToGroupCommand({ GroupName: group, UserName: userName })))
      return true
    }
    const arn = await this.ensurePolicy()
    if ((await this.attachedPolicies(userName)).includes(arn)) return false
    try {
      await this.attach(userName, arn)
    } catch (err) {
      if (!hasCode(err, 'not_found')) throw err
      // The user exists (we just listed its policies), so the policy is gone: deleted by hand since we made sure of
      // it. Make sure again, once.
      this.policy = null
      await this.attach(userName, await this.ensurePolicy())
    }
    return true
  }

  /** Returns whether anything changed. */
  async relax (userName: string): Promise<boolean> {
    try {
      if (this.config.enforcement.mode === 'group') {
        const group = this.config.enforcement.group
        if (!(await this.groupsOf(userName)).includes(group)) return false
        await this.iam.run('RemoveUserFromGroup', (c) => c.send(new RemoveUserFromGroupCommand({ GroupName: group, UserName: userName })))
        return true
      }
      const arn = await this.policyArn()
      if (!(await this.attachedPolicies(userName)).includes(arn)) return false
      await this.iam.run('DetachUserPolicy', (c) => c.send(new DetachUserPolicyCommand({ UserName: userName, PolicyArn: arn })))
      return true
    } catch (err) {
      // Between our read and our write someone else detached it: the state we wanted holds, so this is a no-op.
      if (hasCode(err, 'not_found') && await this.userExists(userName)) return false
      throw err
    }
  }

  /** Whether the user's attached policies / groups (already listed by a sync) mean enforcement is on. */
  enforcedGiven (attachedPolicyArns: readonly string[], groups: readonly string[], policyArn: string): boolean {
    return this.config.enforcement.mode === 'group' ? groups.includes(this.config.enforcement.group) : attachedPolicyArns.includes(policyArn)
  }

  /** The managed policy's ARN (whether or not it exists yet). */
  async policyArn (): Promise<string> {
    const { partition, accountId } = await this.account.resolve()
    return `arn:${partition}:iam::${accountId}:policy${this.config.policyPath}${this.config.policyName}`
  }

  /**
   * The policy exists: found by ARN, else created from the documented force-MFA document. Once per process (a
   * memoised promise, so concurrent first enforcements share one check); EntityAlreadyExists means another portal
   * instance won the race, which is as good. A failure is not memoised, so the next call tries again.
   */
  ensurePolicy (): Promise<string> {
    this.policy ??= this.findOrCreatePolicy().catch((err: unknown) => {
      this.policy = null
      throw err
    })
    return this.policy
  }

  private async findOrCreatePolicy (): Promise<string> {
    const arn = await this.policyArn()
    try {
      await this.iam.run('GetPolicy', (c) => c.send(new GetPolicyCommand({ PolicyArn: arn })))
      return arn
    } catch (err) {
      if (!hasCode(err, 'not_found')) throw err
    }
    const { partition } = await this.account.resolve()
    try {
      const out = await this.iam.run('CreatePolicy', (c) => c.send(new CreatePolicyCommand({
        PolicyName: this.config.policyName,
        Path: this.config.policyPath,
        PolicyDocument: forceMfaPolicyDocument(partition),
        Description: 'Denies everything except setting up MFA until the user signs in with MFA (managed by mfa-rollout)'
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

  async attachedPolicies (userName: string): Promise<string[]> {
    const attached = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListAttachedUserPolicies', (c) => c.send(new ListAttachedUserPoliciesCommand({ UserName: userName, Marker })))
      return { ...out, items: itemsOf('ListAttachedUserPolicies', 'AttachedPolicies', out.AttachedPolicies, out.IsTruncated) }
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

/** The subject's IAM user name, or a non-retryable error when the portal never learnt it. */
export function iamUserName (externalId: string | null): string {
  if (externalId === null || externalId === '') throw new ProviderError('This user has no IAM user name on record (sync the AWS provider first)', false, null, 'no_external_id')
  return externalId
}
