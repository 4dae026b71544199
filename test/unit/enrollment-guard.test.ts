import { test } from 'node:test'
import assert from 'node:assert/strict'
import { EnrollmentGuard, type ChangeContext } from '../../server/domain/enrollment-guard.ts'
import { DomainError } from '../../server/domain/errors.ts'

const guard = new EnrollmentGuard(['10.0.0.0/8', '127.0.0.0/8', 'fd00::/8'], 10 * 60_000)
const now = Date.parse('2026-11-25T09:00:00Z')
// A user whose directory reports no methods (a local user, or an Entra/IAM user with nothing registered there).
const portalOnly = { providerMethods: [] }
const context = (fields: Partial<ChangeContext> = {}): ChangeContext => ({ clientIp: '203.0.113.5', passSession: false, stepUpAt: null, reenrollUntil: null, now, ...fields })
const code = (fn: () => void): string | undefined => {
  try { fn() } catch (err) { if (err instanceof DomainError) return err.code; throw err }
  return undefined
}

test('trusted networks match IPv4, IPv6 and IPv4 seen through an IPv6 socket', () => {
  assert.equal(guard.isTrusted('10.1.2.3'), true)
  assert.equal(guard.isTrusted('::ffff:127.0.0.1'), true)
  assert.equal(guard.isTrusted('fd12::1'), true)
  assert.equal(guard.isTrusted('203.0.113.5'), false)
  assert.equal(guard.isTrusted('::ffff:203.0.113.5'), false)
  assert.equal(guard.isTrusted('not an ip'), false)
})

test('a first method needs a trusted network, a pass session, or an open re-enrollment window after a helpdesk reset', () => {
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 0, context())), 'untrusted_network')
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 0, context({ clientIp: '10.9.9.9' }))), undefined)
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 0, context({ passSession: true }))), undefined)
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 0, context({ reenrollUntil: now + 1 }))), undefined)
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 0, context({ reenrollUntil: now }))), 'untrusted_network', 'the window has closed')
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 1, context({ reenrollUntil: now + 1 }))), 'step_up_required', 'the window is for a first method only')
})

test('once a method exists, adding or removing needs a step-up within the last 10 minutes, even on a trusted network', () => {
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 1, context({ clientIp: '10.9.9.9' }))), 'step_up_required')
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 1, context({ stepUpAt: now - 9 * 60_000 }))), undefined)
  assert.equal(code(() => guard.assertMayAdd(portalOnly, 1, context({ stepUpAt: now - 10 * 60_000 }))), 'step_up_required')
  assert.equal(code(() => guard.assertMayRemove({ enforcedAt: null }, 2, context())), 'step_up_required')
})

test('the last method of a user whose MFA is enforced cannot be removed', () => {
  const fresh = context({ stepUpAt: now })
  assert.equal(code(() => guard.assertMayRemove({ enforcedAt: new Date(now) }, 1, fresh)), 'last_method_required')
  assert.equal(code(() => guard.assertMayRemove({ enforcedAt: new Date(now) }, 2, fresh)), undefined)
  assert.equal(code(() => guard.assertMayRemove({ enforcedAt: null }, 1, fresh)), undefined)
})

test('methods the directory reports count as existing: with one, adding any method needs a step-up, even on a trusted network or in a reset window', () => {
  const entraUser = { providerMethods: ['authenticator', 'phone'] }
  assert.equal(code(() => guard.assertMayAdd(entraUser, 0, context({ clientIp: '10.9.9.9' }))), 'step_up_required')
  assert.equal(code(() => guard.assertMayAdd(entraUser, 0, context({ reenrollUntil: now + 1 }))), 'step_up_required')
  assert.equal(code(() => guard.assertMayAdd(entraUser, 0, context({ stepUpAt: now }))), undefined)
  assert.equal(code(() => guard.assertMayAdd(entraUser, 0, context({ passSession: true }))), undefined, 'a pass exists to add a method')
})

test('replacing a method held at the directory needs a fresh step-up with an existing method; a pass or a reset window is not one', () => {
  const fresh = { stepUpAt: now - 60_000 }
  assert.equal(guard.hasProvenExistingMethod(context(fresh)), true)
  assert.equal(guard.hasProvenExistingMethod(context()), false)
  assert.equal(guard.hasProvenExistingMethod(context({ stepUpAt: now - 10 * 60_000 })), false)
  assert.equal(guard.hasProvenExistingMethod(context({ ...fresh, passSession: true })), false)
  assert.equal(guard.hasProvenExistingMethod(context({ ...fresh, reenrollUntil: now + 1 })), false)
  assert.equal(guard.hasProvenExistingMethod(context({ ...fresh, reenrollUntil: now })), true, 'a closed window no longer matters')
})
