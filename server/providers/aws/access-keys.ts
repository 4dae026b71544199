import { GetAccessKeyLastUsedCommand, ListAccessKeysCommand } from '@aws-sdk/client-iam'
import type { AccessKey } from '../../domain/access-keys.ts'
import { collectPages, itemsOf, type IamCalls } from './client.ts'
import { hasCode } from './errors.ts'

/**
 * A user's active long-term access keys with their last use (contracts §2.4 "Access keys"): ListAccessKeys, then
 * GetAccessKeyLastUsed per active key. Inactive keys sign nothing, so AWS's policy cannot break them.
 */
export class IamAccessKeys {
  constructor (private readonly iam: IamCalls) {}

  async activeKeys (userName: string): Promise<AccessKey[]> {
    const listed = await collectPages(async (Marker) => {
      const out = await this.iam.run('ListAccessKeys', (c) => c.send(new ListAccessKeysCommand({ UserName: userName, Marker })))
      return { ...out, items: itemsOf('ListAccessKeys', 'AccessKeyMetadata', out.AccessKeyMetadata, out.IsTruncated) }
    })
    const active = listed.filter((k) => k.Status === 'Active' && k.AccessKeyId !== undefined)
    return await Promise.all(active.map(async (key) => ({
      accessKeyId: key.AccessKeyId!,
      createdAt: key.CreateDate ?? null,
      ...(await this.lastUsed(key.AccessKeyId!))
    })))
  }

  private async lastUsed (accessKeyId: string): Promise<Pick<AccessKey, 'lastUsedAt' | 'lastUsedService' | 'lastUsedRegion'>> {
    try {
      const out = await this.iam.run('GetAccessKeyLastUsed', (c) => c.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: accessKeyId })))
      const used = out.AccessKeyLastUsed
      // Never used (since IAM began tracking): no date, and service and region "N/A".
      return {
        lastUsedAt: used?.LastUsedDate ?? null,
        lastUsedService: used?.ServiceName === undefined || used.ServiceName === 'N/A' ? null : used.ServiceName,
        lastUsedRegion: used?.Region === undefined || used.Region === 'N/A' ? null : used.Region
      }
    } catch (err) {
      // Deleted between the listing and this call: it signs nothing any more, and its last use no longer matters.
      if (hasCode(err, 'not_found')) return { lastUsedAt: null, lastUsedService: null, lastUsedRegion: null }
      throw err
    }
  }
}
