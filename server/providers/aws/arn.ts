/** IAM ARNs read without the SDK (the console links on the AWS pages need no more). */
export interface AccountId {
  /** `aws`, `aws-cn` or `aws-us-gov`: ARNs and the policy document must use the account's own partition. */
  partition: string
  accountId: string
}

/** `arn:aws:iam::123456789012:user/alice` → { partition: 'aws', accountId: '123456789012' }. */
export function accountOf (arn: string | undefined): AccountId | null {
  const match = /^arn:(aws[\w-]*):iam::(\d{12}):/.exec(arn ?? '')
  return match === null ? null : { partition: match[1], accountId: match[2] }
}
