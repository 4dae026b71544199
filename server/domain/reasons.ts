import { DomainError } from './errors.ts'

/** A staff member's reason for an action, as the audit log keeps it: one line, 3 to 500 characters. */
export function cleanReason (reason: string): string {
  const text = reason.replace(/\s+/g, ' ').trim()
  if (text.length < 3) throw new DomainError('reason_required', 'Say why, in a few words (it goes into the audit log).')
  if (text.length > 500) throw new DomainError('reason_too_long', 'Keep the reason under 500 characters.')
  return text
}

/**
 * "2026-11-25 09:30 UTC", for logs and the English messages of errors and audit details. Pages and e-mails show
 * moments through the reader's Translator instead (`dateTime`: time and zone in the reader's zone).
 */
export function minute (at: Date): string {
  return `${at.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}
