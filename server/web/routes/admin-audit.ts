import type { FastifyPluginAsync } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { verifyChain, type ChainVerdict } from '../../domain/audit.ts'
import { normaliseEmail, type UserStore } from '../../domain/users.ts'
import type { Services } from '../../wiring.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { parseDay } from './form-fields.ts'

const PAGE_SIZE = 50
/**
 * Checking the chain re-hashes every event in order (about 0.1 s per 10,000 on a small server). Up to this many
 * events it is checked afresh on every view of the page; beyond it, only when the admin presses the button, so
 * filtering and paging a long log stay quick. There is no cache on purpose: a remembered "intact" would hide a row
 * altered since. `mfa-rollout audit verify` checks the same chain from the command line (or a scheduled job).
 */
export const VERIFY_ON_EVERY_VIEW = 10_000

// A GET form: every filter optional text, shown back as typed; mistakes are explained at their field.
const AuditQuery = Type.Object({
  action: Type.Optional(Type.String({ maxLength: 100 })),
  actor: Type.Optional(Type.String({ maxLength: 320 })),
  subject: Type.Optional(Type.String({ maxLength: 320 })),
  from: Type.Optional(Type.String({ maxLength: 40 })),
  to: Type.Optional(Type.String({ maxLength: 40 })),
  before: Type.Optional(Type.Integer({ minimum: 1 })),
  after: Type.Optional(Type.Integer({ minimum: 0 })),
  verify: Type.Optional(Type.Literal('1'))
})
type AuditQueryString = Static<typeof AuditQuery>

const FIELD_ORDER = ['action', 'actor', 'subject', 'from', 'to'] as const

interface Deps {
  audit: Pick<Services['audit'], 'search' | 'size' | 'all' | 'keys'>
  users: Pick<UserStore, 'findByEmail'>
}

/** Registered under /admin/audit: the audit log, newest first, with filters and the hash chain's status. Admins only. */
const adminAuditRoutes: FastifyPluginAsync<Deps> = async (app, { audit, users }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get<{ Querystring: AuditQueryString }>('/', { schema: { querystring: AuditQuery } }, async (request, reply) => {
    const q = request.query
    const values = { action: q.action?.trim() ?? '', actor: q.actor?.trim() ?? '', subject: q.subject?.trim() ?? '', from: q.from?.trim() ?? '', to: q.to?.trim() ?? '' }
    const fields: Record<string, string> = {}

    let subjectUserId: string | undefined
    if (values.subject !== '') {
      subjectUserId = users.findByEmail(normaliseEmail(values.subject))?.id
      if (subjectUserId === undefined) fields.subject = 'No user has this email address.'
    }
    const from = parseDay(values.from)
    const to = parseDay(values.to)
    if (from !== null && Number.isNaN(from.getTime())) fields.from = 'Enter the first day as a date, such as 2027-01-31.'
    if (to !== null && Number.isNaN(to.getTime())) fields.to = 'Enter the last day as a date, such as 2027-01-31.'
    else if (from !== null && to !== null && !Number.isNaN(from.getTime()) && to < from) fields.to = 'The last day must be on or after the first day.'

    const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
    const page = problems.length > 0
      ? { events: [], more: false }
      : audit.search({
        actionPrefix: values.action === '' ? undefined : values.action,
        actor: values.actor === '' ? undefined : values.actor,
        subjectUserId,
        from: from?.toISOString(),
        // The last day counts whole: events before the next midnight.
        until: to === null ? undefined : new Date(to.getTime() + 86_400_000).toISOString(),
        beforeId: q.before,
        afterId: q.before === undefined ? q.after : undefined,
        limit: PAGE_SIZE
      })

    const size = audit.size()
    const checkNow = q.verify === '1' || size <= VERIFY_ON_EVERY_VIEW
    const verdict: ChainVerdict | null = checkNow ? verifyChain(audit.all(), audit.keys) : null

    // Links keep the filters as typed and change only the cursor.
    const filters = Object.entries(values).filter(([, value]) => value !== '')
    const link = (cursor: Record<string, string | number>) => `/admin/audit?${new URLSearchParams([...filters, ...Object.entries(cursor).map(([k, v]) => [k, String(v)])]).toString()}`
    const first = page.events[0]
    const last = page.events[page.events.length - 1]
    const goingUp = q.before === undefined && q.after !== undefined
    return reply.code(problems.length > 0 ? 400 : 200).page('admin/audit', {
      title: 'Audit log',
      values,
      fields,
      problems,
      filtered: filters.length > 0,
      error: problems.length > 0 ? 'Please correct the filters marked below.' : null,
      events: page.events.map(describe),
      verdict,
      size,
      verifyLink: link({ verify: '1' }),
      newestLink: q.before !== undefined || q.after !== undefined ? link({}) : null,
      newerLink: first !== undefined && (goingUp ? page.more : q.before !== undefined) ? link({ after: first.id }) : null,
      olderLink: last !== undefined && (goingUp || page.more) ? link({ before: last.id }) : null
    })
  })
}

/** An event's details as "key: value" lines; nested values stay JSON. */
function describe (event: ReturnType<Services['audit']['search']>['events'][number]) {
  let details: Array<[string, string]> = []
  try {
    const parsed = JSON.parse(event.details) as Record<string, unknown>
    details = Object.entries(parsed).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)])
  } catch {
    // A row altered by hand may hold anything: show it as stored rather than fail the page (the chain check names it).
    details = [['details', event.details]]
  }
  return { ...event, when: event.at.slice(0, 19).replace('T', ' '), details }
}

export default adminAuditRoutes
