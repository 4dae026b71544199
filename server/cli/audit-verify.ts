import { checkAnchor, parseAnchor, verifyChain, type AuditAnchor } from '../domain/audit.ts'
import type { Command } from './main.ts'

export const auditVerify: Command = {
  name: 'audit verify',
  summary: 'Check the keyed hash chain of the audit log; exits 1 naming the first row that was altered, follows a removed or inserted one, or cannot be read. With --anchor, also prove the log still holds a head recorded outside the database (newest events cut).',
  options: {
    anchor: { type: 'string', value: 'SEQ:HASH', help: 'an anchor from the log stream or AUDIT_ANCHOR_URL ("audit anchor SEQ:HASH"): the log must still hold that event with that hash' }
  },
  // Only reads: works on a read-only file, directory or mount, and on a copy taken for an investigation.
  readOnly: true,
  async run ({ options }, services, io) {
    let anchor: AuditAnchor | undefined
    if (typeof options.anchor === 'string') {
      anchor = parseAnchor(options.anchor)
      if (anchor === undefined) {
        io.err('--anchor: expected SEQ:HASH as the anchor line prints it, e.g. 1000:hmac-sha256:1a2b3c4d:…')
        return 2
      }
    }
    const verdict = await verifyChain(services.audit.all(), services.audit.keys)
    if (verdict.intact && anchor !== undefined) {
      const held = checkAnchor(anchor, await services.audit.find(anchor.seq), (await services.audit.head())?.seq ?? 0)
      if (!held.holds) {
        io.out(`anchor #${anchor.seq} not found as recorded: ${held.reason} (the ${events(verdict.count)} the log holds are chained intact)`)
        return 1
      }
      io.out(`chain intact (${events(verdict.count)}), and it holds anchored event #${anchor.seq}`)
      return 0
    }
    if (verdict.intact) {
      io.out(`chain intact (${events(verdict.count)})`)
      return 0
    }
    io.out(`chain broken at event #${verdict.brokenId}: ${verdict.reason} (${events(verdict.count)} before it ${verdict.count === 1 ? 'is' : 'are'} intact)`)
    const unreadable = await unreadableRanges(services.audit.all())
    if (unreadable.count > 0) {
      io.out(`${unreadable.count === 1 ? 'this event cannot' : `${unreadable.count} events cannot`} be read: ${unreadable.ranges.join(', ')}; the file is damaged there. Restore the database from a backup to recover ${unreadable.count === 1 ? 'it' : 'them'}.`)
    }
    return 1
  }
}

/** Every row that cannot be read, as "#5–#9" ranges: a damaged page hides a run of them, and others may follow. */
async function unreadableRanges (rows: AsyncIterable<{ id: number } | { id: number, unreadable: string }>): Promise<{ count: number, ranges: string[] }> {
  const runs: Array<[number, number]> = []
  let count = 0
  for await (const row of rows) {
    if (!('unreadable' in row)) continue
    count++
    const run = runs.at(-1)
    if (run !== undefined && run[1] === row.id - 1) run[1] = row.id
    else runs.push([row.id, row.id])
  }
  return { count, ranges: runs.map(([from, to]) => from === to ? `#${from}` : `#${from}–#${to}`) }
}

function events (count: number): string {
  return `${count} event${count === 1 ? '' : 's'}`
}
