import { defineConfig } from 'vitest/config';

// Tests that start a private Open vSwitch or network namespaces share the
// machine (2 cores); run files one at a time so timing-sensitive ones stay honest.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
