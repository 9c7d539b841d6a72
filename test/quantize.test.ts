/**
 * int8 post-training quantization (lib/quantize, lib/backends/reference-qs8.ts):
 * - every int8 op, alone and inside whole V1/V2/V3 networks, is within one
 *   output quantization step of the float32 reference kernel run on its own
 *   dequantized int8 inputs and weights (test/helpers/int8.ts);
 * - weights are per-channel symmetric int8 within half a step; bias scales
 *   are inputScale * weightScale;
 * - the quantized real V1 0.25 keeps the float top-1 on the shared reference
 *   images (calibrated on other images);
 * - save / load round trip, and corrupt files give ModelFormatError;
 * - calibration with no images, a non-image, or a model that cannot be
 *   quantized gives a typed error.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../lib/graph.js';
import { Model } from '../lib/model.js';
import { ImageDecodeError, ModelFormatError, QuantizationError } from '../lib/errors.js';
import { QReferenceRuntime, roundHalfEven, requantize, quantizeValue } from '../lib/backends/reference-qs8.js';
import { fromFloatGraph, toGraph, type QGraph } from '../lib/quantize/qgraph.js';
import { calibrate, mseRange } from '../lib/quantize/calibrate.js';
import { headStart, quantizeGraph, quantizeWeights, qint8Params } from '../lib/quantize/quantize.js';
import { loadQuantizedModel, quantizeModel, QuantizedModel } from '../lib/quantize/index.js';
import { loadImageTensor } from '../lib/image.js';
import { mulberry32 } from '../lib/keras/random.js';
import { runCli } from './helpers/cli-io.js';
import { checkInt8Nodes } from './helpers/int8.js';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-int8-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function random(n: number, rnd: () => number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
}

async function* samplesOf(xs: Float32Array[]): AsyncGenerator<Float32Array> {
  yield* xs;
}

/** Quantizes a one-input float graph calibrated on `samples`, every op int8 (no float head). */
async function quantizeSmall(g: Graph, samples: Float32Array[]): Promise<QGraph> {
  const fg = fromFloatGraph(g);
  const { ranges } = await calibrate(fg, samplesOf(samples));
  return quantizeGraph(fg, ranges, { floatHead: false, requireConvolution: false });
}

describe('int8 arithmetic helpers (XNNPACK fp32 requantization)', () => {
  it('rounds half to even like lrintf and saturates', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, -2.5001].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, -3]);
    expect(requantize(1000, 0.01, -5, -128, 127)).toBe(5);
    expect(requantize(1_000_000, 0.01, -5, -128, 127)).toBe(127);
    expect(requantize(-1_000_000, 0.01, -5, -128, 127)).toBe(-128);
    expect(requantize(1000, 0.01, -5, -128, 0)).toBe(0);
    expect(quantizeValue(0.5, 1 / (2 / 255), 0)).toBe(64);
    expect(quantizeValue(Infinity, 10, 3)).toBe(127);
  });

  it('qint8 parameters contain zero and map the range onto [-128, 127]', () => {
    const p = qint8Params({ min: 0, max: 6 });
    expect(p.zeroPoint).toBe(-128);
    expect(p.scale).toBeCloseTo(6 / 255, 7);
    const q = qint8Params({ min: -1, max: 1 });
    expect(q.scale * (127 - q.zeroPoint)).toBeCloseTo(1, 2);
    expect(q.scale * (-128 - q.zeroPoint)).toBeCloseTo(-1, 2);
    const r = qint8Params({ min: 2, max: 3 }); // widened to [0, 3]
    expect(r.zeroPoint).toBe(-128);
  });

  it('per-channel symmetric weights: within half a step of each channel, max |w| maps to 127', () => {
    const rnd = mulberry32(3);
    const w = random(6 * 3 * 3 * 4, rnd);
    for (let i = 0; i < 36; i++) w[2 * 36 + i]! *= 0.01; // a channel 100x smaller keeps its own scale
    for (const [shape, cd] of [[[6, 3, 3, 4], 0], [[1, 3, 3, 24], 3]] as const) {
      const { data, scales } = quantizeWeights(w, shape, cd);
      const channels = shape[cd];
      expect(scales.length).toBe(channels);
      const inner = cd === 0 ? w.length / channels : 1;
      let maxQ = 0;
      for (let i = 0; i < w.length; i++) {
        const c = cd === 0 ? Math.floor(i / inner) : i % channels;
        expect(Math.abs(data[i]! * scales[c]! - w[i]!)).toBeLessThanOrEqual(scales[c]! / 2 + 1e-9);
        maxQ = Math.max(maxQ, Math.abs(data[i]!));
      }
      expect(maxQ).toBe(127);
    }
    const { scales } = quantizeWeights(w, [6, 3, 3, 4], 0);
    expect(scales[2]! / scales[1]!).toBeLessThan(0.05);
  });
});

