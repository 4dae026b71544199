import { fork, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import type { CpuReport, ServerReady } from './lib/pages-server.ts'
import { median } from './lib/figures.ts'
import { checkAllOk, signIn } from './lib/portal-client.ts'
import { chooseBackend, createBenchDatabase, type BenchDatabase } from './lib/postgres.ts'

/**
 * The signed-in home page against a bare Fastify server on the same machine, same load: the ratio says what the
 * portal's stack (helmet, session store, user lookup, CSRF token, templates, metrics) costs per request. Two more
 * requests on the portal locate that cost: /healthz (the stack with no session) and /api/v1/me (a signed-in session,
 * its user and standing, no page). A third server gives the floor under it: the same page's HTML served from a signed
 * session cookie, one SQLite read and one template, with nothing else of the portal (lib/pages-server.ts floorServer);
 * unlike bare Fastify, it keeps the server as busy as the portal does, so the two figures compare like for like.
 * Each server runs in its own process; autocannon drives them from this one. Target: ratio >= 0.30.
 *
 * Each round measures every server in turn and the medians are reported, so a busy neighbour on a shared machine
 * skews all figures alike instead of only one.
 *
 *   npm run bench -- pages [--duration 5] [--rounds 3] [--warmup 3] [--connections 50] [--backend sqlite|postgresql] [--cpu-prof DIR]
 *
 * The portal runs on a temporary SQLite file, or with DATABASE_URL set (or --backend postgresql) on PostgreSQL: a
 * database the bench creates on DATABASE_URL's server (mfa_bench_…) and drops at the end (see lib/postgres.ts). The
 * JSON line names the backend.
 *
 * --cpu-prof DIR writes a V8 CPU profile of each server process into DIR (open it in Chrome DevTools).
 */
const SERVER_SCRIPT = fileURLToPath(new URL('./lib/pages-server.ts', import.meta.url))
const TARGET_RATIO = 0.3

function log (message: string): void {
  process.stderr.write(`${message}\n`)
}

interface Server {
  child: ChildProcess
  ready: ServerReady
  url: string
}

async function startServer (kind: 'app' | 'campaign' | 'bare' | 'floor', cpuProfDir?: string, databaseUrl?: string): Promise<Server> {
  const execArgv = ['--import', 'tsx']
  // One folder per server: the main thread's profile is the file with thread id 0 in its name.
  if (cpuProfDir !== undefined) execArgv.push('--cpu-prof', `--cpu-prof-dir=${path.join(cpuProfDir, kind)}`)
  // The app's DATABASE_URL names the bench's database, or is unset on SQLite (ours names only the server).
  const env = { ...process.env }
  delete env.DATABASE_URL
  if (databaseUrl !== undefined) env.DATABASE_URL = databaseUrl
  // The child's stdout goes to our stderr: stdout carries only the result line.
  const child = fork(SERVER_SCRIPT, [kind], { execArgv, stdio: ['ignore', 2, 2, 'ipc'], env })
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`the ${kind} server exited with ${String(code)} before it was ready`) })
  const [ready] = await Promise.race([once(child, 'message'), exited]) as [ServerReady]
  log(`${kind} server: pid ${child.pid}, http://127.0.0.1:${ready.port}`)
  return { child, ready, url: `http://127.0.0.1:${ready.port}` }
}

/** CPU time the server process has used so far (per request, steadier than req/s on a busy machine) and its statements. */
async function cpuReport (server: Server): Promise<CpuReport> {
  const reply = once(server.child, 'message') as Promise<[CpuReport]>
  server.child.send('cpu')
  const [report] = await reply
  return report
}

async function stopServer (server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  const exited = once(server.child, 'exit')
  server.child.kill('SIGTERM')
  await exited
}

interface Load {
  connections: number
  duration: number
  warmup: number
  rounds: number
}

interface Target {
  title: string
  server: Server
  url: string
  headers: Record<string, string>
  results: autocannon.Result[]
  /** Server CPU time per answered request, in microseconds, one per round. */
  cpuPerRequest: number[]
  /** The kernel's part of it. */
  systemPerRequest: number[]
  /** Database statements per answered request, one per round. */
  statementsPerRequest: number[]
}

