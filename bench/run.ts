import { readdirSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import path from 'node:path'

/**
 * `npm run bench -- <name> [options]` runs bench/<name>.ts. Each benchmark exports `main(args)`, writes its
 * progress to stderr and prints one JSON line to stdout at the end.
 */
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))

function available (): string[] {
  return readdirSync(BENCH_DIR)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts') && file !== 'run.ts')
    .map((file) => file.slice(0, -'.ts'.length))
    .sort()
}

const [name, ...args] = process.argv.slice(2)
const names = available()
if (name === undefined || !names.includes(name)) {
  process.stderr.write(`${name === undefined ? 'no benchmark given' : `unknown benchmark "${name}"`}\n`)
  process.stderr.write(`usage: npm run bench -- <name> [options]\navailable: ${names.join(', ')}\n`)
  process.exit(2)
}

const bench = await import(pathToFileURL(path.join(BENCH_DIR, `${name}.ts`)).href) as { main(args: string[]): Promise<void> }
try {
  await bench.main(args)
} catch (err) {
  process.stderr.write(`bench ${name} failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exitCode = 1
}
