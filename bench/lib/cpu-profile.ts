import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import path from 'node:path'

/** The parts of a V8 CPU profile (Profiler.stop) the summary reads. */
interface Profile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string }, children?: number[] }>
  samples: number[]
  timeDeltas: number[]
}

export interface HotSpots {
  /** Where the samples land: native calls (better-sqlite3's run/get/all, crypto) show here under their own names. */
  self: HotSpot[]
  /** The portal's own functions (server/, test/; not node_modules or the benchmark's wrappers), with their callees. */
  inclusive: HotSpot[]
}

export interface HotSpot {
  /** `function (file)`, the file relative to the repository. */
  where: string
  /** Share of all samples spent in this function itself (not its callees). */
  selfShare: number
  /** Share of all samples with this function on the stack. */
  totalShare: number
}

/**
 * Profiles this process from inside (node:inspector), as `node --cpu-prof` would, so a benchmark can profile one
 * phase. stop() writes the .cpuprofile (open it in Chrome DevTools) and answers the hot spots.
 */
export interface CpuProfile {
  stop(file: string, root: string, top?: number): Promise<HotSpots>
}

export async function startCpuProfile (): Promise<CpuProfile> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 200 })
  await session.post('Profiler.start')
  return {
    async stop (file, root, top = 15) {
      const { profile } = await session.post('Profiler.stop') as unknown as { profile: Profile }
      session.disconnect()
      writeFileSync(file, JSON.stringify(profile))
      return hotSpots(profile, root, top)
    }
  }
}

function hotSpots (profile: Profile, root: string, top: number): HotSpots {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const label = (id: number): string => {
    // No line numbers: under tsx they are the transpiled code's, not the source's.
    const { functionName, url } = byId.get(id)!.callFrame
    const file = url === '' ? '' : ` (${url.startsWith('file://') ? path.relative(root, new URL(url).pathname) : url})`
    return `${functionName === '' ? '(anonymous)' : functionName}${file}`
  }
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  const samples = profile.samples.length
  for (const id of profile.samples) {
    const own = label(id)
    self.set(own, (self.get(own) ?? 0) + 1)
    // Count each function once per sample however deep it recurses.
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const name = label(at)
      if (seen.has(name)) continue
      seen.add(name)
      total.set(name, (total.get(name) ?? 0) + 1)
    }
  }
  const spot = (where: string): HotSpot => ({ where, selfShare: (self.get(where) ?? 0) / samples, totalShare: (total.get(where) ?? 0) / samples })
  const ours = (where: string): boolean => /\((server|test)\//.test(where)
  return {
    self: [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([where]) => spot(where)),
    inclusive: [...total.entries()].filter(([where]) => ours(where)).sort((a, b) => b[1] - a[1]).slice(0, top).map(([where]) => spot(where))
  }
}
