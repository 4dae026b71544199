import { and, asc, desc, eq, gt, lte, ne, type SQL } from 'drizzle-orm'
import { alias } from 'drizzle-orm/pg-core'
import type { ApprovalListing, ApprovalRequest, ApprovalStore } from '../../domain/approvals.ts'
import { toRequest } from '../approvals.ts'
import type { PgAccess } from './access.ts'
import { approvalRequests, users } from './schema.ts'

const requester = alias(users, 'requester')
const decider = alias(users, 'decider')

/** Two-person-rule requests. A pending request is decided once, by one conditional UPDATE. */
export class PgApprovalStore implements ApprovalStore {
  constructor (private readonly access: PgAccess) {}

  async create (request: ApprovalRequest): Promise<boolean> {
    const { kind, ...options } = request.action
    // The partial unique index allows one pending request per person and kind; a second one is refused here (a
    // concurrent one waits for the first to commit, then is refused too).
    const created = await this.access.current.insert(approvalRequests).values({
      id: request.id,
      userId: request.userId,
      kind,
      options: JSON.stringify(options),
      reason: request.reason,
      requestedBy: request.requestedBy,
      requestedAt: request.requestedAt.getTime(),
      expiresAt: request.expiresAt.getTime(),
      status: 'pending'
    }).onConflictDoNothing()
    return created.rowCount === 1
  }

  async find (id: string): Promise<ApprovalRequest | undefined> {
    const [row] = await this.access.current.select().from(approvalRequests).where(eq(approvalRequests.id, id))
    return row === undefined ? undefined : toRequest(row)
  }

  async decide (id: string, status: 'approved' | 'refused' | 'withdrawn', by: string, at: Date): Promise<boolean> {
    const decided = await this.access.current.update(approvalRequests).set({ status, decidedBy: by, decidedAt: at.getTime() })
      .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, 'pending'), gt(approvalRequests.expiresAt, at.getTime())))
    return decided.rowCount === 1
  }

  async reopen (id: string): Promise<void> {
    await this.access.current.update(approvalRequests).set({ status: 'pending', decidedBy: null, decidedAt: null })
      .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, 'approved')))
  }

  async expireDue (now: Date): Promise<ApprovalRequest[]> {
    const rows = await this.access.current.update(approvalRequests).set({ status: 'expired' })
      .where(and(eq(approvalRequests.status, 'pending'), lte(approvalRequests.expiresAt, now.getTime())))
      .returning()
    return rows.map(toRequest)
  }

  async pending (limit: number): Promise<ApprovalListing[]> {
    return await this.listing(eq(approvalRequests.status, 'pending'), 'oldest', limit)
  }

  async pendingFor (userId: string): Promise<ApprovalListing[]> {
    return await this.listing(and(eq(approvalRequests.status, 'pending'), eq(approvalRequests.userId, userId))!, 'oldest', 50)
  }

  async recent (limit: number): Promise<ApprovalListing[]> {
    return await this.listing(ne(approvalRequests.status, 'pending'), 'newest', limit)
  }

  private async listing (where: SQL, order: 'oldest' | 'newest', limit: number): Promise<ApprovalListing[]> {
    const rows = await this.access.current.select({
      request: approvalRequests,
      subject: { id: users.id, email: users.email, displayName: users.displayName },
      requesterEmail: requester.email,
      deciderEmail: decider.email
    }).from(approvalRequests)
      .innerJoin(users, eq(users.id, approvalRequests.userId))
      .innerJoin(requester, eq(requester.id, approvalRequests.requestedBy))
      .leftJoin(decider, eq(decider.id, approvalRequests.decidedBy))
      .where(where)
      // Requests made in the same millisecond come in one order on both databases.
      .orderBy(order === 'oldest' ? asc(approvalRequests.requestedAt) : desc(approvalRequests.requestedAt), asc(approvalRequests.id))
      .limit(limit)
    return rows.map((row) => ({ ...toRequest(row.request), subject: row.subject, requesterEmail: row.requesterEmail, deciderEmail: row.deciderEmail }))
  }
}
