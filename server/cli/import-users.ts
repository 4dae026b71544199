import { readFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'csv-parse/sync'
import { firstLineNotUtf8, IMPORT_COLUMNS, planImport, unclosedQuoteLine, type ImportProblem } from '../domain/user-import.ts'
import type { Command } from './main.ts'

interface CsvRecord { line: number, fields: string[] }

export const importUsers: Command = {
  name: 'import-users',
  summary: 'Create or update users from a CSV file. Every row is checked first; one bad row imports nothing.',
  arguments: [{ name: 'FILE', help: `CSV with the header ${IMPORT_COLUMNS.join(',')} (groups separated by ; or |)` }],
  options: {
    'skip-invalid': { type: 'boolean', help: 'import the valid rows and report the invalid ones instead of importing nothing' }
  },
  async run ({ args: [file], options }, services, io) {
    let bytes: Buffer
    try {
      bytes = readFileSync(file)
    } catch (err) {
      io.err(`mfa-rollout: cannot read ${file}: ${(err as Error).message}`)
      return 1
    }
    const notUtf8 = firstLineNotUtf8(bytes)
    if (notUtf8 !== undefined) {
      io.err(`mfa-rollout: ${file} is not UTF-8 text: line ${notUtf8} is in another encoding (Latin-1 or Windows-1252, perhaps). Save the file as "CSV UTF-8" and import it again`)
      return 1
    }
    let records: CsvRecord[]
    try {
      records = readCsv(bytes)
    } catch (err) {
      io.err(`mfa-rollout: ${file} is not valid CSV: ${csvProblem(err, bytes)}`)
      return 1
    }
    const [header, ...rows] = records
    if (header === undefined) {
      io.err(`mfa-rollout: ${file} is empty; expected the header ${IMPORT_COLUMNS.join(',')}`)
      return 1
    }
    if (rows.length === 0) {
      io.out(`nothing to import: ${file} has no rows after the header`)
      return 0
    }

    const plan = planImport(header.fields, rows, services.config.phoneDefaultRegion)
    const headerProblem = plan.problems.find((p) => p.line <= header.line)
    if (headerProblem !== undefined || (plan.problems.length > 0 && options['skip-invalid'] !== true)) {
      report(headerProblem === undefined ? plan.problems : [{ ...headerProblem, line: header.line }], io)
      io.err('nothing imported')
      return 1
    }
    report(plan.problems, io, ' (skipped)')
    if (plan.rows.length === 0) {
      io.err('nothing imported: every row was invalid')
      return 1
    }

    const skipped = plan.problems.length
    const { created, updated } = await services.userService.importDirectoryUsers(plan.rows, { file: path.basename(file), skipped }, { id: null, label: 'cli' })
    io.out(`imported: ${created} created, ${updated} updated${skipped > 0 ? `, ${skipped} skipped` : ''}`)
    return 0
  }
}

/** csv-parse's message, except for an unclosed quote, which it places at the end of the file instead of where it opens. */
function csvProblem (err: unknown, bytes: Buffer): string {
  const line = (err as { code?: unknown }).code === 'CSV_QUOTE_NOT_CLOSED' ? unclosedQuoteLine(bytes.toString('utf8')) : undefined
  return line === undefined ? (err as Error).message : `the quote opened on line ${line} is never closed`
}

function report (problems: ImportProblem[], io: { err(line: string): void }, suffix = ''): void {
  for (const problem of problems) io.err(`line ${problem.line}: ${problem.reason}${suffix}`)
}

/**
 * Every record with the line of the file it starts on. csv-parse's own `info.lines` is the line a record ends
 * on and miscounts CRLF inside quoted fields, so the line is counted from the record's byte offset instead.
 */
function readCsv (bytes: Buffer): CsvRecord[] {
  const parsed = parse(bytes, { bom: true, skip_empty_lines: true, info: true }) as Array<{ record: string[], info: { bytes: number } }>
  const records: CsvRecord[] = []
  let offset = 0
  let line = 1
  for (const { record, info } of parsed) {
    // Blank lines before a record are skipped by the parser; step over them too.
    while (offset < info.bytes && (bytes[offset] === 0x0a || bytes[offset] === 0x0d)) {
      if (bytes[offset] === 0x0a) line++
      offset++
    }
    records.push({ line, fields: record })
    for (; offset < info.bytes; offset++) if (bytes[offset] === 0x0a) line++
  }
  return records
}
