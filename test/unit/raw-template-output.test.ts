import { test } from 'node:test'
import assert from 'node:assert/strict'
import { templates } from '../helpers/templates.ts'

/**
 * Every value a template prints without escaping (`<%~ … %>`) is one of a few shapes known to be safe, so that a new
 * raw output is a reviewed decision and not a slip that lets a user's name or a field's text into a page as markup.
 */

/** A single-quoted string with no escapes in it: it cannot interpolate anything. */
const LITERAL = String.raw`'[^'\\]*'`
/** An expression that may call and compare but holds no string other than plain literals (so no template literal). */
const CONDITION = String.raw`(?:[^'"\x60?]|${LITERAL})+`
/** A condition choosing between text written in the template. */
const LITERAL_CHOICE = new RegExp(`^${CONDITION} \\? ${LITERAL} : ${LITERAL}$`)

/** The shapes a raw output may take, each with why it is safe. */
const SAFE_SHAPES: ReadonlyArray<{ why: string, shape: RegExp }> = [
  { why: 'a masked CSRF token, written in base64url only (masked-token.ts)', shape: /^it\.csrf\(\)$/ },
  { why: 'another template, whose own outputs are checked here', shape: /^include\('[^']+'(?:, .+)?\)$/ },
  { why: 'a message with markup from the catalogues; the translator escapes every value (catalogues.test.ts)', shape: /^it\.fmt\.html\(/ },
  { why: 'JSON for a script block, with < written as \\u003c (scriptJson)', shape: /^it\.scriptJson\(/ },
  { why: 'a condition choosing between text written in the template', shape: LITERAL_CHOICE }
]

/**
 * Helpers that templates define and print raw, as they were reviewed: attributes made of field names and hint ids
 * that the template itself passes (as literals, so never input). Changing one means reviewing it again here.
 */
const REVIEWED_HELPERS = new Set([
  "const described = (field, hint) => { const error = it.fields[field] ? `${field}-error` : null; const ids = [hint, error].filter(Boolean).join(' '); return (ids === '' ? '' : ` aria-describedby=\"${ids}\"`) + (error ? ' aria-invalid=\"true\"' : '') }",
  "const describedBy = (name) => ` aria-describedby=\"${name}-hint${it.fields[name] ? ` ${name}-error` : ''}\"${it.fields[name] ? ' aria-invalid=\"true\"' : ''}`"
])

/** Raw outputs that fit no shape above, each with why it is safe. */
const REVIEWED_OUTPUTS: ReadonlyArray<{ file: string, expression: string, why: string }> = [
  { file: 'layout.eta', expression: 'it.body', why: 'the page, rendered by its own template' },
  { file: 'admin/campaigns/_waves-fields.eta', expression: 'describedBy(name)', why: 'name runs over the four threshold fields the template lists' }
]

interface RawOutput { file: string, line: number, expression: string }

/** The raw outputs of one template, with the line each starts on and its expression with whitespace folded. */
function rawOutputs (file: string, text: string): RawOutput[] {
  return [...text.matchAll(/<%[-_]?~([\s\S]*?)[-_]?%>/g)].map((match) => ({
    file,
    line: text.slice(0, match.index).split('\n').length,
    expression: match[1].replace(/\s+/g, ' ').trim()
  }))
}

/** The template's own definition of a name (`<% const name = … %>`), whitespace folded. */
function definitionIn (text: string, name: string): string | undefined {
  const found = new RegExp(`<%[-_]?\\s*(const ${name} = [\\s\\S]*?)\\s*[-_]?%>`).exec(text)
  return found?.[1].replace(/\s+/g, ' ')
}

/** Why a raw output is safe, or undefined when nothing says it is. */
function whySafe (output: RawOutput, text: string): string | undefined {
  // A plain-text e-mail is rendered with autoEscape off (email-notifier.ts), and nothing in it is read as markup.
  if (output.file.endsWith('.txt.eta')) return 'plain text'
  const shaped = SAFE_SHAPES.find(({ shape }) => shape.test(output.expression))
  if (shaped !== undefined) return shaped.why
  const reviewed = REVIEWED_OUTPUTS.find(({ file, expression }) => file === output.file && expression === output.expression)
  if (reviewed !== undefined) return reviewed.why
  // A name the template defines as a condition choosing between literals.
  const constant = /^[A-Za-z_$][\w$]*$/.exec(output.expression)?.[0]
  if (constant !== undefined) {
    const value = definitionIn(text, constant)?.replace(`const ${constant} = `, '')
    return value !== undefined && LITERAL_CHOICE.test(value) ? `${constant}: a condition choosing between literals` : undefined
  }
  // A reviewed helper, given only literals.
  const call = new RegExp(`^([A-Za-z_$][\\w$]*)\\((?:(?:${LITERAL}|null)(?:, (?:${LITERAL}|null))*)?\\)$`).exec(output.expression)
  if (call !== null && REVIEWED_HELPERS.has(definitionIn(text, call[1]) ?? '')) return `${call[1]}: a reviewed helper, given literals`
  return undefined
}

function unexplained (file: string, text: string): string[] {
  return rawOutputs(file, text).filter((output) => whySafe(output, text) === undefined)
    .map(({ file, line, expression }) => `views/${file}:${line}: <%~ ${expression} %>`)
}

test('every value a template prints unescaped is a CSRF token, a template, a message the translator escaped, script JSON, a choice between literals or a reviewed helper', () => {
  const all = templates()
  const outputs = all.flatMap(([file, text]) => rawOutputs(file, text))
  assert.ok(outputs.length > 150, `the templates' raw outputs were found (${outputs.length})`)
  assert.deepEqual(all.flatMap(([file, text]) => unexplained(file, text)), [],
    'print these with <%= %>, or, if they must be markup, make them one of the safe shapes or review them in this test')
})

test('the check flags user data, interpolating templates, changed helpers and a page body outside the layout', () => {
  const flagged = (text: string, file = 'page.eta'): number => unexplained(file, text).length
  assert.equal(flagged('<p><%~ it.user.displayName %></p>'), 1)
  assert.equal(flagged("<input<%~ it.error ? ` aria-label=\"${it.error}\"` : '' %>>"), 1)
  assert.equal(flagged("<input<%~ it.error ? it.error : '' %>>"), 1)
  assert.equal(flagged("<input<%~ it.error ? '\\'' + it.x : '' %>>"), 1)
  assert.equal(flagged('<%~ it.body %>'), 1)
  assert.equal(flagged('<%~ it.body %>', 'layout.eta'), 0)
  assert.equal(flagged('<%~ include(it.which) %>'), 1)
  assert.equal(flagged("<% const invalid = it.error ? ` ${it.error}` : '' %><input<%~ invalid %>>"), 1)
  assert.equal(flagged("<% const invalid = it.error ? ' aria-invalid=\"true\"' : '' %><input<%~ invalid %>>"), 0)
  assert.equal(flagged("<% const described = (field) => ` ${it.values[field]}` %><input<%~ described('name') %>>"), 1)
  const reviewed = [...REVIEWED_HELPERS][0]
  assert.equal(flagged(`<% ${reviewed} %><input<%~ described('name', 'name-hint') %>>`), 0)
  assert.equal(flagged(`<% ${reviewed} %><input<%~ described(it.values.name, null) %>>`), 1)
  assert.equal(flagged('<%~ it.user.email %>', 'email/notice.txt.eta'), 0)
})
