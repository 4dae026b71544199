import { DomainError } from '../domain/errors.ts'
import { generatePassword, hashPassword, MIN_PASSWORD_LENGTH } from '../domain/passwords.ts'
import { isEmail, isRole, normaliseEmail, ROLES } from '../domain/users.ts'
import type { Command } from './main.ts'

export const createUser: Command = {
  name: 'create-user',
  summary: 'Create a local account, e.g. the first admin. Without --password-stdin a password is generated and shown once.',
  options: {
    email: { type: 'string', value: 'E', required: true, help: 'sign-in email address' },
    name: { type: 'string', value: 'NAME', required: true, help: 'display name (quote it if it has spaces)' },
    role: { type: 'string', value: 'ROLE', help: `${ROLES.join(', ')} (default: user)` },
    'password-stdin': { type: 'boolean', help: `read the password from standard input (at least ${MIN_PASSWORD_LENGTH} characters)` }
  },
  async run ({ options }, services, io) {
    const email = normaliseEmail(String(options.email))
    const role = options.role ?? 'user'
    if (!isRole(role)) throw new DomainError('invalid_role', `"${String(role)}" is not a role; expected one of ${ROLES.join(', ')}.`, { role: String(role), roles: ROLES.join(', ') })
    // Checked before the deliberately slow hash (and before asking for a password); createUser checks again.
    if (!isEmail(email)) throw new DomainError('invalid_email', `"${String(options.email)}" is not an email address.`, { email: String(options.email) })
    if (await services.users.findByEmail(email) !== undefined) {
      throw new DomainError('user_exists', `A user with the email ${email} already exists.`, { email })
    }

    const typed = options['password-stdin'] === true
    const password = typed ? (await io.readStdin()).replace(/\r?\n$/, '') : generatePassword()
    if ([...password].length < MIN_PASSWORD_LENGTH) {
      throw new DomainError('password_too_short', `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`, { min: MIN_PASSWORD_LENGTH })
    }

    const user = await services.userService.createUser({
      email,
      displayName: String(options.name),
      role,
      passwordHash: await hashPassword(password)
    }, { id: null, label: 'cli' })

    io.out(`created ${user.role} ${user.email} (${user.displayName}), id ${user.id}`)
    if (!typed) {
      io.out(`password: ${password}`)
      io.out('This password will not be shown again: hand it over now through a safe channel.')
    }
    return 0
  }
}
