/**
 * Where to send someone after sign-in or step-up: a `next` value from a query string or a form, reduced to a
 * path on this portal, or "/" when it is anything else. One rule for every place that redirects to it (sign-in,
 * step-up, passkey sign-in, the Microsoft callback, held console actions; static/js/passkey.js mirrors it).
 *
 * - Resolved as a browser resolves it (`new URL(next, base)`), so tricks that browsers undo — a tab or a newline
 *   inside "//" (`/\t/evil.example`), a backslash (`/\evil.example`), dot segments (`/.//evil.example`) — are
 *   judged by where they really lead, and anything that leads off the portal's origin is refused.
 * - Control characters and anything outside printable ASCII (CR/LF, NUL, tab, right-to-left marks, emoji) are
 *   refused outright: such a value is never a path this portal wrote, and a Location header cannot carry it.
 * - The answer is re-serialized from the parsed URL (path, query, fragment, percent-encoded), never the input.
 */
export function safeNext (next: string | undefined): string {
  if (next === undefined || next === '' || /[^\x20-\x7e]/.test(next)) return '/'
  let url: URL
  try {
    url = new URL(next, PORTAL)
  } catch {
    return '/'
  }
  if (url.origin !== PORTAL.origin) return '/'
  const path = url.pathname + url.search + url.hash
  // "/.//evil.example" resolves to the path "//evil.example", which a browser would read as another host.
  return path.startsWith('//') ? '/' : path
}

// The base `next` is resolved against. Only paths come out, so any fixed origin gives the same answers as the
// portal's PUBLIC_URL for every relative value; a reserved name (RFC 2606) means no absolute URL can match it by
// accident, so even a link to the portal's own full address is sent to "/" rather than trusted.
const PORTAL = new URL('http://portal.invalid/')