describe('int8 ops vs the float32 reference on their dequantized inputs (within one step)', () => {
  const rnd = mulberry32(7);
  const cases: Array<[string, [number, number, number], (g: Graph, x: Tensor) => Tensor]> = [
    ['conv2d 3x3 stride 2, asymmetric padding, relu6', [9, 11, 5], (g, x) => g.conv2d(x, { filter: random(7 * 9 * 5, rnd), bias: random(7, rnd), kernel: 3, outputChannels: 7, stride: 2, padding: [0, 1, 1, 0], outputMin: 0, outputMax: 6 })],
    ['conv2d 1x1 with groups and dilation 2 (3x3)', [8, 8, 6], (g, x) => g.conv2d(x, { filter: random(6 * 9 * 2, rnd), bias: random(6, rnd), kernel: 3, outputChannels: 6, groups: 3, dilation: 2, padding: [2, 2, 2, 2] })],
    ['conv2d 1x1 without bias', [5, 4, 16], (g, x) => g.conv2d(x, { filter: random(8 * 16, rnd), kernel: 1, outputChannels: 8 })],
    ['depthwiseConv2d 3x3 stride 2, relu6', [10, 9, 8], (g, x) => g.depthwiseConv2d(x, { filter: random(9 * 8, rnd), bias: random(8, rnd), kernel: 3, stride: 2, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 })],
    ['depthwiseConv2d depth multiplier 2, 5x5', [7, 7, 3], (g, x) => g.depthwiseConv2d(x, { filter: random(25 * 6, rnd), bias: random(6, rnd), kernel: 5, depthMultiplier: 2, padding: [2, 2, 2, 2] })],
    ['fullyConnected', [1, 1, 24], (g, x) => g.fullyConnected(x, { weights: random(10 * 24, rnd), bias: random(10, rnd), outputChannels: 10 })],
    ['add of two activations with different scales', [6, 5, 4], (g, x) => g.add(x, g.conv2d(x, { filter: random(16, rnd, -3, 3), kernel: 1, outputChannels: 4 }))],
    ['add of a broadcast constant, clamped', [6, 5, 4], (g, x) => g.add(x, g.constant(random(4, rnd, -2, 2), [1, 1, 4]), { outputMin: -0.5, outputMax: 1 })],
    ['multiply by a [1,1,C] activation (squeeze-excite)', [6, 5, 4], (g, x) => g.multiply(x, g.sigmoid(g.globalAveragePool(x)))],
    ['hardswish', [6, 5, 4], (g, x) => g.hardswish(g.conv2d(x, { filter: random(16, rnd, -4, 4), kernel: 1, outputChannels: 4 }))],
    ['sigmoid', [3, 3, 8], (g, x) => g.sigmoid(x)],
    ['clamp', [3, 3, 8], (g, x) => g.clamp(x, -0.3, 0.4)],
    ['globalAveragePool', [7, 7, 12], (g, x) => g.globalAveragePool(x)],
    ['maxPool2d 2x2', [8, 6, 4], (g, x) => g.maxPool2d(x, { pool: 2 })],
    ['pad then reshape', [4, 5, 3], (g, x) => g.reshape(g.pad(x, { prePadding: [1, 0, 0], postPadding: [0, 2, 0] }), [5 * 7 * 3])],
  ];

  it.each(cases)('%s', async (_name, shape, build) => {
    const g = new Graph();
    const x = g.input(shape);
    g.output(build(g, x));
    const size = shape[0] * shape[1] * shape[2];
    const samples = [0, 1, 2].map(() => random(size, rnd, -1.5, 2));
    const q = await quantizeSmall(g, samples);
    // Every non-convert node is int8.
    const ops = q.nodes.filter((n) => n.op !== 'convert');
    expect(ops.every((n) => q.tensors[n.output]!.dtype === 'qint8')).toBe(true);
    for (const s of [samples[0]!, random(size, rnd, -1.5, 2)]) {
      const checks = checkInt8Nodes(q, s);
      expect(checks.length).toBe(ops.length);
      for (const c of checks) expect(c.steps, `${c.node.op}`).toBeLessThanOrEqual(0.5 + 1e-3);
    }
    // And end to end the int8 graph stays near the float graph (input quantization included).
    const fg = fromFloatGraph(g);
    const fr = new QReferenceRuntime(fg, 1);
    const qr = new QReferenceRuntime(q, 1);
    const want = new Float32Array(fr.outputSize);
    const got = new Float32Array(qr.outputSize);
    fr.run(samples[1]!, want);
    qr.run(samples[1]!, got);
    let range = 0;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      range = Math.max(range, Math.abs(want[i]!));
      worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    }
    expect(range).toBeGreaterThan(0);
    expect(worst / range).toBeLessThan(0.08);
  });
});

