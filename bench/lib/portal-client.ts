import type autocannon from 'autocannon'

/**
 * How the benchmarks talk to a portal started by lib/pages-server.ts: signed in as a browser would be, and every
 * answer checked.
 */

/** A browser's cookie jar, reduced to what the bench needs: the latest value of each cookie by name. */
class CookieJar {
  private readonly cookies = new Map<string, string>()

  keep (response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const pair = header.split(';')[0]
      this.cookies.set(pair.slice(0, pair.indexOf('=')), pair)
    }
  }

  header (): string {
    return [...this.cookies.values()].join('; ')
  }
}

/**
 * Signs in through the real form, as a browser would, and returns the Cookie header a browser then sends: the
 * session cookie and the CSRF cookie set with the sign-in form (without it, every page would mint a new CSRF secret
 * and set its cookie again, which no browser asks for).
 */
export async function signIn (baseUrl: string, email: string, password: string): Promise<string> {
  const jar = new CookieJar()
  const form = await fetch(`${baseUrl}/login`)
  const html = await form.text()
  const token = /name="_csrf" value="([^"]+)"/.exec(html)?.[1]
  if (form.status !== 200 || token === undefined) throw new Error(`GET /login: status ${form.status}, no _csrf field`)
  jar.keep(form)
  const res = await fetch(`${baseUrl}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
    body: new URLSearchParams({ email, password, _csrf: token }).toString()
  })
  await res.arrayBuffer()
  if (res.status !== 303 || res.headers.getSetCookie().length === 0) {
    throw new Error(`POST /login: expected 303 with a new session cookie, got ${res.status}`)
  }
  jar.keep(res)
  const home = await fetch(`${baseUrl}/`, { headers: { cookie: jar.header() }, redirect: 'manual' })
  const body = await home.text()
  if (home.status !== 200 || !body.includes('Sign out')) {
    throw new Error(`GET / with the session cookie: status ${home.status}${home.status === 200 ? ', but not a signed-in page' : ''}`)
  }
  jar.keep(home)
  return jar.header()
}

/** Anything but 2xx means we measured a redirect or an error page, not the page: refuse the figure. */
export function checkAllOk (label: string, result: autocannon.Result): void {
  if (result.non2xx === 0 && result.errors === 0 && result.timeouts === 0 && result['2xx'] > 0) return
  const statuses = Object.entries(result.statusCodeStats).map(([code, { count }]) => `${code}×${count}`).join(', ')
  throw new Error(`${label}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ${result.timeouts} timeouts ` +
    `out of ${result.requests.sent} requests (statuses: ${statuses || 'none'}); not a valid measurement`)
}
