import { defineConfig } from 'vitest/config';

// The kind suite: one cluster, one file, steps that build on each other. It is not
// part of `npm test` (the root config only includes test/**): it needs Docker and
// kind, which this repository's CI machines do not have. See docs/e2e.md.
export default defineConfig({
  test: {
    include: ['e2e/**/*.e2e.ts'],
    pool: 'forks',
    fileParallelism: false,
    sequence: { concurrent: false },
    // Image build, cluster creation and image pulls dominate; each step gets room.
    testTimeout: 5 * 60_000,
    hookTimeout: 20 * 60_000,
    reporters: ['default'],
  },
});
