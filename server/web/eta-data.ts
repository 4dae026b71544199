/**
 * An eta plugin for how a page's data reaches its layout and its partials. Eta copies the whole data object for each
 * (`{...it, body: …}` for the layout, then again in include; `{...it, ...data}` for a partial), and a page's data
 * has some thirty fields (the page's own and the common ones: translator, user, CSRF token…). On Node 20 those
 * spreads kept every copy, and all it refers to, alive into the old generation (V8 keeps an object made by a spread
 * followed by more properties through two young collections; Node 22 does not); copies made by Object.assign die
 * young, but with this many fields they are hash tables, slow to make and to read: a fifth of the home page's CPU.
 * Instead:
 * - the layout gets the page's own data object, with `body` (the layout's data, `__blocks`) added: the page has
 *   finished with it, and the layout is rendered directly rather than through a second copy in include;
 * - a partial included without data of its own gets the includer's data object itself;
 * - a partial included with data gets a copy made by Object.assign, which dies young.
 * What templates see is the same; what they may not do is write to `it`, nor, when another template includes them,
 * have a layout of their own (which would write `body` to their includer's data): tests read every template for both.
 * The rewrite is checked: an eta version that compiles templates differently stops the portal at its first page
 * (and the tests) rather than passing unnoticed.
 */
const LAYOUT_DATA = '{...it, body: __eta.res, ...__eta.layoutData, __blocks: __eta.blocks}'
// Named stores, not Object.assign: V8 turns an object with many fields that gains one by a keyed store (as
// Object.assign's are) into a hash table, and every `it.…` the layout reads would then be a lookup.
const ADD_LAYOUT_DATA = 'it.body = __eta.res; if (__eta.layoutData) Object.assign(it, __eta.layoutData); it.__blocks = __eta.blocks;'

/** Each rewrite: what eta writes and what replaces it, once for templates compiled to run synchronously and once not. */
const REWRITES: ReadonlyArray<ReadonlyArray<readonly [from: string, to: string]>> = [
  [
    [`__eta.res = include (__eta.layout, ${LAYOUT_DATA});`, `${ADD_LAYOUT_DATA} __eta.res = this.render(__eta.layout, it, options);`],
    [`__eta.res = await includeAsync (__eta.layout, ${LAYOUT_DATA});`, `${ADD_LAYOUT_DATA} __eta.res = await this.renderAsync(__eta.layout, it, options);`]
  ],
  [
    ['{...it, ...(__eta_d ?? {})}', '(__eta_d == null || __eta_d === it ? it : Object.assign({}, it, __eta_d))']
  ]
]

export const sharedTemplateData = {
  processFnString (compiled: string): string {
    let rewritten = compiled
    for (const alternatives of REWRITES) {
      const found = alternatives.find(([from]) => rewritten.includes(from))
      if (found === undefined) throw new Error(`eta compiled a template without "${alternatives[0][0]}": server/web/eta-data.ts needs updating for this eta version`)
      rewritten = rewritten.replaceAll(...found)
    }
    return rewritten
  }
}