async function measure (target: Target, load: Load, duration: number, warmingUp = false): Promise<autocannon.Result> {
  const label = warmingUp ? `${target.title} (warm-up)` : `${target.title} (round ${target.results.length + 1}/${load.rounds})`
  log(`${label}: ${load.connections} connections for ${duration} s`)
  const before = await cpuReport(target.server)
  const result = await autocannon({ url: target.url, headers: target.headers, connections: load.connections, duration })
  const after = await cpuReport(target.server)
  const cpuPerRequest = (after.cpuMicros - before.cpuMicros) / result.requests.total
  const systemPerRequest = (after.systemMicros - before.systemMicros) / result.requests.total
  const statementsPerRequest = (after.statements - before.statements) / result.requests.total
  checkAllOk(label, result)
  log(`${label}: ${Math.round(result.requests.average)} req/s, latency p50 ${result.latency.p50} ms, ` +
    `p99 ${result.latency.p99} ms, ${result.requests.total} requests, ${cpuPerRequest.toFixed(1)} µs server CPU per request ` +
    `(${systemPerRequest.toFixed(1)} µs in the kernel)` +
    `${statementsPerRequest > 0 ? `, ${statementsPerRequest.toFixed(1)} database statements per request` : ''}`)
  if (!warmingUp) {
    target.results.push(result)
    target.cpuPerRequest.push(cpuPerRequest)
    target.systemPerRequest.push(systemPerRequest)
    target.statementsPerRequest.push(statementsPerRequest)
  }
  return result
}

function round (value: number, digits: number): number {
  return Number(value.toFixed(digits))
}

function numberOption (name: string, text: string, min: number): number {
  const value = Number(text)
  if (!Number.isFinite(value) || value < min) throw new Error(`--${name}: expected a number of at least ${min}, got "${text}"`)
  return value
}

