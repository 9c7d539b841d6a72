/**
 * Lowering Keras configs to the graph IR.
 *
 * References: (1) the unfused lowering (`fuse: false`: every BatchNorm a
 * standalone multiply+add, every activation its own node, ZeroPadding2D a pad
 * node, hard-swish as add/clamp/multiply) run on the reference backend, for
 * the fused one: max abs difference <= 1e-4 relative to the output magnitude
 * (float32 re-association of BN folding); (2) naive float64 loops written here
 * for small layers: within 1e-5.
 */
import { describe, expect, it } from 'vitest';
import { analyzeModel } from '../lib/keras/layers.js';
import { lowerModel, samePadding } from '../lib/keras/lower.js';
import { randomWeights, mulberry32 } from '../lib/keras/random.js';
import { buildArchitecture } from '../lib/architectures/index.js';
import { UnsupportedLayerError, WeightMismatchError } from '../lib/errors.js';
import type { Architecture, KerasLayerConfig, KerasModelConfig, NamedWeights } from '../lib/keras/types.js';
import type { Graph, NodeOf } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';

async function run(graph: Graph, input: Float32Array, batch = 1): Promise<Float32Array> {
  const rt = await compileGraph(graph, { backend: 'reference', batch });
  try {
    return rt.runSync(input);
  } finally {
    rt.dispose();
  }
}

function randomInput(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = lo + (hi - lo) * r();
  return x;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const x of a) m = Math.max(m, Math.abs(x));
  return m;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** A tiny functional config builder for hand-written test models. */
function model(name: string, layers: Array<[cls: string, name: string, config: Record<string, unknown>, inputs: string[], kwargs?: Record<string, unknown>]>): KerasModelConfig {
  const out: KerasLayerConfig[] = layers.map(([cls, n, config, inputs, kwargs]) => ({
    class_name: cls,
    name: n,
    config: { name: n, ...config },
    inbound_nodes: inputs.length === 0 ? [] : [inputs.map((i) => [i, 0, 0, kwargs ?? {}] as [string, number, number, Record<string, unknown>])],
  }));
  return {
    class_name: 'Functional',
    config: { name, layers: out, input_layers: [[layers[0]![1], 0, 0]], output_layers: [[layers[layers.length - 1]![1], 0, 0]] },
  };
}

describe('samePadding (TensorFlow "same": total split with the extra pixel at the end)', () => {
  it.each([
    [224, 3, 2, 1, [0, 1]],
    [225, 3, 2, 1, [1, 1]],
    [112, 3, 1, 1, [1, 1]],
    [7, 5, 1, 1, [2, 2]],
    [14, 5, 2, 1, [1, 2]],
    [15, 5, 2, 1, [2, 2]],
    [10, 1, 1, 1, [0, 0]],
    [10, 3, 1, 2, [2, 2]],
    [5, 7, 3, 1, [2, 3]],
  ])('in %i k %i s %i d %i → %j', (input, k, s, d, want) => {
    expect(samePadding(input, k, s, d)).toEqual(want);
  });
});

