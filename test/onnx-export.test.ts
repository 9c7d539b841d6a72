/**
 * The ONNX exporter (bench/onnx/export.ts): the exported model loads in
 * onnxruntime-node and computes what our own runtime computes.
 *
 * Oracle: the pure-TypeScript reference backend on the same Graph IR
 * (float64 accumulation), compared with onnxruntime's CPU provider with a
 * stated tolerance of 1e-4 max abs difference (plus a relative bound on
 * large logits). The graphs are small and random-weight, so this runs in a
 * couple of seconds.
 */
import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { Graph, type Tensor } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { exportOnnx, graphToOnnxModel, ohwiToOihw, depthwiseToOihw } from '../bench/onnx/export.js';
import { mulberry32 as rng } from '../lib/keras/random.js';

const TOL = 1e-4;

function randomArray(n: number, r: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

/**
 * A graph touching every op the exporter lowers: explicit pad, strided conv
 * with asymmetric padding and fused ReLU6, depthwise (multiplier 2, dilation),
 * grouped conv, hardswish, a squeeze-excite block (GAP → 1×1 convs →
 * hard-sigmoid as add/clamp/multiply with constants → broadcast multiply),
 * residual add, a per-channel constant add, clamp, average pool, a reshape of
 * a non-1×1 tensor, fully connected on rank 2 and rank 1, sigmoid, softmax.
 */
function buildGraph(seed: number): Graph {
  const r = rng(seed);
  const g = new Graph();
  const x0 = g.input([17, 19, 3], 'image');
  const c = (x: Tensor, cin: number, cout: number, k: number, opts: Partial<Parameters<Graph['conv2d']>[1]> = {}): Tensor =>
    g.conv2d(x, {
      filter: randomArray((cout * k * k * cin) / (opts.groups ?? 1), r, 0.5),
      bias: randomArray(cout, r, 0.1),
      kernel: k,
      outputChannels: cout,
      ...opts,
    });
  let x = g.pad(x0, { prePadding: [1, 0, 0], postPadding: [0, 2, 0], value: 0.25 });
  x = c(x, 3, 8, 3, { stride: 2, padding: [0, 1, 1, 0], outputMin: 0, outputMax: 6, name: 'stem' });
  const dw = g.depthwiseConv2d(x, {
    filter: randomArray(3 * 3 * 16, r, 0.5), bias: randomArray(16, r, 0.1), kernel: 3, depthMultiplier: 2,
    dilation: 2, padding: [2, 2, 2, 2], outputMin: -1, name: 'dw',
  });
  const grouped = c(dw, 16, 8, 1, { groups: 2, name: 'grouped' });
  const hs = g.hardswish(grouped);
  // squeeze-excite with hard-sigmoid = relu6(x + 3) / 6
  const s = g.globalAveragePool(hs);
  const s1 = c(s, 8, 4, 1, { outputMin: 0 });
  const s2 = c(s1, 4, 8, 1);
  const hsig = g.multiply(g.clamp(g.add(s2, g.constant(new Float32Array([3]), [1])), 0, 6), g.constant(new Float32Array([1 / 6]), [1]));
  const se = g.multiply(hs, hsig);
  let y = g.add(se, x, { name: 'residual' });
  y = g.add(y, g.constant(randomArray(8, r), [8]));
  y = g.clamp(y, -2, 3);
  const pooled = g.averagePool2d(y, { pool: 2, stride: 2 }); // [4, 5, 8]
  const flat = g.reshape(pooled, [20, 8]);
  const fc1 = g.fullyConnected(flat, { weights: randomArray(6 * 8, r), bias: randomArray(6, r), outputChannels: 6, outputMax: 2 });
  const sig = g.sigmoid(fc1);
  const v = g.reshape(sig, [120]);
  const fc2 = g.fullyConnected(v, { weights: randomArray(10 * 120, r, 0.3), bias: randomArray(10, r), outputChannels: 10 });
  g.output(g.softmax(fc2, 'probs'));
  return g;
}

/** A second graph whose output stays spatial (checks the final NCHW→NHWC step) and has no bias anywhere. */
function buildSpatialGraph(seed: number): Graph {
  const r = rng(seed);
  const g = new Graph();
  const x = g.input([9, 7, 4]);
  const a = g.conv2d(x, { filter: randomArray(5 * 3 * 3 * 4, r), kernel: 3, outputChannels: 5, padding: [1, 1, 1, 1], outputMin: 0 });
  const b = g.depthwiseConv2d(a, { filter: randomArray(5 * 5 * 5, r), kernel: 5, stride: 2, padding: [1, 2, 1, 2] });
  g.output(g.multiply(b, g.constant(randomArray(4 * 5, r), [4, 1, 5])));
  return g;
}

async function ortRun(bytes: Uint8Array, input: Float32Array, dims: number[], threads = 1): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const out = await session.run({ [session.inputNames[0] as string]: new ort.Tensor('float32', input, dims) });
    return out[session.outputNames[0] as string]!.data as Float32Array;
  } finally {
    await session.release();
  }
}

