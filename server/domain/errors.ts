/**
 * A rule said no. `code` is stable (snake_case) and mapped to an HTTP status in one table in the web layer;
 * `message` is written for the person who will read it.
 */
export class DomainError extends Error {
  constructor (
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {}
  ) {
    super(message)
    this.name = 'DomainError'
  }
}
