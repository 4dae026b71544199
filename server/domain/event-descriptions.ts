import type { Translator } from './i18n.ts'

/**
 * Audit events in words, for people: the helpdesk timeline, the admin audit log and its downloads. Each event name
 * the portal writes (`pass.signin_failure`) has a description in the message catalogue under `events.<name>`
 * (locales/<language>/events.json: "Sign-in with an access pass failed"); the name itself stays the record's
 * stable identifier, shown beside the words and kept as it is in exports. test/unit/event-descriptions.test.ts
 * reads every name the sources write and fails on one without a description.
 */
export function eventDescriptionKey (action: string): string {
  return `events.${action}`
}

/**
 * The event in the reader's words; for a name the catalogue does not know (written by an older version of the
 * portal, or by hand), null, and the pages show the name alone.
 */
export function describeEvent (i18n: Pick<Translator, 't' | 'has'>, action: string): string | null {
  const key = eventDescriptionKey(action)
  return i18n.has(key) ? i18n.t(key) : null
}
