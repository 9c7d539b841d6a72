/**
 * The one module that reads the environment variables of the tests and the
 * benchmark suite (development only; the library's own are in lib/env.ts).
 * Each is documented in the README's "Environment variables" table
 * (checked by test/env.test.ts against `DEV_ENV`).
 */
import type { EnvVariable } from '../../lib/env.js';

export const DEV_ENV: readonly EnvVariable[] = [
  { name: 'MOBILENET_SHARED_DIR', doc: 'tests and benchmarks: the shared data directory (weights, images, references; default ../shared)' },
  { name: 'MOBILENET_REQUIRE_SHARED', doc: 'tests: 1 makes a missing shared directory a failure instead of skipped tests (CI sets it)' },
  { name: 'MOBILENET_TEST_BACKEND', doc: 'tests: backend of the model tests (the files that import testBackend), native (default) or reference; .ci/run runs them with both' },
  { name: 'MOBILENET_BENCH_RUNNER', doc: 'benchmarks: path of the raw C++ runner (default build/Release/xnnpack_bench_runner)' },
  { name: 'MOBILENET_ARM64_X64_RESULTS', doc: 'npm run test:arm64 (set by scripts/test-arm64.mjs): the x86-64 results the emulated arm64 run compares with' },
  { name: 'MOBILENET_BENCH_ORT_SPIN', doc: 'benchmarks: 1 keeps onnxruntime\'s intra-op spin-waiting on (default off)' },
];

function read(name: string): string | undefined {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** The shared directory as given (relative to the repository root), default '../shared'. */
export const sharedDirSetting = read('MOBILENET_SHARED_DIR') ?? '../shared';
export const requireShared = read('MOBILENET_REQUIRE_SHARED') === '1';
/**
 * MOBILENET_TEST_BACKEND: the backend the model tests load their models with —
 * 'native' (default: the addon, XNNPACK) or 'reference' (the pure-TypeScript
 * backend). A test file that imports this is a "model test": `.ci/run` step 5b
 * runs every such file (`grep -l testBackend test/*.test.ts`) again with
 * MOBILENET_TEST_BACKEND=reference, so each one must pass on both backends with
 * the same references and tolerances. Any other value is 'native'.
 */
export const testBackend: 'native' | 'reference' = read('MOBILENET_TEST_BACKEND') === 'reference' ? 'reference' : 'native';
export const benchRunner = read('MOBILENET_BENCH_RUNNER');
export const arm64X64Results = read('MOBILENET_ARM64_X64_RESULTS');
export const benchOrtSpin = read('MOBILENET_BENCH_ORT_SPIN') === '1';

/** The environment of a child process: this one's, plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}