describe('ops the op schema has only in float32', () => {
  it('averagePool2d stays float32 between a dequantize and a quantize convert, and the graph is one the schema accepts', async () => {
    const rnd = mulberry32(8);
    const g = new Graph();
    const x = g.input([9, 9, 4]);
    const c = g.conv2d(x, { filter: random(4 * 4, rnd), bias: random(4, rnd), kernel: 1, outputChannels: 4 });
    const p = g.averagePool2d(c, { pool: 3, stride: 2 });
    g.output(g.conv2d(p, { filter: random(4 * 4, rnd), kernel: 1, outputChannels: 4 }));
    const samples = [0, 1, 2].map(() => random(9 * 9 * 4, rnd, -1.5, 2));
    const q = await quantizeSmall(g, samples);
    const pool = q.nodes.find((n) => n.op === 'averagePool2d')!;
    expect(q.tensors[pool.output]!.dtype).toBe('float32');
    expect(q.nodes.find((n) => n.output === pool.inputs[0])!.op).toBe('convert');
    expect(q.nodes.filter((n) => n.op === 'conv2d').every((n) => q.tensors[n.output]!.dtype === 'qint8')).toBe(true);
    // The schema validates every node (the saved-model loader's check): no int8 average pooling.
    expect(() => toGraph(q)).not.toThrow();
    const bad = structuredClone(q);
    const badPool = bad.nodes.find((n) => n.op === 'averagePool2d')!;
    (badPool as unknown as { inputs: number[] }).inputs = [bad.nodes.find((n) => n.output === pool.inputs[0])!.inputs[0]!];
    expect(() => toGraph(bad)).toThrow(/dtype float32/);
  });
});

