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
  { why: "a field's aria attributes; the helper escapes every id it writes (field-aria.ts)", shape: /^it\.fieldAria\(/ },
  { why: 'a condition choosing between text written in the template', shape: LITERAL_CHOICE }
]

/** Raw outputs that fit no shape above, each with why it is safe. */
const REVIEWED_OUTPUTS: ReadonlyArray<{ file: string, expression: string, why: string }> = [
  { file: 'layout.eta', expression: 'it.body', why: 'the page, rendered by its own template' }
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
  return undefined
}

function unexplained (file: string, text: string): string[] {
  return rawOutputs(file, text).filter((output) => whySafe(output, text) === undefined)
    .map(({ file, line, expression }) => `views/${file}:${line}: <%~ ${expression} %>`)
}

test('every value a template prints unescaped is a CSRF token, a template, a message the translator escaped, script JSON, field aria attributes or a choice between literals', () => {
  const all = templates()
  const outputs = all.flatMap(([file, text]) => rawOutputs(file, text))
  assert.ok(outputs.length > 150, `the templates' raw outputs were found (${outputs.length})`)
  assert.deepEqual(all.flatMap(([file, text]) => unexplained(file, text)), [],
    'print these with <%= %>, or, if they must be markup, make them one of the safe shapes or review them in this test')
})

test('the check flags user data, interpolating templates, helpers a template defines and a page body outside the layout', () => {
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
  assert.equal(flagged("<% const described = (field) => ` aria-describedby=\"${field}-hint\"` %><input<%~ described('name') %>>"), 1)
  assert.equal(flagged("<input<%~ it.fieldAria(it.fields, 'name', 'name-hint') %>>"), 0)
  assert.equal(flagged('<%~ it.user.email %>', 'email/notice.txt.eta'), 0)
})
