import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Eta } from 'eta'
import { assignInsteadOfSpread } from '../../server/web/eta-assign.ts'

function viewsDir (): string {
  const dir = path.join(tmpdir(), `eta-assign-${process.pid}-${Math.random().toString(36).slice(2)}`)
  mkdirSync(path.join(dir, 'partials'), { recursive: true })
  writeFileSync(path.join(dir, 'layout.eta'), '<title><%= it.title %></title><main><%~ it.body %></main><footer><%= it.who %> <%= it.extra ?? "-" %></footer>')
  writeFileSync(path.join(dir, 'partials', 'item.eta'), '<li><%= it.name %> for <%= it.who %></li>')
  writeFileSync(path.join(dir, 'page.eta'), [
    "<% layout('./layout', { extra: it.note }) %>",
    '<ul><% for (const name of it.names) { %><%~ include("./partials/item", { name }) %><% } %></ul>',
    '<%~ include("./partials/item", { name: it.title, who: "someone else" }) %>'
  ].join('\n'))
  return dir
}

test('pages with a layout and includes read the same with the plugin as with eta alone: include and layout data win over the page\'s', () => {
  const views = viewsDir()
  try {
    const plain = new Eta({ views, cache: true, autoEscape: true })
    const assigned = new Eta({ views, cache: true, autoEscape: true, plugins: [assignInsteadOfSpread] })
    for (const data of [
      { title: 'Home', who: 'Ada', names: ['a', '<b>'], note: 'n' },
      { title: 'Home', who: 'Ada', names: [], note: undefined },
      { title: 'T & C', who: 'Bo', names: ['x'], note: 'late', body: 'ignored', extra: 'page-level' }
    ]) {
      const html = assigned.render('./page', data)
      assert.equal(html, plain.render('./page', data))
      assert.match(html, new RegExp(`<footer>${data.who} ${data.note ?? (data as { extra?: string }).extra ?? '-'}</footer>`))
    }
    const html = assigned.render('./page', { title: 'Home', who: 'Ada', names: ['a', '<b>'], note: 'n' })
    assert.equal(html, '<title>Home</title><main><ul><li>a for Ada</li><li>&lt;b&gt; for Ada</li></ul>\n<li>Home for someone else</li></main><footer>Ada n</footer>')
  } finally {
    rmSync(views, { recursive: true, force: true })
  }
})

test('an eta that compiles templates differently is refused at the first render, with where to look', () => {
  assert.throws(() => assignInsteadOfSpread.processFnString('let include = (t, d) => this.render(t, Object.assign({}, it, d), options)\nreturn __eta.res'),
    /eta compiled a template without ".*": server\/web\/eta-assign\.ts needs updating for this eta version/)
})
