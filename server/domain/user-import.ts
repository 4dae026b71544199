import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js'
import { isEmail, normaliseEmail, type DirectoryUser } from './users.ts'

export const IMPORT_COLUMNS = ['email', 'display_name', 'phone', 'groups', 'privileged'] as const

export interface ImportProblem {
  line: number
  reason: string
}

export interface ImportPlan {
  rows: DirectoryUser[]
  problems: ImportProblem[]
}

const TRUE = ['true', 'yes', 'y', '1']
const FALSE = ['false', 'no', 'n', '0', '']

/**
 * Validates every row of an import before anything is written. `records` are the CSV rows after the header,
 * each with its 1-based line number in the file.
 */
export function planImport (header: string[], records: Array<{ line: number, fields: string[] }>, defaultRegion: CountryCode): ImportPlan {
  const normalisedHeader = header.map((h) => h.trim().toLowerCase())
  const missing = IMPORT_COLUMNS.filter((c) => !normalisedHeader.includes(c))
  if (missing.length > 0) {
    return { rows: [], problems: [{ line: 1, reason: `the header must be ${IMPORT_COLUMNS.join(',')}; missing ${missing.join(', ')}` }] }
  }
  const index = Object.fromEntries(IMPORT_COLUMNS.map((c) => [c, normalisedHeader.indexOf(c)])) as Record<typeof IMPORT_COLUMNS[number], number>
  const rows: DirectoryUser[] = []
  const problems: ImportProblem[] = []
  const seen = new Map<string, number>()

  for (const { line, fields } of records) {
    const get = (column: typeof IMPORT_COLUMNS[number]): string => (fields[index[column]] ?? '').trim()
    const reasons: string[] = []
    const email = normaliseEmail(get('email'))
    if (email === '') reasons.push('email is empty')
    else if (!isEmail(email)) reasons.push(`"${get('email')}" is not an email address`)
    else if (seen.has(email)) reasons.push(`${email} already appears on line ${seen.get(email)}`)
    const displayName = get('display_name')
    if (displayName === '') reasons.push('display_name is empty')
    else if (/[\u0000-\u001f\u007f]/.test(displayName)) reasons.push('display_name contains a line break or control character')
    let phone: string | null = null
    if (get('phone') !== '') {
      const parsed = parsePhoneNumberFromString(get('phone'), defaultRegion)
      if (parsed?.isValid() === true) phone = parsed.number
      else reasons.push(`"${get('phone')}" is not a valid phone number`)
    }
    const groups = get('groups').split(/[;|]/).map((g) => g.trim()).filter((g) => g !== '')
    const privilegedText = get('privileged').toLowerCase()
    if (!TRUE.includes(privilegedText) && !FALSE.includes(privilegedText)) {
      reasons.push(`privileged must be true or false, not "${get('privileged')}"`)
    }
    if (reasons.length > 0) {
      problems.push({ line, reason: reasons.join('; ') })
      continue
    }
    seen.set(email, line)
    rows.push({ email, displayName, phone, groups: [...new Set(groups)], privileged: TRUE.includes(privilegedText) })
  }
  return { rows, problems }
}

/**
 * The first line (1-based) whose bytes are not UTF-8, or undefined when the whole file is. A newline byte never
 * occurs inside a UTF-8 character, so each line can be judged on its own. Spreadsheets that save "CSV" in Latin-1
 * or Windows-1252 would otherwise turn "René" into "Ren\ufffd" without a word.
 */
export function firstLineNotUtf8 (bytes: Uint8Array): number | undefined {
  const decoder = new TextDecoder('utf-8', { fatal: true })
  let line = 1
  let start = 0
  while (start <= bytes.length) {
    const newline = bytes.indexOf(0x0a, start)
    const end = newline === -1 ? bytes.length : newline
    try {
      decoder.decode(bytes.subarray(start, end))
    } catch {
      // TextDecoder's only complaint in fatal mode: the bytes are not UTF-8.
      return line
    }
    if (newline === -1) return undefined
    line++
    start = newline + 1
  }
  return undefined
}

/**
 * The line on which a quoted field opens that is never closed, or undefined when every quote closes. Quoting as in
 * RFC 4180 (and csv-parse's defaults): a field that starts with `"` runs to the next lone `"`, and `""` inside it is a
 * quote. csv-parse itself reports such a file where it gave up, at its end, which points the reader to the wrong line.
 */
export function unclosedQuoteLine (text: string): number | undefined {
  let line = 1
  let fieldStart = true
  let openedOn: number | undefined
  for (let i = text.startsWith('\ufeff') ? 1 : 0; i < text.length; i++) {
    const char = text[i]
    if (openedOn !== undefined) {
      if (char === '\n') line++
      else if (char === '"' && text[i + 1] === '"') i++
      else if (char === '"') openedOn = undefined
      continue
    }
    if (char === '\n') line++
    if (char === '"' && fieldStart) openedOn = line
    fieldStart = char === ',' || char === '\n' || (char === '\r' && fieldStart)
  }
  return openedOn
}
