/**
 * Memory: many runs (sync and async) and many compile/dispose cycles must not
 * grow the resident set. Runs with --expose-gc (vitest.config.ts; asserted
 * below), RSS read after a full GC, after a warm-up. Bounds below the leaks
 * they catch: one input+output buffer per run (2 x 4 KB) over 6,000 runs is
 * 48 MB, the bound 8 MB; a leaked compiled runtime (its 132 KB of weights
 * plus as much packed, and its I/O buffers) over 600 cycles is 156+ MB, the
 * bound 30 MB (compiles run on libuv pool threads, whose malloc arenas make
 * RSS wander without any leak until every arena has grown: measured 96-108 MB
 * over 600 cycles here, and +20 MB over 300 cycles after a 60-cycle warm-up
 * on the CI machine; hence a 300-cycle warm-up and a wider window).
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
async function rssMB(): Promise<number> {
  for (let i = 0; i < 2; i++) {
    gc!();
    await new Promise((r) => setTimeout(r, 20));
  }
  return process.memoryUsage().rss / 2 ** 20;
}


describe('native memory', () => {
  it('runs with gc() exposed (the bound below means something)', () => {
    expect(typeof gc).toBe('function');
  });

  it('6,000 runs of a small graph: RSS grows < 8 MB', async () => {
    const rt = await compileGraph(graph(), { threads: 1 });
    const x = random(rt.inputSize, 9);
    const out = new Float32Array(rt.outputSize);
    for (let i = 0; i < 200; i++) rt.runSync(x, out); // warm-up
    // Warm-up of the async path too: V8's heap settles after a few thousand fresh outputs (measured: flat from then on).
    for (let i = 0; i < 3000; i++) await rt.run(x);
    for (let i = 0; i < 200; i++) await rt.run(x, out);
    const before = await rssMB();
    for (let i = 0; i < 2000; i++) rt.runSync(x, out);
    for (let i = 0; i < 2000; i++) await rt.run(x); // a fresh output array each time
    for (let i = 0; i < 2000; i++) await rt.run(x, out);
    const after = await rssMB();
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4); // softmax output: the runs did work
    console.log(`[leak] 6,000 runs: RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB`);
    expect(after - before).toBeLessThan(8);
    rt.dispose();
  });

  it('600 compile/dispose cycles: RSS grows < 30 MB', async () => {
    const g = graph();
    for (let i = 0; i < 300; i++) (await compileGraph(g, { threads: i % 5 === 0 ? 2 : 1 })).dispose(); // warm-up
    const before = await rssMB();
    for (let i = 0; i < 600; i++) {
      // Every 5th with a 2-thread pool (created and destroyed with the runtime).
      const rt = await compileGraph(g, { threads: i % 5 === 0 ? 2 : 1 });
      if (rt.threads === 1) rt.runSync(random(rt.inputSize, i));
      rt.dispose();
    }
    const after = await rssMB();
    console.log(`[leak] 600 compile/dispose cycles: RSS ${before.toFixed(1)} -> ${after.toFixed(1)} MB`);
    expect(after - before).toBeLessThan(30);
    g.dispose();
  });
});
