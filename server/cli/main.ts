import 'dotenv/config'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { ConfigError, loadConfig, type Config } from '../config.ts'
import { DomainError } from '../domain/errors.ts'
import type { Services } from '../wiring.ts'
import { auditVerify } from './audit-verify.ts'
import { backup } from './backup.ts'
import { copyDatabase } from './copy-database.ts'
import { createUser } from './create-user.ts'
import { entraPhones } from './entra-phones.ts'
import { importUsers } from './import-users.ts'
import { migrate } from './migrate.ts'
import { rotateKey } from './rotate-key.ts'
import { setRole } from './set-role.ts'
import { sweep } from './sweep.ts'
import { sync } from './sync.ts'
import { awsMfaCleanup } from './aws-mfa-cleanup.ts'

/** Where a command writes and reads; the bin passes the process's streams. */
export interface Io {
  out(line: string): void
  err(line: string): void
  readStdin(): Promise<string>
}

export interface OptionSpec {
  type: 'string' | 'boolean'
  /** Placeholder shown in usage, e.g. "E" for `--email E`. */
  value?: string
  required?: boolean
  help: string
}

/** Arguments after the command name, already checked against the command's declared options. */
export interface CommandInput {
  args: string[]
  options: Readonly<Record<string, string | boolean | undefined>>
}

export interface Command {
  /** What the operator types: `create-user`, or two words such as `audit verify`. */
  name: string
  summary: string
  /** Required positional arguments, in order. */
  arguments?: ReadonlyArray<{ name: string, help: string }>
  options?: Readonly<Record<string, OptionSpec>>
  /** Only reads: the database is opened read-only and not migrated, so the command works on a read-only copy or mount. */
  readOnly?: boolean
  /** Returns the exit status: 0 success, 1 failure. */
  run(input: CommandInput, services: Services, io: Io): Promise<number>
}

export const COMMANDS: readonly Command[] = [migrate, createUser, setRole, importUsers, backup, auditVerify, sync, sweep, rotateKey, entraPhones, awsMfaCleanup, copyDatabase]

const PROGRAM = 'mfa-rollout'
const USAGE_ERROR = 2

/** Runs one CLI invocation and returns its exit status (0 ok, 1 failure, 2 usage error). */
export async function runCli (argv: string[], io: Io = processIo, env: Record<string, string | undefined> = process.env): Promise<number> {
  const [first, ...rest] = argv
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    const topic = first === 'help' ? findCommand(rest) : undefined
    io.out(topic === undefined ? usage() : commandUsage(topic.command))
    return 0
  }

  const found = findCommand(argv)
  if (found === undefined) {
    const related = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => `'${c.name}'`)
    const hint = related.length > 0 ? ` (did you mean ${related.join(' or ')}?)` : ''
    io.err(`${PROGRAM}: unknown command '${first}'${hint}\n`)
    io.err(usage())
    return USAGE_ERROR
  }
  const { command, remaining } = found

  let input: CommandInput
  try {
    const parsed = parseCommandArgs(command, remaining)
    if (parsed === 'help') {
      io.out(commandUsage(command))
      return 0
    }
    input = parsed
  } catch (err) {
    if (!isUsageError(err)) throw err
    io.err(`${PROGRAM} ${command.name}: ${err.message}\n`)
    io.err(commandUsage(command))
    return USAGE_ERROR
  }

  let config: Config
  try {
    config = loadConfig(env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    io.err(`${PROGRAM}: configuration error: ${err.message}`)
    return 1
  }
  for (const warning of config.warnings) io.err(`${PROGRAM}: warning: ${warning}`)

  // Loaded only now: the database stack is most of the start-up time, and help or a typo should answer at once.
  const [{ createServices }, { explainDatabaseFailure }] = await Promise.all([import('../wiring.ts'), import('../db/connection.ts')])
  let services: Services
  try {
    services = await createServices(config, { readOnly: command.readOnly === true })
  } catch (err) {
    io.err(`${PROGRAM}: ${explainDatabaseFailure(err, config.databaseFile) ?? `cannot open the database ${config.databaseFile}: ${(err as Error).message}`}`)
    return 1
  }
  try {
    return await command.run(input, services, io)
  } catch (err) {
    // A full disk or a damaged file met while the command ran: one line saying so, not a stack trace.
    const line = err instanceof DomainError ? err.message : explainDatabaseFailure(err, config.databaseFile)
    if (line === undefined) throw err
    io.err(`${PROGRAM}: ${line}`)
    return 1
  } finally {
    await services.close()
  }
}

