import type { EngineStore } from '../../server/domain/engine.ts'

export interface StoreTiming {
  calls: number
  ms: number
}

export interface Instruments {
  /**
   * Per store method: calls and wall time until its promise settles (calls made inside `atomically` count on their
   * own and in it). A method answering a generator (the store's `due`) is timed creating it only; its rows are read
   * later, by the caller.
   */
  timings: Map<string, StoreTiming>
  /**
   * Runs before each claim, between jobs, where a benchmark can switch phases: with a provider that answers at
   * once the workers never yield to timers, so this is the one dependable place. Answering false claims nothing,
   * so the workers finish their jobs in hand and the sweep ends.
   */
  beforeClaim?: () => boolean
}

/** The engine's store with a stopwatch on every method and a hook before each claim. */
export function instrumentedStore (store: EngineStore, instruments: Instruments): EngineStore {
  const { timings, beforeClaim } = instruments
  const record = (key: string, start: number): void => {
    const timing = timings.get(key) ?? { calls: 0, ms: 0 }
    timing.calls++
    timing.ms += performance.now() - start
    timings.set(key, timing)
  }
  return new Proxy(store, {
    get (target, key) {
      const value = Reflect.get(target, key) as unknown
      if (typeof value !== 'function' || typeof key !== 'string') return value
      return (...args: unknown[]) => {
        if (key === 'claim' && beforeClaim !== undefined && !beforeClaim()) return Promise.resolve([])
        const start = performance.now()
        let answer: unknown
        try {
          answer = Reflect.apply(value, target, args) as unknown
        } catch (err) {
          record(key, start)
          throw err
        }
        if (answer instanceof Promise) return answer.finally(() => { record(key, start) })
        record(key, start)
        return answer
      }
    }
  })
}
