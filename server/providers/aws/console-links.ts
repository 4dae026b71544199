import { accountOf } from './arn.ts'

/** Console and sign-in hosts per AWS partition (the standard, China and GovCloud consoles are separate sites). */
const HOSTS: Record<string, { console: string, signin: string }> = {
  aws: { console: 'console.aws.amazon.com', signin: 'signin.aws.amazon.com' },
  'aws-cn': { console: 'console.amazonaws.cn', signin: 'signin.amazonaws.cn' },
  'aws-us-gov': { console: 'console.amazonaws-us-gov.com', signin: 'signin.amazonaws-us-gov.com' }
}

export interface AwsConsoleLinks {
  /** The account's IAM-user sign-in page (`https://<account id>.signin.aws.amazon.com/console`), when the account is known. */
  signIn: string | null
  /** "Security credentials" of whoever is signed in to the console: where an IAM user assigns their own MFA devices. */
  securityCredentials: string
  accountId: string | null
}

/**
 * Where an IAM user registers a security key or passkey themselves: FIDO devices belong to AWS's WebAuthn relying
 * party, so only the AWS console can register them (DESIGN.md "Providers"). The account comes from
 * AWS_IAM_ACCOUNT_ID, else from the user's ARN as the last sync saw it; without either, only the generic
 * security-credentials link is given (the console then asks for the account id or alias at sign-in).
 */
export function awsConsoleLinks (configuredAccountId: string | undefined, userArn: string | null): AwsConsoleLinks {
  const fromArn = accountOf(userArn ?? undefined)
  const accountId = configuredAccountId ?? fromArn?.accountId ?? null
  const hosts = HOSTS[fromArn?.partition ?? 'aws'] ?? HOSTS.aws
  return {
    signIn: accountId === null ? null : `https://${accountId}.${hosts.signin}/console`,
    securityCredentials: `https://${hosts.console}/iam/home#/security_credentials`,
    accountId
  }
}
