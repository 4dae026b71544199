import { DEFAULT_ENGINE_SETTINGS, type EngineStore } from '../../server/domain/engine.ts'
import type { FakeClock } from './app.ts'

const byClock = new WeakMap<FakeClock, SweepTime>()

/**
 * The engine's waits (retry backoffs) on a fake clock, taking the time waits of workers running side by side take:
 * the clock moves only once every worker of the running sweeps waits or has stopped, to the earliest wake-up. Work
 * between waits takes no fake time, however long the database takes to answer, so a run goes the same on SQLite and
 * on PostgreSQL, under any load. (Moving the clock at each wait instead adds up the waits of workers that happen not
 * to wait at the same instant: leases lapse under a call in flight, outages end early.)
 */
export class SweepTime {
  private workers = 0
  private readonly waiting: Array<{ until: number, wake: () => void }> = []

  private constructor (private readonly clock: FakeClock) {}

  /** The one for `clock`: the sweeps of several services on one clock (instances of one portal) share it. */
  static of (clock: FakeClock): SweepTime {
    let time = byClock.get(clock)
    if (time === undefined) {
      time = new SweepTime(clock)
      byClock.set(clock, time)
    }
    return time
  }

  /**
   * The engine's store, watched (ServiceOverrides.wrapEngineStore): a sweep starts `concurrency` workers once it has
   * queued the due jobs, and a worker stops when it finds no job ready.
   */
  watch (store: EngineStore, concurrency = DEFAULT_ENGINE_SETTINGS.concurrency): EngineStore {
    const enqueueDue: EngineStore['enqueueDue'] = async (now) => {
      const queued = await store.enqueueDue(now)
      this.workers += concurrency
      return queued
    }
    const claim: EngineStore['claim'] = async (...args) => {
      const jobs = await store.claim(...args)
      if (jobs.length === 0) {
        this.workers--
        this.advance()
      }
      return jobs
    }
    return new Proxy(store, {
      get (target, key) {
        if (key === 'enqueueDue') return enqueueDue
        if (key === 'claim') return claim
        const value = Reflect.get(target, key) as unknown
        return typeof value === 'function' ? value.bind(target) : value
      }
    })
  }

  /** The engine's sleep (ServiceOverrides.sleep). */
  async sleep (ms: number): Promise<void> {
    await new Promise<void>((wake) => {
      this.waiting.push({ until: this.clock.now().getTime() + ms, wake })
      this.advance()
    })
  }

  private advance (): void {
    if (this.waiting.length === 0 || this.waiting.length < this.workers) return
    const next = Math.min(...this.waiting.map((w) => w.until))
    if (this.clock.now().getTime() < next) this.clock.set(new Date(next))
    for (const due of this.waiting.filter((w) => w.until <= next)) {
      this.waiting.splice(this.waiting.indexOf(due), 1)
      due.wake()
    }
  }
}
