/**
 * The reference backend (the test oracle) checked on its own: tiny cases
 * computed by hand, and small random cases against naive formulas written
 * independently here (explicitly padded input, direct index arithmetic, no
 * shared code with lib/backends/reference.ts).
 *
 * Tolerance: the reference stores float32 activations, the expectations here
 * are float64, so values are compared with |got - want| <= 1e-5 * max(1, |want|).
 */
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { DisposedError } from '../lib/errors.js';
import { referenceBackend } from '../lib/backends/reference.js';
import { mulberry32 as prng } from '../lib/keras/random.js';

const TOL = 1e-5;

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = TOL): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    const g = got[i]!;
    if (!(Math.abs(g - w) <= tol * Math.max(1, Math.abs(w)))) {
      throw new Error(`element ${i}: got ${g}, want ${w} (tolerance ${tol} relative)`);
    }
  }
}

async function runRef(
  build: (g: Graph) => Tensor,
  inputShape: number[],
  input: Float32Array,
  batch = 1,
): Promise<{ out: Float32Array; shape: readonly number[] }> {
  const g = new Graph();
  const x = g.input(inputShape);
  void x;
  g.output(build(g));
  const rt = await compileGraph(g, { backend: 'reference', batch });
  try {
    expect(rt.backend).toBe('reference');
    const out = await rt.run(input);
    // The synchronous path gives the same numbers.
    expect(Array.from(rt.runSync(input))).toEqual(Array.from(out));
    return { out, shape: rt.outputShape };
  } finally {
    rt.dispose();
  }
}

/** The graph's input tensor (id 0: the first tensor made). */
const inputOf = (g: Graph): Tensor => ({ id: g.inputTensor, shape: g.tensors[g.inputTensor]!.shape });

function randomArray(n: number, rand: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
  return a;
}

interface NaiveConv {
  n: number; h: number; w: number; c: number;
  kh: number; kw: number; sy: number; sx: number; dy: number; dx: number;
  pad: [number, number, number, number]; groups: number; oc: number;
}

/**
 * Naive grouped convolution: builds the zero-padded input explicitly, then
 * y[n,oy,ox,o] = b[o] + sum_{ky,kx,i} P[n, oy*sy+ky*dy, ox*sx+kx*dx, g*gic+i] * F[o,ky,kx,i].
 */
function naiveConv(x: Float32Array, f: Float32Array, b: Float32Array | null, p: NaiveConv): { y: number[]; oh: number; ow: number } {
  const [top, right, bottom, left] = p.pad;
  const ph = p.h + top + bottom;
  const pw = p.w + left + right;
  const padded: number[][][][] = [];
  for (let n = 0; n < p.n; n++) {
    const img: number[][][] = [];
    for (let yy = 0; yy < ph; yy++) {
      const row: number[][] = [];
      for (let xx = 0; xx < pw; xx++) {
        const px: number[] = [];
        for (let ch = 0; ch < p.c; ch++) {
          const iy = yy - top;
          const ix = xx - left;
          const inside = iy >= 0 && iy < p.h && ix >= 0 && ix < p.w;
          px.push(inside ? x[((n * p.h + iy) * p.w + ix) * p.c + ch]! : 0);
        }
        row.push(px);
      }
      img.push(row);
    }
    padded.push(img);
  }
  const effH = (p.kh - 1) * p.dy + 1;
  const effW = (p.kw - 1) * p.dx + 1;
  const oh = Math.floor((ph - effH) / p.sy) + 1;
  const ow = Math.floor((pw - effW) / p.sx) + 1;
  const gic = p.c / p.groups;
  const goc = p.oc / p.groups;
  const y: number[] = [];
  for (let n = 0; n < p.n; n++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let o = 0; o < p.oc; o++) {
          const g = Math.floor(o / goc);
          let s = b ? b[o]! : 0;
          for (let ky = 0; ky < p.kh; ky++)
            for (let kx = 0; kx < p.kw; kx++)
              for (let i = 0; i < gic; i++) {
                s += padded[n]![oy * p.sy + ky * p.dy]![ox * p.sx + kx * p.dx]![g * gic + i]! * f[((o * p.kh + ky) * p.kw + kx) * gic + i]!;
              }
          y.push(s);
        }
  return { y, oh, ow };
}

