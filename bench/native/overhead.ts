/**
 * Per-call overhead of the native path, side by side in one run:
 * raw binding runSync, Runtime.runSync, Runtime.run (AsyncWorker + promise),
 * on a tiny graph (overhead-dominated) and on a 112x112x32 depthwise+pointwise
 * block (compute-dominated). Medians of rounds of timed loops.
 *
 * `--sweep`: the async path's extra cost per call (Runtime.run minus
 * Runtime.runSync, one call of each in turn) against the length of a run, on chains
 * of 0 to 64 depthwise+pointwise blocks (56x56x32): a cost that grows with
 * the time the JS thread sleeps between calls, rather than with the work the
 * binding does per call, is the operating system (or the hypervisor) waking
 * an idle thread, not the binding.
 *
 *   npx tsx bench/native/overhead.ts [--threads 1] [--rounds 7] [--sweep]
 */
import { parseArgs } from 'node:util';
import { Graph } from '../../lib/graph.js';
import { toNativeGraph } from '../../lib/backends/native.js';
import { compileGraph } from '../../lib/runtime.js';
import { xnnpackInfo } from '../../lib/binding.js';

const { values } = parseArgs({
  options: { threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '7' }, sweep: { type: 'boolean', default: false } },
});
const threads = Number(values.threads);
const rounds = Number(values.rounds);

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

function tiny(): Graph {
  const g = new Graph();
  g.output(g.clamp(g.input([4, 4, 4]), 0, 6));
  return g;
}

function block(): Graph {
  const g = new Graph();
  const x = g.input([112, 112, 32]);
  const d = g.depthwiseConv2d(x, { filter: random(9 * 32, 1), bias: random(32, 2), kernel: 3, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 });
  g.output(g.conv2d(d, { filter: random(64 * 32, 3), bias: random(64, 4), kernel: 1, outputChannels: 64, outputMin: 0, outputMax: 6 }));
  return g;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function time(iters: number, f: () => unknown | Promise<unknown>): Promise<number> {
  const per: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) await f();
    per.push(Number(process.hrtime.bigint() - t0) / 1e3 / iters);
  }
  return median(per);
}

const info = xnnpackInfo();
console.log(`XNNPACK ${info.source} ${info.commit ?? info.version ?? ''}, threads ${threads}, ${rounds} rounds, microseconds per call (median)`);
for (const [name, make, iters] of [['tiny clamp 4x4x4', tiny, 2000], ['dw3x3+pw 112x112x32->64', block, 30]] as const) {
  const g = make();
  const ng = toNativeGraph(g);
  const raw = ng.compile(1, threads);
  const rt = await compileGraph(g, { threads });
  const x = random(rt.inputSize, 9);
  const out = new Float32Array(rt.outputSize);
  const rows: [string, number][] = [];
  rows.push(['raw binding runSync', await time(iters, () => raw.runSync(x, out))]);
  rows.push(['Runtime.runSync', await time(iters, () => rt.runSync(x, out))]);
  rows.push(['Runtime.run (async)', await time(iters, () => rt.run(x, out))]);
  console.log(`\n${name}`);
  for (const [k, v] of rows) console.log(`  ${k.padEnd(22)} ${v.toFixed(2).padStart(10)} us`);
  raw.dispose();
  rt.dispose();
  ng.dispose();
}

/** `blocks` depthwise 3x3 + pointwise 32->32 blocks on 56x56x32 (0: one clamp). */
function chain(blocks: number): Graph {
  const g = new Graph();
  let x = g.input([56, 56, 32]);
  if (blocks === 0) x = g.clamp(x, 0, 6);
  for (let b = 0; b < blocks; b++) {
    const d = g.depthwiseConv2d(x, { filter: random(9 * 32, 10 * b + 1), bias: random(32, 10 * b + 2), kernel: 3, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 });
    x = g.conv2d(d, { filter: random(32 * 32, 10 * b + 3).map((v) => v / 8), bias: random(32, 10 * b + 4), kernel: 1, outputChannels: 32, outputMin: 0, outputMax: 6 });
  }
  g.output(x);
  return g;
}

if (values.sweep) {
  console.log('\nasync cost vs run length (Runtime.run minus Runtime.runSync, medians of interleaved rounds)');
  console.log('| blocks | pairs | runSync us | run (async) us | async cost us (median of pair differences) |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const blocks of [0, 1, 4, 16, 64]) {
    const rt = await compileGraph(chain(blocks), { threads });
    const x = random(rt.inputSize, 9);
    const out = new Float32Array(rt.outputSize);
    // Pairs of calls, one of each in turn: the median of the pairs' differences
    // is what the async path adds, robust to the machine's speed drifting.
    for (let i = 0; i < 3; i++) await rt.run(x, out);
    const pairs = Math.max(30, Math.min(3000, Math.round(2000 / (blocks + 1))));
    const sync: number[] = [];
    const async: number[] = [];
    for (let i = 0; i < pairs; i++) {
      const t0 = process.hrtime.bigint();
      rt.runSync(x, out);
      const t1 = process.hrtime.bigint();
      await rt.run(x, out);
      const t2 = process.hrtime.bigint();
      sync.push(Number(t1 - t0) / 1e3);
      async.push(Number(t2 - t1) / 1e3);
    }
    const cost = median(async.map((a, i) => a - sync[i]!));
    console.log(`| ${blocks} | ${pairs} | ${median(sync).toFixed(1)} | ${median(async).toFixed(1)} | ${cost.toFixed(1)} |`);
    rt.dispose();
  }
}