describe('activation ranges', () => {
  it('mse: a few outliers are clipped, a uniform range is kept', () => {
    const hist = new Float64Array(2048);
    // 10^6 values in [0, 1] and one at 6: the least error is near 2.6 (1.28 h² noise + (6 - h)² clipping).
    for (let i = 0; i < 341; i++) hist[i] = 1e6 / 341;
    hist[2047] = 1;
    const r = mseRange(hist, 0, 6);
    expect(r.min).toBe(0);
    expect(r.max).toBeLessThan(3);
    expect(r.max).toBeGreaterThanOrEqual(1.2);
    const uniform = new Float64Array(2048).fill(100);
    expect(mseRange(uniform, -1, 3)).toEqual({ min: -1, max: 3 });
  });

  it('mse calibration gives ranges inside the min/max ones and the same int8 kernels contract', async () => {
    const rnd = mulberry32(8);
    const g = new Graph();
    const x = g.input([8, 8, 8]);
    g.output(g.conv2d(x, { filter: random(8 * 9 * 8, rnd), bias: random(8, rnd), kernel: 3, outputChannels: 8, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 }));
    const samples = [0, 1, 2].map(() => random(512, rnd, -1, 1));
    const fg = fromFloatGraph(g);
    const a = await calibrate(fg, samplesOf(samples));
    const b = await calibrate(fg, samplesOf(samples), { method: 'mse' });
    for (const [id, r] of a.ranges) {
      const m = b.ranges.get(id)!;
      expect(m.min).toBeGreaterThanOrEqual(Math.min(r.min, 0) - 1e-9);
      expect(m.max).toBeLessThanOrEqual(Math.max(r.max, 0) + 1e-9);
    }
    const q = quantizeGraph(fg, b.ranges, { floatHead: false });
    for (const c of checkInt8Nodes(q, samples[0]!)) expect(c.steps).toBeLessThanOrEqual(0.5 + 1e-3);
  });
});

describe('bias correction', () => {
  it('removes the mean output shift of weight rounding (per channel, over the calibration inputs)', async () => {
    const rnd = mulberry32(21);
    const g = new Graph();
    const x = g.input([6, 6, 32]);
    // Coarse weights (one large value per channel sets a big scale) so rounding shifts each channel's mean.
    const filter = random(8 * 32, rnd, -0.05, 0.05);
    for (let o = 0; o < 8; o++) filter[o * 32] = 1;
    g.output(g.conv2d(x, { filter, bias: new Float32Array(8), kernel: 1, outputChannels: 8 }));
    const samples = [0, 1, 2, 3].map(() => random(6 * 6 * 32, rnd, 0.5, 1.5)); // inputs with a large mean
    const fg = fromFloatGraph(g);
    const { ranges, means } = await calibrate(fg, samplesOf(samples));
    expect(means.get(fg.input)!.length).toBe(32);
    const meanShift = (q: QGraph): number => {
      const fr = new QReferenceRuntime(fg, 1);
      const qr = new QReferenceRuntime(q, 1);
      const want = new Float32Array(fr.outputSize);
      const got = new Float32Array(qr.outputSize);
      const perChannel = new Float64Array(8);
      for (const s of samples) {
        fr.run(s, want);
        qr.run(s, got);
        for (let i = 0; i < got.length; i++) perChannel[i % 8]! += (got[i]! - want[i]!) / (36 * samples.length);
      }
      return perChannel.reduce((a, b) => a + Math.abs(b), 0) / 8;
    };
    const plain = meanShift(quantizeGraph(fg, ranges, { floatHead: false }));
    const corrected = meanShift(quantizeGraph(fg, ranges, { floatHead: false, biasCorrection: means }));
    expect(plain).toBeGreaterThan(0.004);
    console.log(`[int8] mean per-channel output shift: ${plain.toExponential(2)} without, ${corrected.toExponential(2)} with bias correction`);
    expect(corrected).toBeLessThan(plain / 3);
  });
});