describe('reference backend: hand-computed cases', () => {
  it('1x1 conv2d is a matmul over channels (hand-computed)', async () => {
    // input 2x2x3 = 1..12; filter OHWI [2,1,1,3]: o0 = x0 - x2, o1 = 2*x0 + x1; bias [0.5, -1]
    const input = Float32Array.from({ length: 12 }, (_, i) => i + 1);
    const { out, shape } = await runRef(
      (g) =>
        g.conv2d(inputOf(g), {
          filter: new Float32Array([1, 0, -1, 2, 1, 0]),
          bias: new Float32Array([0.5, -1]),
          kernel: 1,
          outputChannels: 2,
        }),
      [2, 2, 3],
      input,
    );
    expect(shape).toEqual([1, 2, 2, 2]);
    // (1,2,3): -1.5, 3; (4,5,6): -1.5, 12; (7,8,9): -1.5, 21; (10,11,12): -1.5, 30
    expectClose(out, [-1.5, 3, -1.5, 12, -1.5, 21, -1.5, 30]);
  });

  it('3x3 conv2d, stride 1, padding 1 on a 4x4 input (hand-checked corners and naive formula)', async () => {
    // One channel in, one out, all-ones 3x3 filter: each output is the sum of its 3x3 neighbourhood.
    const input = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const { out, shape } = await runRef(
      (g) => g.conv2d(inputOf(g), { filter: new Float32Array(9).fill(1), kernel: 3, outputChannels: 1, padding: [1, 1, 1, 1] }),
      [4, 4, 1],
      input,
    );
    expect(shape).toEqual([1, 4, 4, 1]);
    // Corner (0,0): 1+2+5+6 = 14; (0,1): 1+2+3+5+6+7 = 24; centre (1,1): 1+2+3+5+6+7+9+10+11 = 54;
    // corner (3,3): 11+12+15+16 = 54.
    expect(out[0]).toBe(14);
    expect(out[1]).toBe(24);
    expect(out[5]).toBe(54);
    expect(out[15]).toBe(54);
    const naive = naiveConv(input, new Float32Array(9).fill(1), null, {
      n: 1, h: 4, w: 4, c: 1, kh: 3, kw: 3, sy: 1, sx: 1, dy: 1, dx: 1, pad: [1, 1, 1, 1], groups: 1, oc: 1,
    });
    expectClose(out, naive.y);
  });

  it('depthwise conv2d with depth multiplier 2 (hand-computed)', async () => {
    // input 2x2x2: channel 0 = 1,2,3,4 ; channel 1 = 10,20,30,40 (pixels in row-major order)
    const input = new Float32Array([1, 10, 2, 20, 3, 30, 4, 40]);
    // filter [1,2,2,4], output channel oc = c*2 + j. Per tap t (row-major over the 2x2 window):
    //   oc0 (c0,j0): 1,1,1,1   -> 1+2+3+4 = 10
    //   oc1 (c0,j1): 1,0,0,-1  -> 1-4 = -3
    //   oc2 (c1,j0): .5 each   -> 50
    //   oc3 (c1,j1): 0,1,0,0   -> 20
    const f1 = [1, 0, 0, -1];
    const f3 = [0, 1, 0, 0];
    const filter = new Float32Array(16);
    for (let t = 0; t < 4; t++) filter.set([1, f1[t]!, 0.5, f3[t]!], t * 4);
    const { out, shape } = await runRef(
      (g) =>
        g.depthwiseConv2d(inputOf(g), { filter, bias: new Float32Array([0, 0, 0, 1]), kernel: 2, depthMultiplier: 2 }),
      [2, 2, 2],
      input,
    );
    expect(shape).toEqual([1, 1, 1, 4]);
    expectClose(out, [10, -3, 50, 21]);
  });

  it('pad with a value on per-sample dimensions (hand-computed)', async () => {
    // [2,3,1] = [[1,2,3],[4,5,6]], one row of 9 before, two columns of 9 after
    const { out, shape } = await runRef(
      (g) => g.pad(inputOf(g), { prePadding: [1, 0, 0], postPadding: [0, 2, 0], value: 9 }),
      [2, 3, 1],
      new Float32Array([1, 2, 3, 4, 5, 6]),
    );
    expect(shape).toEqual([1, 3, 5, 1]);
    expect(Array.from(out)).toEqual([9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 4, 5, 6, 9, 9]);
  });

  it('pad never pads the batch dimension (batch 2, channel padding)', async () => {
    const { out, shape } = await runRef(
      (g) => g.pad(inputOf(g), { prePadding: [0, 0, 1], postPadding: [0, 1, 0] }),
      [1, 1, 2],
      new Float32Array([1, 2, 3, 4]),
      2,
    );
    expect(shape).toEqual([2, 1, 2, 3]);
    expect(Array.from(out)).toEqual([0, 1, 2, 0, 0, 0, 0, 3, 4, 0, 0, 0]);
  });

  it('softmax sums to 1, matches exp ratios and is stable for large logits', async () => {
    const { out } = await runRef(
      (g) => g.softmax(inputOf(g)),
      [3, 3],
      new Float32Array([0, Math.log(2), Math.log(3), 1000, 1000 + Math.log(3), 1000, -1e30, 0, -1e30]),
    );
    expectClose(out.subarray(0, 3), [1 / 6, 2 / 6, 3 / 6]);
    expectClose(out.subarray(3, 6), [0.2, 0.6, 0.2]);
    expectClose(out.subarray(6, 9), [0, 1, 0]);
    for (let r = 0; r < 3; r++) {
      const s = out[r * 3]! + out[r * 3 + 1]! + out[r * 3 + 2]!;
      expect(Math.abs(s - 1)).toBeLessThan(1e-6);
    }
  });

  it('hardswish at known points: x*min(max(x+3,0),6)/6', async () => {
    const xs = [-5, -3, -1.5, -1, 0, 1, 1.5, 3, 5];
    // -5 -> 0, -3 -> 0, -1.5 -> -1.5*1.5/6 = -0.375, -1 -> -1/3, 0 -> 0, 1 -> 2/3, 1.5 -> 1.125, 3 -> 3, 5 -> 5
    const { out } = await runRef((g) => g.hardswish(inputOf(g)), [xs.length], new Float32Array(xs));
    expectClose(out, [0, 0, -0.375, -1 / 3, 0, 2 / 3, 1.125, 3, 5]);
  });

  it('sigmoid at known points and saturating without NaN', async () => {
    const xs = [0, Math.log(3), -Math.log(3), 100, -100, -1000];
    const { out } = await runRef((g) => g.sigmoid(inputOf(g)), [xs.length], new Float32Array(xs));
    expectClose(out, [0.5, 0.75, 0.25, 1, 0, 0]);
  });

  it('clamp', async () => {
    const { out } = await runRef((g) => g.clamp(inputOf(g), -1, 2.5), [5], new Float32Array([-3, -1, 0.5, 2.5, 7]));
    expect(Array.from(out)).toEqual([-1, -1, 0.5, 2.5, 2.5]);
  });

  it('global average pool (hand-computed, batch 2)', async () => {
    // sample 0: 2x2x2 channel 0 = 1,2,3,4 (mean 2.5), channel 1 = 10,20,30,40 (mean 25)
    // sample 1: channel 0 = -1,-1,-1,-5 (mean -2), channel 1 = 0,0,0,1 (mean 0.25)
    const input = new Float32Array([1, 10, 2, 20, 3, 30, 4, 40, -1, 0, -1, 0, -1, 0, -5, 1]);
    const { out, shape } = await runRef((g) => g.globalAveragePool(inputOf(g)), [2, 2, 2], input, 2);
    expect(shape).toEqual([2, 1, 1, 2]);
    expectClose(out, [2.5, 25, -2, 0.25]);
  });

  it('average pool 2d, valid padding, stride smaller than the pool (hand-computed)', async () => {
    // 3x3x1 = 1..9, pool 2, stride 1 -> [[3,4],[6,7]]
    const { out, shape } = await runRef(
      (g) => g.averagePool2d(inputOf(g), { pool: 2, stride: 1 }),
      [3, 3, 1],
      Float32Array.from({ length: 9 }, (_, i) => i + 1),
    );
    expect(shape).toEqual([1, 2, 2, 1]);
    expectClose(out, [3, 4, 6, 7]);
  });

  it('max pool 2d, valid padding, overlapping windows, all-negative input, batch 2 (hand-computed)', async () => {
    // sample 0: 3x3x1 = 1..9, pool 2, stride 1 -> [[5,6],[8,9]]
    // sample 1: 3x3x1 = -9..-1 (all negative: the max must not start at 0) -> [[-5,-4],[-2,-1]]
    const input = Float32Array.from({ length: 18 }, (_, i) => (i < 9 ? i + 1 : i - 18));
    const { out, shape } = await runRef((g) => g.maxPool2d(inputOf(g), { pool: 2, stride: 1 }), [3, 3, 1], input, 2);
    expect(shape).toEqual([2, 2, 2, 1]);
    expectClose(out, [5, 6, 8, 9, -5, -4, -2, -1]);
  });

  it('max pool 2d, pool [2,3] stride 2 on 5x6x2 drops the last row and column, channels apart (hand-computed)', async () => {
    // channel 0 = p = 6 * row + col, channel 1 = -p; windows rows {0,1}/{2,3} (row 4 unused),
    // cols {0,1,2}/{2,3,4} (col 5 unused); output 2x2x2
    const input = new Float32Array(60);
    for (let p = 0; p < 30; p++) {
      input[2 * p] = p;
      input[2 * p + 1] = -p;
    }
    const { out, shape } = await runRef((g) => g.maxPool2d(inputOf(g), { pool: [2, 3], stride: 2 }), [5, 6, 2], input);
    expect(shape).toEqual([1, 2, 2, 2]);
    // (0,0): max p = 6+2 = 8, max -p = -0; (0,1): 6+4 = 10, -2; (1,0): 18+2 = 20, -12; (1,1): 18+4 = 22, -14
    expectClose(out, [8, 0, 10, -2, 20, -12, 22, -14]);
  });

  it('fully connected with [out, in] weights, bias and fused min/max (hand-computed)', async () => {
    // x = [1, 2, 3]; W = [[1,1,1],[1,-1,0],[0,0,10]]; b = [0, 0, -25] -> [6, -1, 5] clamped to [0, 5.5] -> [5.5, 0, 5]
    const { out, shape } = await runRef(
      (g) =>
        g.fullyConnected(inputOf(g), {
          weights: new Float32Array([1, 1, 1, 1, -1, 0, 0, 0, 10]),
          bias: new Float32Array([0, 0, -25]),
          outputChannels: 3,
          outputMin: 0,
          outputMax: 5.5,
        }),
      [3],
      new Float32Array([1, 2, 3]),
    );
    expect(shape).toEqual([1, 3]);
    expectClose(out, [5.5, 0, 5]);
  });

  it('fully connected applies to every leading position ([2,2] rows of 2 -> 1)', async () => {
    const { out, shape } = await runRef(
      (g) => g.fullyConnected(inputOf(g), { weights: new Float32Array([2, -1]), outputChannels: 1 }),
      [2, 2],
      new Float32Array([1, 1, 3, 4]),
    );
    expect(shape).toEqual([1, 2, 1]);
    expectClose(out, [1, 2]);
  });

  it('add with an unbatched constant broadcast over batch and rows', async () => {
    // per-sample [2,3], constant [3] = [10, 20, 30], batch 2
    const input = Float32Array.from({ length: 12 }, (_, i) => i);
    const { out } = await runRef(
      (g) => g.add(inputOf(g), g.constant(new Float32Array([10, 20, 30]), [3])),
      [2, 3],
      input,
      2,
    );
    expectClose(out, [10, 21, 32, 13, 24, 35, 16, 27, 38, 19, 30, 41]);
  });

  it('multiply [H,W,C] * batched [1,1,C] per sample (squeeze-excite pattern), with fused max', async () => {
    // per-sample 2x1x2; gate = global average of the input itself; batch 2
    // sample 0: pixels (1,2),(3,4): gap (2,3); products (2,6),(6,12) -> clamp max 10 -> (2,6),(6,10)
    // sample 1: pixels (0,1),(2,-1): gap (1,0); products (0,0),(2,0)
    const input = new Float32Array([1, 2, 3, 4, 0, 1, 2, -1]);
    const { out } = await runRef(
      (g) => {
        const x = inputOf(g);
        return g.multiply(x, g.globalAveragePool(x), { outputMax: 10 });
      },
      [2, 1, 2],
      input,
      2,
    );
    expectClose(out, [2, 6, 6, 10, 0, 0, 2, 0]);
  });

  it('add of batched [C] to batched [H,W,C] broadcasts per sample (batch 2, hand-computed)', async () => {
    // sample 0 pixels (1,2),(3,4): mean (2,3) -> (3,5),(5,7); sample 1 (5,6),(7,8): mean (6,7) -> (11,13),(13,15)
    const { out, shape } = await runRef(
      (g) => {
        const x = inputOf(g);
        return g.add(x, g.reshape(g.globalAveragePool(x), [2]));
      },
      [2, 1, 2],
      new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]),
      2,
    );
    expect(shape).toEqual([2, 2, 1, 2]);
    expectClose(out, [3, 5, 5, 7, 11, 13, 13, 15]);
  });

  it('add of two batched tensors of the same shape and a constant on the left', async () => {
    const { out } = await runRef(
      (g) => {
        const x = inputOf(g);
        const y = g.add(x, x, { outputMin: -3 });
        return g.multiply(g.constant(new Float32Array([2]), [1]), y);
      },
      [4],
      new Float32Array([1, -2, 0.5, -7]),
    );
    // 2 * max(2x, -3)
    expectClose(out, [4, -6, 2, -6]);
  });

  it('reshape keeps the data and order', async () => {
    const input = Float32Array.from({ length: 12 }, (_, i) => i * 0.5);
    const { out, shape } = await runRef((g) => g.reshape(g.clamp(inputOf(g), -100, 100), [6, 2]), [2, 2, 3], input, 1);
    expect(shape).toEqual([1, 6, 2]);
    expect(Array.from(out)).toEqual(Array.from(input));
  });

  it('conv2d fused output min/max (ReLU6)', async () => {
    const { out } = await runRef(
      (g) => g.conv2d(inputOf(g), { filter: new Float32Array([1]), kernel: 1, outputChannels: 1, outputMin: 0, outputMax: 6 }),
      [5, 1, 1],
      new Float32Array([-2, 0, 3, 6, 9]),
    );
    expect(Array.from(out)).toEqual([0, 0, 3, 6, 6]);
  });
});

