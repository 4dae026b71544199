import type { Clock } from './clock.ts'
import { assessMethods, holdsQualifyingMethod, type MethodPolicy, type MethodsRequired } from './methods.ts'
import { countingMethods, protectionWords } from './protection.ts'
import { USER_STATES, type UserState } from './states.ts'

/** One user's facts as stored: the inputs of a compliance row. */
export interface ComplianceFacts {
  userId: string
  email: string
  provider: string
  externalId: string | null
  privileged: boolean
  disabled: boolean
  /** Kinds of the methods held in the portal itself. */
  portalMethods: string[]
  /** Kinds the provider reports (synced). */
  providerMethods: string[]
  /** The provider's consolePassword attribute (AWS IAM); null when the provider does not say. */
  consolePassword: boolean | null
  /** Null until the engine first evaluates the user (a campaign change, a method change or a sync does). */
  state: UserState | null
  /** The effective deadline (campaign rule, new-user window, extensions), as the engine last derived it. */
  deadline: Date | null
  campaignId: string | null
  enforcedAt: Date | null
  /** Unused recovery codes held (portal accounts; absent: none). */
  recoveryCodes?: number
}

export interface ComplianceRow extends Omit<ComplianceFacts, 'campaignId'> {
  /** Portal and provider kinds together, sorted: everything the person holds. */
  methods: string[]
  /**
   * Holds a method that qualifies under the policy of the campaign behind the user's deadline, where they sign in:
   * for a directory user only methods registered at the directory count (protection.ts). Has MFA, in other words.
   */
  enrolled: boolean
  /** Also holds the second method (or recovery codes) the campaign may ask for: counts as enrolled in the rollout. */
  meetsPolicy: boolean
  /** Qualifying methods held, by kind, where the user signs in. */
  methodsHeld: number
  /** What the campaign asks for: 'one', 'two' or 'one_plus_recovery' (two at the directory for directory users). */
  methodsRequired: MethodsRequired
  /** Holds unused recovery codes (portal accounts only). */
  hasRecoveryCodes: boolean
  /** Enrolled only through text messages while the policy calls them weak. */
  weak: boolean
  /** The answer in words: "protected at the directory", "not protected at the directory", "protected in the portal", … */
  protection: string
}

/** Storage port: users in id order (keyset pages), with their methods and state, never all at once. */
export interface ComplianceStore {
  factsAfter(cursor: string | null, limit: number): Promise<ComplianceFacts[]>
  factsFor(userId: string): Promise<ComplianceFacts | undefined>
}

export interface PolicySource {
  /** The campaigns in force, each with its method policy (read once per page). */
  campaigns(): Promise<Array<MethodPolicy & { id: string }>>
  /** The policy for users no campaign targets. */
  defaultPolicy: MethodPolicy
}

export interface RuleResult {
  id: string
  title: string
  /** What is counted, in one sentence. */
  scope: string
  total: number
  compliant: number
  /** Null when no user is in scope. */
  percentage: number | null
  /** Pass only when every user in scope complies (an empty scope passes). */
  result: 'pass' | 'fail'
}

export interface ComplianceSummary {
  generatedAt: Date
  users: number
  /** Hold a qualifying method (have MFA). */
  enrolled: number
  /** Also hold what their campaign asks for (a second method, recovery codes): fewer than `enrolled` under such a policy. */
  meetsPolicy: number
  /** Hold one method where their campaign asks for a second (or recovery codes): the home page nudges them. */
  oneShort: number
  /** Users by rollout state ("unevaluated": the engine has not looked at them yet). */
  byState: Record<UserState | 'unevaluated', number>
  rules: { cisAws110: RuleResult, nonPrivilegedMfa: RuleResult }
}

export const COMPLIANCE_PAGE_MAX = 500

/** A compliance row from stored facts at `at`; the same assessment the engine uses to derive states. */
export function complianceRow (facts: ComplianceFacts, policy: MethodPolicy, at: Date): ComplianceRow {
  const { campaignId: _campaignId, recoveryCodes, ...rest } = facts
  const methods = [...new Set([...facts.portalMethods, ...facts.providerMethods])].sort()
  const assessment = assessMethods(facts.privileged, countingMethods(facts), policy, at)
  const hasMfa = holdsQualifyingMethod(assessment)
  return {
    ...rest,
    methods,
    enrolled: hasMfa,
    meetsPolicy: assessment.enrolled,
    methodsHeld: assessment.held,
    methodsRequired: policy.methodsRequired ?? 'one',
    hasRecoveryCodes: (recoveryCodes ?? 0) > 0,
    weak: assessment.weak,
    protection: protectionWords(facts.provider, hasMfa)
  }
}

