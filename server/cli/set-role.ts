import { DomainError } from '../domain/errors.ts'
import { isRole, normaliseEmail, ROLES } from '../domain/users.ts'
import type { Command } from './main.ts'

export const setRole: Command = {
  name: 'set-role',
  summary: "Change a user's role. The change is audited and the user is signed out everywhere.",
  options: {
    email: { type: 'string', value: 'E', required: true, help: "the user's email address" },
    role: { type: 'string', value: 'ROLE', required: true, help: ROLES.join(', ') }
  },
  async run ({ options }, services, io) {
    const role = options.role
    if (!isRole(role)) throw new DomainError('invalid_role', `"${String(role)}" is not a role; expected one of ${ROLES.join(', ')}.`, { role: String(role), roles: ROLES.join(', ') })
    const email = normaliseEmail(String(options.email))
    const user = await services.users.findByEmail(email)
    if (user === undefined) throw new DomainError('user_not_found', `No user has the email ${email}.`, { variant: 'email', email })
    if (user.role === role) {
      io.out(`${user.email} is already ${role}; nothing changed`)
      return 0
    }
    await services.userService.changeRole(user.id, role, { id: null, label: 'cli' })
    io.out(`${user.email}: role changed from ${user.role} to ${role}; their sessions were ended`)
    return 0
  }
}
