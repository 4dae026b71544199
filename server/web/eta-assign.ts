/**
 * An eta plugin: the data eta passes to a layout (`{...it, body: …}`) and to an include (`{...it, ...data}`) is
 * copied with Object.assign instead of an object spread. The copy is the same; what differs is how long it lives.
 * On Node 20, V8 keeps an object made by a spread followed by more properties, and everything it refers to, alive
 * through two young-generation collections, so each page's data and its rendered text were copied into the old
 * generation and collected only by a full collection (Node 22 does not). Object.assign's copy dies young.
 * The rewrite is checked: an eta version that compiles templates differently stops the portal at its first page
 * (and the tests) rather than passing unnoticed.
 */
const REWRITES: ReadonlyArray<readonly [from: string, to: string]> = [
  ['{...it, body: __eta.res, ...__eta.layoutData, __blocks: __eta.blocks}', 'Object.assign({}, it, { body: __eta.res }, __eta.layoutData, { __blocks: __eta.blocks })'],
  ['{...it, ...(__eta_d ?? {})}', 'Object.assign({}, it, __eta_d)']
]

export const assignInsteadOfSpread = {
  processFnString (compiled: string): string {
    let rewritten = compiled
    for (const [from, to] of REWRITES) {
      if (!rewritten.includes(from)) throw new Error(`eta compiled a template without "${from}": server/web/eta-assign.ts needs updating for this eta version`)
      rewritten = rewritten.replaceAll(from, to)
    }
    return rewritten
  }
}