describe('reference backend: random cases against naive formulas', () => {
  const cases: (NaiveConv & { label: string })[] = [
    { label: 'stride 2, asymmetric padding, batch 3', n: 3, h: 7, w: 6, c: 3, kh: 3, kw: 3, sy: 2, sx: 2, dy: 1, dx: 1, pad: [0, 1, 1, 0], groups: 1, oc: 5 },
    { label: 'dilation 2, padding 2', n: 1, h: 6, w: 7, c: 2, kh: 3, kw: 3, sy: 1, sx: 1, dy: 2, dx: 2, pad: [2, 2, 2, 2], groups: 1, oc: 3 },
    { label: 'groups 2 (5 outputs each), non-square kernel and stride', n: 2, h: 5, w: 8, c: 4, kh: 2, kw: 3, sy: 1, sx: 2, dy: 1, dx: 1, pad: [1, 0, 0, 2], groups: 2, oc: 10 },
    { label: 'groups = channels, dilation [1,3]', n: 1, h: 9, w: 9, c: 3, kh: 3, kw: 2, sy: 2, sx: 1, dy: 1, dx: 3, pad: [0, 3, 2, 1], groups: 3, oc: 3 },
  ];
  for (const p of cases) {
    it(`conv2d ${p.label}`, async () => {
      const rand = prng(p.h * 131 + p.w * 17 + p.oc);
      const x = randomArray(p.n * p.h * p.w * p.c, rand);
      const f = randomArray(p.oc * p.kh * p.kw * (p.c / p.groups), rand);
      const b = randomArray(p.oc, rand);
      const naive = naiveConv(x, f, b, p);
      const { out, shape } = await runRef(
        (g) =>
          g.conv2d(inputOf(g), {
            filter: f, bias: b, kernel: [p.kh, p.kw], outputChannels: p.oc, stride: [p.sy, p.sx],
            dilation: [p.dy, p.dx], padding: p.pad, groups: p.groups,
          }),
        [p.h, p.w, p.c],
        x,
        p.n,
      );
      expect(shape).toEqual([p.n, naive.oh, naive.ow, p.oc]);
      expectClose(out, naive.y);
    });
  }

  it('depthwise conv2d = grouped conv with groups = C (stride 2, dilation 2, padding, multiplier 2, batch 2)', async () => {
    const rand = prng(7);
    const n = 2, h = 8, w = 7, c = 3, m = 2, k = 3;
    const x = randomArray(n * h * w * c, rand);
    const dw = randomArray(k * k * c * m, rand); // [1, kh, kw, C*m]
    const b = randomArray(c * m, rand);
    // The same weights as a grouped conv filter [C*m, kh, kw, 1] (explicit transpose).
    const f = new Float32Array(c * m * k * k);
    for (let o = 0; o < c * m; o++) for (let t = 0; t < k * k; t++) f[o * k * k + t] = dw[t * c * m + o]!;
    const p: NaiveConv = { n, h, w, c, kh: k, kw: k, sy: 2, sx: 2, dy: 2, dx: 2, pad: [1, 2, 0, 1], groups: c, oc: c * m };
    const naive = naiveConv(x, f, b, p);
    const { out, shape } = await runRef(
      (g) =>
        g.depthwiseConv2d(inputOf(g), { filter: dw, bias: b, kernel: k, depthMultiplier: m, stride: 2, dilation: 2, padding: p.pad }),
      [h, w, c],
      x,
      n,
    );
    expect(shape).toEqual([n, naive.oh, naive.ow, c * m]);
    expectClose(out, naive.y);
  });

  it('batch samples are computed independently (batch 3 equals three batch-1 runs)', async () => {
    const rand = prng(99);
    const f = randomArray(4 * 9 * 3, rand);
    const build = (g: Graph): Tensor =>
      g.softmax(g.conv2d(inputOf(g), { filter: f, kernel: 3, outputChannels: 4, stride: 2, padding: [1, 1, 1, 1] }));
    const x = randomArray(3 * 5 * 5 * 3, rand);
    const all = await runRef(build, [5, 5, 3], x, 3);
    const per = all.out.length / 3;
    for (let s = 0; s < 3; s++) {
      const one = await runRef(build, [5, 5, 3], x.slice(s * 75, (s + 1) * 75), 1);
      expectClose(all.out.subarray(s * per, (s + 1) * per), one.out, 1e-7);
    }
  });
});

