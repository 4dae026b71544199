import request from 'supertest'
import type { Agent, TestApp } from './app.ts'

/** What a reader gets from one address: the status, the kind of content, where it redirects, and its lines. */
export interface PageSnapshot {
  status: number
  type: string
  location: string | null
  lines: string[]
}

interface CookieCarrier { jar: unknown }

/**
 * A client of `testApp` holding the same cookie jar as `agent`: the same browser, now talking to another instance
 * (or the same portal restarted). Cookies it is given from now on land in the shared jar.
 */
export function sameBrowser (agent: Agent, testApp: TestApp): Agent {
  const moved = request.agent(testApp.app.server)
  ;(moved as unknown as CookieCarrier).jar = (agent as unknown as CookieCarrier).jar
  return moved
}

/**
 * The page as a reader compares it, one trimmed line each: only what a page draws fresh for every request is
 * blanked out (CSRF tokens, in form fields and in the page's meta tag). Everything else, data and markup, counts.
 */
export function comparableLines (text: string): string[] {
  return text
    .replace(/(name="_csrf" value=")[^"]*"/g, '$1…"')
    .replace(/(<meta name="csrf-token" content=")[^"]*"/g, '$1…"')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
}

/** GETs `path` as `agent` and keeps what comparableLines keeps of it. */
export async function snapshot (agent: Agent, path: string): Promise<PageSnapshot> {
  const res = await agent.get(path).buffer(true)
  return {
    status: res.status,
    type: String(res.headers['content-type'] ?? ''),
    location: typeof res.headers.location === 'string' ? res.headers.location : null,
    lines: comparableLines(res.text ?? '')
  }
}

/** For each page that differs, its name and its first differing line on either side: empty when all are the same. */
export function differences (expected: Record<string, PageSnapshot>, actual: Record<string, PageSnapshot>): string[] {
  const found: string[] = []
  for (const page of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
    const a = expected[page]
    const b = actual[page]
    if (a === undefined || b === undefined) {
      found.push(`${page}: only captured on one side`)
      continue
    }
    if (a.status !== b.status || a.type !== b.type || a.location !== b.location) {
      found.push(`${page}: ${a.status} ${a.type} ${a.location ?? ''} became ${b.status} ${b.type} ${b.location ?? ''}`)
      continue
    }
    const at = a.lines.findIndex((line, i) => line !== b.lines[i])
    if (at !== -1 || a.lines.length !== b.lines.length) {
      const line = at === -1 ? a.lines.length : at
      found.push(`${page}, line ${line + 1}:\n  - ${a.lines[line] ?? '(end of page)'}\n  + ${b.lines[line] ?? '(end of page)'}`)
    }
  }
  return found
}
