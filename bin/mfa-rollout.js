#!/usr/bin/env node
// The operator CLI runs the TypeScript sources through tsx, as the server does (there is no build step).
// Paths are resolved from this file, so it works from any working directory and through npm's bin symlink.
import { register } from 'tsx/esm/api'

register()

try {
  const { runCli } = await import(new URL('../server/cli/main.ts', import.meta.url).href)
  process.exitCode = await runCli(process.argv.slice(2))
} catch (err) {
  process.stderr.write(`mfa-rollout: unexpected error: ${err?.stack ?? err}\n`)
  process.exitCode = 1
}
