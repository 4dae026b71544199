import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { simpleParser } from 'mailparser'
import { campaignInput, DAY } from '../helpers/campaigns.ts'
import { createTestUser, signIn, startTestApp, type Agent, type TestApp } from '../helpers/app.ts'
import { startSmtpSink, type SmtpSink } from '../helpers/smtp.ts'
import { deadlineCalendar, fold } from '../../server/domain/calendar.ts'
import { sqlOn } from '../helpers/sql.ts'

/** The unfolded content lines of an .ics text (RFC 5545 3.1), after checking its line endings and fold widths. */
function contentLines (ics: string): string[] {
  assert.ok(ics.endsWith('\r\n'), 'ends with CRLF')
  assert.doesNotMatch(ics.replace(/\r\n/g, ''), /[\r\n]/, 'every line ends with CRLF, no bare LF or CR')
  const physical = ics.slice(0, -2).split('\r\n')
  for (const line of physical) assert.ok(Buffer.byteLength(line, 'utf8') <= 75, `at most 75 octets: "${line}"`)
  return ics.slice(0, -2).replace(/\r\n /g, '').split('\r\n')
}

/** The property lines of the first component named `name` (BEGIN:name … END:name), nested components left out. */
function component (lines: string[], name: string): Map<string, string> {
  const start = lines.indexOf(`BEGIN:${name}`)
  assert.ok(start >= 0, `a ${name}`)
  const props = new Map<string, string>()
  let depth = 0
  for (const line of lines.slice(start + 1)) {
    if (line === `END:${name}` && depth === 0) return props
    if (line.startsWith('BEGIN:')) depth++
    else if (line.startsWith('END:')) depth--
    else if (depth === 0) props.set(line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1))
  }
  assert.fail(`END:${name} missing`)
}

/** GET /deadline.ics as the browser would get it, with the body as text. */
async function getIcs (agent: Agent): Promise<{ status: number, headers: Record<string, string>, text: string }> {
  const res = await agent.get('/deadline.ics').buffer(true).parse((stream, done) => {
    let body = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { body += chunk })
    stream.on('end', () => done(null, body))
  })
  return { status: res.status, headers: res.headers, text: res.body as string }
}