/** Counts rows into the summary; one pass, constant memory. */
export class ComplianceTally {
  private users = 0
  private enrolled = 0
  private meetsPolicy = 0
  private oneShort = 0
  private readonly byState = Object.fromEntries([...USER_STATES, 'unevaluated'].map((s) => [s, 0])) as Record<UserState | 'unevaluated', number>
  private console = { total: 0, compliant: 0 }
  private nonPrivileged = { total: 0, compliant: 0 }

  add (row: ComplianceRow): void {
    this.users++
    if (row.enrolled) this.enrolled++
    if (row.meetsPolicy) this.meetsPolicy++
    else if (row.enrolled) this.oneShort++
    this.byState[row.state ?? 'unevaluated']++
    // CIS AWS Foundations 1.10 asks about MFA on the AWS console sign-in: only a device registered at AWS protects
    // it (a passkey for this portal does not), so the provider's own methods are what count here.
    if (row.consolePassword === true) {
      this.console.total++
      if (row.providerMethods.length > 0) this.console.compliant++
    }
    // Disabled accounts cannot sign in, so they are out of scope of "every user has MFA".
    if (!row.privileged && !row.disabled) {
      this.nonPrivileged.total++
      if (row.meetsPolicy) this.nonPrivileged.compliant++
    }
  }

  result (generatedAt: Date): ComplianceSummary {
    return {
      generatedAt,
      users: this.users,
      enrolled: this.enrolled,
      meetsPolicy: this.meetsPolicy,
      oneShort: this.oneShort,
      byState: { ...this.byState },
      rules: {
        cisAws110: rule('cis-aws-1.10', 'CIS AWS Foundations 1.10: MFA is enabled for all IAM users that have a console password',
          'IAM users with a console password who have an MFA device registered at AWS.', this.console),
        nonPrivilegedMfa: rule('mfa-non-privileged', 'MFA for non-privileged users',
          'Active non-privileged users who meet their campaign\'s method policy (what qualifies, and how many), where they sign in (at their directory for Entra and AWS users).', this.nonPrivileged)
      }
    }
  }
}

function rule (id: string, title: string, scope: string, counts: { total: number, compliant: number }): RuleResult {
  return {
    id,
    title,
    scope,
    ...counts,
    percentage: counts.total === 0 ? null : Math.round((counts.compliant / counts.total) * 1000) / 10,
    result: counts.compliant === counts.total ? 'pass' : 'fail'
  }
}

/**
 * The compliance export (DESIGN.md "compliance export"), shared by the API and the admin downloads: one row per
 * user, read in keyset pages by user id, and a summary against the rules auditors ask about.
 */
export class ComplianceService {
  constructor (
    private readonly store: ComplianceStore,
    private readonly policies: PolicySource,
    private readonly clock: Clock
  ) {}

  /** Up to `limit` rows after `cursor` (a user id), and the cursor of the next page (null on the last). */
  async page (cursor: string | null, limit: number): Promise<{ rows: ComplianceRow[], next: string | null }> {
    const size = Math.max(1, Math.min(limit, COMPLIANCE_PAGE_MAX))
    const policyOf = await this.policyLookup()
    const facts = await this.store.factsAfter(cursor, size)
    const now = this.clock.now()
    return {
      rows: facts.map((f) => complianceRow(f, policyOf(f.campaignId), now)),
      next: facts.length === size ? facts[facts.length - 1].userId : null
    }
  }

  /** Every row, page by page: memory stays flat however many users there are. */
  async * rows (batchSize = COMPLIANCE_PAGE_MAX): AsyncGenerator<ComplianceRow> {
    let cursor: string | null = null
    for (;;) {
      const { rows, next } = await this.page(cursor, batchSize)
      yield * rows
      if (next === null) return
      cursor = next
    }
  }

  async row (userId: string): Promise<ComplianceRow | undefined> {
    const facts = await this.store.factsFor(userId)
    return facts === undefined ? undefined : complianceRow(facts, (await this.policyLookup())(facts.campaignId), this.clock.now())
  }

  async summary (): Promise<ComplianceSummary> {
    const tally = new ComplianceTally()
    for await (const row of this.rows()) tally.add(row)
    return tally.result(this.clock.now())
  }

  /** The campaign behind the deadline decides what qualifies, as in the engine; archived or none: the default. */
  private async policyLookup (): Promise<(campaignId: string | null) => MethodPolicy> {
    const byId = new Map((await this.policies.campaigns()).map((c) => [c.id, c]))
    return (campaignId) => (campaignId === null ? undefined : byId.get(campaignId)) ?? this.policies.defaultPolicy
  }
}
