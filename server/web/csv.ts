/**
 * CSV (RFC 4180) for spreadsheets. A cell that starts with = + - @ (or a tab or carriage return) is what a
 * spreadsheet would run as a formula, so it is prefixed with an apostrophe, which makes it plain text (OWASP
 * "CSV injection"). A cell is quoted when it holds a comma, a quote or a line break; quotes are doubled.
 */
export function csvCell (value: string | number | boolean | null): string {
  if (value === null) return ''
  let text = String(value)
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

export function csvLine (cells: Array<string | number | boolean | null>): string {
  return cells.map(csvCell).join(',') + '\r\n'
}
