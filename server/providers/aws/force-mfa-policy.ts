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

/** The policy document as CreatePolicy takes it, with ARNs in the account's partition (aws-cn, aws-us-gov). */
export function forceMfaPolicyDocument (partition = 'aws'): string {
  return JSON.stringify(FORCE_MFA_POLICY).replaceAll('arn:aws:', `arn:${partition}:`)
}