const processIo: Io = {
  out: (line) => { process.stdout.write(`${line}\n`) },
  err: (line) => { process.stderr.write(`${line}\n`) },
  readStdin: async () => {
    if (process.stdin.isTTY) process.stderr.write('reading from standard input until end of input (Ctrl-D); piping it in keeps it off the screen\n')
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
}

/** The longest command name matching the first words of argv, so `audit verify` wins over a bare `audit`. */
function findCommand (argv: string[]): { command: Command, remaining: string[] } | undefined {
  let best: Command | undefined
  for (const command of COMMANDS) {
    const words = command.name.split(' ')
    if (words.every((word, i) => argv[i] === word) && words.length > (best?.name.split(' ').length ?? 0)) best = command
  }
  return best === undefined ? undefined : { command: best, remaining: argv.slice(best.name.split(' ').length) }
}

class UsageError extends Error {}

function isUsageError (err: unknown): err is Error {
  // parseArgs reports unknown options and missing values as TypeErrors with ERR_PARSE_ARGS_* codes.
  return err instanceof UsageError || (err instanceof Error && String((err as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS_'))
}

function parseCommandArgs (command: Command, argv: string[]): CommandInput | 'help' {
  const specs = command.options ?? {}
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } }
  for (const [name, spec] of Object.entries(specs)) options[name] = { type: spec.type }
  const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  if (values.help === true) return 'help'

  const expected = command.arguments ?? []
  if (positionals.length < expected.length) {
    throw new UsageError(`missing ${expected.slice(positionals.length).map((a) => a.name).join(' ')}`)
  }
  if (positionals.length > expected.length) {
    throw new UsageError(`unexpected argument '${positionals[expected.length]}'`)
  }
  for (const [name, spec] of Object.entries(specs)) {
    const value = values[name]
    if (spec.required === true && (value === undefined || (typeof value === 'string' && value.trim() === ''))) {
      throw new UsageError(`--${name} is required`)
    }
  }
  return { args: positionals, options: values as CommandInput['options'] }
}

function synopsis (command: Command): string {
  const parts = [command.name]
  for (const argument of command.arguments ?? []) parts.push(argument.name)
  for (const [name, spec] of Object.entries(command.options ?? {})) {
    const flag = spec.type === 'string' ? `--${name} ${spec.value ?? 'VALUE'}` : `--${name}`
    parts.push(spec.required === true ? flag : `[${flag}]`)
  }
  return parts.join(' ')
}

function details (command: Command): string[] {
  const rows: Array<[string, string]> = [
    ...(command.arguments ?? []).map((a): [string, string] => [a.name, a.help]),
    ...Object.entries(command.options ?? {}).map(([name, spec]): [string, string] =>
      [spec.type === 'string' ? `--${name} ${spec.value ?? 'VALUE'}` : `--${name}`, spec.help])
  ]
  const width = Math.max(0, ...rows.map(([left]) => left.length))
  return rows.map(([left, help]) => `        ${left.padEnd(width)}  ${help}`)
}

function commandUsage (command: Command): string {
  return [`Usage: ${PROGRAM} ${synopsis(command)}`, '', `  ${command.summary}`, ...details(command).map((line) => line.slice(4))].join('\n')
}

function usage (): string {
  return [
    `Usage: ${PROGRAM} <command> [options]`,
    '',
    'Operator commands for the mfa-rollout portal. They work on the same database as the running server.',
    '',
    'Commands:',
    ...COMMANDS.flatMap((command) => [`  ${synopsis(command)}`, `      ${command.summary}`, ...details(command), '']),
    `Run '${PROGRAM} <command> --help' for one command.`,
    'Configuration comes from the environment and a .env file in the current directory, as for the server;',
    'the database is $DATA_DIR/mfa-rollout.db (DATA_DIR defaults to ./data) unless DATABASE_FILE names another.',
    'Exit status: 0 success, 1 failure, 2 usage error.'
  ].join('\n')
}