describe('int8 whole networks (random weights): every int8 node within one step', () => {
  it.each([
    ['v1', { alpha: 0.25, inputShape: [64, 64, 3], classes: 10 }],
    ['v2', { alpha: 0.35, inputShape: [64, 64, 3], classes: 10 }],
    ['v3-small', { inputShape: [64, 64, 3], classes: 10 }],
    ['v3-large', { inputShape: [64, 64, 3], classes: 10, minimalistic: true }],
  ] as const)('%s %j', async (arch, opts) => {
    const m = await Model.fromArchitecture(arch, { ...opts, backend: 'reference', seed: 5 });
    const rnd = mulberry32(11);
    const size = 64 * 64 * 3;
    const pre = m.preprocessing === 'tf' ? [-1, 1] : [0, 255];
    const samples = [0, 1, 2, 3].map(() => random(size, rnd, pre[0], pre[1]));
    const q = await quantizeModel(m, { calibration: samples.slice(0, 3) });
    m.dispose();
    const d = q.describe();
    expect(d.int8Nodes).toBeGreaterThan(10);
    // The output (after softmax) is float32 either way.
    expect(q.graph.tensors[q.graph.output]!.dtype).toBe('float32');
    // V1 / V2's one-layer classifier head stays float32; V3's head (a hidden 1×1 conv, then the classifier) is int8.
    const v3 = arch.startsWith('v3');
    expect(q.metadata.quantization.floatHead).toBe(!v3);
    const headConvs = q.graph.nodes.slice(headStart(q.graph)).filter((n) => n.op === 'conv2d');
    expect(headConvs.map((n) => n.name)).toEqual(v3 ? ['Conv_2', 'Logits'] : arch === 'v1' ? ['conv_preds'] : []);
    for (const n of headConvs) expect(q.graph.tensors[n.output]!.dtype, n.name).toBe(v3 ? 'qint8' : 'float32');
    const checks = checkInt8Nodes(q.graph, samples[3]!);
    const worst = checks.reduce((a, c) => (c.steps > a.steps ? c : a));
    expect(worst.steps, `${worst.node.name} (${worst.node.op})`).toBeLessThanOrEqual(0.5 + 1e-3);
    const ops = new Set(checks.map((c) => c.node.op));
    if (arch.startsWith('v3')) {
      expect(ops.has('hardswish') || arch === 'v3-large').toBe(true);
      expect(ops.has('multiply')).toBe(true);
    }
    if (arch === 'v2') expect(ops.has('add')).toBe(true);
  }, 120_000);
});