describe('reference backend: storage recycling', () => {
  it('long skip connections, reshape aliases and dead branches keep every value intact', async () => {
    // Elementwise chain on a [2,3,2] input, batch 2; expectations computed with plain Math here.
    const rand = prng(5);
    const input = randomArray(24, rand, 4);
    const hs = (v: number): number => (v * Math.min(Math.max(v + 3, 0), 6)) / 6;
    const sg = (v: number): number => 1 / (1 + Math.exp(-v));
    const { out, shape } = await runRef(
      (g) => {
        const x = inputOf(g);
        const a = g.clamp(x, -2, 2); // read again at the very end
        const flat = g.reshape(a, [12]); // alias of a
        const b = g.hardswish(x); // x read after a
        g.sigmoid(b); // dead branch: computed, never read
        // [u, v] -> [u + v, u - v]: wrong if computed in place over its input
        const c = g.fullyConnected(g.sigmoid(g.reshape(b, [6, 2])), { weights: new Float32Array([1, 1, 1, -1]), outputChannels: 2 });
        const d = g.add(g.reshape(c, [12]), flat); // c + a
        const e = g.multiply(d, g.reshape(x, [12])); // x read once more, late
        return g.add(g.reshape(e, [2, 3, 2]), a);
      },
      [2, 3, 2],
      input,
      2,
    );
    expect(shape).toEqual([2, 2, 3, 2]);
    const want = Array.from(input, (v, k) => {
      const a = Math.min(Math.max(v, -2), 2);
      const s0 = sg(hs(input[k - (k % 2)]!));
      const s1 = sg(hs(input[k - (k % 2) + 1]!));
      const c = k % 2 === 0 ? s0 + s1 : s0 - s1;
      return (c + a) * v + a;
    });
    expectClose(out, want);
  });
});

