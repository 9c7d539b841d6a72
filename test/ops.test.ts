/**
 * Op parity: every graph op on the native backend (XNNPACK) against the
 * pure-TypeScript reference backend (itself checked by test/reference.test.ts),
 * on randomized shapes from a seeded PRNG: odd sizes, stride 2, asymmetric
 * padding, dilation, groups, depth multiplier 2, batch 3, fused min/max;
 * plus a small chained graph. Every case runs with threads: 1 and threads: 2.
 *
 * Tolerance: max |native - reference| <= 1e-4 * max |reference| over the
 * whole output (float32 XNNPACK kernels vs float64-accumulated reference).
 *
 * This file needs the native addon (build/Release/*.node); it does not skip
 * when the addon is missing: op parity is a release requirement.
 */
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { mulberry32 as prng } from '../lib/keras/random.js';

const REL_TOL = 1e-4;

type Rand = () => number;

function uniform(n: number, rand: Rand, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

/** Weights scaled by 1/sqrt(fanIn) so that outputs stay O(1). */
const weights = (n: number, fanIn: number, rand: Rand): Float32Array => uniform(n, rand, 1 / Math.sqrt(fanIn));

interface Case {
  name: string;
  /** Per-sample input shape. */
  input: number[];
  batch: number;
  /** Input values are uniform in [-inputScale, inputScale]. */
  inputScale?: number;
  build: (g: Graph, x: Tensor, rand: Rand) => Tensor;
}

interface Conv {
  k: number | [number, number];
  oc: number;
  s?: number | [number, number];
  d?: number | [number, number];
  pad?: [number, number, number, number];
  groups?: number;
  min?: number;
  max?: number;
  bias?: boolean;
}

function conv(g: Graph, x: Tensor, rand: Rand, o: Conv): Tensor {
  const [kh, kw] = typeof o.k === 'number' ? [o.k, o.k] : o.k;
  const groups = o.groups ?? 1;
  const gic = x.shape[2]! / groups;
  return g.conv2d(x, {
    filter: weights(o.oc * kh * kw * gic, kh * kw * gic, rand),
    bias: o.bias === false ? null : uniform(o.oc, rand, 0.5),
    kernel: [kh, kw],
    outputChannels: o.oc,
    ...(o.s === undefined ? {} : { stride: o.s }),
    ...(o.d === undefined ? {} : { dilation: o.d }),
    ...(o.pad === undefined ? {} : { padding: o.pad }),
    groups,
    ...(o.min === undefined ? {} : { outputMin: o.min }),
    ...(o.max === undefined ? {} : { outputMax: o.max }),
  });
}

interface Dw {
  k: number | [number, number];
  m?: number;
  s?: number | [number, number];
  d?: number | [number, number];
  pad?: [number, number, number, number];
  min?: number;
  max?: number;
  bias?: boolean;
}

function dw(g: Graph, x: Tensor, rand: Rand, o: Dw): Tensor {
  const [kh, kw] = typeof o.k === 'number' ? [o.k, o.k] : o.k;
  const m = o.m ?? 1;
  const outC = x.shape[2]! * m;
  return g.depthwiseConv2d(x, {
    filter: weights(kh * kw * outC, kh * kw, rand),
    bias: o.bias === false ? null : uniform(outC, rand, 0.5),
    kernel: [kh, kw],
    depthMultiplier: m,
    ...(o.s === undefined ? {} : { stride: o.s }),
    ...(o.d === undefined ? {} : { dilation: o.d }),
    ...(o.pad === undefined ? {} : { padding: o.pad }),
    ...(o.min === undefined ? {} : { outputMin: o.min }),
    ...(o.max === undefined ? {} : { outputMax: o.max }),
  });
}

function fc(g: Graph, x: Tensor, rand: Rand, out: number, o: { min?: number; max?: number; bias?: boolean } = {}): Tensor {
  const inC = x.shape[x.shape.length - 1]!;
  return g.fullyConnected(x, {
    weights: weights(out * inC, inC, rand),
    bias: o.bias === false ? null : uniform(out, rand, 0.5),
    outputChannels: out,
    ...(o.min === undefined ? {} : { outputMin: o.min }),
    ...(o.max === undefined ? {} : { outputMax: o.max }),
  });
}

const cases: Case[] = [
  // conv2d
  { name: 'conv2d 3x3 stride 1 "same", odd 7x9x3', input: [7, 9, 3], batch: 1, build: (g, x, r) => conv(g, x, r, { k: 3, oc: 5, pad: [1, 1, 1, 1] }) },
  { name: 'conv2d 3x3 stride 2 asymmetric [0,1,1,0], ReLU6, batch 3', input: [10, 11, 4], batch: 3, build: (g, x, r) => conv(g, x, r, { k: 3, oc: 8, s: 2, pad: [0, 1, 1, 0], min: 0, max: 6 }) },
  { name: 'conv2d 1x1 pointwise 17 -> 23, no bias', input: [5, 5, 17], batch: 1, build: (g, x, r) => conv(g, x, r, { k: 1, oc: 23, bias: false }) },
  { name: 'conv2d 3x3 dilation 2, padding 2', input: [9, 8, 3], batch: 1, build: (g, x, r) => conv(g, x, r, { k: 3, oc: 4, d: 2, pad: [2, 2, 2, 2] }) },
  { name: 'conv2d dilation [1,2] stride [2,1] asymmetric, batch 3', input: [9, 10, 2], batch: 3, build: (g, x, r) => conv(g, x, r, { k: [2, 3], oc: 3, s: [2, 1], d: [1, 2], pad: [0, 2, 1, 1] }) },
  { name: 'conv2d groups 2, 3x3, padding [1,0,2,1]', input: [6, 7, 8], batch: 1, build: (g, x, r) => conv(g, x, r, { k: 3, oc: 12, groups: 2, pad: [1, 0, 2, 1] }) },
  { name: 'conv2d groups 4 stride 2, batch 3', input: [8, 9, 8], batch: 3, build: (g, x, r) => conv(g, x, r, { k: 3, oc: 8, groups: 4, s: 2, pad: [1, 1, 1, 1] }) },
  { name: 'conv2d kernel [1,3] fused min -0.5 max 0.5', input: [6, 6, 5], batch: 1, build: (g, x, r) => conv(g, x, r, { k: [1, 3], oc: 7, min: -0.5, max: 0.5, pad: [0, 1, 0, 1] }) },
  { name: 'conv2d 7x7 stride 3, valid', input: [15, 13, 3], batch: 1, build: (g, x, r) => conv(g, x, r, { k: 7, oc: 6, s: 3 }) },
  { name: 'conv2d 3x3 64 -> 96 channels', input: [6, 5, 64], batch: 1, build: (g, x, r) => conv(g, x, r, { k: 3, oc: 96, pad: [1, 1, 1, 1], min: 0 }) },
  // depthwiseConv2d
  { name: 'depthwise 3x3 stride 1 "same", ReLU6', input: [8, 8, 16], batch: 1, build: (g, x, r) => dw(g, x, r, { k: 3, pad: [1, 1, 1, 1], min: 0, max: 6 }) },
  { name: 'depthwise 3x3 stride 2 [0,1,1,0] odd 9x7x5, batch 3', input: [9, 7, 5], batch: 3, build: (g, x, r) => dw(g, x, r, { k: 3, s: 2, pad: [0, 1, 1, 0] }) },
  { name: 'depthwise multiplier 2, 5x5, padding 2', input: [7, 6, 3], batch: 1, build: (g, x, r) => dw(g, x, r, { k: 5, m: 2, pad: [2, 2, 2, 2] }) },
  { name: 'depthwise multiplier 2 stride 2 no bias, batch 3', input: [8, 9, 4], batch: 3, build: (g, x, r) => dw(g, x, r, { k: 3, m: 2, s: 2, pad: [1, 1, 1, 1], bias: false }) },
  { name: 'depthwise dilation 2', input: [9, 9, 6], batch: 1, build: (g, x, r) => dw(g, x, r, { k: 3, d: 2, pad: [2, 2, 2, 2] }) },
  { name: 'depthwise 5x5 stride 2 correct_pad [1,2,2,1], fused -1..1', input: [10, 10, 7], batch: 1, build: (g, x, r) => dw(g, x, r, { k: 5, s: 2, pad: [1, 2, 2, 1], min: -1, max: 1 }) },
  // add / multiply
  { name: 'add same-shape activations, fused ReLU', input: [5, 4, 6], batch: 3, build: (g, x, r) => g.add(conv(g, x, r, { k: 1, oc: 6 }), x, { outputMin: 0 }) },
  { name: 'add unbatched constant [C]', input: [5, 3, 7], batch: 3, build: (g, x, r) => g.add(x, g.constant(uniform(7, r), [7])) },
  { name: 'add unbatched constant [1,1,C] on the left', input: [4, 5, 6], batch: 1, build: (g, x, r) => g.add(g.constant(uniform(6, r), [1, 1, 6]), x) },
  { name: 'add scalar constant [1] with fused -0.25..0.25', input: [3, 3, 4], batch: 3, build: (g, x, r) => g.add(x, g.constant(uniform(1, r), [1]), { outputMin: -0.25, outputMax: 0.25 }) },
  { name: 'add [H,W,C] + constant [H,1,1]', input: [3, 4, 5], batch: 1, build: (g, x, r) => g.add(x, g.constant(uniform(3, r), [3, 1, 1])) },
  { name: 'add unbatched constant of the full per-sample shape [H,W,C], batch 3', input: [3, 4, 5], batch: 3, build: (g, x, r) => g.add(x, g.constant(uniform(60, r), [3, 4, 5])) },
  { name: 'add batched [C] to batched [H,W,C] (per-sample broadcast), batch 3', input: [4, 3, 6], batch: 3, build: (g, x) => g.add(x, g.reshape(g.globalAveragePool(x), [6])) },
  { name: 'multiply by batched [1,1,C] (squeeze-excite), batch 3', input: [5, 6, 8], batch: 3, build: (g, x) => g.multiply(x, g.sigmoid(g.globalAveragePool(x))) },
  { name: 'multiply by constant [C], fused max 0.3', input: [4, 4, 5], batch: 1, build: (g, x, r) => g.multiply(x, g.constant(uniform(5, r), [5]), { outputMax: 0.3 }) },
  { name: 'multiply same-shape activations', input: [3, 5, 4], batch: 3, build: (g, x) => g.multiply(x, g.hardswish(x)) },
  // unary
  { name: 'clamp 0..6 (ReLU6)', input: [4, 5, 6], batch: 3, inputScale: 8, build: (g, x) => g.clamp(x, 0, 6) },
  { name: 'clamp -1.5..0.5', input: [37], batch: 1, inputScale: 3, build: (g, x) => g.clamp(x, -1.5, 0.5) },
  { name: 'hardswish on [-6, 6]', input: [5, 7, 9], batch: 3, inputScale: 6, build: (g, x) => g.hardswish(x) },
  { name: 'sigmoid on [-10, 10]', input: [4, 4, 11], batch: 1, inputScale: 10, build: (g, x) => g.sigmoid(x) },
  { name: 'clamp -inf..0.5 (one-sided)', input: [6, 7], batch: 3, inputScale: 2, build: (g, x) => g.clamp(x, -Infinity, 0.5) },
  { name: 'sigmoid saturating on [-40, 40]', input: [64], batch: 1, inputScale: 40, build: (g, x) => g.sigmoid(x) },
  { name: 'softmax with logits in [-80, 80] (stability)', input: [4, 33], batch: 3, inputScale: 80, build: (g, x) => g.softmax(x) },
  { name: 'softmax over 1000 logits, batch 3', input: [1000], batch: 3, inputScale: 8, build: (g, x) => g.softmax(x) },
  { name: 'softmax over the last dim of [3,5,7]', input: [3, 5, 7], batch: 1, inputScale: 5, build: (g, x) => g.softmax(x) },
  // pooling
  { name: 'globalAveragePool 7x5x64, batch 3', input: [7, 5, 64], batch: 3, build: (g, x) => g.globalAveragePool(x) },
  { name: 'globalAveragePool 1x1 (identity)', input: [1, 1, 9], batch: 1, build: (g, x) => g.globalAveragePool(x) },
  { name: 'averagePool2d 2x2 stride 2 on odd 7x9', input: [7, 9, 5], batch: 3, build: (g, x) => g.averagePool2d(x, { pool: 2 }) },
  { name: 'averagePool2d 3x3 stride 1', input: [6, 6, 4], batch: 1, build: (g, x) => g.averagePool2d(x, { pool: 3, stride: 1 }) },
  { name: 'averagePool2d [2,3] stride [1,2]', input: [5, 8, 3], batch: 1, build: (g, x) => g.averagePool2d(x, { pool: [2, 3], stride: [1, 2] }) },
  // fullyConnected
  { name: 'fullyConnected [C] 50 -> 17', input: [50], batch: 1, build: (g, x, r) => fc(g, x, r, 17) },
  { name: 'fullyConnected [1,1,C] 64 -> 10, batch 3', input: [1, 1, 64], batch: 3, build: (g, x, r) => fc(g, x, r, 10) },
  { name: 'fullyConnected per position [3,4,C], no bias, fused 0..0.5', input: [3, 4, 12], batch: 1, build: (g, x, r) => fc(g, x, r, 5, { bias: false, min: 0, max: 0.5 }) },
  // pad / reshape
  { name: 'pad spatial pre [1,2] post [0,3] then conv 3x3', input: [5, 4, 3], batch: 3, build: (g, x, r) => conv(g, g.pad(x, { prePadding: [1, 2, 0], postPadding: [0, 3, 0] }), r, { k: 3, oc: 4 }) },
  { name: 'pad with value -1.5', input: [3, 4, 2], batch: 1, build: (g, x) => g.pad(x, { prePadding: [2, 0, 0], postPadding: [1, 1, 0], value: -1.5 }) },
  { name: 'pad channels [0,0,1]/[0,0,3]', input: [2, 3, 5], batch: 3, build: (g, x) => g.pad(x, { prePadding: [0, 0, 1], postPadding: [0, 0, 3] }) },
  { name: 'reshape [4,4,2] -> [32] then fullyConnected', input: [4, 4, 2], batch: 3, build: (g, x, r) => fc(g, g.reshape(g.clamp(x, -0.5, 0.5), [32]), r, 6) },
  { name: 'reshape [2,3,4] -> [6,4] then softmax', input: [2, 3, 4], batch: 1, inputScale: 4, build: (g, x) => g.softmax(g.reshape(x, [6, 4])) },
  // edge shapes
  { name: 'pad rank 1 and rank 2 per-sample tensors', input: [3, 4], batch: 3, build: (g, x) => g.reshape(g.pad(g.reshape(g.pad(x, { prePadding: [1, 0], postPadding: [0, 2], value: 3 }), [24]), { prePadding: [2], postPadding: [1] }), [27]) },
  { name: 'pad rank 4 per-sample tensor', input: [2, 3, 2, 2], batch: 1, build: (g, x) => g.pad(x, { prePadding: [1, 0, 1, 0], postPadding: [0, 1, 0, 1], value: -0.5 }) },
  { name: 'reshape to per-sample rank 5 then clamp', input: [2, 3, 4], batch: 3, build: (g, x) => g.clamp(g.reshape(x, [1, 2, 3, 2, 2]), -0.5, 0.5) },
  { name: 'softmax over the last dim of a rank-4 per-sample tensor', input: [2, 3, 4, 5], batch: 3, inputScale: 4, build: (g, x) => g.softmax(x) },
  { name: 'averagePool2d stride larger than the pool', input: [9, 9, 2], batch: 3, build: (g, x) => g.averagePool2d(x, { pool: 2, stride: 3 }) },
  { name: 'conv2d 5x5 kernel larger than the 2x2 input (padding 2)', input: [2, 2, 3], batch: 3, build: (g, x, r) => conv(g, x, r, { k: 5, oc: 4, pad: [2, 2, 2, 2] }) },
  { name: 'depthwise 5x5 kernel larger than the 2x3 input (padding 2)', input: [2, 3, 4], batch: 1, build: (g, x, r) => dw(g, x, r, { k: 5, pad: [2, 2, 2, 2] }) },
  { name: 'depthwise multiplier 3', input: [5, 5, 2], batch: 3, build: (g, x, r) => dw(g, x, r, { k: 3, m: 3 }) },
  { name: 'depthwise stride 3 dilation 2 asymmetric', input: [11, 10, 3], batch: 1, build: (g, x, r) => dw(g, x, r, { k: 3, s: 3, d: 2, pad: [1, 0, 2, 1] }) },
  { name: 'conv2d 1x1 stride 2 on a 1x1 input', input: [1, 1, 4], batch: 3, build: (g, x, r) => conv(g, x, r, { k: 1, oc: 3, s: 2 }) },
  { name: 'add batched [W,C] to batched [H,W,C]', input: [3, 4, 5], batch: 3, build: (g, x) => g.add(g.reshape(g.averagePool2d(x, { pool: [3, 1] }), [4, 5]), x) },
  { name: 'multiply by constant [H,1,C]', input: [3, 4, 5], batch: 3, build: (g, x, r) => g.multiply(x, g.constant(uniform(15, r), [3, 1, 5])) },
  { name: 'graph output is a reshape of the input', input: [2, 3], batch: 3, build: (g, x) => g.reshape(x, [6]) },
  { name: 'graph output is the input', input: [2, 3], batch: 3, build: (_g, x) => x },
  // a small chained graph
  {
    name: 'chain conv -> depthwise -> pointwise -> add -> GAP -> FC -> softmax',
    input: [13, 11, 3],
    batch: 3,
    build: (g, x, r) => {
      const c1 = conv(g, x, r, { k: 3, oc: 8, s: 2, pad: [0, 1, 1, 0], min: 0, max: 6 });
      const d1 = dw(g, c1, r, { k: 3, pad: [1, 1, 1, 1], min: 0, max: 6 });
      const p1 = conv(g, d1, r, { k: 1, oc: 8 });
      const sum = g.add(p1, c1);
      const gap = g.globalAveragePool(g.hardswish(sum));
      const logits = fc(g, g.reshape(gap, [8]), r, 10);
      return g.softmax(logits);
    },
  },
  {
    name: 'MobileNet V1-shaped stack (alpha 0.25) at 96x96, batch 2',
    input: [96, 96, 3],
    batch: 2,
    build: (g, x, r) => {
      let t = conv(g, x, r, { k: 3, oc: 8, s: 2, pad: [0, 1, 1, 0], min: 0, max: 6, bias: true });
      for (const [oc, st] of [[16, 1], [32, 2], [32, 1], [64, 2], [64, 1], [128, 2], [128, 1], [128, 1], [256, 2], [256, 1]] as const) {
        t = dw(g, t, r, { k: 3, s: st, pad: st === 2 ? [0, 1, 1, 0] : [1, 1, 1, 1], min: 0, max: 6 });
        t = conv(g, t, r, { k: 1, oc, min: 0, max: 6 });
      }
      t = conv(g, g.globalAveragePool(t), r, { k: 1, oc: 100 });
      return g.softmax(g.reshape(t, [100]));
    },
  },
  {
    name: 'MobileNet V3-shaped blocks (pad, depthwise 5x5, squeeze-excite, hardswish, residual) at 33x33',
    input: [33, 33, 16],
    batch: 2,
    build: (g, x, r) => {
      const block = (t: Tensor, expand: number, out: number, k: number, st: number): Tensor => {
        const inC = t.shape[2]!;
        let e = g.hardswish(conv(g, t, r, { k: 1, oc: expand }));
        if (st === 2) e = g.pad(e, { prePadding: [k >> 1, k >> 1, 0], postPadding: [k >> 1, k >> 1, 0] });
        let d = g.hardswish(dw(g, e, r, { k, s: st, pad: st === 2 ? [0, 0, 0, 0] : [k >> 1, k >> 1, k >> 1, k >> 1] }));
        const se = conv(g, g.globalAveragePool(d), r, { k: 1, oc: Math.max(8, expand >> 2), min: 0 });
        const gate = g.multiply(g.add(conv(g, se, r, { k: 1, oc: expand }), g.constant(new Float32Array([3]), [1]), { outputMin: 0, outputMax: 6 }), g.constant(new Float32Array([1 / 6]), [1]));
        d = g.multiply(d, gate);
        const p = conv(g, d, r, { k: 1, oc: out });
        return st === 1 && inC === out ? g.add(p, t) : p;
      };
      let t = block(x, 48, 16, 3, 1);
      t = block(t, 64, 24, 5, 2);
      t = block(t, 72, 24, 5, 1);
      t = g.hardswish(conv(g, t, r, { k: 1, oc: 96 }));
      const pooled = g.globalAveragePool(t);
      const head = g.hardswish(conv(g, pooled, r, { k: 1, oc: 128 }));
      return g.softmax(g.reshape(conv(g, head, r, { k: 1, oc: 50 }), [50]));
    },
  },
  // maxPool2d (appended here so that the seeds of the cases above stay put)
  { name: 'maxPool2d 2x2 stride 2 on odd 7x9, batch 3', input: [7, 9, 5], batch: 3, build: (g, x) => g.maxPool2d(x, { pool: 2 }) },
  { name: 'maxPool2d 3x3 stride 2 (overlapping) on odd 11x13, batch 3', input: [11, 13, 6], batch: 3, build: (g, x) => g.maxPool2d(x, { pool: 3, stride: 2 }) },
  { name: 'maxPool2d 3x3 stride 1', input: [6, 6, 4], batch: 1, build: (g, x) => g.maxPool2d(x, { pool: 3, stride: 1 }) },
  { name: 'maxPool2d [2,3] stride [1,2]', input: [5, 8, 3], batch: 1, build: (g, x) => g.maxPool2d(x, { pool: [2, 3], stride: [1, 2] }) },
  { name: 'maxPool2d stride larger than the pool', input: [9, 9, 2], batch: 3, build: (g, x) => g.maxPool2d(x, { pool: 2, stride: 3 }) },
  { name: 'maxPool2d global (pool = [H, W]) 7x5x64, batch 3', input: [7, 5, 64], batch: 3, build: (g, x) => g.maxPool2d(x, { pool: [7, 5] }) },
  { name: 'maxPool2d of an all-negative input (clamped to [-3, -1]), batch 3', input: [5, 7, 4], batch: 3, inputScale: 3, build: (g, x) => g.maxPool2d(g.clamp(x, -3, -1), { pool: 2 }) },
  { name: 'maxPool2d after conv 3x3 stride 2, then reshape and fullyConnected', input: [15, 13, 3], batch: 3, build: (g, x, r) => fc(g, g.reshape(g.maxPool2d(conv(g, x, r, { k: 3, oc: 8, s: 2, min: 0, max: 6 }), { pool: [7, 6] }), [8]), r, 5) },
  ...randomMaxPoolCases(4242, 4),
];

/** maxPool2d cases with shapes, pools and strides drawn from a seeded PRNG (odd sizes included). */
function randomMaxPoolCases(seed: number, count: number): Case[] {
  const r = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const out: Case[] = [];
  for (let i = 0; i < count; i++) {
    const h = int(3, 17);
    const w = int(3, 17);
    const c = int(1, 24);
    const pool: [number, number] = [int(2, Math.min(4, h)), int(2, Math.min(4, w))];
    const stride: [number, number] = [int(1, 3), int(1, 3)];
    const batch = i % 2 === 0 ? 3 : 1;
    out.push({
      name: `maxPool2d random #${i}: [${h},${w},${c}] pool [${pool.join(',')}] stride [${stride.join(',')}], batch ${batch}`,
      input: [h, w, c],
      batch,
      build: (g, x) => g.maxPool2d(x, { pool, stride }),
    });
  }
  return out;
}

interface Comparison {
  maxAbsRef: number;
  maxAbsErr: number;
}

async function compareCase(c: Case, threads: number, seed: number): Promise<Comparison> {
  const rand = prng(seed);
  const g = new Graph();
  const x = g.input(c.input);
  g.output(c.build(g, x, rand));
  const native = await compileGraph(g, { backend: 'native', batch: c.batch, threads });
  const reference = await compileGraph(g, { backend: 'reference', batch: c.batch });
  g.dispose();
  try {
    expect(native.backend).toBe('native');
    expect(native.threads).toBe(threads);
    expect(native.outputShape).toEqual(reference.outputShape);
    const input = uniform(native.inputSize, rand, c.inputScale ?? 1);
    const want = await reference.run(input);
    const got = await native.run(input);
    // The synchronous native path gives the same numbers as the async one.
    expect(Array.from(native.runSync(input))).toEqual(Array.from(got));
    let maxAbsRef = 0;
    let maxAbsErr = 0;
    for (let i = 0; i < want.length; i++) {
      const w = want[i]!;
      const e = Math.abs(got[i]! - w);
      if (!Number.isFinite(w)) throw new Error(`reference output ${i} is ${w}`);
      if (!(e <= maxAbsErr)) maxAbsErr = Number.isNaN(e) ? Infinity : Math.max(maxAbsErr, e);
      if (Math.abs(w) > maxAbsRef) maxAbsRef = Math.abs(w);
    }
    return { maxAbsRef, maxAbsErr };
  } finally {
    native.dispose();
    reference.dispose();
  }
}

for (const threads of [1, 2]) {
  describe(`ops: native vs reference, threads ${threads}`, () => {
    cases.forEach((c, i) => {
      it(c.name, async () => {
        const { maxAbsRef, maxAbsErr } = await compareCase(c, threads, 1000 + i);
        // A case whose output is all zeros would compare nothing.
        expect(maxAbsRef).toBeGreaterThan(0);
        expect(maxAbsErr, `max abs error ${maxAbsErr} vs max |reference| ${maxAbsRef}`).toBeLessThanOrEqual(REL_TOL * maxAbsRef);
      });
    });
  });
}
