import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs, promisify } from 'node:util'
import type { ServerReady } from './lib/pages-server.ts'
import { median } from './lib/figures.ts'
import { signIn } from './lib/portal-client.ts'
import { chooseBackend, createBenchDatabase, type BenchDatabase } from './lib/postgres.ts'

/**
 * The servers of `pages` (bare Fastify, the floor, the signed-in home page, the home page in a campaign), each run
 * under valgrind's callgrind, which counts the instructions the server process executes in user space per request.
 * CPU time moves with what else a shared machine is doing (bare Fastify's own figure has varied twofold in a day);
 * an instruction count hardly does: bare Fastify and the floor repeat to about 1 %, the portal's pages to a few
 * percent (garbage collections fall into one window or the next). So this bench answers "did this change make the
 * page cheaper, and by how much" and "how many times bare Fastify's work is the home page's" without the noise. It
 * leaves out the kernel (socket writes, SQLite's file locks) and time itself, which `pages` measures; instructions
 * are not all equally dear (a string copied byte by byte is cheap, a cache miss is not), so the two are read together.
 *
 *   npm run bench -- instructions [--requests 2000] [--rounds 3] [--warmup 15000] [--backend sqlite|postgresql]
 *
 * Each server gets --warmup requests first (V8 compiles the hot paths as they run, slowly under valgrind), then
 * windows of --requests requests each, one after the other on one connection, counted one window at a time
 * (callgrind_control), until the last --rounds windows agree within 3 % (at most 12 windows); each figure is the
 * median of those. So a figure is a page's steady work, minor collections included, without the major ones: a
 * window that holds one counts some 15-45 % more per request (on the home page, one every few thousand requests).
 * The servers run one after the other. Under valgrind a run takes five to ten minutes.
 * Needs valgrind (Debian's package of that name).
 */
const SERVER_SCRIPT = fileURLToPath(new URL('./lib/pages-server.ts', import.meta.url))
const execFileAsync = promisify(execFile)

type Kind = 'bare' | 'floor' | 'app' | 'campaign'

function log (message: string): void {
  process.stderr.write(`${message}\n`)
}

interface Load {
  requests: number
  rounds: number
  warmup: number
}

/** A lib/pages-server.ts process under callgrind, with instrumentation off until a window is counted. */
class CountedServer {
  private dumps = 0

  private constructor (readonly kind: Kind, private readonly child: ChildProcess, private readonly dir: string, readonly ready: ServerReady) {}

  static async start (kind: Kind, databaseUrl?: string): Promise<CountedServer> {
    const dir = mkdtempSync(path.join(tmpdir(), `mfa-bench-callgrind-${kind}-`))
    const env = { ...process.env }
    delete env.DATABASE_URL
    if (databaseUrl !== undefined) env.DATABASE_URL = databaseUrl
    const child = spawn('valgrind', [
      '--tool=callgrind',
      // V8 writes the code it runs into memory it then executes: callgrind must look for changed code.
      '--smc-check=all-non-file',
      '--instr-atstart=no',
      `--callgrind-out-file=${path.join(dir, 'callgrind.out')}`,
      `--log-file=${path.join(dir, 'valgrind.log')}`,
      process.execPath, '--import', 'tsx', SERVER_SCRIPT, kind
    ], { stdio: ['ignore', 2, 2, 'ipc'], env })
    try {
      const exited = once(child, 'exit').then(([code]) => {
        throw new Error(`the ${kind} server under valgrind exited with ${String(code)} before it was ready (${path.join(dir, 'valgrind.log')})`)
      })
      const [ready] = await Promise.race([once(child, 'message'), exited]) as [ServerReady]
      log(`${kind} server under callgrind: pid ${child.pid}, http://127.0.0.1:${ready.port}`)
      return new CountedServer(kind, child, dir, ready)
    } catch (err) {
      child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
  }

  get url (): string {
    return `http://127.0.0.1:${this.ready.port}/`
  }

  private async control (...args: string[]): Promise<void> {
    await execFileAsync('callgrind_control', [...args, String(this.child.pid)])
  }

  /** Instructions per request over `requests` requests. */
  async count (client: KeptConnection, requests: number): Promise<number> {
    await this.control('--zero')
    await this.control('--instr=on')
    await client.get(requests)
    await this.control('--instr=off')
    await this.control('--dump')
    this.dumps++
    return await this.totalOf(path.join(this.dir, `callgrind.out.${this.dumps}`)) / requests
  }

  /** The `totals:` line of a dump (instructions, the only event counted); the file can lag the command by a moment. */
  private async totalOf (file: string): Promise<number> {
    for (let waited = 0; waited < 30_000; waited += 100) {
      if (existsSync(file)) {
        const total = /^totals: (\d+)/m.exec(readFileSync(file, 'utf8'))?.[1]
        if (total !== undefined) return Number(total)
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    throw new Error(`${this.kind}: callgrind wrote no dump at ${file}`)
  }

  async stop (): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = once(this.child, 'exit')
      this.child.kill('SIGTERM')
      await exited
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * GET requests one after the other on one kept-alive connection, every answer checked. The same connection all
 * along: a new one means new socket objects, and V8 optimises parts of Node's HTTP code again for them, work that
 * would otherwise be counted as the page's.
 */
class KeptConnection {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 })

  constructor (private readonly url: string, private readonly headers: Record<string, string>, private readonly label: string) {}

  async get (requests: number): Promise<void> {
    for (let i = 0; i < requests; i++) {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        http.get(this.url, { agent: this.agent, headers: this.headers }, (res) => {
          res.resume()
          res.on('end', () => { resolve(res.statusCode) })
          res.on('error', reject)
        }).on('error', reject)
      })
      if (status !== 200) throw new Error(`${this.label}: GET ${this.url} answered ${String(status)}, not the page; not a valid measurement`)
    }
  }

