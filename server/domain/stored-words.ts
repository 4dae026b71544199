/**
 * Words kept in the database (a user's state reason): catalogue keys and values as JSON, so a page written later,
 * in any reader's language, says them in that language. Dates survive the trip as `{ "$date": "<ISO>" }` and come
 * back as Dates, shown with their time in the reader's zone.
 */
import type { MessageValues, Translator, Words } from './i18n.ts'

type Stored = Array<{ key: string, values?: Record<string, unknown> }>

/** The words as stored; null for none (the page then shows the English reason kept beside them). */
export function encodeWords (words: readonly Words[] | undefined): string | null {
  if (words === undefined || words.length === 0) return null
  const plain: Stored = words.map((w) => w.values === undefined
    ? { key: w.key }
    : { key: w.key, values: Object.fromEntries(Object.entries(w.values).map(([name, value]) => [name, value instanceof Date ? { $date: value.toISOString() } : value])) })
  return JSON.stringify(plain)
}

/** The words stored, or null when nothing readable was stored (rows from before, written in English only). */
export function decodeWords (stored: string | null | undefined): Words[] | null {
  if (stored == null || stored === '') return null
  let parsed: unknown
  try {
    parsed = JSON.parse(stored)
  } catch {
    return null
  }
  if (!Array.isArray(parsed)) return null
  const words: Words[] = []
  for (const item of parsed as Stored) {
    if (typeof item?.key !== 'string') return null
    if (item.values === undefined) {
      words.push({ key: item.key })
      continue
    }
    const values: MessageValues = {}
    for (const [name, value] of Object.entries(item.values)) {
      if (typeof value === 'object' && value !== null && typeof (value as { $date?: unknown }).$date === 'string') values[name] = new Date((value as { $date: string }).$date)
      else if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) values[name] = value as string | number | boolean | null
    }
    words.push({ key: item.key, values })
  }
  return words
}

/**
 * Words as the reader reads them: each message in the reader's language, one after the other; moments with their
 * time in the reader's zone ("6 December 2026 at 14:05 (Berlin)").
 */
export function sayWords (i18n: Translator, words: readonly Words[]): string {
  return words.map((w) => {
    if (w.values === undefined) return i18n.t(w.key)
    const values: MessageValues = {}
    for (const [name, value] of Object.entries(w.values)) values[name] = value instanceof Date ? i18n.dateTime(value) : value
    return i18n.t(w.key, values)
  }).join(' ')
}

/** A stored reason for a page: its words in the reader's language, else (older rows) the English kept beside them. */
export function sayStored (i18n: Translator, words: string | null | undefined, english: string): string {
  const decoded = decodeWords(words)
  return decoded === null ? english : sayWords(i18n, decoded)
}
