import { test } from 'node:test'
import assert from 'node:assert/strict'
import { serialize } from 'node:v8'
import { escapeHtml, Localiser, scriptJson } from '../../server/domain/i18n.ts'
import { templates } from '../helpers/templates.ts'

/**
 * Whether V8 holds a string one byte a character: its serialisation says (a one-byte string is tagged '"', a
 * two-byte one 'c'). A page made only of such strings is written out as UTF-8 at one-byte speed.
 */
function oneByte (text: string): boolean {
  return serialize(text)[2] === 0x22
}

/** What a browser reads back from text with entities and numeric character references. */
function decoded (html: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"' }
  return html.replace(/&(#\d+|[a-z]+);/g, (entity, name: string) => name.startsWith('#') ? String.fromCodePoint(Number(name.slice(1))) : named[name])
}

test('text for a page keeps Latin-1 as it is and writes HTML\'s own characters as entities and every other character as a reference a browser reads back', () => {
  assert.equal(escapeHtml('Grüße, café & <b>"x"</b> \'y\''), 'Grüße, café &amp; &lt;b&gt;&quot;x&quot;&lt;/b&gt; &#39;y&#39;')
  assert.equal(escapeHtml('Sandbox — “quoted” 😀'), 'Sandbox &#8212; &#8220;quoted&#8221; &#128512;')
  for (const text of ['Sandbox — “quoted” 😀 & <x>', 'Zürich, 東京, Łódź', 'plain']) assert.equal(decoded(escapeHtml(text)), text)
})

test('text and messages with markup come out held one byte a character, even when what they were made from had characters beyond Latin-1', () => {
  const wide = JSON.parse('"Sandbox \\u2014 no cloud provider configured"') as string
  assert.equal(oneByte(wide), false, 'the premise: V8 holds this text two bytes a character')
  assert.equal(oneByte(escapeHtml(wide)), true)
  assert.equal(escapeHtml(wide), escapeHtml(wide), 'the same text escapes the same the second time (it is kept)')
  assert.equal(oneByte(escapeHtml(wide)), true)
  const english = { 'x.quoted': 'To send “{action}”, confirm it’s <strong>you</strong>.' }
  const t = new Localiser({ en: english, de: english }, { locale: 'en', timeZone: 'UTC' }).for()
  const html = t.html('x.quoted', { action: 'Issue a pass — now' })
  assert.equal(html, 'To send &#8220;Issue a pass &#8212; now&#8221;, confirm it&#8217;s <strong>you</strong>.')
  assert.equal(oneByte(html), true)
})

test('JSON for a page\'s data block: "<" and characters beyond Latin-1 as JSON escapes, held one byte a character, read back as the same value', () => {
  const value = { confirm: 'Touch your key — “now”', end: '</script><script>alert(1)</script>', latin: 'café' }
  const json = scriptJson(value)
  assert.ok(!json.includes('<') && !/[^\x00-\xff]/.test(json), json)
  assert.equal(oneByte(json), true)
  assert.deepEqual(JSON.parse(json), value)
})

test('no template\'s own text has a character beyond ASCII (what it outputs is escaped; its text is not), so that a page of ASCII text is sent as it is', () => {
  const found: string[] = []
  for (const [name, text] of templates()) {
    const lines = text.replace(/<%[\s\S]*?%>/g, (tag) => tag.replace(/[^\n]/g, '')).split('\n')
    lines.forEach((line, i) => { if (/[^\x00-\x7f]/.test(line)) found.push(`${name}:${i + 1}: ${line.trim()}`) })
  }
  assert.deepEqual(found, [], 'write these as entities (&middot;, &mdash;) or through a message')
})
