/**
 * `npm run test:arm64` only (vitest.arm64.config.ts; excluded from `npm test`):
 * runs in an arm64 Node.js under qemu-aarch64 on the arm64 prebuild.
 *
 * - The addon is the AArch64 one, the pinned XNNPACK, initialized; cpuinfo's
 *   features (read by XNNPACK to pick its kernels) include NEON.
 * - The default model on a dozen shared images (decoded here by sharp's arm64
 *   build) gives the same top-5 indices as the x86-64 run
 *   (test/arm64/x64-reference.ts) and the same probabilities at the logit
 *   level (test/helpers/compare.ts: every class's |Δ log p| and the top-5
 *   relative error within LOG_PROB_TOL, which fails when one logit is off by
 *   1e-3, checked below with shiftLogit); where sharp's arm64 build gives a
 *   different input tensor, the same also on the x86-64 run's own tensor, to
 *   tell the addon's numerics apart from image decoding.
 * - Resident memory per model (V1 default, V2, V3 small/large) is printed for the README.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { xnnpackInfo } from '../../lib/binding.js';
import { defaultModelPath } from '../../lib/default-model.js';
import { loadImageTensor } from '../../lib/image.js';
import { loadModel, Model } from '../../lib/model.js';
import { compareProbs, formatProbDiff, LOG_PROB_TOL, probsClose, shiftLogit, type ProbDiff } from '../helpers/compare.js';
import { arm64X64Results } from '../helpers/env.js';
import { pinnedXnnpackCommit } from '../helpers/pins.js';
import { THREADS, top5, type ImageResult } from './images.js';

const reference = (): { results: ImageResult[] } => {
  if (arm64X64Results === undefined) throw new Error('MOBILENET_ARM64_X64_RESULTS is not set: run npm run test:arm64');
  return JSON.parse(fs.readFileSync(arm64X64Results, 'utf8')) as { results: ImageResult[] };
};

/** arm64 probabilities against the x86-64 ones at the logit level (every class) and top-5 relative. */
function expectClose(arm: ArrayLike<number>, x64: ArrayLike<number>, what: string): ProbDiff {
  expect(arm.length, what).toBe(x64.length);
  const d = compareProbs(arm, x64);
  expect(probsClose(d), `${what}: ${formatProbDiff(d)} (tolerance ${LOG_PROB_TOL})`).toBe(true);
  return d;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs((a[i] as number) - (b[i] as number)));
  return worst;
}

/**
 * Resident set size from /proc/self/status (VmRSS). Under qemu-user,
 * process.memoryUsage().rss reads qemu's emulated /proc/self/stat, which
 * reports 0; VmRSS is the emulator process's, i.e. the program's memory plus
 * qemu's own (its translated-code cache): the per-model growth is the useful figure.
 */
function rss(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  expect(m, 'VmRSS in /proc/self/status').not.toBeNull();
  return Number(m![1]) * 1024;
}

/** Same top-5 order, except adjacent ranks whose x86-64 probabilities are a float32 tie (< 1e-6 apart). */
function expectSameTop5(arm: number[], x64: number[], x64Probs: number[], what: string): void {
  for (let r = 0; r < 5; r++) {
    if (arm[r] === x64[r]) continue;
    const tie = r < 4 && arm[r] === x64[r + 1] && arm[r + 1] === x64[r] &&
      Math.abs((x64Probs[x64[r]!] as number) - (x64Probs[x64[r + 1]!] as number)) < 1e-6;
    expect(tie, `${what}: rank ${r + 1} is ${arm[r]} on arm64, ${x64[r]} on x86-64 (top-5 ${arm.join(',')} vs ${x64.join(',')})`).toBe(true);
    r++;
  }
}

