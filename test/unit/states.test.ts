import { test } from 'node:test'
import assert from 'node:assert/strict'
import { deriveState, type StateFacts } from '../../server/domain/states.ts'

const now = new Date('2026-12-01T00:00:00Z')
const past = new Date('2026-11-01T00:00:00Z')
const future = new Date('2027-01-01T00:00:00Z')
const base: StateFacts = { exemption: null, phishingResistant: false, deadline: future, enrolled: false, enforced: false, failed: null, retrying: null, driftFlagged: false, armed: true }

const CASES: Array<[string, Partial<StateFacts>, string, string | null]> = [
  ['no campaign targets the user', { deadline: null }, 'not_targeted', null],
  ['grace period running without a method: enforce once the deadline passes', {}, 'pending', 'enforce'],
  ['grace period running with a method: enforce once the deadline passes', { enrolled: true }, 'enrolled', 'enforce'],
  ['grace period running in a disarmed campaign', { armed: false }, 'pending', null],
  ['deadline passed, no method, armed', { deadline: past }, 'overdue', 'enforce'],
  ['deadline passed, with a method, armed', { deadline: past, enrolled: true }, 'enrolled', 'enforce'],
  ['deadline passed but the campaign is disarmed: nothing flips', { deadline: past, armed: false }, 'overdue', null],
  ['switch flipped', { deadline: past, enforced: true, enrolled: true }, 'enforced', null],
  ['drift found and the policy only flags it: attention, nothing re-applied', { deadline: past, driftFlagged: true }, 'attention', null],
  ['enforcement failed for good: nothing more is planned', { deadline: past, failed: { action: 'enforce', lastError: 'access_denied: not allowed' } }, 'attention', null],
  ['a failure from before the campaign was disarmed does not hold the user in attention', { deadline: past, armed: false, failed: { action: 'enforce', lastError: 'access_denied: not allowed' } }, 'overdue', null],
  ['an old enforce failure does not hold back a deadline still ahead', { failed: { action: 'enforce', lastError: 'access_denied: not allowed' } }, 'pending', 'enforce'],
  ['waiting to retry after an outage: still overdue, the enforcement still wanted', { deadline: past, retrying: { action: 'enforce', at: future, lastError: 'server_error: HTTP 500' } }, 'overdue', 'enforce'],
  ['lifting enforcement failed for good: attention instead of wanting it forever', { exemption: { kind: 'other', expiresAt: future }, deadline: past, enforced: true, failed: { action: 'relax', lastError: 'access_denied: not allowed' } }, 'attention', null],
  ['a failed relax does not matter once enforcement is wanted again', { deadline: past, failed: { action: 'relax', lastError: 'access_denied: not allowed' } }, 'overdue', 'enforce'],
  ['an extension moved the deadline out: relax', { enforced: true }, 'pending', 'relax'],
  ['service account exempt until later', { exemption: { kind: 'service_account', expiresAt: future }, deadline: past }, 'exempt', null],
  ['an exemption that expired no longer counts', { exemption: { kind: 'other', expiresAt: past }, deadline: past }, 'overdue', 'enforce'],
  ['exempted after being enforced: relax', { exemption: { kind: 'other', expiresAt: future }, deadline: past, enforced: true }, 'exempt', 'relax'],
  ['break-glass with a passkey', { exemption: { kind: 'break_glass', expiresAt: null }, phishingResistant: true, deadline: past }, 'exempt', null],
  ['break-glass without a passkey needs attention, never a flip', { exemption: { kind: 'break_glass', expiresAt: null }, deadline: past }, 'attention', null]
]

for (const [name, facts, state, desired] of CASES) {
  test(`state: ${name}`, () => {
    const derived = deriveState({ ...base, ...facts }, now)
    assert.equal(derived.state, state)
    assert.equal(derived.desiredEnforcement, desired)
    assert.ok(derived.reason.length > 10)
  })
}

test('a user waiting to retry says when, in words, and that nothing needs doing', () => {
  const at = new Date('2026-12-01T14:05:00Z')
  const derived = deriveState({ ...base, deadline: past, retrying: { action: 'enforce', at, lastError: 'server_error: IAM AttachUserPolicy failed on the AWS side (HTTP 500 ServiceFailure)' } }, now)
  assert.equal(derived.state, 'overdue')
  assert.match(derived.reason, /^Deadline passed without a qualifying method: making MFA mandatory\. Retrying at 14:05 UTC on 2026-12-01 — provider unavailable \(server_error: IAM AttachUserPolicy failed/)
  assert.match(derived.reason, /Nothing to do: it retries by itself\.$/)
})

const ADVICE: Array<[string, RegExp]> = [
  ['access_denied: IAM AttachUserPolicy was refused (AccessDenied): User is not authorized to perform iam:AttachUserPolicy', /grant the permission the message names/],
  ['Authorization_RequestDenied: Graph PATCH failed: 403 Authorization_RequestDenied: Insufficient privileges', /grant the permission the message names/],
  ['bad_credentials: IAM ListAttachedUserPolicies was refused (InvalidClientTokenId)', /refused the portal's credentials/],
  ['no_external_id: This user has no IAM user name on record', /run a directory sync/],
  ['process_stopped: gave up after 6 attempts that never finished', /server log/],
  ['rejected: the provider rejected this user', /Fix the cause at the provider, then press Retry/]
]

for (const [error, advice] of ADVICE) {
  test(`a permanent failure says what to do: ${error.split(':')[0]}`, () => {
    const derived = deriveState({ ...base, deadline: past, failed: { action: 'enforce', lastError: error } }, now)
    assert.equal(derived.state, 'attention')
    assert.ok(derived.reason.startsWith(`Enforcement failed: ${error}. What to do: `), derived.reason)
    assert.match(derived.reason, advice)
  })
}
