import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { IntlMessageFormat, type Formats, type Formatters } from 'intl-messageformat'
import Negotiator from 'negotiator'

/**
 * Localisation: every string people read comes from a message catalogue in ICU MessageFormat (FormatJS), one JSON
 * file per area and language under `locales/<language>/`, a format translators' tools read (Crowdin, Lokalise,
 * Weblate: "ICU JSON"). Dates and numbers go through `Intl`, in the reader's time zone, with the zone named.
 */
/** Where the shipped catalogues live: locales/<language>/<area>.json at the project's root. */
export const LOCALES_DIR = fileURLToPath(new URL('../../locales/', import.meta.url))

export const LOCALES = ['en', 'de'] as const
export type Locale = typeof LOCALES[number]

/** Each language's own name, for the language choice (shown in that language, whatever the page's language). */
export const LOCALE_NAMES: Readonly<Record<Locale, string>> = { en: 'English', de: 'Deutsch' }

/** The regional conventions dates and numbers follow per language (day before month, 24-hour clock). */
const FORMAT_LOCALES: Readonly<Record<Locale, string>> = { en: 'en-GB', de: 'de-DE' }

export type Catalogue = Readonly<Record<string, string>>
export type MessageValues = Record<string, string | number | boolean | Date | null | undefined>

/**
 * Words for people that the domain hands out before anyone knows the reader's language: a catalogue key and its
 * values, written out where they are shown (`it.t(words.key, words.values)`, or the e-mail notifier).
 */
export interface Words {
  key: string
  values?: MessageValues
}

export function isLocale (value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value)
}

/** True for an IANA time zone this runtime knows ('Europe/Berlin', 'UTC'). */
export function isTimeZone (value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) return false
  try {
    void new Intl.DateTimeFormat('en', { timeZone: value })
    return true
  } catch {
    return false
  }
}

/** Every time zone offered in the preferences, in the runtime's canonical spelling. */
export function timeZones (): string[] {
  return ['UTC', ...Intl.supportedValuesOf('timeZone').filter((zone) => zone !== 'UTC')]
}

/** How a zone is named next to a time: the city of its IANA name ("Berlin", "New York"), or "UTC". */
export function zoneLabel (timeZone: string): string {
  if (/^(Etc\/)?(UTC|GMT|UCT|Zulu|Universal)$/i.test(timeZone)) return 'UTC'
  const city = timeZone.split('/').at(-1) ?? timeZone
  return city.replace(/_/g, ' ')
}

/** A list of region codes in a DomainError's details, for the reader's translator to name: `{ regions: ['US'] }`. */
export interface RegionList {
  regions: readonly string[]
}

