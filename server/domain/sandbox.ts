import { hashPassword } from './passwords.ts'
import type { Role, UserService, UserStore } from './users.ts'

/** Demo accounts, created only in sandbox mode on an empty database. Documented in the README. */
export const DEMO_ACCOUNTS: ReadonlyArray<{ email: string, displayName: string, role: Role, password: string, privileged: boolean, groups: string[] }> = [
  { email: 'admin@sandbox.example', displayName: 'Ada Admin', role: 'admin', password: 'sandbox-admin-pass', privileged: true, groups: ['it'] },
  { email: 'helpdesk@sandbox.example', displayName: 'Hal Helpdesk', role: 'helpdesk', password: 'sandbox-helpdesk-pass', privileged: false, groups: ['it'] },
  { email: 'alice@sandbox.example', displayName: 'Alice Example', role: 'user', password: 'sandbox-user-pass', privileged: false, groups: ['sales'] },
  { email: 'bob@sandbox.example', displayName: 'Bob Example', role: 'user', password: 'sandbox-user-pass', privileged: false, groups: ['engineering'] },
  { email: 'carol@sandbox.example', displayName: 'Carol Example', role: 'user', password: 'sandbox-user-pass', privileged: true, groups: ['engineering', 'cloud-admins'] }
]

/** Seeds the demo accounts if there are no users yet; returns how many were created. */
export async function seedSandbox (users: UserStore, service: UserService): Promise<number> {
  if (await users.count() > 0) return 0
  let created = 0
  for (const account of DEMO_ACCOUNTS) {
    try {
      await service.createUser({
        email: account.email,
        displayName: account.displayName,
        role: account.role,
        privileged: account.privileged,
        groups: account.groups,
        passwordHash: await hashPassword(account.password)
      }, { id: null, label: 'sandbox-seed' })
      created++
    } catch (err) {
      // Two instances starting on one empty database seed at the same moment: the account the other one made
      // (refused here by the unique email) is there all the same.
      if (await users.findByEmail(account.email) === undefined) throw err
    }
  }
  return created
}
