import { IamFault, type FakeAccessKey, type IamState } from './state.ts'

/** The 22 columns, in AWS's order (contracts §2.3). */
export const CREDENTIAL_REPORT_COLUMNS = [
  'user', 'arn', 'user_creation_time', 'password_enabled', 'password_last_used', 'password_last_changed',
  'password_next_rotation', 'mfa_active', 'access_key_1_active', 'access_key_1_last_rotated',
  'access_key_1_last_used_date', 'access_key_1_last_used_region', 'access_key_1_last_used_service',
  'access_key_2_active', 'access_key_2_last_rotated', 'access_key_2_last_used_date', 'access_key_2_last_used_region',
  'access_key_2_last_used_service', 'cert_1_active', 'cert_1_last_rotated', 'cert_2_active', 'cert_2_last_rotated'
] as const

/** AWS reuses a report younger than four hours and calls an older one expired. */
export const REPORT_LIFETIME_MS = 4 * 3600_000

type Row = Record<(typeof CREDENTIAL_REPORT_COLUMNS)[number], string>

/** Report timestamps look like 2014-09-01T22:28:48+00:00. */
function reportTime (date: Date): string {
  return `${date.toISOString().slice(0, 19)}+00:00`
}

const NO_KEYS = {
  access_key_1_active: 'false', access_key_1_last_rotated: 'N/A', access_key_1_last_used_date: 'N/A', access_key_1_last_used_region: 'N/A', access_key_1_last_used_service: 'N/A',
  access_key_2_active: 'false', access_key_2_last_rotated: 'N/A', access_key_2_last_used_date: 'N/A', access_key_2_last_used_region: 'N/A', access_key_2_last_used_service: 'N/A',
  cert_1_active: 'false', cert_1_last_rotated: 'N/A', cert_2_active: 'false', cert_2_last_rotated: 'N/A'
}

/** access_key_N_* for the user's first two keys, as the report shows them (never used: N/A). */
function keyColumns (keys: readonly FakeAccessKey[]): Partial<Row> {
  const columns: Record<string, string> = {}
  keys.slice(0, 2).forEach((key, index) => {
    const n = index + 1
    columns[`access_key_${n}_active`] = String(key.status === 'Active')
    columns[`access_key_${n}_last_rotated`] = reportTime(key.createDate)
    columns[`access_key_${n}_last_used_date`] = key.lastUsed === null ? 'N/A' : reportTime(key.lastUsed.date)
    columns[`access_key_${n}_last_used_region`] = key.lastUsed?.region ?? 'N/A'
    columns[`access_key_${n}_last_used_service`] = key.lastUsed?.serviceName ?? 'N/A'
  })
  return columns as Partial<Row>
}

/**
 * The CSV a report generated now would hold: a `<root_account>` row first, then one row per user. Lines end with
 * `\n` and nothing is quoted, as AWS writes it. `columns` lets a test reorder them (the adapter must read by name).
 */
export function renderCredentialReport (state: IamState, columns: readonly string[] = CREDENTIAL_REPORT_COLUMNS): string {
  const rows: Row[] = [{
    user: '<root_account>', arn: `arn:aws:iam::${state.accountId}:root`, user_creation_time: '2014-01-01T00:00:00+00:00',
    password_enabled: 'not_supported', password_last_used: 'no_information', password_last_changed: 'not_supported',
    password_next_rotation: 'not_supported', mfa_active: 'true', ...NO_KEYS
  }]
  for (const user of state.userOrder) {
    const hasPassword = user.loginProfile !== null
    rows.push({
      user: user.userName,
      arn: user.arn,
      user_creation_time: reportTime(user.createDate),
      password_enabled: String(hasPassword),
      password_last_used: hasPassword ? 'no_information' : 'N/A',
      password_last_changed: hasPassword ? reportTime(user.loginProfile!) : 'N/A',
      password_next_rotation: 'N/A',
      mfa_active: String(user.devices.size > 0),
      ...NO_KEYS,
      ...keyColumns(user.accessKeys)
    })
  }
  return [columns.join(','), ...rows.map((row) => columns.map((c) => row[c as keyof Row]).join(','))].join('\n') + '\n'
}

/**
 * The report's life at IAM: Generate starts a job (STARTED), later calls see INPROGRESS until it is ready, then
 * COMPLETE; Get answers ReportNotPresent before any Generate, ReportInProgress while generating, ReportExpired after
 * four hours. The CSV is a snapshot taken when the report completes.
 */
export class CredentialReportLifecycle {
  private startedAt: number | null = null
  private generatedAt: Date | null = null
  private csv: string | null = null
  /** Column order for the next report (tests shuffle it). */
  columns: readonly string[] = CREDENTIAL_REPORT_COLUMNS

  constructor (private readonly state: IamState, private readonly now: () => Date, public delayMs: number) {}

  generate (): { State: string, Description: string } {
    const now = this.now().getTime()
    this.complete(now)
    if (this.generatedAt !== null && now - this.generatedAt.getTime() < REPORT_LIFETIME_MS) {
      return { State: 'COMPLETE', Description: 'Report generated' }
    }
    if (this.startedAt === null) {
      this.startedAt = now
      this.generatedAt = null
      this.csv = null
      return { State: 'STARTED', Description: 'No report exists. Starting a new report generation task' }
    }
    return { State: 'INPROGRESS', Description: 'Report generation in progress' }
  }

  get (): { Content: string, ReportFormat: string, GeneratedTime: Date } {
    const now = this.now().getTime()
    this.complete(now)
    if (this.csv === null || this.generatedAt === null) {
      if (this.startedAt !== null) throw new IamFault(404, 'ReportInProgress', 'Report is still being generated.')
      throw new IamFault(410, 'ReportNotPresent', 'Credential report not present.')
    }
    if (now - this.generatedAt.getTime() >= REPORT_LIFETIME_MS) throw new IamFault(410, 'ReportExpired', 'Credential report expired.')
    return { Content: Buffer.from(this.csv).toString('base64'), ReportFormat: 'text/csv', GeneratedTime: this.generatedAt }
  }

  /** Forgets the report, so the next Generate starts a new one (a test changed the account and wants it seen). */
  discard (): void {
    this.startedAt = null
    this.generatedAt = null
    this.csv = null
  }

  private complete (now: number): void {
    if (this.startedAt === null || now - this.startedAt < this.delayMs) return
    this.csv = renderCredentialReport(this.state, this.columns)
    this.generatedAt = new Date(now)
    this.startedAt = null
  }
}
