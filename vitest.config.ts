import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    // chDB allows one data directory per process: every test file gets its own process
    pool: 'forks',
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
})
