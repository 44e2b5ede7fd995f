import { defineConfig } from 'vitest/config';

// Integration tests start real processes and sockets; run files in separate forks
// and give them room, but keep unit tests fast by default.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
