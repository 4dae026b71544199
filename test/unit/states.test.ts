import { test } from 'node:test'
import assert from 'node:assert/strict'
import { deriveState, type StateFacts } from '../../server/domain/states.ts'

const now = new Date('2026-12-01T00:00:00Z')
const past = new Date('2026-11-01T00:00:00Z')
const future = new Date('2027-01-01T00:00:00Z')
const base: StateFacts = { exemption: null, phishingResistant: false, deadline: future, enrolled: false, enforced: false, failed: null, driftFlagged: false, armed: true }

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
  ['enforcement failed for good: nothing more is planned', { deadline: past, failed: { lastError: 'HTTP 500' } }, 'attention', null],
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