describe('arm64 prebuild under qemu-aarch64', () => {
  it('is the AArch64 addon with the pinned XNNPACK on NEON', () => {
    expect(process.arch).toBe('arm64');
    const info = xnnpackInfo();
    expect(info.binary).toBe('MOBILENET_NATIVE_PATH');
    expect(info.path).toMatch(/prebuilds\/linux-arm64\/node\.napi\.glibc\.node$/);
    expect(info.source).toBe('vendored');
    expect(info.commit).toBe(pinnedXnnpackCommit());
    expect(info.initialized).toBe(true);
    const features = info.cpu?.features ?? [];
    expect(features).toContain('neon');
    expect(features).toContain('neon-fma');
    process.stdout.write(`test:arm64: addon ${info.path}\n` +
      `test:arm64: cpuinfo (what XNNPACK's hardware config reads): ${info.cpu?.name ?? '?'}, ${info.cpu?.cores} cores, features ${features.join(' ')}\n` +
      `test:arm64: XNNPACK microkernel family: AArch64 NEON-FMA (XNNPACK's AArch64 f32 GEMM/IGEMM config has only aarch64_neonfma kernels, ` +
      `chosen by core type; it needs the neon/neon-fma flags above, and with them there is no scalar f32 path)\n`);
  });

  it('resident memory per model (printed for the README)', async () => {
    // After the op tests (same process: XNNPACK initialized, its kernels' code translated), before any
    // model has been loaded. Models stay loaded until the end, so each one's growth is its own (no reuse
    // of freed pages); it includes the JavaScript heap of loading (or generating) its weights.
    const rows: string[] = [];
    const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
    const models: Model[] = [];
    try {
      for (const [name, make] of [
        ['default (V1 0.75-224)', () => loadModel(defaultModelPath(), { threads: THREADS })],
        ['V2 1.0-224 (random weights)', () => Model.fromArchitecture('v2', { threads: THREADS })],
        ['V3 Small 1.0-224 (random weights)', () => Model.fromArchitecture('v3-small', { threads: THREADS })],
        ['V3 Large 1.0-224 (random weights)', () => Model.fromArchitecture('v3-large', { threads: THREADS })],
      ] as const) {
        const before = rss();
        const model = await make();
        models.push(model);
        const probs = await model.predict(new Float32Array(224 * 224 * 3));
        expect(probs.length).toBe(1000);
        const after = rss();
        expect(after).toBeGreaterThan(0);
        rows.push(`${name}: +${mb(after - before)} MB resident for load + 1 inference (process VmRSS ${mb(after)} MB, qemu included)`);
      }
    } finally {
      for (const m of models) m.dispose();
    }
    process.stdout.write(rows.map((r) => `test:arm64: ${r}\n`).join(''));
  });

  it('classifies the shared images like x86-64: same top-5, same log-probabilities within LOG_PROB_TOL', async () => {
    const { results } = reference();
    expect(results.length).toBeGreaterThanOrEqual(10);
    // The comparison can fail: the x86-64 output with one logit off by 1e-3 (a bias error) is refused,
    // on the top class and on an unlikely one (an absolute 1e-4 on probabilities accepted both).
    const r0 = results[0]!;
    const unlikely = top5(r0.probs.map((p) => -p))[0]!;
    for (const cls of [r0.top5[0]!, unlikely]) {
      expect(probsClose(compareProbs(shiftLogit(r0.probs, cls, 1e-3), r0.probs)), `class ${cls} shifted by 1e-3`).toBe(false);
    }
    const model = await loadModel(defaultModelPath(), { threads: THREADS });
    try {
      const [height, width] = model.inputShape as [number, number, number];
      let worstDecoded = 0;
      let worstSameInput = 0;
      for (const r of results) {
        const name = path.basename(r.file);
        // 1. End to end: decoded and resized by sharp's arm64 build.
        const input = await loadImageTensor(r.file, { width, height, preprocessing: model.preprocessing });
        const probs = await model.predict(input);
        expectSameTop5(top5(probs), r.top5, r.probs, name);
        const d1 = expectClose(probs, r.probs, name);
        // 2. The x86-64 run's own input tensor: the addon's numerics alone (the same run when sharp's
        //    arm64 and x86-64 builds gave the same tensor, which is the case for these images).
        const buf = fs.readFileSync(r.input!);
        const same = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
        const inputDiff = maxAbsDiff(same, input);
        let d2 = d1;
        if (inputDiff > 0) {
          const probs2 = await model.predict(same);
          expectSameTop5(top5(probs2), r.top5, r.probs, `${name} (x86-64 input)`);
          d2 = expectClose(probs2, r.probs, `${name} (x86-64 input)`);
        }
        process.stdout.write(`test:arm64: ${name.padEnd(32)} top-5 ${top5(probs).join(',').padEnd(20)} ${formatProbDiff(d1)} (same input: max |Δ log p| ${d2.maxLogDiff.toExponential(2)}; arm64 vs x86-64 preprocessing max|dx| ${inputDiff.toExponential(2)})\n`);
        worstDecoded = Math.max(worstDecoded, d1.maxLogDiff, d1.topRelDiff);
        worstSameInput = Math.max(worstSameInput, d2.maxLogDiff, d2.topRelDiff);
      }
      process.stdout.write(`test:arm64: ${results.length} images, same top-5 as x86-64; worst of max |Δ log p| and top-5 relative ${worstDecoded.toExponential(2)} end to end, ${worstSameInput.toExponential(2)} on the same input tensors (tolerance ${LOG_PROB_TOL})\n`);
    } finally {
      model.dispose();
    }
  });

});
