/**
 * The native backend on small graphs against values computed here with plain
 * loops (written independently of lib/backends/reference.ts): each op, with
 * batch > 1, fused bounds and broadcasting. Tolerance: |a - b| <= 1e-5 +
 * 1e-5 * |b| (float32 sums of at most a few hundred terms; sigmoid/hardswish
 * are evaluated by XNNPACK with polynomial approximations accurate to a few ulp).
 */
import { describe, expect, it } from 'vitest';
import { Graph, type Padding4 } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { xnnpackInfo } from '../lib/binding.js';
import { pinnedXnnpackCommit } from './helpers/pins.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

function random(n: number, seed: number, scale = 2): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * scale);
}

function expectClose(actual: Float32Array, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  let at = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i] as number;
    const err = Math.abs((actual[i] as number) - e) - tol * Math.abs(e);
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  expect(worst, `worst at ${at}: ${actual[at]} vs ${expected[at]}`).toBeLessThanOrEqual(tol);
}

/** Naive NHWC convolution, OHWI filter, groups, dilation, padding [t, r, b, l]. */
function conv(
  x: Float32Array, [n, h, w, c]: number[], filter: Float32Array, bias: Float32Array | null,
  o: { kh: number; kw: number; sh: number; sw: number; dh: number; dw: number; pad: Padding4; groups: number; oc: number; min?: number; max?: number },
): { y: number[]; shape: number[] } {
  const gic = c / o.groups;
  const goc = o.oc / o.groups;
  const oh = Math.floor((h + o.pad[0] + o.pad[2] - (o.dh * (o.kh - 1) + 1)) / o.sh) + 1;
  const ow = Math.floor((w + o.pad[3] + o.pad[1] - (o.dw * (o.kw - 1) + 1)) / o.sw) + 1;
  const y: number[] = [];
  for (let b = 0; b < n; b++)
    for (let i = 0; i < oh; i++)
      for (let j = 0; j < ow; j++)
        for (let oc = 0; oc < o.oc; oc++) {
          const g = Math.floor(oc / goc);
          let s = bias ? (bias[oc] as number) : 0;
          for (let ky = 0; ky < o.kh; ky++)
            for (let kx = 0; kx < o.kw; kx++) {
              const yy = i * o.sh + ky * o.dh - o.pad[0];
              const xx = j * o.sw + kx * o.dw - o.pad[3];
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              for (let ic = 0; ic < gic; ic++) {
                s += (x[((b * h + yy) * w + xx) * c + g * gic + ic] as number) * (filter[((oc * o.kh + ky) * o.kw + kx) * gic + ic] as number);
              }
            }
          y.push(Math.min(Math.max(s, o.min ?? -Infinity), o.max ?? Infinity));
        }
  return { y, shape: [n, oh, ow, o.oc] };
}

