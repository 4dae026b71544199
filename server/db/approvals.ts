import { and, asc, desc, eq, gt, lte, ne, type SQL } from 'drizzle-orm'
import { alias } from 'drizzle-orm/sqlite-core'
import type { ApprovalListing, ApprovalRequest, ApprovalStatus, ApprovalStore, RequestedAction } from '../domain/approvals.ts'
import { approvalRequests, users } from './schema.ts'
import type { SqliteAccess } from './sqlite-access.ts'

type Row = typeof approvalRequests.$inferSelect

const requester = alias(users, 'requester')
const decider = alias(users, 'decider')

/** Two-person-rule requests. A pending request is decided once, by one conditional UPDATE. */
export class SqliteApprovalStore implements ApprovalStore {
  constructor (private readonly access: SqliteAccess) {}

  async create (request: ApprovalRequest): Promise<boolean> {
    return await this.access.run(() => {
      const { kind, ...options } = request.action
      // The partial unique index allows one pending request per person and kind; a second one is refused here.
      const result = this.access.db.insert(approvalRequests).values({
        id: request.id,
        userId: request.userId,
        kind,
        options: JSON.stringify(options),
        reason: request.reason,
        requestedBy: request.requestedBy,
        requestedAt: request.requestedAt.getTime(),
        expiresAt: request.expiresAt.getTime(),
        status: 'pending'
      }).onConflictDoNothing().run()
      return result.changes === 1
    })
  }

  async find (id: string): Promise<ApprovalRequest | undefined> {
    return await this.access.run(() => {
      const row = this.access.db.select().from(approvalRequests).where(eq(approvalRequests.id, id)).get()
      return row === undefined ? undefined : toRequest(row)
    })
  }

  async decide (id: string, status: 'approved' | 'refused' | 'withdrawn', by: string, at: Date): Promise<boolean> {
    return await this.access.run(() => {
      return this.access.db.update(approvalRequests).set({ status, decidedBy: by, decidedAt: at.getTime() })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, 'pending'), gt(approvalRequests.expiresAt, at.getTime()))).run().changes === 1
    })
  }

  async reopen (id: string): Promise<void> {
    return await this.access.run(() => {
      this.access.db.update(approvalRequests).set({ status: 'pending', decidedBy: null, decidedAt: null })
        .where(and(eq(approvalRequests.id, id), eq(approvalRequests.status, 'approved'))).run()
    })
  }

  async expireDue (now: Date): Promise<ApprovalRequest[]> {
    return await this.access.run(() => {
      return this.access.db.update(approvalRequests).set({ status: 'expired' })
        .where(and(eq(approvalRequests.status, 'pending'), lte(approvalRequests.expiresAt, now.getTime())))
        .returning().all().map(toRequest)
    })
  }

  async pending (limit: number): Promise<ApprovalListing[]> {
    return await this.access.run(() => {
      return this.listing(eq(approvalRequests.status, 'pending'), 'oldest', limit)
    })
  }

  async pendingFor (userId: string): Promise<ApprovalListing[]> {
    return await this.access.run(() => {
      return this.listing(and(eq(approvalRequests.status, 'pending'), eq(approvalRequests.userId, userId))!, 'oldest', 50)
    })
  }

  async recent (limit: number): Promise<ApprovalListing[]> {
    return await this.access.run(() => {
      return this.listing(ne(approvalRequests.status, 'pending'), 'newest', limit)
    })
  }

  private listing (where: SQL, order: 'oldest' | 'newest', limit: number): ApprovalListing[] {
    const rows = this.access.db.select({
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
      .all()
    return rows.map((row) => ({ ...toRequest(row.request), subject: row.subject, requesterEmail: row.requesterEmail, deciderEmail: row.deciderEmail }))
  }
}

export function toRequest (row: Row): ApprovalRequest {
  return {
    id: row.id,
    userId: row.userId,
    action: { kind: row.kind, ...JSON.parse(row.options) } as RequestedAction,
    reason: row.reason,
    requestedBy: row.requestedBy,
    requestedAt: new Date(row.requestedAt),
    expiresAt: new Date(row.expiresAt),
    status: row.status as ApprovalStatus,
    decidedBy: row.decidedBy,
    decidedAt: row.decidedAt === null ? null : new Date(row.decidedAt)
  }
}
