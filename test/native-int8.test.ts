/**
 * int8 (QS8) graphs on XNNPACK through the op schema and graph format v2,
 * against the TypeScript int8 reference (lib/backends/reference-qs8.ts), on
 * whichever XNNPACK build is loaded (CI runs this file on both):
 * - every op the MobileNets quantize, alone between a quantize and a
 *   dequantize convert: XNNPACK's output within one output quantization step
 *   of the reference's (ops the build has no int8 kernel for run in float32
 *   there, as `nativeFloatOps` says, or give the typed error naming the build);
 * - a whole int8 V1 with random weights: within a few steps of the reference;
 * - the real V1 0.25 quantized and run on XNNPACK keeps the float top-1 on
 *   the shared reference images.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { xnnpackInfo } from '../lib/binding.js';
import { QReferenceRuntime } from '../lib/backends/reference-qs8.js';
import { fromFloatGraph, toGraph, type QGraph, type QOp } from '../lib/quantize/qgraph.js';
import { calibrate } from '../lib/quantize/calibrate.js';
import { nativeFloatOps, quantizeGraph } from '../lib/quantize/quantize.js';
import { floatOpsFor, quantizeFloatGraph } from '../lib/quantize/pipeline.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { randomWeights } from '../lib/keras/random.js';
import type { KerasModelConfig } from '../lib/keras/types.js';
import { writeTfjs } from '../lib/formats/tfjs-write.js';
import { runCli } from './helpers/cli-io.js';
import { Model, loadModel } from '../lib/model.js';
import { quantizeModel } from '../lib/quantize/index.js';
import { classify } from '../lib/classify.js';
import { ImageDecodeError, QuantizationError } from '../lib/errors.js';
import { loadImageTensor } from '../lib/image.js';
import { mulberry32 } from '../lib/keras/random.js';
import { hasShared, shared } from './helpers/shared.js';

const info = xnnpackInfo();
const floatOps = nativeFloatOps(info.int8);
const BATCH = 2;

function random(n: number, rnd: () => number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
}

async function* samplesOf(xs: Float32Array[]): AsyncGenerator<Float32Array> {
  yield* xs;
}

/** The output scale of a graph whose output is a dequantize convert (else 0). */
function outputStep(q: QGraph): number {
  const last = q.nodes[q.nodes.length - 1]!;
  const t = q.tensors[last.inputs[0]!]!;
  return last.op === 'convert' && t.dtype === 'qint8' ? t.scale! : 0;
}

/** Runs q on XNNPACK and on the int8 reference (batch 2); largest |difference|. */
async function nativeVsReference(q: QGraph, x: Float32Array): Promise<{ worst: number; spread: number }> {
  const ref = new QReferenceRuntime(q, BATCH);
  const want = new Float32Array(ref.outputSize);
  ref.run(x, want);
  const g = toGraph(q);
  const rt = await compileGraph(g, { backend: 'native', batch: BATCH, threads: 1 });
  try {
    const got = await rt.run(x);
    expect(got.length).toBe(want.length);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    return { worst, spread: Math.max(...want) - Math.min(...want) };
  } finally {
    rt.dispose();
  }
}

