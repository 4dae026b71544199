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
