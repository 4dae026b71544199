/**
 * The enrollment deadline as an iCalendar file (RFC 5545), so people can put it in their calendar like a meeting:
 * one event at the deadline, a reminder the day before, and the portal's address. Written here rather than with a
 * library: it is one fixed event, and the rules that matter (CRLF, escaping, folding at 75 octets) are a few lines.
 */

export interface DeadlineEvent {
  /** Makes the UID stable per user and deadline: the same event is updated, not duplicated, when added again. */
  userId: string
  deadline: Date
  /** The portal's address, for the event's link and description. */
  portalUrl: string
  /** When the file was made (DTSTAMP). */
  now: Date
}

export const CALENDAR_CONTENT_TYPE = 'text/calendar; charset=utf-8'
export const CALENDAR_FILENAME = 'mfa-deadline.ics'

/** The .ics text for the deadline: one VEVENT with a VALARM the day before, CRLF line endings, folded lines. */
export function deadlineCalendar (event: DeadlineEvent): string {
  const host = new URL(event.portalUrl).host
  const summary = 'Deadline: set up your second sign-in method'
  const description = `Set up a second sign-in method (a passkey, an authenticator app or a phone) before this deadline. After it, multi-factor sign-in becomes mandatory for your account.\nOpen the portal: ${event.portalUrl}`
  const lines = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//MFA enrollment portal//Deadline//EN',
    'CALSCALE:GREGORIAN',
    'METHOD:PUBLISH',
    'BEGIN:VEVENT',
    `UID:deadline-${event.userId}-${icsTime(event.deadline)}@${host}`,
    `DTSTAMP:${icsTime(event.now)}`,
    // The deadline itself is the event's moment (no DTEND: it ends when it starts, RFC 5545 3.6.1).
    `DTSTART:${icsTime(event.deadline)}`,
    `SUMMARY:${escapeText(summary)}`,
    `DESCRIPTION:${escapeText(description)}`,
    `URL:${event.portalUrl}`,
    'TRANSP:TRANSPARENT',
    'BEGIN:VALARM',
    'ACTION:DISPLAY',
    `DESCRIPTION:${escapeText('Tomorrow: ' + summary.toLowerCase())}`,
    'TRIGGER:-P1D',
    'END:VALARM',
    'END:VEVENT',
    'END:VCALENDAR'
  ]
  return lines.map(fold).join('\r\n') + '\r\n'
}

/** "20261204T000000Z": UTC date-time form. */
function icsTime (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')
}

/** TEXT value escaping (RFC 5545 3.3.11): backslash, semicolon, comma and line breaks. */
export function escapeText (text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/;/g, '\\;').replace(/,/g, '\\,').replace(/\r?\n/g, '\\n')
}

/**
 * Folds a content line so no line is longer than 75 octets (RFC 5545 3.1): continuation lines start with one
 * space, and a multi-octet UTF-8 character is never split.
 */
export function fold (line: string): string {
  const parts: string[] = []
  let current = ''
  let octets = 0
  for (const char of line) {
    const size = Buffer.byteLength(char, 'utf8')
    // The first line holds 75 octets; continuation lines 74 after their leading space.
    if (octets + size > (parts.length === 0 ? 75 : 74)) {
      parts.push(current)
      current = ''
      octets = 0
    }
    current += char
    octets += size
  }
  parts.push(current)
  return parts.join('\r\n ')
}
