/**
 * The map kept under `key` in `maps`, made empty the first time the key is asked for: for memories found by two or
 * three keys in turn, each a string the caller already holds, rather than by one key joined from them afresh (whose
 * hash V8 then has to work out again, its whole length, on every look-up).
 */
export function innerMap<K, K2, V> (maps: Map<K, Map<K2, V>>, key: K): Map<K2, V> {
  let inner = maps.get(key)
  if (inner === undefined) {
    inner = new Map()
    maps.set(key, inner)
  }
  return inner
}
