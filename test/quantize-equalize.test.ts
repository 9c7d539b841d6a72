/**
 * Activation range equalization (lib/quantize/equalize.ts): rescaling the
 * output channels of a convolution by s_i and the channels its readers take
 * by 1/s_i leaves the float32 network unchanged on the calibration data
 * (checked against the original graph run on the float reference kernels),
 * makes every rescaled channel reach the tensor's range, touches only
 * tensors whose readers have per-channel weights in that channel ('free'),
 * and lowers the int8 output error when channel ranges differ widely.
 */
import { describe, expect, it } from 'vitest';
import { Graph } from '../lib/graph.js';
import { QReferenceRuntime } from '../lib/backends/reference-qs8.js';
import { fromFloatGraph, type QGraph } from '../lib/quantize/qgraph.js';
import { calibrate } from '../lib/quantize/calibrate.js';
import { equalizeActivations } from '../lib/quantize/equalize.js';
import { quantizeGraph } from '../lib/quantize/quantize.js';
import { mulberry32 } from '../lib/keras/random.js';

function random(n: number, rnd: () => number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rnd());
}

async function* samplesOf(xs: Float32Array[]): AsyncGenerator<Float32Array> {
  yield* xs;
}

/** conv 3×3 (ReLU6, output channels of very different ranges) → depthwise 3×3 (ReLU6) → conv 1×1 (linear). */
function network(seed: number): Graph {
  const rnd = mulberry32(seed);
  const g = new Graph();
  const x = g.input([10, 10, 4]);
  const c = 16;
  const filter = random(c * 9 * 4, rnd, -0.5, 0.5);
  const bias = random(c, rnd, 0, 0.2);
  const dwFilter = random(9 * c, rnd, -0.3, 1);
  for (let o = 0; o < c; o++) {
    const k = o === 0 ? 1 : 0.03 + 0.3 * rnd(); // channel 0 sets the range, the others are small...
    for (let i = 0; i < 36; i++) filter[o * 36 + i]! *= k;
    bias[o]! *= k;
    for (let i = 0; i < 9; i++) dwFilter[i * c + o]! /= k; // ...and the depthwise brings them back to a similar range
  }
  const a = g.conv2d(x, { filter, bias, kernel: 3, outputChannels: c, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6, name: 'conv' });
  const d = g.depthwiseConv2d(a, { filter: dwFilter, bias: random(c, rnd, 0, 0.1), kernel: 3, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6, name: 'dw' });
  g.output(g.conv2d(d, { filter: random(8 * c, rnd), bias: random(8, rnd), kernel: 1, outputChannels: 8, name: 'pw' }));
  return g;
}

function run(q: QGraph, x: Float32Array): Float32Array {
  const rt = new QReferenceRuntime(q, 1);
  const out = new Float32Array(rt.outputSize);
  rt.run(x, out);
  return out;
}

describe('activation range equalization', () => {
  const rnd = mulberry32(4);
  const samples = [0, 1, 2, 3, 4, 5].map(() => random(400, rnd, -1, 1));

  it('keeps the float network, fills each rescaled channel to the tensor range, and only where it is free', async () => {
    const fg = fromFloatGraph(network(1));
    const cal = await calibrate(fg, samplesOf(samples));
    const free = equalizeActivations(fg, cal, { isFloat: () => false });
    // 'conv' is read by a depthwise (free); 'dw' by an int8 1×1 conv (costly, skipped unless asked).
    expect(free.equalized).toEqual(['conv']);
    expect(equalizeActivations(fg, cal, { isFloat: () => false, costly: true }).equalized).toEqual(['conv', 'dw']);
    expect(equalizeActivations(fg, cal, { isFloat: (n) => n.name === 'pw' }).equalized).toEqual(['conv', 'dw']);
    for (const s of samples) {
      const want = run(fg, s);
      const got = run(free.graph, s);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-4 * (1 + Math.abs(want[i]!)));
    }
    // Calibrating the equalized graph: every live channel of 'conv' now reaches the tensor's maximum.
    const again = await calibrate(free.graph, samplesOf(samples));
    const t = fg.nodes[0]!.output;
    const before = cal.channelRanges.get(t)!.max;
    const after = again.channelRanges.get(t)!.max;
    const top = Math.max(...before);
    expect(Math.min(...before)).toBeLessThan(top / 3);
    for (const m of after) expect(m).toBeCloseTo(top, 4);
    expect(again.ranges.get(t)!.max).toBeCloseTo(free.ranges.get(t)!.max, 4);
    for (const [c, m] of again.means.get(t)!.entries()) expect(m).toBeCloseTo(free.means.get(t)![c]!, 4);
  });

  it('lowers the int8 output error against float32', async () => {
    const fg = fromFloatGraph(network(2));
    const cal = await calibrate(fg, samplesOf(samples));
    const error = (q: QGraph): number => {
      let e = 0;
      for (const s of samples) {
        const want = run(fg, s);
        const got = run(q, s);
        for (let i = 0; i < want.length; i++) e += (got[i]! - want[i]!) ** 2;
      }
      return e;
    };
    const plain = error(quantizeGraph(fg, cal.ranges, { floatHead: false }));
    const eq = equalizeActivations(fg, cal, { isFloat: () => false });
    const equalized = error(quantizeGraph(eq.graph, eq.ranges, { floatHead: false }));
    console.log(`[int8] squared output error: ${plain.toExponential(2)} plain, ${equalized.toExponential(2)} equalized`);
    expect(equalized).toBeLessThan(plain / 2);
  });
});