async function oursRun(g: Graph, input: Float32Array, batch: number): Promise<Float32Array> {
  const rt = await compileGraph(g, { backend: 'reference', batch });
  try {
    return rt.runSync(input);
  } finally {
    rt.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe('ONNX export: layout helpers', () => {
  it('OHWI → OIHW moves every element to the right place', () => {
    const [o, kh, kw, i] = [2, 3, 2, 4];
    const f = Float32Array.from({ length: o * kh * kw * i }, (_, k) => k);
    const t = ohwiToOihw(f, o, kh, kw, i);
    for (let a = 0; a < o; a++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let c = 0; c < i; c++) {
      expect(t[((a * i + c) * kh + y) * kw + x]).toBe(f[((a * kh + y) * kw + x) * i + c]);
    }
  });
  it('depthwise [1, kh, kw, Cm] → [Cm, 1, kh, kw]', () => {
    const f = Float32Array.from({ length: 3 * 2 * 5 }, (_, k) => k);
    const t = depthwiseToOihw(f, 3, 2, 5);
    expect(t[(4 * 3 + 2) * 2 + 1]).toBe(f[(2 * 2 + 1) * 5 + 4]);
    expect([...t].sort((p, q) => p - q)).toEqual([...f]);
  });
});

describe('ONNX export: onnxruntime-node matches the reference backend', () => {
  it('every op, batch 1 and batch 3 with a dynamic batch dimension', async () => {
    const g = buildGraph(7);
    const bytes = exportOnnx(g);
    const model = graphToOnnxModel(g);
    const ops = new Set(model.graph!.node!.map((n) => n.opType));
    for (const op of ['Conv', 'Clip', 'Relu', 'HardSwish', 'GlobalAveragePool', 'AveragePool', 'Mul', 'Add', 'Pad', 'Reshape', 'Transpose', 'MatMul', 'Gemm', 'Sigmoid', 'Softmax']) {
      expect(ops, op).toContain(op);
    }
    // The NHWC input is transposed to NCHW once (after the Pad) and back once (for the reshape of a 4×5 map);
    // 1×1 maps switch layout with a Reshape.
    const perms = model.graph!.node!.filter((n) => n.opType === 'Transpose').map((n) => (n.attribute![0]!.ints as number[]).join(','));
    expect(perms.sort()).toEqual(['0,2,3,1', '0,3,1,2']);
    // Round trip through the protobuf decoder.
    const decoded = onnxProto.onnx.ModelProto.decode(bytes);
    expect(Number(decoded.opsetImport[0]!.version ?? 0)).toBe(14);
    expect(decoded.graph?.initializer?.length).toBe(model.graph!.initializer!.length);

    for (const batch of [1, 3]) {
      const input = randomArray(batch * 17 * 19 * 3, rng(100 + batch), 2);
      const ours = await oursRun(g, input, batch);
      const theirs = await ortRun(bytes, input, [batch, 17, 19, 3]);
      expect(theirs.length).toBe(batch * 10);
      const diff = maxAbsDiff(ours, theirs);
      expect(diff, `batch ${batch}`).toBeLessThanOrEqual(TOL);
      // The softmax rows sum to 1 and are not degenerate (so the comparison means something).
      for (let b = 0; b < batch; b++) {
        const row = theirs.subarray(b * 10, b * 10 + 10);
        expect(row.reduce((p, q) => p + q, 0)).toBeCloseTo(1, 5);
        expect(Math.max(...row)).toBeLessThan(0.999);
      }
    }
  });

  it('spatial output, no biases, constant broadcast [4, 1, 5], fixed batch 2, 2 threads', async () => {
    const g = buildSpatialGraph(11);
    const bytes = exportOnnx(g, { batch: 2, inputName: 'x', outputName: 'y' });
    const input = randomArray(2 * 9 * 7 * 4, rng(5));
    const ours = await oursRun(g, input, 2);
    const theirs = await ortRun(bytes, input, [2, 9, 7, 4], 2);
    const scale = Math.max(...ours.map(Math.abs));
    expect(scale).toBeGreaterThan(0.5);
    expect(maxAbsDiff(ours, theirs)).toBeLessThanOrEqual(TOL * Math.max(1, scale));
  });
});

describe('ONNX export: NCHW input layout', () => {
  it("inputLayout 'nchw' takes [N, C, H, W], has no Transpose, and matches on the transposed input", async () => {
    const g = buildGraph(3);
    const model = graphToOnnxModel(g, { inputLayout: 'nchw' });
    const dims = model.graph!.input![0]!.type!.tensorType!.shape!.dim!.slice(1).map((d) => Number(d.dimValue));
    expect(dims).toEqual([3, 17, 19]);
    // The Pad runs on NCHW directly; the only Transpose left is the one before the reshape of a 4×5 map.
    expect(model.graph!.node!.filter((n) => n.opType === 'Transpose')).toHaveLength(1);
    const [h, w, c] = [17, 19, 3];
    const nhwc = randomArray(2 * h * w * c, rng(9), 2);
    const nchw = new Float32Array(nhwc.length);
    for (let b = 0; b < 2; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) {
      nchw[((b * c + k) * h + y) * w + x] = nhwc[((b * h + y) * w + x) * c + k] as number;
    }
    const ours = await oursRun(g, nhwc, 2);
    const theirs = await ortRun(exportOnnx(g, { inputLayout: 'nchw' }), nchw, [2, c, h, w]);
    expect(maxAbsDiff(ours, theirs)).toBeLessThanOrEqual(TOL);
    expect(() => exportOnnx(g, { inputLayout: 'hwc' as 'nchw' })).toThrow(RangeError);
  });
});

describe('ONNX export: bad input', () => {
  it('rejects incomplete graphs and bad options with typed errors', () => {
    const g = new Graph();
    g.input([4, 4, 3]);
    expect(() => exportOnnx(g)).toThrow(RangeError);
    const full = buildSpatialGraph(1);
    expect(() => exportOnnx(full, { batch: 0 })).toThrow(new RangeError('Expected positive integer for batch but received 0'));
    expect(() => exportOnnx(full, { batch: '2' as unknown as number })).toThrow(TypeError);
    expect(() => exportOnnx(full, { inputName: '' })).toThrow(TypeError);
    expect(() => exportOnnx(full, { inputName: 'a', outputName: 'a' })).toThrow(RangeError);
    expect(() => exportOnnx(full, null as unknown as object)).toThrow(TypeError);
    full.dispose();
    expect(() => exportOnnx(full)).toThrow(/disposed/);
  });
});
