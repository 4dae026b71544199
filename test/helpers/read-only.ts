import { execFileSync } from 'node:child_process'
import { chmodSync, chownSync, readdirSync, rmSync } from 'node:fs'
import path from 'node:path'
import type { TestContext } from 'node:test'
import { tempDir } from './app.ts'

/** Run a child process as nobody (set only when sealing had to fall back to file modes as root). */
export type RunAs = { uid: number, gid: number } | Record<string, never>

/**
 * A data directory for one test that can be made read-only for whoever runs the portal or the CLI, removed when
 * the test ends. Root ignores file modes, so as root it is bind-mounted onto itself read-only (writes fail with
 * EROFS, as on a read-only volume), which works wherever the repository lives. Where mounting is not allowed, its
 * files go to nobody with read-only modes and the child runs as nobody (which then needs the repository readable
 * by nobody). As another user, the modes alone do it.
 */
export function readOnlyScratch (t: TestContext, prefix = 'mfa-ro-'): { dir: string, seal: () => RunAs } {
  const dir = tempDir(prefix)
  let mounted = false
  t.after(() => {
    if (mounted) execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
    chmodSync(dir, 0o700)
    rmSync(dir, { recursive: true, force: true })
  })
  const seal = (): RunAs => {
    if (process.getuid?.() === 0) {
      try {
        execFileSync('mount', ['--bind', dir, dir], { stdio: 'ignore' })
        mounted = true
        execFileSync('mount', ['-o', 'remount,bind,ro', dir], { stdio: 'ignore' })
        return {}
      } catch {
        if (mounted) execFileSync('umount', ['-l', dir], { stdio: 'ignore' })
        mounted = false
        for (const name of ['', ...readdirSync(dir)]) chownSync(path.join(dir, name), 65534, 65534)
      }
    }
    for (const name of readdirSync(dir)) chmodSync(path.join(dir, name), 0o444)
    chmodSync(dir, 0o555)
    return process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}
  }
  return { dir, seal }
}