describe('reference backend: runtime behaviour', () => {
  it('exposes the Backend contract', () => {
    expect(referenceBackend.name).toBe('reference');
    expect(typeof referenceBackend.prepare).toBe('function');
  });

  it('survives graph.dispose() after compile, and rejects use after runtime.dispose()', async () => {
    const g = new Graph();
    const x = g.input([2]);
    g.output(g.fullyConnected(x, { weights: new Float32Array([1, 2]), outputChannels: 1 }));
    const rt = await compileGraph(g, { backend: 'reference' });
    g.dispose();
    expect(Array.from(await rt.run(new Float32Array([3, 4])))).toEqual([11]);
    rt.dispose();
    rt.dispose();
    await expect(rt.run(new Float32Array([3, 4]))).rejects.toBeInstanceOf(DisposedError);
    expect(() => rt.runSync(new Float32Array([3, 4]))).toThrow(DisposedError);
  });

  it('refuses a tensor too large to allocate with a RangeError (no crash)', async () => {
    // A tensor beyond the serialized graph's limits (2^31 - 1 elements) is refused by the graph builder;
    // one within them becomes too large with the batch, which the reference backend refuses.
    expect(() => new Graph().input([100000, 100000, 3])).toThrow(RangeError);
    const g = new Graph();
    g.output(g.clamp(g.input([16384, 16384, 7]), 0, 1));
    const e: unknown = await compileGraph(g, { backend: 'reference', batch: 3 }).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toBe('Expected at most 4294967295 values for tensor 0 [3, 16384, 16384, 7] but received 5637144576');
  });

  it('run() yields to the event loop between nodes', async () => {
    const g = new Graph();
    let t = g.input([64]);
    for (let i = 0; i < 8; i++) t = g.clamp(t, -i - 1, i + 1);
    g.output(t);
    const rt = await compileGraph(g, { backend: 'reference' });
    let immediates = 0;
    const tick = (): void => {
      immediates++;
      if (immediates < 100) setImmediate(tick);
    };
    setImmediate(tick);
    const before = immediates;
    await rt.run(new Float32Array(64));
    // Several event-loop turns happened while the 8 nodes ran.
    expect(immediates - before).toBeGreaterThanOrEqual(4);
    rt.dispose();
  });

  it('concurrent run() calls on one runtime give each its own correct result', async () => {
    const g = new Graph();
    const x = g.input([3]);
    g.output(g.multiply(x, g.constant(new Float32Array([1, 10, 100]), [3])));
    const rt = await compileGraph(g, { backend: 'reference' });
    const inputs = [0, 1, 2, 3, 4].map((k) => new Float32Array([k, k + 1, k + 2]));
    const outs = await Promise.all(inputs.map((i) => rt.run(i)));
    outs.forEach((o, k) => expect(Array.from(o)).toEqual([k, 10 * (k + 1), 100 * (k + 2)]));
    rt.dispose();
  });

  it('writes into a caller-provided output', async () => {
    const g = new Graph();
    const x = g.input([2]);
    g.output(g.clamp(x, 0, 1));
    const rt = await compileGraph(g, { backend: 'reference', batch: 2 });
    const input = new Float32Array([-1, 0.5, 2, 0.25]);
    const output = new Float32Array(4);
    const got = await rt.run(input, output);
    expect(got).toBe(output);
    expect(Array.from(output)).toEqual([0, 0.5, 1, 0.25]);
    rt.dispose();
  });
});

