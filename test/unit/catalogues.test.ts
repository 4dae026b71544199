import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { IntlMessageFormat } from 'intl-messageformat'
import { LOCALES, loadCatalogues, Localiser } from '../../server/domain/i18n.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const catalogues = loadCatalogues(path.join(ROOT, 'locales'))

function files (dir: string, ending: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name)
    return statSync(full).isDirectory() ? files(full, ending) : name.endsWith(ending) ? [full] : []
  })
}

/** The argument names a message uses ({name}, {count, plural, …}) and its tags (<strong>…</strong>). */
function argumentsOf (message: string): string[] {
  const names = new Set<string>()
  const walk = (elements: unknown[]): void => {
    for (const element of elements as Array<{ type: number, value?: string, options?: Record<string, { value: unknown[] }>, children?: unknown[] }>) {
      if (typeof element.value === 'string' && element.type !== 0) names.add(element.value)
      for (const option of Object.values(element.options ?? {})) walk(option.value)
      if (element.children !== undefined) walk(element.children)
    }
  }
  walk(new IntlMessageFormat(message, 'en', undefined, { ignoreTag: false }).getAst() as unknown[])
  return [...names].sort()
}

const relative = (file: string): string => path.relative(ROOT, file)

test('every shipped language has exactly the keys English has', () => {
  const english = new Set(Object.keys(catalogues.en))
  for (const locale of LOCALES) {
    const own = new Set(Object.keys(catalogues[locale]))
    assert.deepEqual([...english].filter((key) => !own.has(key)), [], `${locale} lacks these keys`)
    assert.deepEqual([...own].filter((key) => !english.has(key)), [], `${locale} has keys English does not`)
  }
})

test('every message is valid ICU MessageFormat and each translation uses the same placeholders and tags', () => {
  const problems: string[] = []
  for (const locale of LOCALES) {
    for (const [key, message] of Object.entries(catalogues[locale])) {
      try {
        const own = argumentsOf(message)
        if (locale !== 'en' && catalogues.en[key] !== undefined) {
          const english = argumentsOf(catalogues.en[key])
          if (own.join() !== english.join()) problems.push(`${locale} ${key}: uses {${own.join(', ')}}, English {${english.join(', ')}}`)
        }
      } catch (err) {
        problems.push(`${locale} ${key}: ${(err as Error).message}`)
      }
    }
  }
  assert.deepEqual(problems, [])
})

