import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // chDB allows one data directory per process: every test file gets its own process
    pool: 'forks',
    // vitest's default (one fewer than the cores) runs the files one at a time on a 2-core machine, while most
    // of them wait on sockets, child processes and timers: two at a time took the suite from 431 s to 262 s
    maxWorkers: Math.max(2, availableParallelism() - 1),
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
