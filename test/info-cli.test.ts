/**
 * `mobilenet info`, run in-process through `main()` of lib/cli/index.ts with
 * fake io streams. References: Keras's published parameter totals and the
 * shared TF.js models' documented totals (../shared/README.md: 2,601,976 and
 * 475,544 float32 values).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli-io.js';
import { hasShared, shared } from './helpers/shared.js';
import { buildArchitecture } from '../lib/architectures/index.js';
import { analyzeModel } from '../lib/keras/layers.js';
import type { Architecture } from '../lib/keras/types.js';

const info = (...args: string[]): ReturnType<typeof runCli> => runCli(['info', ...args]);

async function infoJson(...args: string[]): Promise<Record<string, unknown>> {
  const r = await info(...args, '--json');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const lines = r.out.trim().split('\n');
  expect(lines.length).toBe(1);
  return JSON.parse(lines[0] as string) as Record<string, unknown>;
}

describe('mobilenet info (builder)', () => {
  // Multiply-adds: the library's analysis, itself checked against the lowered graph and the
  // published figures in test/architectures.test.ts.
  it.each([
    ['v1', 4_253_864],
    ['v2', 3_538_984],
    ['v3-large', 5_507_432],
    ['v3-small', 2_554_968],
  ] as const)('--arch %s --json: Keras total %i', async (arch, params) => {
    const j = await infoJson('--arch', arch);
    expect(j).toMatchObject({ format: 'builder', architecture: arch, parameters: params, inputShape: [224, 224, 3], outputShape: [1000], alpha: 1 });
    expect(j.macs).toBe(analyzeModel(buildArchitecture(arch as Architecture)).macs);
  });

  it('text output lists format, architecture, parameters, multiply-adds and shapes', async () => {
    const r = await info('--arch', 'v1');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^format:\s+builder$/m);
    expect(r.out).toMatch(/^architecture:\s+v1 \(alpha 1\)$/m);
    expect(r.out).toMatch(/^parameters:\s+4,253,864 \(trainable 4,231,976, non-trainable 21,888\)$/m);
    expect(r.out).toMatch(/^multiply-adds:\s+569M \(568,740,352\)$/m);
    expect(r.out).toMatch(/^input shape:\s+\[224, 224, 3\]$/m);
    expect(r.out).toMatch(/^output shape:\s+\[1000\]$/m);
  });

  it('options: alpha, depth multiplier, input size, minimalistic, no-top, pooling, classes', async () => {
    expect(await infoJson('--arch', 'v1', '--alpha', '0.75')).toMatchObject({ parameters: 2_601_976 });
    const dm = await infoJson('--arch', 'v1', '--alpha', '0.25', '--depth-multiplier', '2');
    expect(dm).toMatchObject({ depthMultiplier: 2 });
    expect(dm.parameters as number).toBeGreaterThan(475_544);
    expect(await infoJson('--arch', 'v2', '--input-size', '96', '--no-top')).toMatchObject({ inputShape: [96, 96, 3], outputShape: [3, 3, 1280], includeTop: false });
    expect(await infoJson('--arch', 'v2', '--input-size', '128', '--no-top', '--pooling', 'max')).toMatchObject({ outputShape: [1280] });
    expect(await infoJson('--arch', 'v3-large', '--minimalistic')).toMatchObject({ minimalistic: true, outputShape: [1000] });
    expect(await infoJson('--arch', 'v3-small', '--classes', '10')).toMatchObject({ outputShape: [10] });
  });

  it('--summary prints the per-layer table', async () => {
    const r = await info('--arch', 'v3-small', '--input-size', '64', '--summary');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Layer (type)');
    expect(r.out).toContain('expanded_conv/squeeze_excite/Mul (Multiply)');
    expect(r.out).toContain('Total params: 2,554,968');
  });

  it.each([
    [['--arch', 'v4'], 'Expected one of v1, v2, v3-small, v3-large for --arch but received "v4"'],
    [['--alpha', 'abc'], 'Expected positive number for --alpha but received "abc"'],
    [['--alpha=-1'], 'Expected positive number for --alpha but received "-1"'],
    [['--input-size', '12.5'], 'Expected positive integer for --input-size but received "12.5"'],
    [['--input-size', '16'], 'Expected input size of at least 32x32 for inputShape but received [16, 16, 3]'],
    [['--arch', 'v2', '--minimalistic'], '--minimalistic applies to --arch v3-small or --arch v3-large only, not to v2'],
    [['--arch', 'v2', '--depth-multiplier', '2'], '--depth-multiplier 2 applies to --arch v1 only, not to v2'],
    [['--pooling', 'avg'], '--pooling avg applies without the top only (--no-top)'],
    [['--bogus'], 'unknown option --bogus (--help lists the options)'],
    [['--sumary'], 'unknown option --sumary: did you mean --summary? (--help lists the options)'],
    [['a', 'b'], 'expected at most one weights file but received 2'],
  ])('usage error %j → exit 1', async (args, message) => {
    const r = await info(...args);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(message);
  });

  it('--help', async () => {
    const r = await info('--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Usage: mobilenet info');
  });

  it('a missing or non-model file is a clear error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'info-cli-'));
    try {
      const missing = await info(path.join(dir, 'nope.json'));
      expect(missing.code).toBe(1);
      expect(missing.err).toMatch(/ModelFormatError: .*nope\.json: file not found/);
      const text = path.join(dir, 'x.txt');
      fs.writeFileSync(text, 'hello');
      const bad = await info(text);
      expect(bad.code).toBe(1);
      expect(bad.err).toContain('unknown model format');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('mobilenet info on files written by lib/formats (.keras, full .h5, weights-only .h5)', () => {
  it('reads the architecture back from each', async () => {
    const { buildArchitecture } = await import('../lib/architectures/index.js');
    const { analyzeModel } = await import('../lib/keras/layers.js');
    const { randomWeights } = await import('../lib/keras/random.js');
    const { writeKeras3 } = await import('../lib/formats/keras3.js');
    const { writeH5 } = await import('../lib/formats/h5.js');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'info-cli-'));
    try {
      const v3 = buildArchitecture('v3-small', { alpha: 0.75, inputShape: [96, 96, 3] });
      const v3a = analyzeModel(v3);
      const v3w = randomWeights(v3a, 1);
      await writeKeras3(path.join(dir, 'v3.keras'), v3, v3w);
      await writeH5(path.join(dir, 'v3.h5'), v3, v3w);
      for (const [file, format] of [['v3.keras', 'keras3'], ['v3.h5', 'h5']]) {
        const j = await infoJson(path.join(dir, file));
        expect(j).toMatchObject({ format, architecture: 'v3-small', alpha: 0.75, parameters: v3a.totalParams, inputShape: [96, 96, 3], outputShape: [1000] });
      }
      const v2 = buildArchitecture('v2', { alpha: 0.5, includeTop: false });
      const v2a = analyzeModel(v2);
      await writeH5(path.join(dir, 'v2-weights.h5'), undefined, randomWeights(v2a, 2));
      expect(await infoJson(path.join(dir, 'v2-weights.h5'))).toMatchObject({
        format: 'h5', architecture: 'v2', alpha: 0.5, includeTop: false, parameters: v2a.totalParams, outputShape: [7, 7, 1280],
      });
      // --arch must agree with what the weights are.
      const wrong = await info(path.join(dir, 'v2-weights.h5'), '--arch', 'v1');
      expect(wrong.code).toBe(1);
      expect(wrong.err).toContain('v2-weights.h5 holds the weights of MobileNet v2 alpha 0.5 without top, which does not match --arch v1: leave these options out (they are read from the file) or pass --arch v2, --alpha 0.5, --no-top');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('mobilenet info on a fine-tuned model (nsfwjs MobileNetV2, Keras 2.2.4)', () => {
  it('recognizes the V2 backbone and reports the custom head', async () => {
    const { extractNsfwjsMobileNetV2 } = await import('./helpers/nsfwjs.js');
    const m = extractNsfwjsMobileNetV2();
    try {
      const j = await infoJson(m.modelJsonPath);
      expect(j).toMatchObject({ format: 'tfjs', architecture: 'v2', alpha: 1, includeTop: false, customHead: true, outputShape: [5], inputShape: [224, 224, 3] });
      // The manifest holds exactly the parameters counted.
      const total = m.modelJson.weightsManifest.flatMap((g) => g.weights as Array<{ shape: number[] }>).reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1), 0);
      expect(j.parameters).toBe(total);
      const r = await info(m.modelJsonPath);
      expect(r.out).toMatch(/^architecture:\s+v2 \(alpha 1, backbone with a custom head\)$/m);
    } finally {
      m.cleanup();
    }
  });
});

describe.skipIf(!hasShared)('mobilenet info (files in ../shared)', () => {
  it.each([
    ['mobilenet_v1_0.75_224', 0.75, 2_601_976, 2_585_560],
    ['mobilenet_v1_0.25_224', 0.25, 475_544, 470_072],
  ])('%s/model.json: architecture and totals from the config alone', async (dir, alpha, params, trainable) => {
    const file = shared('models', dir, 'model.json');
    const j = await infoJson(file);
    expect(j).toMatchObject({
      format: 'tfjs', architecture: 'v1', alpha, parameters: params, trainableParameters: trainable,
      inputShape: [224, 224, 3], outputShape: [1000], file, customHead: false,
    });
    // The directory works too, and the text form shows the same total.
    const r = await info(shared('models', dir));
    expect(r.code).toBe(0);
    expect(r.out).toContain(params.toLocaleString('en-US'));
    expect(r.out).toMatch(new RegExp(`^architecture:\\s+v1 \\(alpha ${alpha}\\)$`, 'm'));
  });

  it('model.json is read without its weight shards', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'info-cli-'));
    try {
      fs.copyFileSync(shared('models', 'mobilenet_v1_0.25_224', 'model.json'), path.join(dir, 'model.json'));
      const j = await infoJson(path.join(dir, 'model.json'), '--input-size', '160');
      expect(j).toMatchObject({ parameters: 475_544, inputShape: [160, 160, 3], outputShape: [1000] });
      expect(j.macs).toBe(analyzeModel(buildArchitecture('v1', { alpha: 0.25, inputShape: [160, 160, 3] })).macs);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('flags that describe a builder are refused for a file with a config', async () => {
    const r = await info(shared('models', 'mobilenet_v1_0.25_224', 'model.json'), '--alpha', '0.5');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`--alpha 0.5 does not apply to ${shared('models', 'mobilenet_v1_0.25_224', 'model.json')}: it carries its model config (MobileNet v1)`);
  });

  it('weights-only .h5: architecture recognized from its weight names and shapes', async () => {
    const file = shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5');
    const r = await info(file, '--json');
    expect(r.err).toBe('');
    const j = JSON.parse(r.out) as Record<string, unknown>;
    // 218,544 float32 values in the file (../shared/README.md).
    expect(j).toMatchObject({ format: 'h5', architecture: 'v1', alpha: 0.25, includeTop: false, parameters: 218_544, outputShape: [7, 7, 256] });
  });
});
