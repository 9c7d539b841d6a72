/**
 * Compile memory estimate (issue 14): an input of 16000×16000 (11 GB
 * before), batch 4096 or alpha 40 (past 6 GB before) are refused with a
 * RangeError naming the estimate and the limit, before anything is
 * allocated; ordinary compiles are unaffected and the limit is an option.
 */
import { describe, expect, it } from 'vitest';
import { Model } from '../lib/model.js';
import { estimateCompileBytes } from '../lib/memory.js';

describe('compile memory estimate', () => {
  it('an input shape of 16000×16000 is refused before compiling', async () => {
    const before = process.memoryUsage().rss;
    const err = await Model.fromArchitecture('v1', { alpha: 0.25, includeTop: false, inputShape: [16000, 16000, 3], backend: 'reference' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toMatch(/^Expected a compile needing at most 4294967296 bytes for batch 1 but received an estimate of \d+ bytes \(weights \d+ MiB, activations \d+ MiB per sample × 1\); lower the batch or the input size, or raise the maxCompileBytes option or MOBILENET_MAX_COMPILE_BYTES$/);
    expect(process.memoryUsage().rss - before).toBeLessThan(1024 ** 3);
  });

  it('batch 4096 is refused; the same model compiles batch 2, and maxCompileBytes moves the limit', async () => {
    const m = await Model.fromArchitecture('v1', { alpha: 0.25, includeTop: false, backend: 'reference' });
    try {
      await expect(m.runtime(4096)).rejects.toThrow(/^Expected a compile needing at most 4294967296 bytes for batch 4096/);
      const est = estimateCompileBytes(await m.loweredGraph(), 2);
      // Per sample the activations include at least the first conv's and the first pointwise conv's outputs (112×112×8 and 112×112×16 float32).
      expect(est.activationBytesPerSample).toBeGreaterThanOrEqual((112 * 112 * 8 + 112 * 112 * 16) * 4);
      // 218,544 float32 weights in the file; folding BatchNorm leaves one bias per layer instead of four statistics.
      expect(est.weightBytes).toBeGreaterThan(0.9 * 218_544 * 4);
      expect(est.weightBytes).toBeLessThanOrEqual(218_544 * 4);
      expect(estimateCompileBytes(await m.loweredGraph(), 4).total - est.total).toBe(2 * (est.activationBytesPerSample + est.ioBytesPerSample));
      expect(await m.runtime(2)).toBeDefined();
    } finally {
      m.dispose();
    }
    const small = await Model.fromArchitecture('v1', { alpha: 0.25, includeTop: false, backend: 'reference', maxCompileBytes: 1_000_000 }).catch((e: unknown) => e);
    expect(small).toBeInstanceOf(RangeError);
    expect((small as Error).message).toMatch(/at most 1000000 bytes for batch 1/);
  });

  it('alpha 40 is refused before its 27 GB of weights are allocated', async () => {
    const err = await Model.fromArchitecture('v1', { alpha: 40, backend: 'reference' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RangeError);
    expect((err as Error).message).toMatch(/^Expected a model of at most 1073741824 bytes of weights for v1 but received \d+ parameters/);
  });
});
