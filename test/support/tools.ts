/**
 * Tests that run a program from a Debian package (mosquitto_pub; later a browser,
 * redis-server, haproxy, ...). On a developer's machine without it, such a test is
 * skipped and says so on stderr, with the package to install. Under CI (CI=true) a
 * missing program fails the test instead: CI installs every package listed in
 * test/support/tools.txt (.ci/run), and a silent skip there would be a lost test.
 *
 *   const withMosquitto = requireTool('mosquitto_pub')
 *   withMosquitto('publishes with a client we did not write', async () => { ... })
 */
import { accessSync, constants, readFileSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { it } from 'vitest'

/** command → Debian package, from tools.txt (the one list; .ci/run reads it too) */
const DEBIAN_TOOLS: ReadonlyMap<string, string> = new Map(
  readFileSync(new URL('tools.txt', import.meta.url), 'utf8').split('\n')
    .map((line) => line.replace(/#.*/, '').trim()).filter((line) => line !== '')
    .map((line) => line.split(/\s+/) as [string, string]),
)

function inCI (env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env['CI']
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

/** Whether `name` is an executable file in one of PATH's directories. */
export function onPath (name: string, path = process.env['PATH'] ?? ''): boolean {
  return path.split(delimiter).some((dir) => {
    if (dir === '') return false
    try {
      accessSync(join(dir, name), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/**
 * `it` for tests that need `command`: the plain `it` when it is installed; `it.skip`
 * (and a line on stderr) when it is not; under CI, an `it` whose tests fail at once
 * with the install hint.
 */
export type ToolTest = typeof it.skip

export function requireTool (command: string): ToolTest {
  const pkg = DEBIAN_TOOLS.get(command)
  if (pkg === undefined) throw new Error(`${command} is not in test/support/tools.txt: list it with its Debian package so CI installs it`)
  if (onPath(command)) return it
  const hint = `${command} not installed (apt-get install ${pkg})`
  if (!inCI()) {
    process.stderr.write(`skipped: ${hint}\n`)
    return it.skip
  }
  return it.extend<{ requiredTool: string }>({
    // eslint-disable-next-line no-empty-pattern -- vitest reads a fixture's dependencies from its first parameter
    requiredTool: [async ({}, _use) => { throw new Error(`${hint}; CI=true makes it mandatory (.ci/run installs it)`) }, { auto: true }],
  })
}