describe('native ops vs hand-computed values', () => {
  it('reports the XNNPACK it was built with', () => {
    const info = xnnpackInfo();
    expect(['vendored', 'system']).toContain(info.source);
    if (info.source === 'vendored') expect(info.commit).toBe(pinnedXnnpackCommit());
    else expect(info.commit).toBeUndefined();
    expect(info.initialized).toBe(true);
    expect(info.napiVersion).toBe(8);
  });

  it('identity graph (output() of the input) copies the input', async () => {
    const g = new Graph();
    g.output(g.input([3, 5]));
    const rt = await compileGraph(g, { batch: 2, threads: 1 });
    const x = random(30, 5);
    expect(rt.runSync(x)).toEqual(x);
    rt.dispose();
  });

  it('1x1 conv2d equals a matmul plus bias (batch 2)', async () => {
    const [h, w, c, oc] = [3, 4, 5, 7];
    const x = random(2 * h * w * c, 1);
    const filter = random(oc * c, 2);
    const bias = random(oc, 3);
    const g = new Graph();
    g.output(g.conv2d(g.input([h, w, c]), { filter, bias, kernel: 1, outputChannels: oc }));
    const rt = await compileGraph(g, { batch: 2, threads: 1 });
    const out = rt.runSync(x);
    const expected: number[] = [];
    for (let p = 0; p < 2 * h * w; p++)
      for (let o = 0; o < oc; o++) {
        let s = bias[o] as number;
        for (let k = 0; k < c; k++) s += (x[p * c + k] as number) * (filter[o * c + k] as number);
        expected.push(s);
      }
    expect(rt.outputShape).toEqual([2, h, w, oc]);
    expectClose(out, expected);
    rt.dispose();
  });

  const convCases = [
    { name: '3x3 stride 2, asymmetric padding, ReLU6', kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad: [0, 1, 1, 0] as Padding4, groups: 1, oc: 6, min: 0, max: 6 },
    { name: 'grouped 3x2, dilation 2, padding 1', kh: 3, kw: 2, sh: 1, sw: 1, dh: 2, dw: 2, pad: [1, 1, 1, 1] as Padding4, groups: 2, oc: 4 },
    { name: '5x5 stride 1, no bias, outputMax only', kh: 5, kw: 5, sh: 1, sw: 1, dh: 1, dw: 1, pad: [2, 2, 2, 2] as Padding4, groups: 1, oc: 3, max: 0.5, noBias: true },
  ];
  for (const k of convCases) {
    it(`conv2d ${k.name}`, async () => {
      const shape = [2, 9, 8, 4];
      const x = random(2 * 9 * 8 * 4, 10);
      const filter = random(k.oc * k.kh * k.kw * (4 / k.groups), 11);
      const bias = k.noBias ? null : random(k.oc, 12);
      const g = new Graph();
      g.output(g.conv2d(g.input([9, 8, 4]), {
        filter, bias, kernel: [k.kh, k.kw], stride: [k.sh, k.sw], dilation: [k.dh, k.dw], padding: k.pad,
        groups: k.groups, outputChannels: k.oc, outputMin: k.min, outputMax: k.max,
      }));
      const rt = await compileGraph(g, { batch: 2, threads: 2 });
      const ref = conv(x, shape, filter, bias, k);
      expect(rt.outputShape).toEqual(ref.shape);
      expectClose(await rt.run(x), ref.y);
      rt.dispose();
    });
  }

  it('depthwiseConv2d 3x3, depth multiplier 2, stride 2, fused [0, 6]', async () => {
    const [h, w, c, m] = [7, 6, 3, 2];
    const x = random(h * w * c, 20, 8);
    const dw = random(9 * c * m, 21, 4);
    const bias = random(c * m, 22);
    const g = new Graph();
    g.output(g.depthwiseConv2d(g.input([h, w, c]), {
      filter: dw, bias, kernel: 3, depthMultiplier: m, stride: 2, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6,
    }));
    const rt = await compileGraph(g, { threads: 1 });
    // As a grouped convolution: OHWI with I = 1.
    const ohwi = new Float32Array(c * m * 9);
    for (let oc = 0; oc < c * m; oc++) for (let t = 0; t < 9; t++) ohwi[oc * 9 + t] = dw[t * c * m + oc] as number;
    const ref = conv(x, [1, h, w, c], ohwi, bias, { kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pad: [1, 1, 1, 1], groups: c, oc: c * m, min: 0, max: 6 });
    expect(rt.outputShape).toEqual(ref.shape);
    expectClose(rt.runSync(x), ref.y);
    expect(ref.y.some((v) => v === 0) && ref.y.some((v) => v === 6)).toBe(true); // both bounds exercised
    rt.dispose();
  });

  it('add/multiply broadcast: constant [C], squeeze-excite [1,1,C], lower-rank activation [C] (batch 3)', async () => {
    const [h, w, c] = [4, 5, 6];
    const x = random(3 * h * w * c, 30);
    const k = random(c, 31);
    const g = new Graph();
    const inp = g.input([h, w, c]);
    const a = g.add(inp, g.constant(k, [c]), { outputMax: 0.6 }); // [H,W,C] + [C], min(., 0.6)
    const se = g.globalAveragePool(a); // [1,1,C]
    const m = g.multiply(a, se); // [H,W,C] * [1,1,C]
    const v = g.reshape(se, [c]); // batched [C]
    const out = g.multiply(m, v, { outputMin: -0.05 }); // [H,W,C] * [C] (batched)
    g.output(out);
    const rt = await compileGraph(g, { batch: 3, threads: 2 });
    const expected: number[] = [];
    for (let b = 0; b < 3; b++) {
      const av: number[] = [];
      const mean = new Array<number>(c).fill(0);
      for (let p = 0; p < h * w; p++)
        for (let ch = 0; ch < c; ch++) {
          const val = Math.min((x[(b * h * w + p) * c + ch] as number) + (k[ch] as number), 0.6);
          av.push(val);
          mean[ch] = (mean[ch] as number) + val / (h * w);
        }
      for (let p = 0; p < h * w; p++)
        for (let ch = 0; ch < c; ch++) {
          const s = mean[ch] as number;
          expected.push(Math.max((av[p * c + ch] as number) * s * s, -0.05));
        }
    }
    expectClose(await rt.run(x), expected);
    rt.dispose();
  });

  it('add of two activations of the same shape, and constant on the left', async () => {
    const g = new Graph();
    const inp = g.input([2, 3]);
    const k = random(6, 41);
    const y = g.add(g.constant(k, [2, 3]), g.add(inp, inp));
    g.output(y);
    const rt = await compileGraph(g, { batch: 2, threads: 1 });
    const x = random(12, 40);
    expectClose(rt.runSync(x), Array.from(x, (v, i) => (k[i % 6] as number) + 2 * v));
    rt.dispose();
  });

  it('clamp, hardswish, sigmoid elementwise', async () => {
    const x = random(2 * 64, 50, 16);
    for (const [op, f] of [
      ['clamp', (v: number) => Math.min(Math.max(v, -1.5), 2.25)],
      ['hardswish', (v: number) => (v * Math.min(Math.max(v + 3, 0), 6)) / 6],
      ['sigmoid', (v: number) => 1 / (1 + Math.exp(-v))],
    ] as const) {
      const g = new Graph();
      const inp = g.input([4, 4, 4]);
      g.output(op === 'clamp' ? g.clamp(inp, -1.5, 2.25) : op === 'hardswish' ? g.hardswish(inp) : g.sigmoid(inp));
      const rt = await compileGraph(g, { batch: 2, threads: 1 });
      expectClose(rt.runSync(x), Array.from(x, f));
      rt.dispose();
    }
  });

  it('softmax over the last dimension of [3, 10]', async () => {
    const x = random(2 * 30, 60, 10);
    const g = new Graph();
    g.output(g.softmax(g.input([3, 10])));
    const rt = await compileGraph(g, { batch: 2, threads: 1 });
    const expected: number[] = [];
    for (let r = 0; r < 6; r++) {
      const row = Array.from(x.subarray(r * 10, r * 10 + 10));
      const mx = Math.max(...row);
      const e = row.map((v) => Math.exp(v - mx));
      const s = e.reduce((p, q) => p + q, 0);
      expected.push(...e.map((v) => v / s));
    }
    const out = rt.runSync(x);
    expectClose(out, expected);
    rt.dispose();
  });

  it('globalAveragePool [5,6,8] -> [1,1,8] and averagePool2d 2x2/2 and 3x3/1', async () => {
    const [h, w, c] = [6, 6, 3];
    const x = random(2 * h * w * c, 70);
    for (const [pool, stride] of [[2, 2], [3, 1]] as const) {
      const g = new Graph();
      g.output(g.averagePool2d(g.input([h, w, c]), { pool, stride }));
      const rt = await compileGraph(g, { batch: 2, threads: 1 });
      const oh = Math.floor((h - pool) / stride) + 1;
      const expected: number[] = [];
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < oh; i++)
          for (let j = 0; j < oh; j++)
            for (let ch = 0; ch < c; ch++) {
              let s = 0;
              for (let u = 0; u < pool; u++) for (let v = 0; v < pool; v++) s += x[((b * h + i * stride + u) * w + j * stride + v) * c + ch] as number;
              expected.push(s / (pool * pool));
            }
      expect(rt.outputShape).toEqual([2, oh, oh, c]);
      expectClose(rt.runSync(x), expected);
      rt.dispose();
    }
    const g = new Graph();
    g.output(g.globalAveragePool(g.input([5, 6, 8])));
    const rt = await compileGraph(g, { batch: 2, threads: 1 });
    const x2 = random(2 * 30 * 8, 71);
    const expected = new Array<number>(16).fill(0);
    for (let b = 0; b < 2; b++) for (let p = 0; p < 30; p++) for (let ch = 0; ch < 8; ch++) expected[b * 8 + ch] = (expected[b * 8 + ch] as number) + (x2[(b * 30 + p) * 8 + ch] as number) / 30;
    expect(rt.outputShape).toEqual([2, 1, 1, 8]);
    expectClose(rt.runSync(x2), expected);
    rt.dispose();
  });

  it('fullyConnected on [8] and on [2, 3, 8] with bias and bounds', async () => {
    for (const shape of [[8], [2, 3, 8]]) {
      const rows = shape.slice(0, -1).reduce((p, q) => p * q, 1) * 2; // batch 2
      const x = random(rows * 8, 80);
      const wts = random(5 * 8, 81);
      const bias = random(5, 82);
      const g = new Graph();
      g.output(g.fullyConnected(g.input(shape), { weights: wts, bias, outputChannels: 5, outputMin: -0.3, outputMax: 0.4 }));
      const rt = await compileGraph(g, { batch: 2, threads: 2 });
      const expected: number[] = [];
      for (let r = 0; r < rows; r++)
        for (let o = 0; o < 5; o++) {
          let s = bias[o] as number;
          for (let k = 0; k < 8; k++) s += (x[r * 8 + k] as number) * (wts[o * 8 + k] as number);
          expected.push(Math.min(Math.max(s, -0.3), 0.4));
        }
      expect(rt.outputShape).toEqual([2, ...shape.slice(0, -1), 5]);
      expectClose(rt.runSync(x), expected);
      rt.dispose();
    }
  });

  it('pad (per-sample dims, value 0.5) then reshape then softmax', async () => {
    const [h, w, c] = [2, 3, 2];
    const x = random(2 * h * w * c, 90);
    const g = new Graph();
    const p = g.pad(g.input([h, w, c]), { prePadding: [1, 0, 0], postPadding: [0, 2, 1], value: 0.5 });
    expect(p.shape).toEqual([3, 5, 3]);
    const r = g.reshape(p, [15, 3]);
    g.output(g.softmax(r));
    const rt = await compileGraph(g, { batch: 2, threads: 1 });
    const padded: number[] = [];
    for (let b = 0; b < 2; b++)
      for (let i = 0; i < 3; i++)
        for (let j = 0; j < 5; j++)
          for (let ch = 0; ch < 3; ch++) {
            const si = i - 1;
            padded.push(si >= 0 && j < w && ch < c ? (x[((b * h + si) * w + j) * c + ch] as number) : 0.5);
          }
    const expected: number[] = [];
    for (let r0 = 0; r0 < padded.length; r0 += 3) {
      const e = padded.slice(r0, r0 + 3).map(Math.exp);
      const s = e.reduce((a, b) => a + b, 0);
      expected.push(...e.map((v) => v / s));
    }
    expectClose(rt.runSync(x), expected);
    rt.dispose();
  });
});
