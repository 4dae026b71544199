import { Readable } from 'node:stream'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { Type, type Static } from '@sinclair/typebox'
import { verifyChain, type ChainVerdict } from '../../domain/audit.ts'
import type { Clock } from '../../domain/clock.ts'
import { describeEvent } from '../../domain/event-descriptions.ts'
import type { Translator } from '../../domain/i18n.ts'
import { normaliseEmail, type UserStore } from '../../domain/users.ts'
import type { Services } from '../../wiring.ts'
import { csvLine } from '../csv.ts'
import { requireRole } from '../plugins/auth.ts'
import { notFoundFor } from '../plugins/errors.ts'
import { requestContext } from './auth.ts'
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

/** The download's columns: the event's name stays in its own column; `description` is the name in words. */
export const EXPORT_COLUMNS = ['id', 'at', 'action', 'description', 'actor_id', 'actor', 'subject_user_id', 'subject_email', 'details', 'ip'] as const
/** Events read per query while a download streams (the store's own cap). */
const EXPORT_BATCH = 500

type AuditService = Pick<Services['audit'], 'search' | 'size' | 'all' | 'keys' | 'append'>
type SearchRow = Awaited<ReturnType<AuditService['search']>>['events'][number]
type Filters = Omit<Parameters<AuditService['search']>[0], 'beforeId' | 'afterId' | 'limit'>

interface Deps {
  audit: AuditService
  users: Pick<UserStore, 'findByEmail'>
  clock: Clock
}

/** How far a zone's clock is ahead of UTC at a moment, in milliseconds (Berlin in winter: one hour). */
function zoneOffsetMs (at: number, timeZone: string): number {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'
  }).formatToParts(new Date(at)).map((part) => [part.type, part.value]))
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second))
  return asUtc - Math.floor(at / 1000) * 1000
}

/**
 * When a calendar day begins in a time zone: `day` is that day's UTC midnight (as parseDay gives it); the answer is
 * the moment the reader's clock shows 00:00 on it (2026-12-02 in Berlin: 2026-12-01T23:00Z). Days whose midnight a
 * clock change skips begin at the first moment that exists.
 */
export function startOfDayIn (day: Date, timeZone: string): Date {
  const wall = day.getTime()
  let at = wall - zoneOffsetMs(wall, timeZone)
  at = wall - zoneOffsetMs(at, timeZone)
  // Still the evening before (midnight skipped by a clock change): on to the moment the day does begin.
  const shown = at + zoneOffsetMs(at, timeZone)
  if (shown < wall) at += wall - shown
  return new Date(at)
}

/** The filters as typed, what is wrong with them (per field), and the search they make when nothing is. */
async function readFilters (q: AuditQueryString, users: Deps['users'], i18n: Translator) {
  const values = { action: q.action?.trim() ?? '', actor: q.actor?.trim() ?? '', subject: q.subject?.trim() ?? '', from: q.from?.trim() ?? '', to: q.to?.trim() ?? '' }
  const fields: Record<string, string> = {}

  let subjectUserId: string | undefined
  if (values.subject !== '') {
    subjectUserId = (await users.findByEmail(normaliseEmail(values.subject)))?.id
    if (subjectUserId === undefined) fields.subject = i18n.t('audit.no_such_user')
  }
  const from = parseDay(values.from)
  const to = parseDay(values.to)
  if (from !== null && Number.isNaN(from.getTime())) fields.from = i18n.t('audit.first_day_invalid')
  if (to !== null && Number.isNaN(to.getTime())) fields.to = i18n.t('audit.last_day_invalid')
  else if (from !== null && to !== null && !Number.isNaN(from.getTime()) && to < from) fields.to = i18n.t('audit.last_before_first')

  const problems = FIELD_ORDER.filter((field) => fields[field] !== undefined).map((field) => ({ field, message: fields[field] }))
  const search: Filters | null = problems.length > 0
    ? null
    : {
        actionPrefix: values.action === '' ? undefined : values.action,
        actor: values.actor === '' ? undefined : values.actor,
        subjectUserId,
        // Days are the reader's days (the table shows times in their zone): from their midnight to their midnight.
        from: from === null ? undefined : startOfDayIn(from, i18n.timeZone).toISOString(),
        // The last day counts whole: events before the next midnight.
        until: to === null ? undefined : startOfDayIn(new Date(to.getTime() + 86_400_000), i18n.timeZone).toISOString()
      }
  return { values, fields, problems, search }
}

