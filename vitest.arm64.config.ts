/**
 * `npm run test:arm64` (scripts/test-arm64.mjs sets the MOBILENET_ARM64_* variables):
 * the op tests and test/arm64/*.test.ts in an arm64 Node.js under qemu-aarch64,
 * on the arm64 prebuild (MOBILENET_NATIVE_PATH).
 */
import { defineConfig } from 'vitest/config';
import { qemuPool } from './test/arm64/qemu-pool.js';

const need = (name: string): string => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set: run this through npm run test:arm64`);
  return v;
};

export default defineConfig({
  test: {
    include: (process.env.MOBILENET_ARM64_TESTS ?? 'test/native-ops.test.ts,test/ops.test.ts,test/arm64/*.test.ts').split(','),
    testTimeout: 900_000,
    hookTimeout: 900_000,
    teardownTimeout: 60_000,
    maxWorkers: 1,
    fileParallelism: false,
    isolate: false,
    pool: qemuPool({
      qemu: need('MOBILENET_ARM64_QEMU'),
      sysroot: need('MOBILENET_ARM64_SYSROOT'),
      node: need('MOBILENET_ARM64_NODE'),
      cpu: process.env.MOBILENET_ARM64_CPU,
    }),
    reporters: ['default'],
  },
});
