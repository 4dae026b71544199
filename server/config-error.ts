/**
 * One bad variable: the process prints `message` as a single line and exits 1. In a module of its own so the
 * provider settings (providers/entra/config.ts, providers/aws/config.ts), which server/config.ts reads, can
 * throw it without an import cycle.
 */
export class ConfigError extends Error {
  constructor (readonly variable: string, expected: string) {
    super(`${variable}: ${expected}`)
    this.name = 'ConfigError'
  }
}
