import { isDeepStrictEqual } from 'node:util'
import type { AwsPolicyVariant } from '../../domain/provider.ts'

/**
 * AWS's documented "IAM: Allows IAM users to self-manage an MFA device" policy
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_iam_mfa-selfmanage.html; the
 * `primary` document of contracts/aws-force-mfa-policy.json): everything is denied until the caller signed in
 * with MFA, except what it takes to set up an MFA device. `${aws:username}` is an IAM policy variable, sent as is.
 */
export const FORCE_MFA_POLICY = {
  Version: '2012-10-17',
  Statement: [
    {
      Sid: 'AllowListActions',
      Effect: 'Allow',
      Action: ['iam:ListUsers', 'iam:ListVirtualMFADevices'],
      Resource: '*'
    },
    {
      Sid: 'AllowUserToCreateVirtualMFADevice',
      Effect: 'Allow',
      Action: ['iam:CreateVirtualMFADevice'],
      Resource: 'arn:aws:iam::*:mfa/*'
    },
    {
      Sid: 'AllowUserToManageTheirOwnMFA',
      Effect: 'Allow',
      Action: ['iam:EnableMFADevice', 'iam:GetMFADevice', 'iam:ListMFADevices', 'iam:ResyncMFADevice'],
      Resource: 'arn:aws:iam::*:user/${aws:username}'
    },
    {
      Sid: 'AllowUserToDeactivateTheirOwnMFAOnlyWhenUsingMFA',
      Effect: 'Allow',
      Action: ['iam:DeactivateMFADevice'],
      Resource: ['arn:aws:iam::*:user/${aws:username}'],
      Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'true' } }
    },
    {
      Sid: 'BlockMostAccessUnlessSignedInWithMFA',
      Effect: 'Deny',
      NotAction: [
        'iam:CreateVirtualMFADevice',
        'iam:EnableMFADevice',
        'iam:ListMFADevices',
        'iam:ListUsers',
        'iam:ListVirtualMFADevices',
        'iam:ResyncMFADevice'
      ],
      Resource: '*',
      Condition: { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } }
    }
  ]
} as const

/**
 * The same policy for "console only" (contracts §2.4 "Access keys"). AWS's `BoolIfExists {aws:MultiFactorAuthPresent:
 * false}` also matches when the key is absent, and it is absent from every request signed with a long-term access
 * key, so the documented policy denies those too, even for a user who has MFA. With `Bool` instead, a condition on
 * an absent key does not match: requests signed with long-term access keys are left alone, while console sessions
 * and temporary credentials without MFA (where the key is present and false) are still denied. Everything else is
 * the documented policy, word for word.
 */
export const FORCE_MFA_CONSOLE_ONLY_POLICY = {
  ...FORCE_MFA_POLICY,
  Statement: FORCE_MFA_POLICY.Statement.map((statement) => statement.Sid === 'BlockMostAccessUnlessSignedInWithMFA'
    ? { ...statement, Condition: { Bool: { 'aws:MultiFactorAuthPresent': 'false' } } }
    : statement)
}

const DOCUMENTS: Record<AwsPolicyVariant, object> = { console_and_api: FORCE_MFA_POLICY, console_only: FORCE_MFA_CONSOLE_ONLY_POLICY }

/** The policy document as CreatePolicy takes it, with ARNs in the account's partition (aws-cn, aws-us-gov). */
export function forceMfaPolicyDocument (partition = 'aws', variant: AwsPolicyVariant = 'console_and_api'): string {
  return JSON.stringify(DOCUMENTS[variant]).replaceAll('arn:aws:', `arn:${partition}:`)
}

/**
 * Whether a policy version's document, as GetPolicyVersion returns it (URL-encoded per RFC 3986; some emulators
 * send plain JSON), is the shipped document: the same statements, whatever the key order or whitespace. Anything
 * else (the Deny removed or loosened, a statement added) is not what the portal put there, so it is drift.
 */
export function isShippedDocument (document: string, partition = 'aws', variant: AwsPolicyVariant = 'console_and_api'): boolean {
  let parsed: unknown
  try {
    parsed = JSON.parse(document.trimStart().startsWith('{') ? document : decodeURIComponent(document))
  } catch {
    return false
  }
  return isDeepStrictEqual(parsed, JSON.parse(forceMfaPolicyDocument(partition, variant)))
}
