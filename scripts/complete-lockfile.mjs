// The npm registry this project installs from serves chdb's linux-x64 engine
// package only, so `npm install` leaves chdb's other optional platform packages
// out of package-lock.json and `npm ci` then refuses the lock as out of sync.
// This adds them back as optional, platform-restricted entries (never fetched
// on a platform they do not match). Run after any `npm install`.
import { readFileSync, writeFileSync } from 'node:fs'

const path = new URL('../package-lock.json', import.meta.url)
const lock = JSON.parse(readFileSync(path, 'utf8'))
const chdb = lock.packages['node_modules/chdb']
for (const [name, version] of Object.entries(chdb.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`
  if (lock.packages[key] !== undefined) continue
  const [, os, cpu, libc] = /lib-(darwin|linux)-(arm64|x64)(?:-(gnu))?$/.exec(name) ?? []
  if (os === undefined) throw new Error(`unexpected chdb platform package ${name}`)
  lock.packages[key] = { version, cpu: [cpu], ...(libc === 'gnu' ? { libc: ['glibc'] } : {}), license: 'Apache-2.0', optional: true, os: [os] }
}
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a < b ? -1 : 1)))
writeFileSync(path, JSON.stringify(lock, null, 2) + '\n')