describe('fused vs unfused lowering on random weights (reference backend)', () => {
  const cases: Array<[Architecture, Record<string, unknown>, { folded: number; hardswish?: number; pads?: number }]> = [
    ['v1', { alpha: 0.25, inputShape: [64, 64, 3] }, { folded: 27, pads: 4 }],
    ['v2', { alpha: 0.35, inputShape: [64, 64, 3] }, { folded: 52, pads: 4 }],
    ['v3-small', { alpha: 0.75, inputShape: [64, 64, 3] }, { folded: 0, hardswish: 19, pads: 4 }],
    ['v3-large', { minimalistic: true, inputShape: [48, 48, 3] }, { folded: 0, hardswish: 0, pads: 4 }],
  ];
  for (const [arch, opts, want] of cases) {
    it(`${arch} ${JSON.stringify(opts)}: same logits within 1e-4 relative, fewer nodes`, async () => {
      const config = buildArchitecture(arch, { ...opts, classifierActivation: null, classes: 17 });
      const analysis = analyzeModel(config);
      const weights = randomWeights(analysis, 11);
      const fused = lowerModel(analysis, weights);
      const plain = lowerModel(analysis, weights, { fuse: false });
      const [h, w, c] = analysis.inputShape as [number, number, number];
      const v3 = arch.startsWith('v3');
      const x = randomInput(2 * h * w * c, 5, v3 ? 0 : -1, v3 ? 255 : 1);
      const a = await run(fused.graph, x, 2);
      const b = await run(plain.graph, x, 2);
      const scale = Math.max(1, maxAbs(b));
      expect(maxAbs(b)).toBeGreaterThan(0);
      expect(maxAbsDiff(a, b) / scale).toBeLessThanOrEqual(1e-4);
      // The two samples differ (the graph is not constant).
      expect(maxAbsDiff(a.subarray(0, 17), a.subarray(17))).toBeGreaterThan(1e-6);
      expect(fused.stats.nodes).toBeLessThan(plain.stats.nodes);
      expect(plain.stats.foldedAffine + plain.stats.fusedClamps + plain.stats.fusedPads + plain.stats.hardswish).toBe(0);
      if (want.folded > 0) expect(fused.stats.foldedAffine).toBe(want.folded);
      else expect(fused.stats.foldedAffine).toBeGreaterThan(30);
      if (want.hardswish !== undefined) expect(fused.stats.hardswish).toBe(want.hardswish);
      if (want.pads !== undefined) expect(fused.stats.fusedPads).toBe(want.pads);
      // No BatchNorm survives as a standalone multiply in V1/V2 (all follow convolutions).
      if (arch === 'v1' || arch === 'v2') expect(fused.graph.nodes.filter((n) => n.op === 'multiply').length).toBe(0);
      if (arch === 'v3-small') expect(fused.graph.nodes.filter((n) => n.op === 'hardswish').length).toBe(19);
    }, 60_000);
  }
});

