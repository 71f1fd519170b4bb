/**
 * A small file system of its own for a test (tmpfs, needs root): a disk that
 * can really fill up. Where it cannot be mounted the caller skips with the
 * reason, except in CI (CI=true), where the test must run.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Tmpfs { path: string; unmount: () => void }

export function mountTmpfs (sizeBytes: number): Tmpfs | { unavailable: string } {
  const path = mkdtempSync(join(tmpdir(), 'vf-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', path], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    rmSync(path, { recursive: true, force: true })
    const why = `a tmpfs cannot be mounted here (${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim().split('\n')[0]}); run as root`
    if (process.env['CI'] === 'true') throw new Error(`${why}: required in CI`)
    return { unavailable: why }
  }
  return {
    path,
    unmount: () => {
      try { execFileSync('umount', ['-l', path], { stdio: 'ignore' }) } catch { /* already gone */ }
      rmSync(path, { recursive: true, force: true })
    },
  }
}

/** Fills the file system at `dir` until `leaveBytes` are free; returns the filler's path (delete it to free the space). */
export function fillDisk (dir: string, leaveBytes: number, free: () => number): string {
  const filler = join(dir, `filler-${Date.now()}`)
  const want = Math.max(0, free() - leaveBytes)
  execFileSync('fallocate', ['-l', String(want), filler])
  return filler
}