  close (): void {
    this.agent.destroy()
  }
}

/** How far apart the windows a figure is taken from may be. */
const SETTLED = 0.03
/** Windows counted at most, per server, waiting for --rounds of them in a row to agree. */
const MAX_WINDOWS = 12

/**
 * Warms a server up, then counts windows until the last --rounds of them agree within SETTLED (V8 goes on optimising
 * for a while after the warm-up, longer on Node 22 than on Node 20, and a window can hold a major collection), or
 * until MAX_WINDOWS. Returns those last windows: instructions per request, one figure each.
 */
async function measure (server: CountedServer, load: Load): Promise<{ rounds: number[], windows: number }> {
  let headers: Record<string, string> = {}
  if (server.ready.email !== undefined) headers = { cookie: await signIn(server.url.slice(0, -1), server.ready.email, server.ready.password!) }
  if (server.ready.cookie !== undefined) headers = { cookie: server.ready.cookie }
  const client = new KeptConnection(server.url, headers, server.kind)
  try {
    log(`${server.kind}: ${load.warmup} requests to warm up`)
    await client.get(load.warmup)
    const windows: number[] = []
    const last = (): number[] => windows.slice(-load.rounds)
    while (windows.length < Math.max(MAX_WINDOWS, load.rounds) && (windows.length < load.rounds || spread(last()) > SETTLED)) {
      windows.push(await server.count(client, load.requests))
      log(`${server.kind} (window ${windows.length}): ${Math.round(windows[windows.length - 1]).toLocaleString('en')} instructions per request`)
    }
    return { rounds: last(), windows: windows.length }
  } finally {
    client.close()
  }
}

function spread (values: number[]): number {
  return Math.max(...values) / Math.min(...values) - 1
}

function numberOption (name: string, text: string, min: number): number {
  const value = Number(text)
  if (!Number.isInteger(value) || value < min) throw new Error(`--${name}: expected a whole number of at least ${min}, got "${text}"`)
  return value
}

function valgrindVersion (): string {
  const found = spawnSync('valgrind', ['--version'], { encoding: 'utf8' })
  if (found.error !== undefined || found.status !== 0) throw new Error('the instructions bench runs the servers under valgrind, which is not installed (apt-get install valgrind)')
  return found.stdout.trim()
}

export async function main (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      requests: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '15000' },
      backend: { type: 'string' }
    }
  })
  const load: Load = {
    requests: numberOption('requests', values.requests, 1),
    rounds: numberOption('rounds', values.rounds, 1),
    warmup: numberOption('warmup', values.warmup, 0)
  }
  const valgrind = valgrindVersion()
  const backend = chooseBackend(values.backend)
  const kinds: Kind[] = ['bare', 'floor', 'app', 'campaign']
  const databases: BenchDatabase[] = []
  const servers: CountedServer[] = []
  try {
    if (backend.name === 'postgresql') {
      for (let i = 0; i < 2; i++) databases.push(await createBenchDatabase(backend.serverUrl!))
    }
    const databaseFor = (kind: Kind): string | undefined => kind === 'app' ? databases[0]?.url : kind === 'campaign' ? databases[1]?.url : undefined
    // One server at a time, each with a core to itself. (Counts of bare Fastify and the floor did not move with a
    // neighbour's load; the portal's pages, where V8's own timers weigh more, were not tried that way.)
    const counted: Array<{ rounds: number[], windows: number }> = []
    for (const kind of kinds) {
      const server = await CountedServer.start(kind, databaseFor(kind))
      servers.push(server)
      counted.push(await measure(server, load))
      await server.stop()
    }
    const [bare, floor, home, campaignHome] = counted.map((measured) => measured.rounds)

    const figures = { bare: median(bare), floor: median(floor), home: median(home), campaignHome: median(campaignHome) }
    const widest = Math.max(...[bare, floor, home, campaignHome].map(spread))
    if (widest > SETTLED) log(`the last ${load.rounds} windows of one server still differ by ${(widest * 100).toFixed(1)} % after ${MAX_WINDOWS}: a longer --warmup or more --requests`)
    log(`instructions per request: home ${Math.round(figures.home)} (in a campaign ${Math.round(figures.campaignHome)}), ` +
      `bare Fastify ${Math.round(figures.bare)} (home is ${(figures.home / figures.bare).toFixed(2)} times that), ` +
      `the same page on the bare stack ${Math.round(figures.floor)} (home is ${(figures.home / figures.floor).toFixed(2)} times that)`)
    process.stdout.write(`${JSON.stringify({
      bench: 'instructions',
      // User-space instructions the server executes per request (medians of the windows that agreed).
      home_instructions: Math.round(figures.home),
      campaign_home_instructions: Math.round(figures.campaignHome),
      ceiling_instructions: Math.round(figures.bare),
      floor_instructions: Math.round(figures.floor),
      home_ceiling_ratio: Number((figures.home / figures.bare).toFixed(2)),
      home_floor_ratio: Number((figures.home / figures.floor).toFixed(2)),
      home_rounds: home.map(Math.round),
      campaign_home_rounds: campaignHome.map(Math.round),
      // The widest disagreement between the windows of one server a figure is taken from, in percent.
      round_spread_pct: Number((widest * 100).toFixed(2)),
      requests: load.requests,
      rounds: load.rounds,
      // Windows counted per server (bare, floor, home, campaign home) until --rounds of them agreed.
      windows: counted.map((measured) => measured.windows),
      warmup: load.warmup,
      backend: backend.name,
      node: process.version,
      valgrind
    })}\n`)
  } finally {
    await Promise.all(servers.map(async (server) => { await server.stop() }))
    for (const made of databases) await made.drop()
  }
}
