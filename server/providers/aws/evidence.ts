import type { Services } from '../../wiring.ts'
import type { AwsIamProvider } from './provider.ts'

/** One line of the CIS AWS Foundations 1.10 evidence, with the credential report's own column names and values. */
export interface CredentialReportViewRow {
  user: string
  /** 'true' or 'false', as IAM wrote it. */
  password_enabled: 'true' | 'false'
  mfa_active: 'true' | 'false'
  /** ISO 8601 as IAM wrote it, e.g. 2014-09-01T22:28:48+00:00. */
  user_creation_time: string
}

export interface CredentialReportView {
  /** When IAM generated the report (IAM reuses a report for up to four hours). */
  generatedAt: Date
  rows: CredentialReportViewRow[]
}

export const CREDENTIAL_REPORT_COLUMNS = ['user', 'password_enabled', 'mfa_active', 'user_creation_time'] as const

/**
 * The IAM credential report as CIS 1.10 evidence ("MFA is enabled for all IAM users that have a console password"),
 * for the compliance export; null when AWS is not configured. The root account's line is left out: root MFA is a
 * different control (CIS 1.5), and its password_enabled is `not_supported`. Calls IAM (GenerateCredentialReport,
 * then GetCredentialReport), so fetch it when an export is asked for, not per page view.
 */
export async function awsCredentialReportView (services: Pick<Services, 'providers'>): Promise<CredentialReportView | null> {
  const provider = services.providers.aws as (Partial<Pick<AwsIamProvider, 'credentialReportRows'>> | undefined)
  if (provider?.credentialReportRows === undefined) return null
  const report = await provider.credentialReportRows()
  return {
    generatedAt: report.generatedAt,
    rows: report.rows.filter((row) => !row.isRoot).map((row) => ({
      user: row.user,
      password_enabled: row.passwordEnabled === true ? 'true' : 'false',
      mfa_active: row.mfaActive ? 'true' : 'false',
      user_creation_time: row.userCreationTime
    }))
  }
}