function isRegionList (value: unknown): value is RegionList {
  return typeof value === 'object' && value !== null && Array.isArray((value as RegionList).regions)
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
/** What text may not carry into a page as itself: the characters HTML gives a meaning, and any beyond Latin-1. */
const NEEDS_ESCAPING = /[&<>"']|[^\x00-\xff]/
const TO_ESCAPE = /[&<>"']|[\ud800-\udbff][\udc00-\udfff]|[^\x00-\xff]/g
const BEYOND_LATIN1 = /[^\x00-\xff]/
const ALL_BEYOND_LATIN1 = /[\ud800-\udbff][\udc00-\udfff]|[^\x00-\xff]/g
/** Texts that had characters beyond Latin-1, escaped: the same messages come on every page. */
const escapedWide = new Map<string, string>()
const ESCAPED_WIDE_KEPT = 1000
/**
 * The catalogues' plain messages (those without arguments, most of a page's text), escaped once when a translator
 * first gives them out. The translator hands out the same string every time, whose hash V8 keeps, so finding it here
 * costs less than scanning it again. Bounded by the catalogues.
 */
const escapedMessages = new Map<string, string>()

/** A character beyond Latin-1 (a surrogate pair counts as one) as a numeric character reference. */
function reference (c: string): string {
  return `&#${c.codePointAt(0)!};`
}

/**
 * Text whose characters are all Latin-1 but may be held two bytes a character (what is left of a string that had others)
 * as a string V8 holds one byte a character.
 */
function oneByte (text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1')
}

/**
 * Text as HTML: the characters HTML gives a meaning as entities, and every character beyond Latin-1 (curly quotes,
 * dashes, most scripts) as a numeric character reference, which a browser shows as the character itself. So a page is
 * made of strings V8 holds one byte a character: a page with a single string held two bytes a character (one with any
 * character beyond Latin-1, or made from one) is two bytes a character as a whole, and writing it out as UTF-8 took a
 * fifth of the home page's instructions. Not for text inside a `<script>` element (scriptJson is).
 */
export function escapeHtml (text: string): string {
  let escaped = escapedMessages.get(text)
  if (escaped !== undefined) return escaped
  if (!NEEDS_ESCAPING.test(text)) return text
  escaped = escapedWide.get(text)
  if (escaped !== undefined) return escaped
  let wide = false
  escaped = text.replace(TO_ESCAPE, (c) => {
    const entity = HTML_ESCAPES[c]
    if (entity !== undefined) return entity
    wide = true
    return reference(c)
  })
  if (!wide) return escaped
  escaped = oneByte(escaped)
  if (escapedWide.size >= ESCAPED_WIDE_KEPT) escapedWide.clear()
  escapedWide.set(text, escaped)
  return escaped
}

/** HTML (a message with markup, its values escaped) with every character beyond Latin-1 as a reference, as escapeHtml. */
function latin1Html (html: string): string {
  return BEYOND_LATIN1.test(html) ? oneByte(html.replace(ALL_BEYOND_LATIN1, reference)) : html
}

/**
 * A value as JSON for a `<script type="application/json">` block of a page (where character references are not read):
 * `<` and every character beyond Latin-1 as a JSON escape (\uXXXX), so the block cannot end the element early and the
 * page stays one byte a character (see escapeHtml).
 */
export function scriptJson (value: unknown): string {
  const json = JSON.stringify(value)
  const escaped = json.replace(/[<\u0100-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return BEYOND_LATIN1.test(json) ? oneByte(escaped) : escaped
}

/** The message formats' date and time styles (`{at, date, long}`, `{at, time, short}`), in the reader's zone. */
function inZone (styles: Formats['date'], timeZone: string): Formats['date'] {
  return Object.fromEntries(Object.entries(styles).map(([name, style]) => [name, { ...style, timeZone }]))
}

/**
 * The Intl objects one translator's messages format with, each made once. intl-messageformat's own formatters keep
 * them too, but find them again by JSON-serialising the arguments of every call: on a page with counts and dates that
 * cost more than the formatting. Here the options object is the key: a message passes the same one every time (a
 * style from its formats, or what its skeleton parsed to), and plural rules differ only by type. All of a
 * translator's messages are made for its one locale, so the locale is not part of the key.
 */
function formattersFor (): Formatters {
  const numbers = new Map<object | undefined, Intl.NumberFormat>()
  const dates = new Map<object | undefined, Intl.DateTimeFormat>()
  const plurals = new Map<string | undefined, Intl.PluralRules>()
  return {
    getNumberFormat (locales, options) {
      let format = numbers.get(options)
      // formatjs's options type names a value TypeScript's Intl lacks ("stripToMinimum"); Intl is what formats them.
      if (format === undefined) numbers.set(options, format = new Intl.NumberFormat(locales, options as Intl.NumberFormatOptions | undefined))
      return format
    },
    getDateTimeFormat (locales, options) {
      let format = dates.get(options)
      if (format === undefined) dates.set(options, format = new Intl.DateTimeFormat(locales, options))
      return format
    },
    getPluralRules (locales, options) {
      let rules = plurals.get(options?.type)
      if (rules === undefined) plurals.set(options?.type, rules = new Intl.PluralRules(locales, options))
      return rules
    }
  }
}

/** Characters with a meaning in ICU MessageFormat (arguments, tags, plural's #, quoting); a message without any is plain text. */
const MESSAGE_SYNTAX = /[{}<>#']/

/** Reads `<dir>/<language>/*.json`: each file holds keys that start with its own name (`events.json` → `events.…`). */
export function loadCatalogues (dir: string): Record<Locale, Catalogue> {
  const result = {} as Record<Locale, Catalogue>
  for (const locale of LOCALES) {
    const merged: Record<string, string> = {}
    const folder = path.join(dir, locale)
    for (const file of readdirSync(folder).filter((name) => name.endsWith('.json')).sort()) {
      const area = file.slice(0, -'.json'.length)
      const entries = JSON.parse(readFileSync(path.join(folder, file), 'utf8')) as Record<string, unknown>
      for (const [key, message] of Object.entries(entries)) {
        if (typeof message !== 'string') throw new Error(`${locale}/${file}: "${key}" is not a string`)
        if (!key.startsWith(`${area}.`)) throw new Error(`${locale}/${file}: "${key}" must start with "${area}."`)
        merged[key] = message
      }
    }
    result[locale] = merged
  }
  return result
}

/** What a page, an e-mail or a text message is written with: one language and one time zone. */
export interface Translator {
  readonly locale: Locale
  readonly timeZone: string
  /** The zone as shown next to times ("Berlin", "UTC"). */
  readonly zone: string
  /** The message for `key`; English where the language lacks it, the key itself where no language has it. */
  t: (key: string, values?: MessageValues) => string
  /**
   * The message as HTML, for messages with markup (`<strong>`, `<em>`, `<code>`, and `<link>`…`</link>` whose address
   * is the value `link`, `<link2>` the value `link2`): every value is HTML-escaped first. Output it unescaped.
   */
  html: (key: string, values?: MessageValues) => string
  has: (key: string) => boolean
  /** A day in the reader's zone: "4 December 2026". */
  date: (at: Date) => string
  /** A moment with its time and zone: "4 December 2026, 00:07 (Berlin)" — for deadlines and anything due. */
  dateTime: (at: Date) => string
  /** A short moment for lists and tables: "04/12/2026, 00:07". The zone is named once, in the table's heading. */
  shortDateTime: (at: Date) => string
  /** A time of day with its zone: "00:07 (Berlin)". */
  time: (at: Date) => string
  number: (value: number) => string
  /** Countries or regions named in the reader's language, as one list: ['DE', 'AT'] → "Germany and Austria". */
  regionNames: (codes: readonly string[]) => string
  /**
   * A rule's refusal in words: `errors.<code>` with the error's details (plus `zone`, the reader's zone's name),
   * else the error's own (English) message.
   */
  error: (err: { code: string, message: string, details?: Record<string, unknown> }) => string
}

export interface LocaleDefaults {
  locale: Locale
  timeZone: string
}

const ZONES_KEPT = 1000

/** Makes translators; one per language and zone, kept (both come from closed lists, so the cache is bounded). */
export class Localiser {
  private readonly translators = new Map<string, Translator>()
  private readonly zones = new Map<string, boolean>()

  constructor (
    private readonly catalogues: Record<Locale, Catalogue>,
    readonly defaults: LocaleDefaults,
    private readonly onError: (message: string) => void = () => {}
  ) {}

  /** The language for a request: the saved choice, else the browser's Accept-Language, else DEFAULT_LOCALE. */
  negotiate (acceptLanguage: string | undefined, chosen?: string | null): Locale {
    if (isLocale(chosen)) return chosen
    if (acceptLanguage === undefined || acceptLanguage.trim() === '') return this.defaults.locale
    const match = new Negotiator({ headers: { 'accept-language': acceptLanguage } }).language([...LOCALES])
    // "*" alone says any language will do: the organisation's default, not simply the first shipped.
    if (match === undefined || acceptLanguage.trim() === '*') return this.defaults.locale
    return isLocale(match) ? match : this.defaults.locale
  }

  /** The translator for a reader; unknown languages or zones fall back to the defaults. */
  for (reader: { locale?: string | null, timeZone?: string | null } = {}): Translator {
    const locale = isLocale(reader.locale) ? reader.locale : this.defaults.locale
    const timeZone = reader.timeZone != null && this.knows(reader.timeZone) ? reader.timeZone : this.defaults.timeZone
    const key = `${locale}|${timeZone}`
    let translator = this.translators.get(key)
    if (translator === undefined) {
      translator = this.build(locale, timeZone)
      this.translators.set(key, translator)
    }
    return translator
  }

  /**
   * Whether the runtime knows a zone, asked once per zone: a signed-in reader's saved zone is looked up on every page,
   * and asking Intl costs a formatter each time. At most ZONES_KEPT answers are kept (IANA has about 600 zones).
   */
  private knows (timeZone: string): boolean {
    let known = this.zones.get(timeZone)
    if (known === undefined) {
      known = isTimeZone(timeZone)
      if (this.zones.size < ZONES_KEPT) this.zones.set(timeZone, known)
    }
    return known
  }

  /** Every key of a language's catalogue (for the completeness tests). */
  keys (locale: Locale): string[] {
    return Object.keys(this.catalogues[locale])
  }

  private build (locale: Locale, timeZone: string): Translator {
    const own = this.catalogues[locale]
    const english = this.catalogues.en
    const messages = locale === 'en' ? english : { ...english, ...own }
    const formatLocale = FORMAT_LOCALES[locale]
    const onError = this.onError
    // Each message is compiled once per language and zone and kept: formatting is then one call, with no per-call
    // cache-key serialisation (what @formatjs/intl's formatMessage spends most of its time on).
    const formats = {
      number: IntlMessageFormat.formats.number,
      date: inZone(IntlMessageFormat.formats.date, timeZone),
      time: inZone(IntlMessageFormat.formats.time, timeZone)
    }
    const formatters = formattersFor()
    // Most messages are plain text (no argument, tag, plural or quote): they format to themselves and are kept as text.
    const compiled = new Map<string, IntlMessageFormat | string>()
    // Undefined when the message cannot be formatted (a value it needs was not given): no reader sees its source.
    const format = (key: string, values: Record<string, unknown> | undefined): string | undefined => {
      try {
        let message = compiled.get(key)
        if (message === undefined) {
          const source = messages[key]!
          message = MESSAGE_SYNTAX.test(source) ? new IntlMessageFormat(source, formatLocale, formats, { formatters }) : source
          compiled.set(key, message)
          if (typeof message === 'string' && !escapedMessages.has(message)) escapedMessages.set(message, escapeHtml(message))
        }
        if (typeof message === 'string') return message
        const result = message.format(values as Record<string, string>) as string | unknown[]
        return Array.isArray(result) ? result.join('') : String(result)
      } catch (err) {
        onError(`${locale}: "${key}": ${(err as Error).message}`)
        return undefined
      }
    }
    const zone = zoneLabel(timeZone)
    const day = new Intl.DateTimeFormat(formatLocale, { dateStyle: 'long', timeZone })
    const moment = new Intl.DateTimeFormat(formatLocale, { dateStyle: 'long', timeStyle: 'short', timeZone })
    const short = new Intl.DateTimeFormat(formatLocale, { dateStyle: 'short', timeStyle: 'short', timeZone })
    const clock = new Intl.DateTimeFormat(formatLocale, { timeStyle: 'short', timeZone })
    const numbers = new Intl.NumberFormat(formatLocale)
    const regions = new Intl.DisplayNames([formatLocale], { type: 'region' })
    const lists = new Intl.ListFormat(formatLocale, { type: 'conjunction' })
    const regionNames = (codes: readonly string[]): string => lists.format(codes.map((code) => {
      try {
        return regions.of(code) ?? code
      } catch {
        return code
      }
    }))
    const has = (key: string): boolean => Object.hasOwn(messages, key)
    const t = (key: string, values?: MessageValues): string => {
      if (!has(key)) {
        onError(`${locale}: no message "${key}"`)
        return key
      }
      return format(key, values) ?? key
    }
    const html = (key: string, values: MessageValues = {}): string => {
      if (!has(key)) {
        onError(`${locale}: no message "${key}"`)
        return escapeHtml(key)
      }
      const escaped: Record<string, unknown> = {}
      for (const [name, value] of Object.entries(values)) escaped[name] = typeof value === 'string' ? escapeHtml(value) : value
      for (const tag of ['strong', 'em', 'code']) escaped[tag] = (chunks: string[]) => `<${tag}>${chunks.join('')}</${tag}>`
      for (const link of ['link', 'link2']) {
        const href = escaped[link]
        escaped[link] = (chunks: string[]) => `<a href="${typeof href === 'string' ? href : '#'}">${chunks.join('')}</a>`
      }
      const marked = format(key, escaped)
      return marked === undefined ? escapeHtml(key) : latin1Html(marked)
    }
    return {
      locale,
      timeZone,
      zone,
      t,
      html,
      has,
      date: (at) => day.format(at),
      dateTime: (at) => `${moment.format(at)} (${zone})`,
      shortDateTime: (at) => short.format(at),
      time: (at) => `${clock.format(at)} (${zone})`,
      number: (value) => numbers.format(value),
      regionNames,
      error: (err) => {
        const key = `errors.${err.code}`
        // Dates in details stay Dates (the message formats them: `{until, time, short}`, in the reader's zone); `zone`
        // names that zone next to them.
        // A refusal is never shown as a key or a message's source: its own words are the fallback. A code with
        // several wordings selects one by `variant`; thrown without one, it takes the catalogue's `other`.
        // A detail given as `{ regions: ['DE', 'AT'] }` is named in the reader's language ("Germany and Austria").
        const values: Record<string, unknown> = { zone, variant: 'other' }
        for (const [name, value] of Object.entries(err.details ?? {})) values[name] = isRegionList(value) ? regionNames(value.regions) : value
        return (has(key) ? format(key, values) : undefined) ?? err.message
      }
    }
  }
}