test('every message key the code and the templates name exists in the catalogue', () => {
  const sources = [...files(path.join(ROOT, 'server'), '.ts'), ...files(path.join(ROOT, 'views'), '.eta')]
  const missing: string[] = []
  for (const file of sources) {
    const text = readFileSync(file, 'utf8')
    for (const match of text.matchAll(/\b(?:t|html)\(\s*'([a-z][a-z0-9_]*\.[a-z0-9_.]+)'/g)) {
      if (catalogues.en[match[1]] === undefined) missing.push(`${relative(file)}: ${match[1]}`)
    }
  }
  assert.deepEqual(missing, [])
})

test('every refusal the rules can give (a DomainError code) has words in the catalogue', () => {
  const missing = new Set<string>()
  for (const file of files(path.join(ROOT, 'server'), '.ts')) {
    for (const match of readFileSync(file, 'utf8').matchAll(/new DomainError\(\s*'([a-z0-9_]+)'/g)) {
      if (catalogues.en[`errors.${match[1]}`] === undefined) missing.add(`${relative(file)}: errors.${match[1]}`)
    }
  }
  assert.deepEqual([...missing], [])
})

/** Text a template writes literally: what is left after removing template tags, markup and entities. */
function literalText (template: string): string[] {
  const attributes = [...template.matchAll(/\b(?:aria-label|title|placeholder|alt)="([^"<]*[A-Za-z][^"<]*)"/g)].map((m) => m[1])
  const text = template
    .replace(/<%[\s\S]*?%>/g, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&[a-z]+;|&#\d+;/g, ' ')
  return [...attributes, ...text.split(/\s{2,}|\n/)].map((s) => s.trim()).filter((s) => /[A-Za-z]{2,}/.test(s))
}

test('templates write no words of their own: every word comes from the catalogue', () => {
  const offenders: string[] = []
  for (const file of files(path.join(ROOT, 'views'), '.eta')) {
    for (const words of literalText(readFileSync(file, 'utf8'))) offenders.push(`${relative(file)}: ${words}`)
  }
  assert.deepEqual(offenders, [])
})

test('dates name the time and the reader\'s zone, in the reader\'s language', () => {
  const localiser = new Localiser(catalogues, { locale: 'en', timeZone: 'UTC' })
  const at = new Date('2026-12-03T23:07:00Z')
  assert.equal(localiser.for({ locale: 'en', timeZone: 'Europe/Berlin' }).time(at), '00:07 (Berlin)')
  assert.equal(localiser.for({ locale: 'en' }).time(at), '23:07 (UTC)')
  assert.equal(localiser.for({ locale: 'de', timeZone: 'Europe/Berlin' }).dateTime(at), '4. Dezember 2026 um 00:07 (Berlin)')
  assert.equal(localiser.for({ locale: 'en', timeZone: 'America/New_York' }).dateTime(at), '3 December 2026 at 18:07 (New York)')
  // Unknown languages and zones fall back to the organisation's defaults rather than failing.
  assert.equal(localiser.for({ locale: 'xx', timeZone: 'Mars/Olympus' }).time(at), '23:07 (UTC)')
  // Each zone is checked once and the answer kept: asked again, the same answers.
  assert.equal(localiser.for({ locale: 'en', timeZone: 'Mars/Olympus' }).time(at), '23:07 (UTC)')
  assert.equal(localiser.for({ locale: 'de', timeZone: 'Europe/Berlin' }).time(at), '00:07 (Berlin)')
})

test('the language follows the saved choice, then Accept-Language, then DEFAULT_LOCALE', () => {
  const localiser = new Localiser(catalogues, { locale: 'de', timeZone: 'UTC' })
  assert.equal(localiser.negotiate('en-GB,en;q=0.9', 'de'), 'de')
  assert.equal(localiser.negotiate('de-AT,de;q=0.9,en;q=0.5'), 'de')
  assert.equal(localiser.negotiate('fr-FR, en;q=0.5'), 'en')
  assert.equal(localiser.negotiate('fr-FR'), 'de')
  assert.equal(localiser.negotiate(undefined), 'de')
  assert.equal(localiser.negotiate('*'), 'de')
})

test('plural rules follow the language', () => {
  const localiser = new Localiser(catalogues, { locale: 'en', timeZone: 'UTC' })
  assert.equal(localiser.for({ locale: 'en' }).t('common.days_left', { count: 1 }), '1 day left')
  assert.equal(localiser.for({ locale: 'en' }).t('common.days_left', { count: 3 }), '3 days left')
  assert.equal(localiser.for({ locale: 'de' }).t('common.days_left', { count: 1 }), 'noch 1 Tag')
  assert.equal(localiser.for({ locale: 'de' }).t('common.days_left', { count: 3 }), 'noch 3 Tage')
})

test('counts, numbers, ordinals, dates and times in messages follow the reader\'s language and zone, the same on every call', () => {
  const source = '{count, plural, one {# code} other {# codes}} left, until {until, time, short} on {until, date, medium} ({until, date, short}); ' +
    '{total, number} in all, {share, number, percent}; the {place, selectordinal, one {#st} two {#nd} few {#rd} other {#th}} time'
  const localiser = new Localiser({ en: { 'x.mixed': source }, de: { 'x.mixed': source } }, { locale: 'en', timeZone: 'UTC' })
  const until = new Date('2026-12-03T23:07:00Z')
  const values = (count: number, place: number) => ({ count, until, total: 12345.5, share: 0.25, place })
  const expected = {
    en: ['1 code left, until 00:07 on 4 Dec 2026 (04/12/26); 12,345.5 in all, 25%; the 2nd time', '3 codes left, until 00:07 on 4 Dec 2026 (04/12/26); 12,345.5 in all, 25%; the 3rd time'],
    de: ['1 code left, until 00:07 on 4. Dez. 2026 (4.12.26); 12.345,5 in all, 25\u00a0%; the 2th time', '3 codes left, until 00:07 on 4. Dez. 2026 (4.12.26); 12.345,5 in all, 25\u00a0%; the 3th time']
  }
  for (const locale of ['en', 'de'] as const) {
    const berlin = localiser.for({ locale, timeZone: 'Europe/Berlin' })
    for (let call = 0; call < 3; call++) {
      assert.equal(berlin.t('x.mixed', values(1, 2)), expected[locale][0], `${locale}, call ${call + 1}`)
      assert.equal(berlin.t('x.mixed', values(3, 3)), expected[locale][1], `${locale}, call ${call + 1}`)
    }
  }
  // The same message for a reader in another zone: its own times, not the first reader's.
  assert.match(localiser.for({ locale: 'en', timeZone: 'America/New_York' }).t('x.mixed', values(1, 1)), /until 18:07 on 3 Dec 2026 \(03\/12\/26\).*the 1st time/)
})

test('every message without arguments reads exactly as ICU MessageFormat writes it, in every language', () => {
  const localiser = new Localiser(catalogues, { locale: 'en', timeZone: 'UTC' })
  for (const locale of LOCALES) {
    const translator = localiser.for({ locale })
    for (const [key, message] of Object.entries(catalogues[locale])) {
      if (argumentsOf(message).length > 0) continue
      const expected = new IntlMessageFormat(message, locale).format() as string
      assert.equal(translator.t(key), expected, `${locale} ${key}`)
      // As HTML, characters beyond Latin-1 come as references (domain/i18n.ts escapeHtml says why).
      assert.equal(translator.html(key), expected.replace(/[\ud800-\udbff][\udc00-\udfff]|[^\x00-\xff]/g, (c) => `&#${c.codePointAt(0)!};`), `${locale} ${key} as HTML`)
    }
  }
  // Quoting is ICU syntax too: a doubled apostrophe is one, whatever the message's other characters.
  const quoted = new Localiser({ en: { 'x.quoted': "It''s done" }, de: { 'x.quoted': "It''s done" } }, { locale: 'en', timeZone: 'UTC' })
  assert.equal(quoted.for().t('x.quoted'), "It's done")
})

test('values in HTML messages are escaped; only the catalogue\'s own tags become markup', () => {
  const localiser = new Localiser(catalogues, { locale: 'en', timeZone: 'UTC' })
  const html = localiser.for().html('common.countdown_days', { deadline: '<script>alert(1)</script>', daysLeft: '"x"' })
  assert.match(html, /<strong>&lt;script&gt;alert\(1\)&lt;\/script&gt;<\/strong>/)
  assert.match(html, /<strong>&quot;x&quot;<\/strong>/)
})

test('a refusal whose message lacks a value falls back to the error\'s own words, never the message source or key', () => {
  const problems: string[] = []
  const localiser = new Localiser({ en: { 'errors.x': 'Wait until {until}.' }, de: { 'errors.x': 'Warten Sie bis {until}.' } }, { locale: 'en', timeZone: 'UTC' }, (m) => problems.push(m))
  const de = localiser.for({ locale: 'de' })
  assert.equal(de.error({ code: 'x', message: 'Wait a little.', details: {} }), 'Wait a little.')
  assert.equal(de.error({ code: 'x', message: 'Wait a little.', details: { until: '10:00' } }), 'Warten Sie bis 10:00.')
  assert.equal(de.error({ code: 'unknown', message: 'Plain words.' }), 'Plain words.')
  assert.equal(problems.length, 1, 'the missing value is reported once')
})
