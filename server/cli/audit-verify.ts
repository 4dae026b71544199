import { verifyChain } from '../domain/audit.ts'
import type { Command } from './main.ts'

export const auditVerify: Command = {
  name: 'audit verify',
  summary: 'Check the hash chain of the audit log; exits 1 naming the first row that was altered or follows a removed or inserted one.',
  async run (_input, services, io) {
    const verdict = verifyChain(services.audit.all())
    if (verdict.intact) {
      io.out(`chain intact (${events(verdict.count)})`)
      return 0
    }
    io.out(`chain broken at event #${verdict.brokenId}: ${verdict.reason} (${events(verdict.count)} before it ${verdict.count === 1 ? 'is' : 'are'} intact)`)
    return 1
  }
}

function events (count: number): string {
  return `${count} event${count === 1 ? '' : 's'}`
}