describe.skipIf(!hasShared)('int8 V1 0.25 (real weights)', () => {
  const modelJson = (): string => shared('models', 'mobilenet_v1_0.25_224', 'model.json');
  let q: QuantizedModel;
  const calibrationFiles = (): string[] => {
    // 24 images from classes 600..., none of the 8 reference images (classes 0..28) nor cat.jpg.
    const dir = shared('images', 'imagenet-sample');
    return fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort().slice(150, 174).map((f) => path.join(dir, f));
  };

  it('keeps the float top-1 on the 9 reference images (calibrated on 24 other images)', async () => {
    q = await quantizeModel(modelJson(), { calibration: calibrationFiles() });
    expect(q.metadata.quantization.calibrationImages).toBe(24);
    const ref = JSON.parse(fs.readFileSync(shared('reference', 'v1_0.25_224.outputs.json'), 'utf8')) as { images: Array<{ file: string; top5: number[] }> };
    expect(ref.images.length).toBe(9);
    for (const img of ref.images) {
      const file = img.file === 'cat.jpg' ? shared('images', 'cat.jpg') : shared('images', 'imagenet-sample', img.file);
      const x = await loadImageTensor(file, { width: 224, height: 224 });
      const p = await q.predict(x);
      let best = 0;
      for (let i = 1; i < p.length; i++) if (p[i]! > p[best]!) best = i;
      expect(best, img.file).toBe(img.top5[0]);
    }
    // Every int8 node of the real network is within one step on a real image.
    const x = await loadImageTensor(shared('images', 'cat.jpg'), { width: 224, height: 224 });
    const checks = checkInt8Nodes(q.graph, x);
    expect(checks.length).toBe(27);
    for (const c of checks) expect(c.steps, c.node.name).toBeLessThanOrEqual(0.5 + 1e-3);
  }, 180_000);

  it('saves and loads back: the same graph and the same outputs', async () => {
    const dir = path.join(tmp, 'v1-025-int8');
    await q.save(dir);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.json', 'weights.bin']);
    // int8 body weights; the float32 classifier (256 x 1000 of 470k parameters) dominates what is left.
    const floatBytes = fs.readdirSync(path.dirname(modelJson())).filter((f) => f.includes('shard')).reduce((s, f) => s + fs.statSync(path.join(path.dirname(modelJson()), f)).size, 0);
    expect(fs.statSync(path.join(dir, 'weights.bin')).size).toBeLessThan(floatBytes * 0.7);
    const back = await loadQuantizedModel(dir);
    expect(back.metadata).toEqual(q.metadata);
    expect(back.graph.nodes).toEqual(q.graph.nodes);
    const x = await loadImageTensor(shared('images', 'cat.jpg'), { width: 224, height: 224 });
    expect(await back.predict(x)).toEqual(await q.predict(x));
    // Batch of 2 gives each sample's batch-1 result.
    const two = new Float32Array(x.length * 2);
    two.set(x);
    two.set(x.map((v) => -v), x.length);
    const y2 = back.predictSync(two, { batch: 2 });
    expect(y2.subarray(0, 1000)).toEqual(back.predictSync(x));
    expect(y2.subarray(1000)).toEqual(back.predictSync(x.map((v) => -v)));
  });

  it('corrupt or inconsistent saved files give ModelFormatError naming the file', async () => {
    const dir = path.join(tmp, 'v1-025-int8');
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- edits arbitrary fields of the saved JSON
    type Json = any;
    const copy = (name: string, edit: (json: Json, weights: Buffer) => void): string => {
      const d = path.join(tmp, name);
      fs.mkdirSync(d, { recursive: true });
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as Json;
      const w = fs.readFileSync(path.join(dir, 'weights.bin'));
      edit(json, w);
      fs.writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
      fs.writeFileSync(path.join(d, 'weights.bin'), w);
      return d;
    };
    const expectFormatError = async (d: string, text: RegExp): Promise<void> => {
      const err = await loadQuantizedModel(d).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message).toMatch(text);
      expect((err as Error).message).toContain(d);
    };
    await expectFormatError(copy('flipped', (_j, w) => (w[100] ^= 1)), /sha256/);
    await expectFormatError(copy('version', (j) => (j.formatVersion = 2)), /format version 2/);
    await expectFormatError(copy('zp', (j) => (j.graph.tensors.find((t: Json) => t.dtype === 'qint8').zeroPoint = 300)), /zero point/);
    await expectFormatError(copy('range', (j) => (j.graph.tensors.find((t: Json) => t.data).data[0] = 1e9)), /does not hold/);
    await expectFormatError(copy('shape', (j) => (j.graph.tensors[j.graph.nodes[3].output].shape = [7, 7, 7])), /computes shape|needs/);
    await expectFormatError(copy('order', (j) => j.graph.nodes.reverse()), /before it is computed|not a new activation/);
    await expectFormatError(copy('op', (j) => (j.graph.nodes[2].op = 'lstm')), /known op/);
    // A NaN in the float32 classifier weights, the hash recomputed (found by fuzzing: it loaded, and every output was NaN).
    await expectFormatError(
      copy('nan', (j, w) => {
        const id = j.graph.tensors.findIndex((t: Json) => t.dtype === 'float32' && t.data);
        const at = j.graph.tensors[id].data[0] + 4 * 7;
        w.writeFloatLE(NaN, at);
        j.weights.sha256 = createHash('sha256').update(w).digest('hex');
      }),
      /tensor \d+ data holds a non-finite value \(NaN\) at index 7/,
    );
    fs.mkdirSync(path.join(tmp, 'notjson'));
    fs.writeFileSync(path.join(tmp, 'notjson', 'model.json'), '{"format": "mobilenet-xnnpack-int8", ');
    await expectFormatError(path.join(tmp, 'notjson'), /JSON/);
  });

  it('mobilenet quantize writes the same model as the API (same images)', async () => {
    const calDir = path.join(tmp, 'cal');
    fs.mkdirSync(calDir);
    for (const f of calibrationFiles().slice(0, 3)) fs.copyFileSync(f, path.join(calDir, path.basename(f)));
    fs.writeFileSync(path.join(calDir, 'notes.txt'), 'not an image, skipped by extension');
    const out = path.join(tmp, 'cli-int8');
    const r = await runCli(['quantize', modelJson(), out, '--calibration', calDir, '--images', '2'], { cwd: repoRoot });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/2 calibration images/);
    const cli = await loadQuantizedModel(out);
    const api = await quantizeModel(modelJson(), { calibration: calibrationFiles().slice(0, 2) });
    expect(cli.graph.tensors.map((t) => [t.scale, t.zeroPoint])).toEqual(api.graph.tensors.map((t) => [t.scale, t.zeroPoint]));
    const x = await loadImageTensor(shared('images', 'cat.jpg'), { width: 224, height: 224 });
    expect(await cli.predict(x)).toEqual(await api.predict(x));
  }, 120_000);
});