/**
 * A second, independent oracle: TensorFlow.js (cpu backend, float32 math).
 * Tolerance: max |reference - tfjs| <= 1e-5 * max(1, max |tfjs|).
 */
describe('reference backend vs TensorFlow.js (cpu)', () => {
  const TF_TOL = 1e-5;
  type TF = typeof import('@tensorflow/tfjs');
  let tfPromise: Promise<TF> | undefined;
  const loadTf = (): Promise<TF> =>
    (tfPromise ??= (async () => {
      const tf = await import('@tensorflow/tfjs');
      await tf.setBackend('cpu');
      await tf.ready();
      return tf;
    })());

  function expectNear(got: Float32Array, want: Float32Array | Int32Array | Uint8Array): void {
    expect(got.length).toBe(want.length);
    let maxMag = 0;
    let maxErr = 0;
    for (let i = 0; i < want.length; i++) {
      maxMag = Math.max(maxMag, Math.abs(want[i]!));
      maxErr = Math.max(maxErr, Math.abs(got[i]! - want[i]!));
    }
    expect(maxMag).toBeGreaterThan(0);
    expect(maxErr, `max abs error ${maxErr}, max |tfjs| ${maxMag}`).toBeLessThanOrEqual(TF_TOL * Math.max(1, maxMag));
  }

  /** OHWI [o, kh, kw, i] -> HWIO [kh, kw, i, o] (TF's layout). */
  function ohwiToHwio(f: Float32Array, o: number, kh: number, kw: number, i: number): Float32Array {
    const out = new Float32Array(f.length);
    for (let a = 0; a < o; a++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++)
          for (let c = 0; c < i; c++) out[((y * kw + x) * i + c) * o + a] = f[((a * kh + y) * kw + x) * i + c]!;
    return out;
  }

  const convCases = [
    { label: 'stride 2, asymmetric padding [0,1,1,0], batch 2', n: 2, h: 9, w: 8, c: 3, oc: 6, k: [3, 3], s: [2, 2], d: [1, 1], pad: [0, 1, 1, 0] },
    { label: 'dilation 2, padding [2,1,2,3]', n: 1, h: 8, w: 9, c: 4, oc: 5, k: [3, 3], s: [1, 1], d: [2, 2], pad: [2, 1, 2, 3] },
    { label: '1x1, 32 -> 48, ReLU6', n: 1, h: 5, w: 4, c: 32, oc: 48, k: [1, 1], s: [1, 1], d: [1, 1], pad: [0, 0, 0, 0], relu6: true },
    { label: 'kernel [2,5] stride [1,3]', n: 3, h: 6, w: 13, c: 2, oc: 3, k: [2, 5], s: [1, 3], d: [1, 1], pad: [1, 0, 0, 2] },
  ] as const;
  for (const p of convCases) {
    it(`conv2d ${p.label}`, async () => {
      const tf = await loadTf();
      const rand = prng(p.h * 7 + p.oc);
      const x = randomArray(p.n * p.h * p.w * p.c, rand);
      const f = randomArray(p.oc * p.k[0] * p.k[1] * p.c, rand, 0.5);
      const b = randomArray(p.oc, rand);
      const relu6 = 'relu6' in p && p.relu6;
      const { out, shape } = await runRef(
        (g) =>
          g.conv2d(inputOf(g), {
            filter: f, bias: b, kernel: [p.k[0], p.k[1]], outputChannels: p.oc, stride: [p.s[0], p.s[1]], dilation: [p.d[0], p.d[1]],
            padding: [p.pad[0], p.pad[1], p.pad[2], p.pad[3]], ...(relu6 ? { outputMin: 0, outputMax: 6 } : {}),
          }),
        [p.h, p.w, p.c],
        x,
        p.n,
      );
      const want = tf.tidy(() => {
        let y = tf.conv2d(
          tf.tensor4d(x, [p.n, p.h, p.w, p.c]),
          tf.tensor4d(ohwiToHwio(f, p.oc, p.k[0], p.k[1], p.c), [p.k[0], p.k[1], p.c, p.oc]),
          [p.s[0], p.s[1]],
          [[0, 0], [p.pad[0], p.pad[2]], [p.pad[3], p.pad[1]], [0, 0]],
          'NHWC',
          [p.d[0], p.d[1]],
        ).add(tf.tensor1d(b));
        if (relu6) y = tf.clipByValue(y, 0, 6);
        expect(shape).toEqual(y.shape);
        return y.dataSync() as Float32Array;
      });
      expectNear(out, want);
    });
  }

  it('depthwise conv2d, multiplier 2, stride 2, padding [1,2,0,1], batch 2', async () => {
    const tf = await loadTf();
    const rand = prng(11);
    const [n, h, w, c, m] = [2, 9, 10, 5, 2];
    const x = randomArray(n * h * w * c, rand);
    const f = randomArray(9 * c * m, rand); // [1,3,3,C*m] == TF [3,3,C,m] in memory
    const b = randomArray(c * m, rand);
    const { out, shape } = await runRef(
      (g) => g.depthwiseConv2d(inputOf(g), { filter: f, bias: b, kernel: 3, depthMultiplier: m, stride: 2, padding: [1, 2, 0, 1] }),
      [h, w, c],
      x,
      n,
    );
    const want = tf.tidy(() => {
      const padded = tf.pad(tf.tensor4d(x, [n, h, w, c]), [[0, 0], [1, 0], [1, 2], [0, 0]]);
      const y = tf.depthwiseConv2d(padded, tf.tensor4d(f, [3, 3, c, m]), 2, 'valid').add(tf.tensor1d(b));
      expect(shape).toEqual(y.shape);
      return y.dataSync() as Float32Array;
    });
    expectNear(out, want);
  });

  it('average pool, GAP, softmax, sigmoid, hardswish, pad, FC, broadcast add/multiply', async () => {
    const tf = await loadTf();
    const rand = prng(12);
    const [n, h, w, c] = [2, 7, 6, 5];
    const x = randomArray(n * h * w * c, rand, 4);
    const x4 = (): import('@tensorflow/tfjs').Tensor4D => tf.tensor4d(x, [n, h, w, c]);
    const check = async (build: (g: Graph) => Tensor, tfFn: () => import('@tensorflow/tfjs').Tensor): Promise<void> => {
      const { out, shape } = await runRef(build, [h, w, c], x, n);
      const want = tf.tidy(() => {
        const y = tfFn();
        expect(shape).toEqual(y.shape);
        return y.dataSync() as Float32Array;
      });
      expectNear(out, want);
    };
    await check((g) => g.averagePool2d(inputOf(g), { pool: [3, 2], stride: [2, 1] }), () => tf.avgPool(x4(), [3, 2], [2, 1], 'valid'));
    await check((g) => g.globalAveragePool(inputOf(g)), () => tf.mean(x4(), [1, 2], true));
    await check((g) => g.maxPool2d(inputOf(g), { pool: [3, 2], stride: [2, 1] }), () => tf.maxPool(x4(), [3, 2], [2, 1], 'valid'));
    await check((g) => g.softmax(inputOf(g)), () => tf.softmax(x4()));
    await check((g) => g.sigmoid(inputOf(g)), () => tf.sigmoid(x4()));
    await check(
      (g) => g.hardswish(inputOf(g)),
      () => x4().mul(tf.clipByValue(x4().add(3), 0, 6)).div(6),
    );
    await check(
      (g) => g.pad(inputOf(g), { prePadding: [1, 0, 2], postPadding: [0, 3, 1], value: 0.25 }),
      () => tf.pad(x4(), [[0, 0], [1, 0], [0, 3], [2, 1]], 0.25),
    );
    const wt = randomArray(4 * c, rand);
    const bias = randomArray(4, rand);
    await check(
      (g) => g.fullyConnected(inputOf(g), { weights: wt, bias, outputChannels: 4 }),
      () => tf.matMul(x4().reshape([n * h * w, c]), tf.tensor2d(wt, [4, c]), false, true).add(tf.tensor1d(bias)).reshape([n, h, w, 4]),
    );
    const k = randomArray(w * c, rand);
    await check(
      (g) => g.add(inputOf(g), g.constant(k, [1, w, c]), { outputMin: -1 }),
      () => tf.maximum(x4().add(tf.tensor3d(k, [1, w, c])), -1),
    );
    await check(
      (g) => g.multiply(g.globalAveragePool(inputOf(g)), inputOf(g)),
      () => tf.mean(x4(), [1, 2], true).mul(x4()),
    );
  });
});
