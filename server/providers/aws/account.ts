import { ListUsersCommand } from '@aws-sdk/client-iam'
import { ProviderError } from '../../domain/provider.ts'
import { accountOf, type AccountId } from './arn.ts'
import { itemsOf, type IamCalls } from './client.ts'

/**
 * Which account the portal manages. The managed policy's ARN is built from it (GetPolicy needs an ARN; IAM has
 * no lookup by name). Taken from AWS_IAM_ACCOUNT_ID, else learnt from any ARN IAM has shown us, else from one
 * ListUsers item: the SDK has no IAM call that returns the caller's account, and STS would be another dependency.
 */
export class AccountIdentity {
  private known: AccountId | null

  constructor (private readonly iam: IamCalls, accountId: string | undefined, partition = 'aws') {
    this.known = accountId === undefined ? null : { partition, accountId }
  }

  learn (arn: string | undefined): void {
    if (this.known === null) this.known = accountOf(arn)
  }

  async resolve (): Promise<AccountId> {
    if (this.known !== null) return this.known
    const out = await this.iam.run('ListUsers', (c) => c.send(new ListUsersCommand({ MaxItems: 1 })))
    this.learn(itemsOf('ListUsers', 'Users', out.Users, out.IsTruncated)[0]?.Arn)
    if (this.known === null) {
      throw new ProviderError('The AWS account id is unknown (the account has no IAM users to learn it from): set AWS_IAM_ACCOUNT_ID', false, null, 'account_unknown')
    }
    return this.known
  }
}