function icsTime (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

/** The event a calendar program would show: one VEVENT at the deadline, its alarm a day before, the portal link. */
function assertDeadlineEvent (ics: string, deadline: Date, now: Date, portalUrl: string): Map<string, string> {
  const lines = contentLines(ics)
  assert.equal(lines[0], 'BEGIN:VCALENDAR')
  assert.equal(lines.at(-1), 'END:VCALENDAR')
  assert.equal(lines.filter((l) => l === 'BEGIN:VEVENT').length, 1, 'exactly one event')
  const calendar = component(lines, 'VCALENDAR')
  assert.equal(calendar.get('VERSION'), '2.0')
  assert.ok(calendar.get('PRODID'))
  const event = component(lines, 'VEVENT')
  assert.equal(event.get('DTSTART'), icsTime(deadline))
  assert.equal(event.get('DTSTAMP'), icsTime(now))
  assert.match(event.get('UID') ?? '', /^deadline-.+@/)
  assert.equal(event.get('URL'), portalUrl)
  assert.ok(event.get('DESCRIPTION')?.includes(portalUrl), 'the portal link is in the description')
  assert.match(event.get('SUMMARY') ?? '', /second sign-in method/)
  const alarm = component(lines, 'VALARM')
  assert.equal(alarm.get('TRIGGER'), '-P1D')
  assert.equal(alarm.get('ACTION'), 'DISPLAY')
  assert.ok(alarm.get('DESCRIPTION'))
  return event
}

describe('the deadline as a calendar file', () => {
  test('long lines are folded at 75 octets without splitting a character, and unfold to the original', () => {
    const line = 'DESCRIPTION:' + 'Grüße aus München, Zürich; und 東京 '.repeat(8)
    const folded = fold(line)
    for (const part of folded.split('\r\n')) assert.ok(Buffer.byteLength(part, 'utf8') <= 75)
    assert.equal(folded.replace(/\r\n /g, ''), line)
  })

  test('text is escaped, so commas, semicolons and line breaks do not break the file', () => {
    const ics = deadlineCalendar({ userId: 'u1', deadline: new Date('2026-12-04T00:00:00Z'), portalUrl: 'https://mfa.example.org/', now: new Date('2026-11-25T09:00:00Z') })
    const event = component(contentLines(ics), 'VEVENT')
    assert.match(event.get('DESCRIPTION')!, /passkey\\, an authenticator app/)
    assert.match(event.get('DESCRIPTION')!, /\\nOpen the portal: https:\/\/mfa.example.org\//)
    assert.equal(event.get('UID'), 'deadline-u1-20261204T000000Z@mfa.example.org')
  })
})

describe('Add to calendar on the home page', () => {
  let t: TestApp
  before(async () => {
    t = await startTestApp()
    const now = t.clock.now().getTime()
    await t.services.campaigns.create(campaignInput(now, { deadline: new Date(now + 12 * DAY), newUserWindowDays: 0 }), { id: null, label: 'test' })
  })
  after(async () => { await t.close() })

  test('a user with a deadline gets a link, and /deadline.ics is that deadline with a reminder the day before', async () => {
    const user = await createTestUser(t.services)
    await t.services.engine.refreshUser(user.id)
    const agent = await signIn(t, user.email)
    const home = await agent.get('/')
    assert.match(home.text, /<a href="\/deadline.ics" download id="add-to-calendar">Add to calendar<\/a>/)

    const res = await getIcs(agent)
    assert.equal(res.status, 200)
    assert.match(res.headers['content-type'], /^text\/calendar; charset=utf-8/)
    assert.match(res.headers['content-disposition'], /^attachment; filename="mfa-deadline.ics"$/)
    const deadline = (await t.services.engine.standing(user.id))!.deadline!
    const event = assertDeadlineEvent(res.text, deadline, t.clock.now(), 'http://localhost:3000/')
    // The same user and deadline give the same UID, so adding it twice updates the event rather than duplicating it.
    t.clock.advance(60_000)
    const again = await getIcs(agent)
    assert.equal(component(contentLines(again.text), 'VEVENT').get('UID'), event.get('UID'))
    const other = await createTestUser(t.services)
    await t.services.engine.refreshUser(other.id)
    const theirs = await getIcs(await signIn(t, other.email))
    assert.notEqual(component(contentLines(theirs.text), 'VEVENT').get('UID'), event.get('UID'))
  })

  test('signed out, /deadline.ics gives nothing away', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/deadline.ics' })
    assert.notEqual(res.statusCode, 200)
    assert.doesNotMatch(res.body, /BEGIN:VCALENDAR/)
  })

  test('a user with no deadline gets no link, and /deadline.ics leads back home with a note', async () => {
    const t2 = await startTestApp()
    try {
      const user = await createTestUser(t2.services)
      const agent = await signIn(t2, user.email)
      assert.doesNotMatch((await agent.get('/')).text, /Add to calendar/)
      const res = await agent.get('/deadline.ics')
      assert.equal(res.status, 303)
      assert.equal(res.headers.location, '/')
      assert.match((await agent.get('/')).text, /no upcoming deadline/)
    } finally {
      await t2.close()
    }
  })
})

describe('reminder e-mails', () => {
  let t: TestApp
  let smtp: SmtpSink
  before(async () => {
    smtp = await startSmtpSink()
    t = await startTestApp({ SMTP_URL: smtp.url })
  })
  after(async () => {
    await t.close()
    await smtp.close()
  })

  test('every reminder carries the deadline as an .ics attachment', async () => {
    const now = t.clock.now().getTime()
    const user = await createTestUser(t.services)
    await sqlOn(t.services).run('UPDATE users SET first_seen_at = ? WHERE id = ?', now - 90 * DAY, user.id)
    const deadline = new Date(now + 6 * DAY)
    await t.services.campaigns.create(campaignInput(now, { deadline, newUserWindowDays: 0 }), { id: null, label: 'test' })
    assert.equal(await t.services.reminders.send(await t.services.engine.campaigns()), 1)
    const mail = await smtp.waitFor((m) => m.to.includes(user.email) && /left to set up/.test(m.subject))
    assert.match(mail.text, /attached file \(mfa-deadline.ics\) adds the deadline to your calendar/)
    const parsed = await simpleParser(mail.raw)
    const ics = parsed.attachments.filter((a) => a.filename === 'mfa-deadline.ics')
    assert.equal(ics.length, 1)
    assert.equal(ics[0].contentType, 'text/calendar')
    assertDeadlineEvent(ics[0].content.toString('utf8'), deadline, t.clock.now(), 'http://localhost:3000/')
    assert.match(ics[0].content.toString('utf8'), new RegExp(`UID:deadline-${user.id}-`))
  })
})
