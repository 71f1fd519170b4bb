/**
 * A small file system of its own for a test (tmpfs, needs root): a disk that
 * can really fill up. Where it cannot be mounted the caller skips with the
 * reason, except in CI (CI=true), where the test must run.
 */
import { execFileSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface Tmpfs { path: string; unmount: () => void }

export function mountTmpfs (sizeBytes: number, at?: string): Tmpfs | { unavailable: string } {
  const path = at ?? mkdtempSync(join(tmpdir(), 'vf-tmpfs-'))
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', path], { stdio: ['ignore', 'ignore', 'pipe'] })
  } catch (err) {
    if (at === undefined) rmSync(path, { recursive: true, force: true })
    const why = `a tmpfs cannot be mounted here (${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim().split('\n')[0]}); run as root`
    if (process.env['CI'] === 'true') throw new Error(`${why}: required in CI`)
    return { unavailable: why }
  }
  return {
    path,
    unmount: () => {
      try { execFileSync('umount', ['-l', path], { stdio: 'ignore' }) } catch { /* already gone */ }
      if (at === undefined) rmSync(path, { recursive: true, force: true })
    },
  }
}

/** Fills the file system at `dir` until about `leaveBytes` are free (0: until a write fails); returns the filler's path (delete it to free the space). */
export function fillDisk (dir: string, leaveBytes: number, free: () => number): string {
  const filler = join(dir, `filler-${Date.now()}`)
  // the bulk in large steps (the node writes meanwhile: a step that no longer fits is halved), then a block at a time
  let offset = 0
  for (let step = free() - leaveBytes - 256 * 1024; step >= 1024 * 1024;) {
    try {
      execFileSync('fallocate', ['-o', String(offset), '-l', String(step), filler], { stdio: 'ignore' })
      offset += step
      step = Math.min(step, free() - leaveBytes - 256 * 1024)
    } catch {
      step = Math.floor(step / 2)
    }
  }
  const fd = openSync(filler, 'a')
  const block = Buffer.alloc(16 * 1024)
  try {
    while (free() > leaveBytes) writeSync(fd, block)
  } catch { /* ENOSPC: full */ } finally {
    closeSync(fd)
  }
  return filler
}
