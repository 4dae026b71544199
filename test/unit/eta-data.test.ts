import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Eta } from 'eta'
import { sharedTemplateData } from '../../server/web/eta-data.ts'
import { templates } from '../helpers/templates.ts'

function viewsDir (): string {
  const dir = path.join(tmpdir(), `eta-data-${process.pid}-${Math.random().toString(36).slice(2)}`)
  mkdirSync(path.join(dir, 'partials'), { recursive: true })
  writeFileSync(path.join(dir, 'layout.eta'), '<title><%= it.title %></title><%~ include("./partials/nav") %><main><%~ it.body %></main><footer><%= it.who %> <%= it.extra ?? "-" %></footer>')
  writeFileSync(path.join(dir, 'partials', 'nav.eta'), '<nav><%= it.who %>: <%= it.title %><% if (it.name) { %> (<%= it.name %>)<% } %></nav>')
  writeFileSync(path.join(dir, 'partials', 'item.eta'), '<li><%= it.name %> for <%= it.who %><%~ include("./nav", { title: "inner" }) %></li>')
  writeFileSync(path.join(dir, 'page.eta'), [
    "<% layout('./layout', { extra: it.note }) %>",
    '<ul><% for (const name of it.names) { %><%~ include("./partials/item", { name }) %><% } %></ul>',
    '<%~ include("./partials/item", { name: it.title, who: "someone else" }) %>',
    '<%~ include("./partials/nav", it) %><%~ include("./partials/nav") %>',
    '<p><%= it.title %> <%= it.who %> <%= typeof it.body %></p>'
  ].join('\n'))
  return dir
}

const PAGES = [
  { title: 'Home', who: 'Ada', names: ['a', '<b>'], note: 'n' },
  { title: 'Home', who: 'Ada', names: [], note: undefined },
  { title: 'T & C', who: 'Bo', names: ['x'], note: 'late', body: 'the page\'s own', extra: 'page-level', name: 'top' }
]

test('pages with a layout and partials read the same as with eta alone: partial and layout data win over the page\'s, nested partials see their includer\'s', async () => {
  const views = viewsDir()
  try {
    const plain = new Eta({ views, cache: true, autoEscape: true })
    const shared = new Eta({ views, cache: true, autoEscape: true, plugins: [sharedTemplateData] })
    for (const page of PAGES) {
      const html = shared.render('./page', structuredClone(page))
      assert.equal(html, plain.render('./page', structuredClone(page)))
      assert.equal(await shared.renderAsync('./page', structuredClone(page)), html)
      assert.match(html, new RegExp(`<footer>${page.who} ${page.note ?? '-'}</footer>`))
    }
    assert.equal(shared.render('./page', { title: 'Home', who: 'Ada', names: ['<b>'], note: 'n' }),
      '<title>Home</title><nav>Ada: Home</nav><main><ul><li>&lt;b&gt; for Ada<nav>Ada: inner (&lt;b&gt;)</nav></li></ul>\n' +
      '<li>Home for someone else<nav>someone else: inner (Home)</nav></li><nav>Ada: Home</nav><nav>Ada: Home</nav>' +
      '<p>Home Ada undefined</p></main><footer>Ada n</footer>')
  } finally {
    rmSync(views, { recursive: true, force: true })
  }
})

test('an eta that compiles templates differently is refused at the first render, with where to look', () => {
  assert.throws(() => sharedTemplateData.processFnString('let include = (t, d) => this.render(t, Object.assign({}, it, d), options)\nreturn __eta.res'),
    /eta compiled a template without ".*": server\/web\/eta-data\.ts needs updating for this eta version/)
})

test('no template writes to its data: partials and layouts share their includer\'s (eta-data.ts)', () => {
  const writes = /\bit(?:\.[A-Za-z_$][\w$]*|\[[^\]]*\])+\s*(?:[-+*/%&|^]?=(?!=)|\+\+|--)|\bdelete\s+it\b|Object\.(?:assign|defineProperty|defineProperties|setPrototypeOf)\(\s*it\b/
  const all = templates()
  assert.ok(all.length > 30, `the portal's templates were found (${all.length})`)
  for (const [name, text] of all) assert.doesNotMatch(text, writes, `views/${name} writes to its data`)
  // The check itself sees a write.
  for (const written of ['<% it.title = "x" %>', '<% it.user.name += 1 %>', "<% it['a'] = 2 %>", '<% delete it.flash %>', '<% Object.assign(it, {}) %>']) {
    assert.match(written, writes)
  }
  assert.doesNotMatch('<% if (it.a === it.b) { %><%= it.x == null %>', writes)
})

test('no template that another includes has a layout of its own: it may share its includer\'s data, which the layout step writes to', () => {
  const all = new Map(templates())
  const included = new Set<string>()
  for (const [name, text] of all) {
    for (const [, target] of text.matchAll(/include\(\s*['"]([^'"]+)['"]/g)) {
      const file = path.normalize(path.join(path.dirname(name), target.endsWith('.eta') ? target : `${target}.eta`))
      assert.ok(all.has(file), `views/${name} includes ${target}, which exists`)
      included.add(file)
    }
  }
  assert.ok(included.size >= 8, `the included templates were found (${included.size})`)
  for (const file of included) assert.doesNotMatch(all.get(file)!, /\blayout\(/, `views/${file} is included by another template and calls layout()`)
})
