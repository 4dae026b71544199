/**
 * A store port as it becomes once its calls may cross the network: every method returns a promise, and a method that
 * streams rows (an Iterable that is not an array) streams them asynchronously. PostgreSQL stores implement
 * `Async<Port>` while the domain's port is still synchronous; once a port is converted, they implement the port.
 */
export type Async<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R
    ? (...args: A) => AsyncResult<R>
    : T[K]
}

type AsyncResult<R> =
  [R] extends [readonly unknown[] | string | ReadonlyMap<unknown, unknown> | ReadonlySet<unknown>] ? Promise<R>
    : [R] extends [Iterable<infer E>] ? AsyncIterable<E>
      : Promise<Awaited<R>>
