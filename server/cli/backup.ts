import { closeSync, existsSync, openSync, renameSync, rmSync, statSync } from 'node:fs'
import path from 'node:path'
import { DomainError } from '../domain/errors.ts'
import type { Command } from './main.ts'

export const backup: Command = {
  name: 'backup',
  summary: 'Write a consistent copy of the live database to FILE; safe while the server is running.',
  arguments: [{ name: 'FILE', help: 'where to write the copy (kept private: it holds password hashes and sealed secrets)' }],
  options: {
    force: { type: 'boolean', help: 'replace FILE if it already exists' }
  },
  async run ({ args: [file], options }, services, io) {
    if (services.config.databaseUrl !== undefined) {
      throw new DomainError('backup_on_postgresql', 'This portal runs on PostgreSQL (DATABASE_URL): back it up with pg_dump (see the README), not with this command.')
    }
    const target = path.resolve(file)
    if (target === path.resolve(services.config.databaseFile)) {
      throw new DomainError('backup_target_is_live_database', `${target} is the live database; choose another file.`, { target })
    }
    if (existsSync(target) && options.force !== true) {
      throw new DomainError('backup_target_exists', `${target} already exists; pass --force to replace it.`, { target })
    }
    if (!existsSync(path.dirname(target))) {
      throw new DomainError('backup_directory_missing', `The directory ${path.dirname(target)} does not exist.`, { directory: path.dirname(target) })
    }

    // Written beside the target and renamed over it, so a failed backup never leaves a torn file or
    // destroys the previous one; created owner-only before SQLite writes a byte into it.
    const partial = `${target}.partial-${process.pid}`
    try {
      closeSync(openSync(partial, 'wx', 0o600))
      await services.database.sqlite.backup(partial)
      renameSync(partial, target)
    } catch (err) {
      throw new DomainError('backup_failed', `Could not write ${target}: ${(err as Error).message}`, { target, problem: (err as Error).message })
    } finally {
      rmSync(partial, { force: true })
    }
    io.out(`backup written: ${target} (${statSync(target).size} bytes)`)
    return 0
  }
}