describe('layer semantics against naive float64 loops', () => {
  it('Conv2D 3x3 stride 2 "same" (HWIO kernel, bias) → BatchNorm → ReLU(6): one conv node, matches naive loops', async () => {
    const H = 7;
    const W = 6;
    const C = 3;
    const F = 4;
    const cfg = model('tiny', [
      ['InputLayer', 'in', { batch_input_shape: [null, H, W, C] }, []],
      ['Conv2D', 'c', { filters: F, kernel_size: [3, 3], strides: [2, 2], padding: 'same', use_bias: true, activation: 'linear' }, ['in']],
      ['BatchNormalization', 'bn', { epsilon: 0.01, axis: -1, center: true, scale: true }, ['c']],
      ['ReLU', 'r', { max_value: 6, negative_slope: 0, threshold: 0 }, ['bn']],
    ]);
    const analysis = analyzeModel(cfg);
    const rnd = mulberry32(3);
    const u = (n: number, lo: number, hi: number): Float32Array => Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
    const weights: NamedWeights = new Map([
      ['c/kernel', { shape: [3, 3, C, F], data: u(9 * C * F, -1, 1) }],
      ['c/bias', { shape: [F], data: u(F, -1, 1) }],
      ['bn/gamma', { shape: [F], data: u(F, 0.5, 3) }],
      ['bn/beta', { shape: [F], data: u(F, -1, 1) }],
      ['bn/moving_mean', { shape: [F], data: u(F, -0.5, 0.5) }],
      ['bn/moving_variance', { shape: [F], data: u(F, 0.1, 2) }],
    ]);
    const lowered = lowerModel(analysis, weights);
    expect(lowered.graph.nodes.map((n) => n.op)).toEqual(['conv2d']);
    const node = (lowered.graph.nodes[0] as NodeOf<'conv2d'>).attrs;
    // H 7 → out 4: total (4-1)*2+3-7 = 2 → [1, 1]; W 6 → out 3: total 1 → [0, 1]. [top, right, bottom, left]
    expect(node.padding).toEqual([1, 1, 1, 0]);
    expect([node.outputMin, node.outputMax]).toEqual([0, 6]);
    const x = randomInput(H * W * C, 9, -2, 2);
    const got = await run(lowered.graph, x);
    const k = weights.get('c/kernel')!.data;
    const get = (name: string): Float32Array => weights.get(name)!.data;
    const OH = 4;
    const OW = 3;
    expect(got.length).toBe(OH * OW * F);
    let worst = 0;
    for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) for (let f = 0; f < F; f++) {
      let s = get('c/bias')[f] as number;
      for (let ky = 0; ky < 3; ky++) for (let kx = 0; kx < 3; kx++) {
        const iy = oy * 2 + ky - 1;
        const ix = ox * 2 + kx - 0;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
        for (let c = 0; c < C; c++) s += (x[(iy * W + ix) * C + c] as number) * (k[((ky * 3 + kx) * C + c) * F + f] as number);
      }
      let y = ((s - (get('bn/moving_mean')[f] as number)) / Math.sqrt((get('bn/moving_variance')[f] as number) + 0.01)) * (get('bn/gamma')[f] as number) + (get('bn/beta')[f] as number);
      y = Math.min(Math.max(y, 0), 6);
      worst = Math.max(worst, Math.abs(y - (got[(oy * OW + ox) * F + f] as number)));
    }
    expect(worst).toBeLessThanOrEqual(1e-5);
  });

  it('Dense [in,out] kernel with relu, Rescaling, Softmax: matches naive loops', async () => {
    const cfg = model('dense', [
      ['InputLayer', 'in', { batch_input_shape: [null, 5] }, []],
      ['Rescaling', 'rs', { scale: 0.5, offset: -1 }, ['in']],
      ['Dense', 'd1', { units: 3, activation: 'relu', use_bias: true }, ['rs']],
      ['Dense', 'd2', { units: 4, activation: 'linear', use_bias: false }, ['d1']],
      ['Softmax', 'sm', { axis: -1 }, ['d2']],
    ]);
    const analysis = analyzeModel(cfg);
    const k1 = Float32Array.from({ length: 15 }, (_, i) => ((i * 7) % 11) / 5 - 1);
    const b1 = Float32Array.of(0.1, -0.2, 0.3);
    const k2 = Float32Array.from({ length: 12 }, (_, i) => ((i * 5) % 7) / 3 - 1);
    const weights: NamedWeights = new Map([
      ['d1/kernel', { shape: [5, 3], data: k1 }],
      ['d1/bias', { shape: [3], data: b1 }],
      ['d2/kernel', { shape: [3, 4], data: k2 }],
    ]);
    const x = Float32Array.of(0, 1, 2, 3, 4);
    for (const fuse of [true, false]) {
      const got = await run(lowerModel(analysis, weights, { fuse }).graph, x);
      const r = [...x].map((v) => v * 0.5 - 1);
      const h = [0, 1, 2].map((o) => Math.max(0, (b1[o] as number) + r.reduce((s, v, i) => s + v * (k1[i * 3 + o] as number), 0)));
      const z = [0, 1, 2, 3].map((o) => h.reduce((s, v, i) => s + v * (k2[i * 4 + o] as number), 0));
      const e = z.map((v) => Math.exp(v - Math.max(...z)));
      const want = e.map((v) => v / e.reduce((a, b) => a + b, 0));
      expect(maxAbsDiff(got, Float32Array.from(want))).toBeLessThanOrEqual(1e-6);
    }
  });

  it('Subtract, Average and a sigmoid Dense: match naive loops', async () => {
    const cfg = model('merge', [
      ['InputLayer', 'in', { batch_input_shape: [null, 3] }, []],
      ['Dense', 'd1', { units: 2, activation: 'linear', use_bias: true }, ['in']],
      ['Dense', 'd2', { units: 2, activation: 'sigmoid', use_bias: false }, ['in']],
      ['Subtract', 'sub', {}, ['d1', 'd2']],
      ['Average', 'avg', {}, ['d1', 'd2', 'sub']],
    ]);
    const analysis = analyzeModel(cfg);
    const k1 = Float32Array.of(0.5, -1, 2, 0.25, -0.75, 1.5);
    const b1 = Float32Array.of(0.1, -0.3);
    const k2 = Float32Array.of(-1.5, 0.5, 0.3, 2, 1, -0.2);
    const weights: NamedWeights = new Map([
      ['d1/kernel', { shape: [3, 2], data: k1 }],
      ['d1/bias', { shape: [2], data: b1 }],
      ['d2/kernel', { shape: [3, 2], data: k2 }],
    ]);
    const x = Float32Array.of(0.3, -1.2, 0.8, 1, 0.5, -0.25);
    for (const fuse of [true, false]) {
      const got = await run(lowerModel(analysis, weights, { fuse }).graph, x, 2);
      const want: number[] = [];
      for (let s = 0; s < 2; s++) {
        const xi = [0, 1, 2].map((i) => x[s * 3 + i] as number);
        const d1 = [0, 1].map((o) => (b1[o] as number) + xi.reduce((a, v, i) => a + v * (k1[i * 2 + o] as number), 0));
        const d2 = [0, 1].map((o) => 1 / (1 + Math.exp(-xi.reduce((a, v, i) => a + v * (k2[i * 2 + o] as number), 0))));
        for (const o of [0, 1]) want.push((d1[o]! + d2[o]! + (d1[o]! - d2[o]!)) / 3);
      }
      expect(maxAbsDiff(got, Float32Array.from(want))).toBeLessThanOrEqual(1e-6);
    }
  });

  it('keeps BatchNorm standalone when the conv output has two consumers, and pads unfused when the pad feeds two layers', async () => {
    const cfg = model('branchy', [
      ['InputLayer', 'in', { batch_input_shape: [null, 8, 8, 4] }, []],
      ['ZeroPadding2D', 'pad', { padding: [[0, 1], [0, 1]] }, ['in']],
      ['DepthwiseConv2D', 'dw', { kernel_size: [3, 3], strides: [2, 2], padding: 'valid', depth_multiplier: 2, use_bias: false }, ['pad']],
      ['DepthwiseConv2D', 'dw2', { kernel_size: [3, 3], strides: [2, 2], padding: 'valid', depth_multiplier: 2, use_bias: true }, ['pad']],
      ['Add', 'sum', {}, ['dw', 'dw2']],
      ['BatchNormalization', 'bn', { epsilon: 0.001 }, ['dw']],
      ['Multiply', 'mul', {}, ['bn', 'sum']],
      ['Activation', 'hs', { activation: 'hard_swish' }, ['mul']],
      ['Activation', 'hsig', { activation: 'hard_sigmoid' }, ['hs']],
      ['GlobalAveragePooling2D', 'gap', { keepdims: true }, ['hsig']],
      ['TFOpLambda', 'lam', { function: 'math.multiply' }, ['gap'], { y: 2.5 }],
    ]);
    const analysis = analyzeModel(cfg);
    const weights = randomWeights(analysis, 4);
    const fused = lowerModel(analysis, weights);
    const plain = lowerModel(analysis, weights, { fuse: false });
    const ops = fused.graph.nodes.map((n) => n.op);
    expect(ops.filter((o) => o === 'pad').length).toBe(1);
    expect(fused.stats.fusedPads).toBe(0);
    // The standalone BatchNorm: a multiply by the per-channel scale then an add of the shift.
    const bnMul = fused.graph.nodes.find((n) => n.op === 'multiply' && n.name === 'bn');
    expect(bnMul).toBeDefined();
    expect(ops).toContain('hardswish');
    expect(fused.outputShape).toEqual([1, 1, 8]);
    const x = randomInput(2 * 8 * 8 * 4, 8, -3, 3);
    const a = await run(fused.graph, x, 2);
    const b = await run(plain.graph, x, 2);
    expect(maxAbsDiff(a, b) / Math.max(1, maxAbs(b))).toBeLessThanOrEqual(1e-5);
    // hard_sigmoid output in [0, 1], times 2.5.
    for (const v of a) expect(v >= 0 && v <= 2.5).toBe(true);
  });
});