/** Registered under /admin/audit: the audit log, newest first, with filters and the hash chain's status. Admins only. */
const adminAuditRoutes: FastifyPluginAsync<Deps> = async (app, { audit, users, clock }) => {
  app.addHook('preValidation', requireRole('admin'))
  // Unknown addresses in here are guarded too: outsiders get 403, not a map of what exists.
  app.setNotFoundHandler(notFoundFor)

  app.get<{ Querystring: AuditQueryString }>('/', { schema: { querystring: AuditQuery } }, async (request, reply) => {
    const q = request.query
    const { values, fields, problems, search } = await readFilters(q, users, request.i18n)
    const page = search === null
      ? { events: [], more: false }
      : await audit.search({ ...search, beforeId: q.before, afterId: q.before === undefined ? q.after : undefined, limit: PAGE_SIZE })

    const size = await audit.size()
    const checkNow = q.verify === '1' || size <= VERIFY_ON_EVERY_VIEW
    const verdict: ChainVerdict | null = checkNow ? await verifyChain(audit.all(), audit.keys) : null

    // Links keep the filters as typed and change only the cursor.
    const filters = Object.entries(values).filter(([, value]) => value !== '')
    const link = (cursor: Record<string, string | number>) => `/admin/audit?${new URLSearchParams([...filters, ...Object.entries(cursor).map(([k, v]) => [k, String(v)])]).toString()}`
    const exportLink = (format: 'csv' | 'json') => `/admin/audit/export.${format}${filters.length > 0 ? `?${new URLSearchParams(filters).toString()}` : ''}`
    const first = page.events[0]
    const last = page.events[page.events.length - 1]
    const goingUp = q.before === undefined && q.after !== undefined
    return reply.code(problems.length > 0 ? 400 : 200).page('admin/audit', {
      title: request.i18n.t('audit.title'),
      values,
      fields,
      problems,
      filtered: filters.length > 0,
      error: problems.length > 0 ? request.i18n.t('audit.correct_filters') : null,
      events: page.events.map((event) => describe(event, request.i18n)),
      downloads: { csv: exportLink('csv'), json: exportLink('json') },
      verdict,
      size,
      verifyLink: link({ verify: '1' }),
      newestLink: q.before !== undefined || q.after !== undefined ? link({}) : null,
      newerLink: first !== undefined && (goingUp ? page.more : q.before !== undefined) ? link({ after: first.id }) : null,
      olderLink: last !== undefined && (goingUp || page.more) ? link({ before: last.id }) : null
    })
  })

  // Downloads of the events the filters select (all of them without filters), newest first, streamed in batches
  // and audited before the first byte. Mistyped filters send the admin back to the page that explains them.
  for (const format of ['csv', 'json'] as const) {
    app.get<{ Querystring: AuditQueryString }>(`/export.${format}`, { schema: { querystring: AuditQuery } }, async (request, reply) => {
      const { values, search } = await readFilters(request.query, users, request.i18n)
      const filters = Object.fromEntries(Object.entries(values).filter(([, value]) => value !== ''))
      if (search === null) return reply.redirect(`/admin/audit?${new URLSearchParams(filters).toString()}`, 303)
      const user = request.user!
      const { ip, userAgent } = requestContext(request)
      await audit.append({ action: 'audit.exported', actorId: user.id, actorLabel: user.email, details: { format, filters }, ip, userAgent })
      const rows = exportRows(audit, search, request.i18n)
      const day = clock.now().toISOString().slice(0, 10)
      return download(reply, format === 'csv' ? 'text/csv' : 'application/json', `mfa-audit-${day}.${format}`)
        .send(Readable.from(format === 'csv' ? csvDocument(rows) : jsonDocument(rows, { exportedAt: clock.now().toISOString(), filters })))
    })
  }
}

/** One exported event: the stored record as it is, with its name in words beside the name. */
interface ExportRow {
  id: number
  at: string
  action: string
  description: string | null
  actorId: string | null
  actor: string | null
  subjectUserId: string | null
  subjectEmail: string | null
  details: unknown
  ip: string | null
}

/** Every event the filters select, newest first, read EXPORT_BATCH at a time (never the whole log in memory). */
async function * exportRows (audit: AuditService, search: Filters, i18n: Translator): AsyncGenerator<ExportRow> {
  let beforeId: number | undefined
  for (;;) {
    const page = await audit.search({ ...search, beforeId, limit: EXPORT_BATCH })
    for (const event of page.events) {
      yield {
        id: event.id,
        at: event.at,
        action: event.action,
        description: describeEvent(i18n, event.action),
        actorId: event.actorId,
        actor: event.actorLabel,
        subjectUserId: event.subjectUserId,
        subjectEmail: event.subjectEmail,
        details: parsedDetails(event.details),
        ip: event.ip
      }
    }
    if (!page.more || page.events.length === 0) return
    beforeId = page.events[page.events.length - 1].id
  }
}

async function * csvDocument (rows: AsyncIterable<ExportRow>): AsyncGenerator<string> {
  yield csvLine([...EXPORT_COLUMNS])
  for await (const row of rows) {
    yield csvLine([row.id, row.at, row.action, row.description, row.actorId, row.actor, row.subjectUserId, row.subjectEmail,
      typeof row.details === 'string' ? row.details : JSON.stringify(row.details), row.ip])
  }
}

/** { "exportedAt", "filters", "events": [ … ] }, written event by event. */
async function * jsonDocument (rows: AsyncIterable<ExportRow>, head: { exportedAt: string, filters: Record<string, string> }): AsyncGenerator<string> {
  yield `{"exportedAt":${JSON.stringify(head.exportedAt)},"filters":${JSON.stringify(head.filters)},"events":[`
  let first = true
  for await (const row of rows) {
    yield (first ? '\n' : ',\n') + JSON.stringify(row)
    first = false
  }
  yield '\n]}\n'
}

/** An attachment no cache keeps (it names people and what happened to their accounts). */
function download (reply: FastifyReply, type: string, filename: string): FastifyReply {
  return reply.type(`${type}; charset=utf-8`).header('content-disposition', `attachment; filename="${filename}"`).header('cache-control', 'no-store')
}

/** The stored details as an object; a row altered by hand may hold anything, which is then kept as the text it is. */
function parsedDetails (details: string): unknown {
  try {
    return JSON.parse(details) as unknown
  } catch {
    return details
  }
}

/** An event for the page: its name in words, and its details as "key: value" lines (nested values stay JSON). */
function describe (event: SearchRow, i18n: Translator) {
  const parsed = parsedDetails(event.details)
  // A row altered by hand may hold anything: show it as stored rather than fail the page (the chain check names it).
  const details: Array<[string, string]> = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
    ? Object.entries(parsed).map(([key, value]) => [key, typeof value === 'string' ? value : JSON.stringify(value)])
    : [['details', event.details]]
  return { ...event, description: describeEvent(i18n, event.action), when: event.at.slice(0, 19).replace('T', ' '), details }
}

export default adminAuditRoutes
