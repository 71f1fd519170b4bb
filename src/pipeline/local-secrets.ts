/** Development secrets kept in the data directory (mode 0600) when the configuration does not provide them. */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export function loadOrCreateSecret (path: string, bytes: number): string {
  if (existsSync(path)) return readFileSync(path, 'utf8').trim()
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  const value = randomBytes(bytes).toString('base64url')
  writeFileSync(path, value + '\n', { mode: 0o600, flag: 'wx' })
  return value
}