describe('MaxPooling2D and GlobalMaxPooling2D against naive float64 loops', () => {
  /** Naive 'valid' max pooling of one [h, w, c] sample. */
  function naiveMaxPool(x: Float32Array, h: number, w: number, c: number, ph: number, pw: number, sh: number, sw: number): { y: number[]; oh: number; ow: number } {
    const oh = Math.floor((h - ph) / sh) + 1;
    const ow = Math.floor((w - pw) / sw) + 1;
    const y: number[] = [];
    for (let i = 0; i < oh; i++) {
      for (let j = 0; j < ow; j++) {
        for (let k = 0; k < c; k++) {
          let m = -Infinity;
          for (let a = 0; a < ph; a++) for (let b = 0; b < pw; b++) m = Math.max(m, x[((i * sh + a) * w + j * sw + b) * c + k] as number);
          y.push(m);
        }
      }
    }
    return { y, oh, ow };
  }

  it.each([
    [{ pool_size: [3, 3], strides: [2, 2], padding: 'valid' }, 3, 3, 2, 2],
    [{ pool_size: [2, 3], strides: null, padding: 'valid' }, 2, 3, 2, 3],
    [{ pool_size: 2, strides: 1 }, 2, 2, 1, 1],
    [{ pool_size: [2, 2], strides: [2, 2], padding: 'same' }, 2, 2, 2, 2], // "same" that pads nothing on 10x12
  ] as const)('MaxPooling2D %j on 10x12x3 → maxPool2d, then GlobalMaxPooling2D keepdims and not', async (cfg, ph, pw, sh, sw) => {
    const [h, w, c] = [10, 12, 3];
    const mk = (keepdims: boolean): KerasModelConfig =>
      model('mp', [
        ['InputLayer', 'in', { batch_input_shape: [null, h, w, c] }, []],
        ['MaxPooling2D', 'pool', { ...cfg, data_format: 'channels_last' }, ['in']],
        ['GlobalMaxPooling2D', 'gmp', { data_format: 'channels_last', keepdims }, ['pool']],
      ]);
    const first = model('mp1', [
      ['InputLayer', 'in', { batch_input_shape: [null, h, w, c] }, []],
      ['MaxPooling2D', 'pool', { ...cfg, data_format: 'channels_last' }, ['in']],
    ]);
    const batch = 2;
    const x = randomInput(batch * h * w * c, 21, -2, -0.5); // all negative: a max starting at 0 would show
    const pooled = lowerModel(analyzeModel(first), new Map());
    expect(pooled.graph.nodes.map((n) => n.op)).toEqual(['maxPool2d']);
    const got = await run(pooled.graph, x, batch);
    const per = got.length / batch;
    for (let b = 0; b < batch; b++) {
      const sample = x.subarray(b * h * w * c, (b + 1) * h * w * c);
      const { y, oh, ow } = naiveMaxPool(sample, h, w, c, ph, pw, sh, sw);
      expect(pooled.outputShape).toEqual([oh, ow, c]);
      expect(maxAbsDiff(got.subarray(b * per, (b + 1) * per), Float32Array.from(y))).toBe(0);
      const g = naiveMaxPool(Float32Array.from(y), oh, ow, c, oh, ow, 1, 1).y;
      for (const keepdims of [true, false]) {
        const lowered = lowerModel(analyzeModel(mk(keepdims)), new Map());
        expect(lowered.outputShape).toEqual(keepdims ? [1, 1, c] : [c]);
        expect(lowered.graph.nodes.filter((n) => n.op === 'maxPool2d')).toHaveLength(2);
        const out = await run(lowered.graph, x, batch);
        expect(maxAbsDiff(out.subarray(b * c, (b + 1) * c), Float32Array.from(g))).toBe(0);
      }
    }
  });

  it('GlobalMaxPooling2D of a 1x1 map and a 1x1/stride-1 MaxPooling2D lower to no pooling node', async () => {
    const cfg = model('tiny', [
      ['InputLayer', 'in', { batch_input_shape: [null, 1, 1, 4] }, []],
      ['MaxPooling2D', 'pool', { pool_size: [1, 1], strides: [1, 1], padding: 'valid' }, ['in']],
      ['ReLU', 'relu', {}, ['pool']],
      ['GlobalMaxPooling2D', 'gmp', { keepdims: false }, ['relu']],
    ]);
    const lowered = lowerModel(analyzeModel(cfg), new Map());
    expect(lowered.graph.nodes.some((n) => n.op === 'maxPool2d')).toBe(false);
    expect(lowered.outputShape).toEqual([4]);
    expect(Array.from(await run(lowered.graph, new Float32Array([-1, 2, -3, 4])))).toEqual([0, 2, 0, 4]);
  });

  it('MaxPooling2D padding "same" that pads is an UnsupportedLayerError naming the layer', () => {
    const cfg = model('samepad', [
      ['InputLayer', 'in', { batch_input_shape: [null, 7, 7, 2] }, []],
      ['MaxPooling2D', 'mp_same', { pool_size: [3, 3], strides: [2, 2], padding: 'same' }, ['in']],
    ]);
    let err: unknown;
    try {
      lowerModel(analyzeModel(cfg), new Map());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedLayerError);
    expect((err as Error).message).toBe('Unsupported layer \'mp_same\' of class MaxPooling2D: padding "same" that pads (only "valid", or "same" where it pads nothing)');
  });
});