describe('int8 calibration errors', () => {
  const small = async (): Promise<Model> => Model.fromArchitecture('v1', { alpha: 0.25, inputShape: [32, 32, 3], classes: 4, backend: 'reference' });

  it('no calibration images: QuantizationError', async () => {
    const m = await small();
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty, { recursive: true });
    fs.writeFileSync(path.join(empty, 'labels.json'), '{}');
    for (const calibration of [empty, [], [] as Float32Array[]]) {
      const err = await quantizeModel(m, { calibration }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QuantizationError);
      expect((err as Error).message).toMatch(/no (calibration )?images|holds no images/);
    }
    const missing = await quantizeModel(m, { calibration: path.join(tmp, 'nope') }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(QuantizationError);
    expect((missing as Error).message).toContain('does not exist');
    const wrong = await quantizeModel(m, { calibration: [new Float32Array(10)] }).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(QuantizationError);
    expect((wrong as Error).message).toContain('3072');
    m.dispose();
  });

  it('a non-image: ImageDecodeError naming the file', async () => {
    const m = await small();
    const fake = path.join(tmp, 'fake.jpg');
    fs.writeFileSync(fake, 'this is text, not a JPEG');
    const err = await quantizeModel(m, { calibration: [fake] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageDecodeError);
    expect((err as Error).message).toContain(fake);
    m.dispose();
  });

  it('a model with no convolution (Dense only) cannot be quantized: QuantizationError before any image is read', async () => {
    const config = {
      class_name: 'Functional',
      config: {
        name: 'dense_only',
        layers: [
          { class_name: 'InputLayer', name: 'in', config: { name: 'in', batch_input_shape: [null, 8, 8, 3] }, inbound_nodes: [] },
          { class_name: 'Flatten', name: 'flat', config: { name: 'flat' }, inbound_nodes: [[['in', 0, 0, {}]]] },
          { class_name: 'Dense', name: 'd', config: { name: 'd', units: 4, activation: 'softmax', use_bias: true }, inbound_nodes: [[['flat', 0, 0, {}]]] },
        ],
        input_layers: [['in', 0, 0]],
        output_layers: [['d', 0, 0]],
      },
    };
    const weights = new Map([
      ['d/kernel', { shape: [192, 4], data: new Float32Array(192 * 4).fill(0.01) }],
      ['d/bias', { shape: [4], data: new Float32Array(4) }],
    ]);
    const m = await Model.fromConfig(config as never, weights, { backend: 'reference', preprocessing: 'none' });
    const err = await quantizeModel(m, { calibration: path.join(tmp, 'does-not-matter') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QuantizationError);
    expect((err as Error).message).toMatch(/no convolution/);
    m.dispose();
  });

  it('an op with no int8 kernel inside the network: QuantizationError naming the node', async () => {
    const g = new Graph();
    const x = g.input([4, 4, 3]);
    const c = g.conv2d(x, { filter: new Float32Array(4 * 3).fill(0.1), kernel: 1, outputChannels: 4 });
    const s = g.softmax(c, 'mid_softmax');
    g.output(g.conv2d(s, { filter: new Float32Array(16).fill(0.1), kernel: 1, outputChannels: 4 }));
    const fg = fromFloatGraph(g);
    expect(() => quantizeGraph(fg, new Map())).toThrow(QuantizationError);
    expect(() => quantizeGraph(fg, new Map())).toThrow(/mid_softmax/);
  });
});
