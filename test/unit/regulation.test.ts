import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Regulator, type ThrottleState, type ThrottleStore } from '../../server/domain/regulation.ts'
import { FakeClock } from '../helpers/app.ts'

class MemoryThrottles implements ThrottleStore {
  rows = new Map<string, ThrottleState>()
  private queue: Promise<unknown> = Promise.resolve()
  async read (key: string) { return this.rows.get(key) }
  async write (key: string, state: ThrottleState) { this.rows.set(key, { ...state }) }
  async clear (key: string) { this.rows.delete(key) }
  /** One at a time, like the database's transactions: each waits for the one before. */
  async atomically<T> (_keys: readonly string[], fn: () => Promise<T>): Promise<T> {
    const turn = this.queue.then(fn)
    this.queue = turn.catch(() => {})
    return await turn
  }
}

const policy = { maxFailures: 5, windowMs: 60_000, lockoutMs: 15 * 60_000 }

test('the fifth failure within the window locks the key for the lockout period', async () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 1; i <= 4; i++) assert.equal((await regulator.fail('k', policy)).locked, false, `failure ${i}`)
  const fifth = await regulator.fail('k', policy)
  assert.equal(fifth.locked, true)
  assert.equal(fifth.justLocked, true)
  assert.equal((await regulator.check('k')).locked, true)
  clock.advance(15 * 60_000 - 1)
  assert.equal((await regulator.check('k')).locked, true)
  clock.advance(1)
  assert.equal((await regulator.check('k')).locked, false)
})

test('failures spread wider than the window never lock', async () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 20; i++) {
    assert.equal((await regulator.fail('k', policy)).locked, false)
    clock.advance(15_000)
  }
})

test('a success clears the count; other keys are not affected', async () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 4; i++) await regulator.fail('a', policy)
  await regulator.reset('a')
  for (let i = 0; i < 4; i++) assert.equal((await regulator.fail('a', policy)).locked, false)
  assert.equal((await regulator.check('b')).locked, false)
})

test('after a lock expires the count starts again from one', async () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 5; i++) await regulator.fail('k', policy)
  clock.advance(15 * 60_000)
  assert.equal((await regulator.fail('k', policy)).locked, false)
})

const one = (key: string) => [{ key, policy }]

test('claims count attempts before they are checked: only the first five of many at once are granted', async () => {
  const regulator = new Regulator(new MemoryThrottles(), new FakeClock())
  const verdicts = await Promise.all(Array.from({ length: 12 }, async () => await regulator.claim(one('k'))))
  assert.equal(verdicts.filter((v) => v.granted).length, 5)
  const fifth = verdicts[4]
  assert.ok(fifth.granted && fifth.limitReached.includes('k'), 'the fifth claim reaches the limit')
  const sixth = verdicts[5]
  assert.ok(!sixth.granted && sixth.key === 'k')
})

test('a claim over several keys is all or nothing: a locked key refuses it without counting on the others', async () => {
  const throttles = new MemoryThrottles()
  const regulator = new Regulator(throttles, new FakeClock())
  for (let i = 0; i < 5; i++) await regulator.claim(one('ip'))
  const refused = await regulator.claim([{ key: 'account', policy }, { key: 'ip', policy }])
  assert.equal(refused.granted, false)
  assert.equal(await throttles.read('account'), undefined)
})

test('a granted attempt that succeeds gives its claim back, lifting a lock only it set', async () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 4; i++) await regulator.claim(one('k'))
  const fifth = await regulator.claim(one('k'))
  assert.ok(fifth.granted)
  await regulator.release('k', fifth, { forgive: false })
  assert.equal((await regulator.check('k')).locked, false, 'the succeeding fifth attempt did not lock the key')
  const next = await regulator.claim(one('k'))
  assert.ok(next.granted && next.limitReached.includes('k'), 'the four earlier failures still count')
})

test('a success does not lift a lock that other attempts reached meanwhile, even when it forgives', async () => {
  const regulator = new Regulator(new MemoryThrottles(), new FakeClock())
  const first = await regulator.claim(one('k'))
  for (let i = 0; i < 4; i++) await regulator.claim(one('k'))
  assert.ok(first.granted)
  await regulator.release('k', first, { forgive: true })
  assert.equal((await regulator.check('k')).locked, true)
})

test('a forgiving success clears the count when no lock stands', async () => {
  const regulator = new Regulator(new MemoryThrottles(), new FakeClock())
  for (let i = 0; i < 3; i++) await regulator.claim(one('k'))
  const fourth = await regulator.claim(one('k'))
  assert.ok(fourth.granted)
  await regulator.release('k', fourth, { forgive: true })
  for (let i = 0; i < 4; i++) assert.ok((await regulator.claim(one('k'))).granted)
  const last = await regulator.claim(one('k'))
  assert.ok(last.granted && last.limitReached.includes('k'), 'counting started again from zero')
})

test('a lock reached by claims lasts the lockout period, then claims start again', async () => {
  const clock = new FakeClock()
  const regulator = new Regulator(new MemoryThrottles(), clock)
  for (let i = 0; i < 5; i++) await regulator.claim(one('k'))
  const refused = await regulator.claim(one('k'))
  assert.ok(!refused.granted)
  assert.equal(refused.until.getTime(), clock.now().getTime() + policy.lockoutMs)
  clock.advance(policy.lockoutMs)
  const again = await regulator.claim(one('k'))
  assert.ok(again.granted && again.limitReached.length === 0)
})
