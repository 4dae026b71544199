import { GenerateCredentialReportCommand, GetCredentialReportCommand } from '@aws-sdk/client-iam'
import { parse } from 'csv-parse/sync'
import type { Clock } from '../../domain/clock.ts'
import { ProviderError } from '../../domain/provider.ts'
import type { IamCalls } from './client.ts'
import { hasCode, malformed } from './errors.ts'

/** One user's line of the IAM credential report, as the CIS 1.10 evidence export needs it. */
export interface CredentialReportRow {
  user: string
  arn: string
  /** null for the root account (`not_supported`). */
  passwordEnabled: boolean | null
  mfaActive: boolean
  /** As IAM wrote it, e.g. 2014-09-01T22:28:48+00:00. */
  userCreationTime: string
  isRoot: boolean
}

export interface CredentialReport {
  generatedAt: Date
  rows: CredentialReportRow[]
}

export const ROOT_USER = '<root_account>'
const NEEDED = ['user', 'arn', 'user_creation_time', 'password_enabled', 'mfa_active'] as const

/**
 * Reads the report's CSV by column name (AWS documents the 22 columns, but naming them keeps us right if they move
 * or grow). Throws a non-retryable ProviderError when a needed column is missing.
 */
export function parseCredentialReport (csv: string): CredentialReportRow[] {
  let records: Array<Record<string, string>>
  try {
    records = parse(csv, { columns: true, skip_empty_lines: true, trim: true }) as Array<Record<string, string>>
  } catch (err) {
    throw new ProviderError(`IAM credential report is not valid CSV (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`, false, null, 'malformed_response')
  }
  const header = records.length === 0 ? parseHeader(csv) : Object.keys(records[0])
  const missing = NEEDED.filter((column) => !header.includes(column))
  if (missing.length > 0) throw malformed('GetCredentialReport', `column ${missing.join(', ')} in the credential report`)
  return records.map((r) => ({
    user: r.user,
    arn: r.arn,
    passwordEnabled: r.password_enabled === 'true' ? true : r.password_enabled === 'false' ? false : null,
    mfaActive: r.mfa_active === 'true',
    userCreationTime: r.user_creation_time,
    isRoot: r.user === ROOT_USER
  }))
}

function parseHeader (csv: string): string[] {
  return (csv.split('\n', 1)[0] ?? '').split(',').map((c) => c.trim())
}

export interface ReportPolling {
  /** Pause between GenerateCredentialReport polls. */
  intervalMs: number
  /** Give up (retryable) when the report is not ready in this long. */
  timeoutMs: number
}

/**
 * The credential report's lifecycle (contracts §2.2): GenerateCredentialReport until it says COMPLETE (IAM reuses
 * a report younger than four hours), then GetCredentialReport; a report that expired or vanished in between is
 * generated again. Polling waits through the injected sleep.
 */
export class CredentialReports {
  constructor (
    private readonly iam: IamCalls,
    private readonly clock: Clock,
    private readonly sleep: (ms: number) => Promise<void>,
    private readonly polling: ReportPolling = { intervalMs: 2_000, timeoutMs: 120_000 }
  ) {}

  async fetch (): Promise<CredentialReport> {
    // The timeout is counted in pauses, not read off the clock: the pauses are what pass the time, so an
    // injected clock that stands still (tests, a frozen clock) cannot make the poll go on for ever.
    const pauses = Math.max(1, Math.ceil(this.polling.timeoutMs / this.polling.intervalMs))
    for (let paused = 0; ; paused++) {
      const generated = await this.iam.run('GenerateCredentialReport', (c) => c.send(new GenerateCredentialReportCommand({})))
      if (generated.State === undefined) throw malformed('GenerateCredentialReport', 'State')
      if (generated.State === 'COMPLETE') {
        const report = await this.download()
        if (report !== null) return report
      }
      if (paused >= pauses) {
        throw new ProviderError(`IAM credential report was not ready after ${Math.round(this.polling.timeoutMs / 1000)} s`, true, null, 'timeout')
      }
      await this.sleep(this.polling.intervalMs)
    }
  }

  /** The report, or null when IAM says it is still being made, expired or absent (generate again). */
  private async download (): Promise<CredentialReport | null> {
    try {
      const out = await this.iam.run('GetCredentialReport', (c) => c.send(new GetCredentialReportCommand({})))
      if (out.Content === undefined) throw malformed('GetCredentialReport', 'Content')
      // The SDK has already undone the base64: Content is the CSV's bytes.
      const csv = new TextDecoder('utf-8', { fatal: false }).decode(out.Content)
      return { generatedAt: out.GeneratedTime ?? this.clock.now(), rows: parseCredentialReport(csv) }
    } catch (err) {
      if (hasCode(err, 'report_in_progress') || hasCode(err, 'report_expired') || hasCode(err, 'report_missing')) return null
      throw err
    }
  }
}
