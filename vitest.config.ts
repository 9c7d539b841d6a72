import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // test/arm64/ runs under qemu-aarch64: npm run test:arm64 (vitest.arm64.config.ts)
    exclude: [...configDefaults.exclude, 'test/arm64/**'],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // gc() for the memory tests (test/native-leak.test.ts asserts it is there).
    execArgv: ['--expose-gc'],
    reporters: ['default'],
  },
});