describe('weight matching errors', () => {
  const cfg = (): KerasModelConfig => buildArchitecture('v1', { alpha: 0.25, inputShape: [32, 32, 3], classes: 10 });

  it('counts every missing, mis-shaped and extra weight in one WeightMismatchError (first few in the message, all in details)', () => {
    const analysis = analyzeModel(cfg());
    const weights = randomWeights(analysis, 1);
    weights.delete('conv_dw_3/depthwise_kernel');
    weights.delete('conv_pw_7_bn/moving_variance');
    weights.set('conv1/kernel', { shape: [3, 3, 3, 9], data: new Float32Array(3 * 3 * 3 * 9) });
    weights.set('conv_preds/bias', { shape: [11], data: new Float32Array(11) });
    weights.set('extra_layer/kernel', { shape: [2, 2], data: new Float32Array(4) });
    weights.set('conv1/bias', { shape: [8], data: new Float32Array(8) });
    let err: unknown;
    try {
      lowerModel(analysis, weights);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(WeightMismatchError);
    const msg = (err as Error).message;
    expect(msg).toContain("Weights do not match model 'mobilenet_0.25_32'");
    expect(msg).toContain('2 of the 137 weights it expects are missing (conv_dw_3/depthwise_kernel [3,3,32,1], conv_pw_7_bn/moving_variance [128])');
    expect(msg).toContain('2 of the 137 weights it expects have another shape in the file (conv1/kernel: expected [3,3,3,8] but the file has [3,3,3,9]; conv_preds/bias: expected [10] but the file has [11])');
    expect(msg).toContain('2 weights of the file are used by no layer (extra_layer/kernel [2,2], conv1/bias [8])');
    const d = (err as WeightMismatchError).details!;
    expect(d.expected).toBe(137);
    expect(d.missing).toEqual([{ name: 'conv_dw_3/depthwise_kernel', expected: [3, 3, 32, 1] }, { name: 'conv_pw_7_bn/moving_variance', expected: [128] }]);
    expect(d.misShaped.map((m) => [m.name, m.actual])).toEqual([['conv1/kernel', [3, 3, 3, 9]], ['conv_preds/bias', [11]]]);
    expect(d.extra.map((m) => m.name)).toEqual(['extra_layer/kernel', 'conv1/bias']);
  });

  it('a NaN or Infinity weight is an error naming the weight and index (allowNonFinite to accept)', () => {
    const analysis = analyzeModel(cfg());
    const weights = randomWeights(analysis, 1);
    weights.get('conv_pw_2/kernel')!.data[17] = Infinity;
    expect(() => lowerModel(analysis, weights)).toThrow(WeightMismatchError);
    expect(() => lowerModel(analysis, weights)).toThrow('Weight conv_pw_2/kernel holds a non-finite value (Infinity) at index 17');
    expect(lowerModel(analysis, weights, { allowNonFinite: true }).graph.nodes.length).toBeGreaterThan(10);
  });

  it('a weight the lowering needs but the analysis does not list (so matchWeights did not check it) is a WeightMismatchError naming the model file, layer and weight', () => {
    const c = model('lost', [
      ['InputLayer', 'in', { batch_input_shape: [null, 4, 4, 2] }, []],
      ['Conv2D', 'c', { filters: 3, kernel_size: [1, 1], use_bias: false }, ['in']],
    ]);
    const lowerError = (file?: string): WeightMismatchError => {
      const analysis = analyzeModel(c, file === undefined ? {} : { file });
      const weights = randomWeights(analysis, 2);
      // An analysis that no longer lists the kernel, and weights without it: matchWeights finds nothing missing.
      analysis.layers[1]!.weights = [];
      weights.delete('c/kernel');
      try {
        lowerModel(analysis, weights, file === undefined ? {} : { file });
      } catch (e) {
        expect(e).toBeInstanceOf(WeightMismatchError);
        return e as WeightMismatchError;
      }
      throw new Error('lowerModel did not throw');
    };
    const sentence = "Weights do not match model: layer 'c' (Conv2D) needs weight c/kernel, which is missing. Load the model with the weights file saved with it.";
    expect(lowerError('/models/lost/model.json').message).toBe(`/models/lost/model.json: ${sentence}`);
    expect(lowerError().message).toBe(sentence);
  });

  it('unsupported layer options name the layer and class', () => {
    const c = model('bad', [
      ['InputLayer', 'in', { batch_input_shape: [null, 4, 4, 2] }, []],
      ['ReLU', 'leaky', { max_value: null, negative_slope: 0.1, threshold: 0 }, ['in']],
    ]);
    let err: unknown;
    try {
      lowerModel(analyzeModel(c), new Map());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedLayerError);
    expect((err as Error).message).toMatch(/^Unsupported layer 'leaky' of class ReLU: negative_slope 0\.1/);
  });

  it('an option refused while lowering (not at analysis) names the model file given to lowerModel, and only then', () => {
    const c = model('late', [
      ['InputLayer', 'in', { batch_input_shape: [null, 4, 4, 2] }, []],
      ['ReLU', 'r', { max_value: 6 }, ['in']],
      ['Activation', 'act', { activation: 'relu' }, ['r']],
    ]);
    const lowerError = (edit: (a: ReturnType<typeof analyzeModel>) => void, file?: string): UnsupportedLayerError => {
      const analysis = analyzeModel(c, file === undefined ? {} : { file });
      edit(analysis);
      try {
        lowerModel(analysis, new Map(), file === undefined ? {} : { file });
      } catch (e) {
        expect(e).toBeInstanceOf(UnsupportedLayerError);
        return e as UnsupportedLayerError;
      }
      throw new Error('lowerModel did not throw');
    };
    // The registry's option checks (activations.ts, config.ts `fail`), reached only by lowering.
    const slope = (a: ReturnType<typeof analyzeModel>): void => {
      a.layers[1]!.config = { ...a.layers[1]!.config, negative_slope: 0.2 };
    };
    const withFile = lowerError(slope, '/models/late.json');
    expect(withFile.file).toBe('/models/late.json');
    expect(withFile.message).toBe("/models/late.json: Unsupported layer 'r' of class ReLU: negative_slope 0.2 (only 0)");
    const without = lowerError(slope);
    expect(without.file).toBeUndefined();
    expect(without.message).toBe("Unsupported layer 'r' of class ReLU: negative_slope 0.2 (only 0)");
    const act = lowerError((a) => {
      a.layers[2]!.config = { ...a.layers[2]!.config, activation: 'gelu' };
    }, '/models/late.json');
    expect(act.message).toBe('/models/late.json: Unsupported layer \'act\' of class Activation: activation "gelu"');
    // NodeBuilder.input: an inbound layer that was not lowered.
    const input = lowerError((a) => {
      a.layers[2]!.inbound = ['nope'];
    }, '/models/late.json');
    expect(input.file).toBe('/models/late.json');
    expect(input.message).toBe("/models/late.json: Unsupported layer 'act' of class Activation: input 0 (nope) is not available");
  });
});