export async function main (args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '3' },
      connections: { type: 'string', default: '50' },
      backend: { type: 'string' },
      'cpu-prof': { type: 'string' }
    }
  })
  const backend = chooseBackend(values.backend)
  const load: Load = {
    duration: numberOption('duration', values.duration, 1),
    rounds: Math.round(numberOption('rounds', values.rounds, 1)),
    warmup: numberOption('warmup', values.warmup, 0),
    connections: Math.round(numberOption('connections', values.connections, 1))
  }
  const cpuProfDir = values['cpu-prof'] === undefined ? undefined : path.resolve(values['cpu-prof'])

  const databases: BenchDatabase[] = []
  let servers: Server[] = []
  try {
    // On PostgreSQL, one database for each portal (on SQLite each makes its own file).
    if (backend.name === 'postgresql') {
      for (let i = 0; i < 2; i++) {
        databases.push(await createBenchDatabase(backend.serverUrl!))
        log(`PostgreSQL database ${databases[i].name} (created for this run, dropped at the end)`)
      }
    }
    const [database, campaignDatabase] = databases
    // All are started at once; if one fails, those that did start are stopped too (finally), or the run would hang.
    const started = await Promise.allSettled([
      startServer('bare', cpuProfDir), startServer('floor', cpuProfDir), startServer('app', cpuProfDir, database?.url), startServer('campaign', cpuProfDir, campaignDatabase?.url)
    ])
    servers = started.flatMap((result) => result.status === 'fulfilled' ? [result.value] : [])
    for (const result of started) if (result.status === 'rejected') throw result.reason
    const [bare, floorServer, app, campaignApp] = servers
    const cookie = await signIn(app.url, app.ready.email!, app.ready.password!)
    const campaignCookie = await signIn(campaignApp.url, campaignApp.ready.email!, campaignApp.ready.password!)
    log(`signed in as ${app.ready.email} on both portals; GET / answers the signed-in home page`)

    const target = (title: string, server: Server, route: string, headers: Record<string, string> = {}): Target =>
      ({ title, server, url: `${server.url}${route}`, headers, results: [], cpuPerRequest: [], systemPerRequest: [], statementsPerRequest: [] })
    const ceiling = target('bare fastify', bare, '/')
    const floor = target('the same page on the bare stack', floorServer, '/', { cookie: floorServer.ready.cookie! })
    const home = target('signed-in home', app, '/', { cookie })
    // The page most users see once a rollout runs: in a campaign, with a method and a saved time zone.
    const campaignHome = target('signed-in home in a campaign', campaignApp, '/', { cookie: campaignCookie })
    // Where the home page's cost sits: the portal's stack alone (a liveness check, no session), and the stack with a
    // signed-in session (the session row, the user and where they stand) answering a few fields as JSON.
    const stack = target('anonymous /healthz', app, '/healthz')
    const signedIn = target('signed-in /api/v1/me', app, '/api/v1/me', { cookie })
    if (load.warmup > 0) {
      for (const warming of [ceiling, floor, home, campaignHome, stack, signedIn]) await measure(warming, load, load.warmup, true)
    }
    // Alternating rounds: a busy neighbour slows both servers alike, and each round yields its own ratio.
    const ratios: number[] = []
    for (let i = 0; i < load.rounds; i++) {
      const c = await measure(ceiling, load, load.duration)
      const h = await measure(home, load, load.duration)
      ratios.push(h.requests.average / c.requests.average)
      await measure(floor, load, load.duration)
      await measure(campaignHome, load, load.duration)
      await measure(stack, load, load.duration)
      await measure(signedIn, load, load.duration)
    }

    const homeRps = median(home.results.map((r) => r.requests.average))
    const ceilingRps = median(ceiling.results.map((r) => r.requests.average))
    const ratio = median(ratios)
    const homeCpu = median(home.cpuPerRequest)
    const ceilingCpu = median(ceiling.cpuPerRequest)
    const floorCpu = median(floor.cpuPerRequest)
    log(`ratio ${ratio.toFixed(3)} (rounds: ${ratios.map((r) => r.toFixed(3)).join(', ')}; target >= ${TARGET_RATIO})` +
      `${ratio < TARGET_RATIO ? ': BELOW TARGET' : ''}`)
    log(`server CPU per request: home ${homeCpu.toFixed(1)} µs (in a campaign ${median(campaignHome.cpuPerRequest).toFixed(1)} µs), ` +
      `bare ${ceilingCpu.toFixed(1)} µs (ratio ${(ceilingCpu / homeCpu).toFixed(3)}); ` +
      `anonymous /healthz ${median(stack.cpuPerRequest).toFixed(1)} µs, signed-in /api/v1/me ${median(signedIn.cpuPerRequest).toFixed(1)} µs; ` +
      `the same page on the bare stack ${floorCpu.toFixed(1)} µs (home costs ${(homeCpu / floorCpu).toFixed(2)} times that)`)
    if (cpuProfDir !== undefined) log(`CPU profiles in ${cpuProfDir}/{app,campaign,bare,floor}`)
    process.stdout.write(`${JSON.stringify({
      bench: 'pages',
      home_rps: Math.round(homeRps),
      ceiling_rps: Math.round(ceilingRps),
      ratio: round(ratio, 3),
      home_p99_ms: median(home.results.map((r) => r.latency.p99)),
      home_p50_ms: median(home.results.map((r) => r.latency.p50)),
      ceiling_p99_ms: median(ceiling.results.map((r) => r.latency.p99)),
      round_ratios: ratios.map((r) => round(r, 3)),
      // CPU time per request is steadier than req/s when other processes share the machine.
      home_cpu_us: round(homeCpu, 1),
      ceiling_cpu_us: round(ceilingCpu, 1),
      cpu_ratio: round(ceilingCpu / homeCpu, 3),
      // The kernel's part of each (socket writes, waking the load generator; on SQLite, its file locks).
      home_sys_us: round(median(home.systemPerRequest), 1),
      ceiling_sys_us: round(median(ceiling.systemPerRequest), 1),
      // The same page from a signed session cookie, one read and one template, nothing else (lib/pages-server.ts
      // floorServer): a server-bound reference, and how many times it the home page costs.
      floor_cpu_us: round(floorCpu, 1),
      floor_sys_us: round(median(floor.systemPerRequest), 1),
      home_floor_ratio: round(homeCpu / floorCpu, 2),
      // Statements the home page runs per request (SQLite executions, or queries sent to PostgreSQL).
      home_statements: round(median(home.statementsPerRequest), 1),
      // The home page of a user in a campaign, with an authenticator app and a saved time zone (lib/pages-server.ts inCampaign).
      campaign_home_cpu_us: round(median(campaignHome.cpuPerRequest), 1),
      campaign_home_statements: round(median(campaignHome.statementsPerRequest), 1),
      // The same for the stack alone (anonymous /healthz) and a signed-in request that renders nothing (/api/v1/me).
      healthz_cpu_us: round(median(stack.cpuPerRequest), 1),
      me_cpu_us: round(median(signedIn.cpuPerRequest), 1),
      me_statements: round(median(signedIn.statementsPerRequest), 1),
      home_requests: home.results.reduce((sum, r) => sum + r.requests.total, 0),
      target_ratio: TARGET_RATIO,
      connections: load.connections,
      duration_s: load.duration,
      rounds: load.rounds,
      warmup_s: load.warmup,
      backend: backend.name,
      node: process.version
    })}\n`)
  } finally {
    await Promise.all(servers.map(stopServer))
    for (const made of databases) await made.drop()
  }
}
