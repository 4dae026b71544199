import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Regulator, type ThrottleState, type ThrottleStore } from '../../server/domain/regulation.ts'
import { FakeClock } from '../helpers/app.ts'

class MemoryThrottles implements ThrottleStore {
  rows = new Map<string, ThrottleState>()
  read (key: string) { return this.rows.get(key) }
  write (key: string, state: ThrottleState) { this.rows.set(key, { ...state }) }
  clear (key: string) { this.rows.delete(key) }
  atomically<T> (fn: () => T): T { return fn() }
}

const policy = { maxFailures: 5, windowMs: 60_000, lockoutMs: 15 * 60_000 }

test('the fifth failure within the window locks the key for the lockout period', () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 1; i <= 4; i++) assert.equal(regulator.fail('k', policy).locked, false, `failure ${i}`)
  const fifth = regulator.fail('k', policy)
  assert.equal(fifth.locked, true)
  assert.equal(fifth.justLocked, true)
  assert.equal(regulator.check('k').locked, true)
  clock.advance(15 * 60_000 - 1)
  assert.equal(regulator.check('k').locked, true)
  clock.advance(1)
  assert.equal(regulator.check('k').locked, false)
})

test('failures spread wider than the window never lock', () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 20; i++) {
    assert.equal(regulator.fail('k', policy).locked, false)
    clock.advance(15_000)
  }
})

test('a success clears the count; other keys are not affected', () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 4; i++) regulator.fail('a', policy)
  regulator.reset('a')
  for (let i = 0; i < 4; i++) assert.equal(regulator.fail('a', policy).locked, false)
  assert.equal(regulator.check('b').locked, false)
})

test('after a lock expires the count starts again from one', () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 5; i++) regulator.fail('k', policy)
  clock.advance(15 * 60_000)
  assert.equal(regulator.fail('k', policy).locked, false)
})

const one = (key: string) => [{ key, policy }]

test('claims count attempts before they are checked: only the first five of many at once are granted', () => {
  const regulator = new Regulator(new MemoryThrottles(), new FakeClock())
  const verdicts = Array.from({ length: 12 }, () => regulator.claim(one('k')))
  assert.equal(verdicts.filter((v) => v.granted).length, 5)
  const fifth = verdicts[4]
  assert.ok(fifth.granted && fifth.limitReached.includes('k'), 'the fifth claim reaches the limit')
  const sixth = verdicts[5]
  assert.ok(!sixth.granted && sixth.key === 'k')
})

test('a claim over several keys is all or nothing: a locked key refuses it without counting on the others', () => {
  const throttles = new MemoryThrottles()
  const regulator = new Regulator(throttles, new FakeClock())
  for (let i = 0; i < 5; i++) regulator.claim(one('ip'))
  const refused = regulator.claim([{ key: 'account', policy }, { key: 'ip', policy }])
  assert.equal(refused.granted, false)
  assert.equal(throttles.read('account'), undefined)
})

test('a granted attempt that succeeds gives its claim back, lifting a lock only it set', () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 4; i++) regulator.claim(one('k'))
  const fifth = regulator.claim(one('k'))
  assert.ok(fifth.granted)
  regulator.release('k', fifth, { forgive: false })
  assert.equal(regulator.check('k').locked, false, 'the succeeding fifth attempt did not lock the key')
  const next = regulator.claim(one('k'))
  assert.ok(next.granted && next.limitReached.includes('k'), 'the four earlier failures still count')
})

test('a success does not lift a lock that other attempts reached meanwhile, even when it forgives', () => {
  const regulator = new Regulator(new MemoryThrottles(), new FakeClock())
  const first = regulator.claim(one('k'))
  for (let i = 0; i < 4; i++) regulator.claim(one('k'))
  assert.ok(first.granted)
  regulator.release('k', first, { forgive: true })
  assert.equal(regulator.check('k').locked, true)
})

test('a forgiving success clears the count when no lock stands', () => {
  const regulator = new Regulator(new MemoryThrottles(), new FakeClock())
  for (let i = 0; i < 3; i++) regulator.claim(one('k'))
  const fourth = regulator.claim(one('k'))
  assert.ok(fourth.granted)
  regulator.release('k', fourth, { forgive: true })
  for (let i = 0; i < 4; i++) assert.ok(regulator.claim(one('k')).granted)
  const last = regulator.claim(one('k'))
  assert.ok(last.granted && last.limitReached.includes('k'), 'counting started again from zero')
})

test('a lock reached by claims lasts the lockout period, then claims start again', () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 5; i++) regulator.claim(one('k'))
  const refused = regulator.claim(one('k'))
  assert.ok(!refused.granted)
  assert.equal(refused.until.getTime(), clock.now().getTime() + policy.lockoutMs)
  clock.advance(policy.lockoutMs)
  const again = regulator.claim(one('k'))
  assert.ok(again.granted && again.limitReached.length === 0)
})