describe(`int8 ops on XNNPACK (${info.source}) vs the TypeScript int8 reference`, () => {
  const rnd = mulberry32(23);
  const cases: Array<[string, [number, number, number], (g: Graph, x: Tensor) => Tensor]> = [
    ['conv2d 3x3 stride 2, asymmetric padding, relu6', [9, 11, 5], (g, x) => g.conv2d(x, { filter: random(7 * 9 * 5, rnd), bias: random(7, rnd), kernel: 3, outputChannels: 7, stride: 2, padding: [0, 1, 1, 0], outputMin: 0, outputMax: 6 })],
    ['conv2d grouped, dilation 2', [8, 8, 6], (g, x) => g.conv2d(x, { filter: random(6 * 9 * 2, rnd), bias: random(6, rnd), kernel: 3, outputChannels: 6, groups: 3, dilation: 2, padding: [2, 2, 2, 2] })],
    ['conv2d 1x1 without bias', [5, 4, 16], (g, x) => g.conv2d(x, { filter: random(8 * 16, rnd), kernel: 1, outputChannels: 8 })],
    ['depthwiseConv2d 3x3 stride 2, relu6', [10, 9, 8], (g, x) => g.depthwiseConv2d(x, { filter: random(9 * 8, rnd), bias: random(8, rnd), kernel: 3, stride: 2, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 })],
    ['depthwiseConv2d depth multiplier 2, 5x5', [7, 7, 3], (g, x) => g.depthwiseConv2d(x, { filter: random(25 * 6, rnd), bias: random(6, rnd), kernel: 5, depthMultiplier: 2, padding: [2, 2, 2, 2] })],
    ['fullyConnected', [1, 1, 24], (g, x) => g.fullyConnected(x, { weights: random(10 * 24, rnd), bias: random(10, rnd), outputChannels: 10 })],
    ['add of a broadcast constant, clamped', [6, 5, 4], (g, x) => g.add(x, g.constant(random(4, rnd, -2, 2), [1, 1, 4]), { outputMin: -0.5, outputMax: 1 })],
    ['multiply by a constant', [6, 5, 4], (g, x) => g.multiply(x, g.constant(random(4, rnd, -2, 2), [1, 1, 4]))],
    ['hardswish', [6, 5, 4], (g, x) => g.hardswish(x)],
    ['sigmoid', [3, 3, 8], (g, x) => g.sigmoid(x)],
    ['clamp', [3, 3, 8], (g, x) => g.clamp(x, -0.3, 0.4)],
    ['globalAveragePool', [7, 7, 12], (g, x) => g.globalAveragePool(x)],
    ['averagePool2d 3x3 stride 2 (float32 inside the int8 graph: no XNNPACK has it in int8)', [9, 9, 4], (g, x) => g.averagePool2d(x, { pool: 3, stride: 2 })],
    ['maxPool2d 2x2', [8, 6, 4], (g, x) => g.maxPool2d(x, { pool: 2 })],
    ['pad', [4, 5, 3], (g, x) => g.pad(x, { prePadding: [1, 0, 0], postPadding: [0, 2, 0] })],
    ['reshape', [4, 5, 3], (g, x) => g.reshape(x, [5, 12])],
  ];

  it.each(cases)('%s', async (_name, shape, build) => {
    const g = new Graph();
    const x = g.input(shape);
    g.output(build(g, x));
    const op = g.nodes[g.nodes.length - 1]!.op as QOp;
    const size = shape[0] * shape[1] * shape[2];
    const samples = [0, 1, 2].map(() => random(size, rnd, -1.5, 2));
    const fg = fromFloatGraph(g);
    const { ranges } = await calibrate(fg, samplesOf(samples));
    const q = quantizeGraph(fg, ranges, { floatHead: false, requireConvolution: false, floatOps });
    const kept = floatOps.has(op);
    // The op itself is int8 unless this build keeps it in float32.
    const node = q.nodes.find((n) => n.op === op)!;
    expect(q.tensors[node.output]!.dtype).toBe(kept ? 'float32' : 'qint8');
    const input = new Float32Array(BATCH * size);
    input.set(samples[1]!);
    input.set(random(size, rnd, -1.5, 2), size);
    const { worst, spread } = await nativeVsReference(q, input);
    if (kept) {
      // Same dequantized input on both sides, then the float32 op.
      expect(spread).toBeGreaterThan(0);
      expect(worst).toBeLessThanOrEqual(1e-5 * spread);
      return;
    }
    const step = outputStep(q);
    expect(step).toBeGreaterThan(0);
    expect(spread).toBeGreaterThan(step);
    expect(worst, `${op}: worst ${worst} vs step ${step}`).toBeLessThanOrEqual(step * (1 + 1e-4));
  });

  it.skipIf(info.int8.hardswish && info.int8.fullyConnected)('an int8 op this build lacks: typed error naming the build that has it', async () => {
    const g = new Graph();
    const x = g.input([1, 1, 8]);
    g.output(info.int8.hardswish ? g.fullyConnected(x, { weights: random(32, rnd), outputChannels: 4 }) : g.hardswish(x));
    const fg = fromFloatGraph(g);
    const { ranges } = await calibrate(fg, samplesOf([random(8, rnd, -3, 3)]));
    const q = quantizeGraph(fg, ranges, { floatHead: false, requireConvolution: false });
    await expect(compileGraph(toGraph(q), { backend: 'native', batch: 1 })).rejects.toThrow(/needs the vendored XNNPACK build \(Debian 12's libxnnpack-dev has no int8/);
  });
});

describe(`whole int8 networks on XNNPACK (${info.source})`, () => {
  it('V1 (random weights): XNNPACK within a few output steps of the int8 reference', async () => {
    const m = await Model.fromArchitecture('v1', { alpha: 0.25, inputShape: [64, 64, 3], classes: 10, backend: 'reference', seed: 5 });
    const rnd = mulberry32(3);
    const size = 64 * 64 * 3;
    const samples = [0, 1, 2, 3].map(() => random(size, rnd, -1, 1));
    const { graph: q } = await quantizeFloatGraph(await m.loweredGraph(), m.inputShape, m.preprocessing, { calibration: samples.slice(0, 3), floatHead: false }, 'native');
    m.dispose();
    expect(q.nodes.filter((n) => q.tensors[n.output]!.dtype === 'qint8').length).toBeGreaterThan(25);
    const input = new Float32Array(BATCH * size);
    input.set(samples[3]!);
    input.set(samples[0]!, size);
    const { worst, spread } = await nativeVsReference(q, input);
    // Per-node differences of at most one step (ties, fixed-point add) can add up along 28 layers.
    expect(spread).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(0.05 * spread);
  }, 120_000);

  it('floatLayers keeps the named layers in float32 (between converts); an unknown name is a QuantizationError', async () => {
    const m = await Model.fromArchitecture('v1', { alpha: 0.25, inputShape: [32, 32, 3], classes: 10, backend: 'reference', seed: 6 });
    const rnd = mulberry32(4);
    const size = 32 * 32 * 3;
    const samples = [0, 1, 2].map(() => random(size, rnd, -1, 1));
    const fg = await m.loweredGraph();
    const { graph: q } = await quantizeFloatGraph(fg, m.inputShape, m.preprocessing, { calibration: samples.slice(0, 2), floatLayers: ['conv1'] }, 'native');
    const conv1 = q.nodes.find((n) => n.name === 'conv1')!;
    expect(q.tensors[conv1.output]!.dtype).toBe('float32');
    expect(q.tensors[conv1.inputs[1]!]!.dtype).toBe('float32');
    // The next layer is int8 again.
    const next = q.nodes.find((n) => n.name === 'conv_dw_1')!;
    expect(q.tensors[next.output]!.dtype).toBe('qint8');
    const input = new Float32Array(BATCH * size);
    input.set(samples[2]!);
    input.set(samples[0]!, size);
    const { worst, spread } = await nativeVsReference(q, input);
    expect(worst).toBeLessThanOrEqual(0.05 * spread);
    await expect(quantizeFloatGraph(fg, m.inputShape, m.preprocessing, { calibration: samples, floatLayers: ['no_such_layer'] }, 'native')).rejects.toThrow(QuantizationError);
    m.dispose();
  }, 120_000);
});

describe.skipIf(!hasShared)(`real V1 0.25 int8 on XNNPACK (${info.source})`, () => {
  it('loadModel(path, { precision: int8, calibration }) keeps the float top-1 on the reference images', async () => {
    const dir = shared('images', 'imagenet-sample');
    // Calibration: 24 images from classes 600... (none of the reference images).
    const calibration = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort().slice(150, 174).map((f) => path.join(dir, f));
    const model = await loadModel(shared('models', 'mobilenet_v1_0.25_224', 'model.json'), { precision: 'int8', calibration, threads: 1 });
    try {
      expect(model.precision).toBe('int8');
      expect(model.backend).toBe('native');
      const ref = JSON.parse(fs.readFileSync(shared('reference', 'v1_0.25_224.outputs.json'), 'utf8')) as { images: Array<{ file: string; top5: number[] }> };
      expect(ref.images.length).toBe(9);
      for (const img of ref.images) {
        const file = img.file === 'cat.jpg' ? shared('images', 'cat.jpg') : shared('images', 'imagenet-sample', img.file);
        const x = await loadImageTensor(file, { width: 224, height: 224 });
        const p = await model.predict(x);
        let best = 0;
        for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
        expect(best, img.file).toBe(img.top5[0]);
      }
    } finally {
      model.dispose();
    }
  }, 180_000);

  it('a model saved by quantizeModel loads with loadModel and runs on XNNPACK: top-1 and scores as on the int8 reference', async () => {
    const dir = shared('images', 'imagenet-sample');
    const calibration = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort().slice(150, 158).map((f) => path.join(dir, f));
    const q = await quantizeModel(shared('models', 'mobilenet_v1_0.25_224', 'model.json'), { calibration, model: {} });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-native-int8-'));
    try {
      // quantizeModel quantizes for the loaded build by default (floatOpsFor('native')).
      await q.save(out);
      const model = await loadModel(out, { threads: 1 });
      expect(model.precision).toBe('int8');
      expect(model.quantization).toEqual(q.metadata.quantization);
      const x = await loadImageTensor(shared('images', 'cat.jpg'), { width: 224, height: 224 });
      const got = await model.predict(x);
      const want = await q.predict(x);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
      const top = (p: Float32Array): number => p.indexOf(Math.max(...p));
      expect(top(got)).toBe(top(want));
      expect(worst).toBeLessThan(0.05);
      // classify works on the loaded int8 model (labels from the default ImageNet list).
      const c = await classify(model, shared('images', 'cat.jpg'));
      expect(c[0]!.index).toBe(top(want));
      model.dispose();
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});

describe(`calibration on XNNPACK (${info.source})`, () => {
  it.each([
    ['v1', 'minmax'],
    ['v1', 'mse'],
    ['v3-small', 'minmax'],
  ] as const)('%s (%s): the float graph with every activation an extra output records the ranges and means of the TypeScript reference', async (arch, method) => {
    const m = await Model.fromArchitecture(arch, { ...(arch === 'v1' ? { alpha: 0.25 } : {}), inputShape: [48, 48, 3], classes: 10, backend: 'reference', seed: 8 });
    const fg = fromFloatGraph(await m.loweredGraph());
    m.dispose();
    const rnd = mulberry32(31);
    const samples = [0, 1, 2].map(() => random(48 * 48 * 3, rnd, -1, 1));
    const want = await calibrate(fg, samplesOf(samples), { method, backend: 'reference' });
    const got = await calibrate(fg, samplesOf(samples), { method, backend: 'native', threads: 1 });
    expect(got.images).toBe(3);
    // Every activation: the input and each node's output.
    const ids = [fg.input, ...new Set(fg.nodes.map((n) => n.output))].sort((a, b) => a - b);
    expect([...want.ranges.keys()].sort((a, b) => a - b)).toEqual(ids);
    expect([...got.ranges.keys()].sort((a, b) => a - b)).toEqual(ids);
    expect([...got.means.keys()].sort((a, b) => a - b)).toEqual(ids);
    for (const id of ids) {
      const a = want.ranges.get(id)!;
      const b = got.ranges.get(id)!;
      // float32 tolerance: XNNPACK sums in another order (and with FMA); relative to the tensor's range.
      const tol = 1e-4 * Math.max(a.max - a.min, 1e-3);
      const name = fg.tensors[id]!.name ?? String(id);
      expect(Math.abs(b.min - a.min), `${name} min`).toBeLessThanOrEqual(tol);
      expect(Math.abs(b.max - a.max), `${name} max`).toBeLessThanOrEqual(tol);
      const ma = want.means.get(id)!;
      const mb = got.means.get(id)!;
      expect(mb.length).toBe(ma.length);
      for (let c = 0; c < ma.length; c++) expect(Math.abs(mb[c]! - ma[c]!), `${name} mean[${c}]`).toBeLessThanOrEqual(tol);
    }
  }, 120_000);
});

describe(`ops this build (${info.source}) has no int8 kernel for: one choice for loadModel, quantizeModel and mobilenet quantize`, () => {
  // Conv → AveragePooling2D (no XNNPACK build has it in int8) → conv → pooling → Dense head.
  const layer = (cls: string, name: string, config: Record<string, unknown>, input?: string): KerasModelConfig['config']['layers'][number] => ({
    class_name: cls, name, config: { name, ...config }, inbound_nodes: input === undefined ? [] : [[[input, 0, 0, {}]]],
  });
  const config: KerasModelConfig = {
    class_name: 'Functional',
    config: {
      name: 'avgpool_net',
      layers: [
        layer('InputLayer', 'in', { batch_input_shape: [null, 12, 12, 3] }),
        layer('Conv2D', 'c1', { filters: 8, kernel_size: [3, 3], activation: 'relu' }, 'in'),
        layer('AveragePooling2D', 'ap', { pool_size: [2, 2], strides: [2, 2] }, 'c1'),
        layer('Conv2D', 'c2', { filters: 8, kernel_size: [1, 1], activation: 'relu' }, 'ap'),
        layer('GlobalAveragePooling2D', 'gap', {}, 'c2'),
        layer('Dense', 'fc', { units: 4, activation: 'softmax' }, 'gap'),
      ],
      input_layers: [['in', 0, 0]],
      output_layers: [['fc', 0, 0]],
    },
  };

  it('a model saved by mobilenet quantize / quantizeModel keeps them float32 and runs on XNNPACK as the loadModel int8 path does', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-int8-floatops-'));
    try {
      const modelDir = path.join(tmp, 'float');
      await writeTfjs(modelDir, config, randomWeights(analyzeModel(config), 7));
      const rnd = mulberry32(11);
      const samples = [0, 1, 2].map(() => random(12 * 12 * 3, rnd, -1, 1));
      // What the loaded build reports: averagePool2d is never int8 on XNNPACK (docs/int8.md's table).
      const want = ['averagePool2d'];
      expect([...floatOpsFor('native')].filter((op) => want.includes(op))).toEqual(want);
      const saved = path.join(tmp, 'api');
      const q = await quantizeModel(path.join(modelDir, 'model.json'), { calibration: samples });
      expect(q.metadata.quantization.floatOps).toEqual(want);
      await q.save(saved);
      // The CLI reads calibration image files: PNGs of the samples.
      const calDir = path.join(tmp, 'cal');
      fs.mkdirSync(calDir);
      const sharp = (await import('sharp')).default;
      for (const [i, x] of samples.entries()) {
        await sharp(Buffer.from(x.map((v) => Math.round((v + 1) * 127.5))), { raw: { width: 12, height: 12, channels: 3 } }).png().toFile(path.join(calDir, `${i}.png`));
      }
      const cliOut = path.join(tmp, 'cli');
      const r = await runCli(['quantize', path.join(modelDir, 'model.json'), cliOut, '--calibration', calDir], { cwd: tmp });
      expect(r.code, r.err).toBe(0);
      const viaLoad = await loadModel(path.join(modelDir, 'model.json'), { precision: 'int8', calibration: samples, threads: 1 });
      expect(viaLoad.quantization?.floatOps).toEqual(want);
      for (const dir of [saved, cliOut]) {
        const m = await loadModel(dir, { threads: 1 });
        try {
          expect(m.quantization?.floatOps, dir).toEqual(want);
          // Compiles and runs on this XNNPACK (an int8 average pooling would be an XnnpackError).
          const got = await m.predict(samples[0]!);
          expect(got.length).toBe(4);
          if (dir === saved) expect(Array.from(got)).toEqual(Array.from(await viaLoad.predict(samples[0]!)));
        } finally {
          m.dispose();
        }
      }
      viaLoad.dispose();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('int8 loadModel errors', () => {
  it('precision int8 without calibration, with zero images, with a non-image: typed errors', async () => {
    await expect(loadModel({ precision: 'int8' })).rejects.toThrow(QuantizationError);
    await expect(loadModel({ precision: 'int8' })).rejects.toThrow(/needs calibration images/);
    await expect(loadModel({ precision: 'int8', calibration: [] })).rejects.toThrow(QuantizationError);
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-int8-empty-'));
    const notImage = path.join(empty, 'x.jpg');
    try {
      await expect(loadModel({ precision: 'int8', calibration: empty })).rejects.toThrow(/holds no images/);
      fs.writeFileSync(notImage, 'not an image');
      const err = await loadModel({ precision: 'int8', calibration: [notImage] }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ImageDecodeError);
      expect((err as Error).message).toContain(notImage);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
    await expect(loadModel({ calibration: 'images/' })).rejects.toThrow(/Expected precision 'int8' with calibration/);
  });
});
