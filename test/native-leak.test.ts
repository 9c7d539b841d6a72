/**
 * Memory: many runs (sync and async) and many compile/dispose cycles must not
 * grow the resident set. Bound: 20 MB after a warm-up (a leak of one
 * input+output buffer per run, 2 x 4 KB, would be 16+ MB over 2,000 runs;
 * leaking a compiled runtime, its 132 KB of shared weights plus as much
 * packed, would be 26+ MB over 100 cycles).
 */
import { describe, expect, it } from 'vitest';
import { Graph } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

function graph(): Graph {
  const g = new Graph();
  const x = g.input([16, 16, 4]);
  const c = g.conv2d(x, { filter: random(32 * 9 * 4, 1), bias: random(32, 2), kernel: 3, outputChannels: 32, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 });
  const d = g.depthwiseConv2d(c, { filter: random(9 * 32, 3), kernel: 3, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 });
  const s = g.multiply(d, g.sigmoid(g.globalAveragePool(d)));
  const p = g.reshape(g.globalAveragePool(s), [32]);
  // 1000 x 32 weights: 128 KB per graph copy.
  g.output(g.softmax(g.fullyConnected(p, { weights: random(1000 * 32, 4), bias: random(1000, 5), outputChannels: 1000 })));
  return g;
}

const gc = (globalThis as { gc?: () => void }).gc;
function rssMB(): number {
  gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

describe('native memory', () => {
  it('2,000 runs of a small graph: RSS grows < 20 MB', async () => {
    const rt = await compileGraph(graph(), { threads: 1 });
    const x = random(rt.inputSize, 9);
    const out = new Float32Array(rt.outputSize);
    for (let i = 0; i < 200; i++) rt.runSync(x, out); // warm-up
    for (let i = 0; i < 100; i++) await rt.run(x);
    const before = rssMB();
    for (let i = 0; i < 1000; i++) rt.runSync(x, out);
    for (let i = 0; i < 1000; i++) await rt.run(x); // a fresh output array each time
    const after = rssMB();
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4); // softmax output: the runs did work
    expect(after - before).toBeLessThan(20);
    rt.dispose();
  });

  it('100 compile/dispose cycles: RSS grows < 20 MB', async () => {
    const g = graph();
    for (let i = 0; i < 20; i++) (await compileGraph(g, { threads: 1 })).dispose(); // warm-up
    const before = rssMB();
    for (let i = 0; i < 100; i++) {
      // Every 5th with a 2-thread pool (created and destroyed with the runtime).
      const rt = await compileGraph(g, { threads: i % 5 === 0 ? 2 : 1 });
      if (rt.threads === 1) rt.runSync(random(rt.inputSize, i));
      rt.dispose();
    }
    const after = rssMB();
    expect(after - before).toBeLessThan(20);
    g.dispose();
  });
});
