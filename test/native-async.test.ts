/**
 * The async runtime never touches JavaScript memory off the JS thread:
 * `run()` copies its input when called (reusing, detaching or transferring the
 * input buffer right after is safe and does not change the result) and writes
 * the caller's output on the JS thread when it settles (an output detached
 * meanwhile gives a typed error, not a write into freed memory). Terminating a
 * worker_threads Worker that loops on run(), or process.exit() during a run,
 * does not abort the process. Oracle: runSync() on the same runtime.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { MobileNetError } from '../lib/errors.js';
import { randomArray } from './helpers/op-examples.js';
import { repoRoot } from './helpers/shared.js';

/** A few 3x3 convolutions on 64x64x32: milliseconds per run, long enough to act during it. */
function graph(): Graph {
  const g = new Graph();
  let t: Tensor = g.input([64, 64, 32]);
  for (let i = 0; i < 3; i++) t = g.conv2d(t, { filter: randomArray(32 * 9 * 32, 10 + i, 0.2), kernel: 3, outputChannels: 32, padding: [1, 1, 1, 1], outputMin: -4, outputMax: 4 });
  g.output(g.globalAveragePool(t));
  return g;
}

type Transferable = ArrayBuffer & { transfer?: () => ArrayBuffer };

/** ArrayBuffer.prototype.transfer where the runtime has it (Node >= 21), else postMessage with a transfer list. */
function transfer(buffer: ArrayBuffer): void {
  const b = buffer as Transferable;
  if (typeof b.transfer === 'function') {
    b.transfer();
    return;
  }
  const { port1, port2 } = new MessageChannel();
  port1.postMessage(null, [buffer]);
  port1.close();
  port2.close();
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-async-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('native run(): input and output stay on the JS thread', () => {
  it('run(x) then x.set(next): computes on the contents at the call (idle and queued runs)', async () => {
    const rt = await compileGraph(graph(), { threads: 1 });
    const a = randomArray(rt.inputSize, 1);
    const b = randomArray(rt.inputSize, 2);
    const ya = rt.runSync(a).slice();
    const yb = rt.runSync(b).slice();
    expect(ya).not.toEqual(yb);
    const x = a.slice();
    const p1 = rt.run(x); // idle: copied by the addon now
    x.set(b);
    const p2 = rt.run(x); // queued: copied by lib/runtime.ts now
    x.set(a);
    const p3 = rt.run(x);
    x.fill(0);
    expect(await p1).toEqual(ya);
    expect(await p2).toEqual(yb);
    expect(await p3).toEqual(ya);
    // A loop reusing one buffer gets one answer per content, not N copies of the last.
    const xs = [a, b, a, b];
    const buf = new Float32Array(rt.inputSize);
    const results = xs.map((v) => {
      buf.set(v);
      return rt.run(buf);
    });
    const outs = await Promise.all(results);
    outs.forEach((o, i) => expect(o).toEqual(i % 2 === 0 ? ya : yb));
    rt.dispose();
  });

  it('run() without an output: a new array per call, never one handed out before (idle and queued runs)', async () => {
    const rt = await compileGraph(graph(), { threads: 1 });
    const a = randomArray(rt.inputSize, 4);
    const b = randomArray(rt.inputSize, 5);
    const ya = rt.runSync(a).slice();
    const yb = rt.runSync(b).slice();
    expect(ya).not.toEqual(yb);
    const outs: Float32Array[] = [];
    for (let i = 0; i < 4; i++) outs.push(await rt.run(i % 2 === 0 ? a : b));
    outs.push(...(await Promise.all([rt.run(a), rt.run(b)]))); // the second one queued
    // Each result owns its buffer, and a later run wrote none of the earlier ones.
    expect(new Set(outs.map((o) => o.buffer)).size).toBe(outs.length);
    outs.forEach((o, i) => {
      expect(o.byteLength).toBe(o.buffer.byteLength);
      expect(o).toEqual(i % 2 === 0 ? ya : yb);
    });
    // A caller may transfer a result's buffer: later runs are unaffected.
    transfer(outs[0]!.buffer as ArrayBuffer);
    expect(await rt.run(b)).toEqual(yb);
    expect(outs[1]).toEqual(yb);
    rt.dispose();
  });

  it('transferring or detaching the input during a run is safe and does not change the result', async () => {
    const rt = await compileGraph(graph(), { threads: 1 });
    const a = randomArray(rt.inputSize, 3);
    const expected = rt.runSync(a).slice();
    for (const detach of ['structuredClone', 'transfer'] as const) {
      for (let k = 0; k < 2; k++) {
        const x = a.slice();
        const pending = k === 0 ? [] : [rt.run(a)]; // k = 1: the run is queued behind another
        const p = rt.run(x);
        const buffer = x.buffer as ArrayBuffer;
        if (detach === 'structuredClone') structuredClone(buffer, { transfer: [buffer] });
        else transfer(buffer);
        expect(x.length).toBe(0); // detached
        expect(await p).toEqual(expected);
        await Promise.all(pending);
      }
    }
    rt.dispose();
  });

  it('an output transferred during a run: a typed error, and the runtime stays usable', async () => {
    const rt = await compileGraph(graph(), { threads: 1 });
    const a = randomArray(rt.inputSize, 4);
    const expected = rt.runSync(a).slice();
    // Idle run: the addon writes the output at settle and finds it detached.
    const out = new Float32Array(rt.outputSize);
    const p = rt.run(a, out);
    structuredClone(out.buffer, { transfer: [out.buffer] });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MobileNetError);
    expect((err as Error).message).toBe('The output Float32Array was detached or transferred while the run was in progress');
    // Queued run: its output is checked when its turn comes.
    const out2 = new Float32Array(rt.outputSize);
    const first = rt.run(a);
    const p2 = rt.run(a, out2);
    transfer(out2.buffer as ArrayBuffer);
    await first;
    await expect(p2).rejects.toThrow(/output/);
    expect(await rt.run(a)).toEqual(expected);
    expect(rt.pendingRuns).toBe(0);
    rt.dispose();
  });
});

function runScript(name: string, body: string): ReturnType<typeof spawnSync> {
  const script = path.join(tmp, name);
  const lib = (m: string): string => JSON.stringify(pathToFileURL(path.join(repoRoot, 'lib', m)).href);
  fs.writeFileSync(script, body.replaceAll('@graph', lib('graph.ts')).replaceAll('@runtime', lib('runtime.ts')));
  return spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
}

const GRAPH = `
const g = new Graph();
let t = g.input([64, 64, 32]);
for (let i = 0; i < 3; i++) t = g.conv2d(t, { filter: new Float32Array(32 * 9 * 32).fill(0.01), kernel: 3, outputChannels: 32, padding: [1, 1, 1, 1] });
g.output(t);
`;

describe('process and worker teardown during runs', () => {
  it('terminating a worker_threads Worker that loops on run() does not abort the process', () => {
    // A plain .mjs worker that loads the TypeScript sources through tsx's API (Node 20 workers do not take --import).
    const worker = path.join(tmp, 'loop-worker.mjs');
    const href = (...p: string[]): string => JSON.stringify(pathToFileURL(path.join(repoRoot, ...p)).href);
    fs.writeFileSync(worker, `import { parentPort } from 'node:worker_threads';
import { tsImport } from ${href('node_modules', 'tsx', 'dist', 'esm', 'api', 'index.mjs')};
const { Graph } = await tsImport(${href('lib', 'graph.ts')}, import.meta.url);
const { compileGraph } = await tsImport(${href('lib', 'runtime.ts')}, import.meta.url);
${GRAPH}
const rt = await compileGraph(g, { threads: 2 });
const x = new Float32Array(rt.inputSize).fill(1);
let n = 0;
for (;;) {
  await rt.run(x);
  if (++n === 3) parentPort.postMessage('looping');
}
`);
    const res = runScript('terminate.mts', `import { Worker } from 'node:worker_threads';
let finished = 0;
for (let round = 0; round < 8; round++) {
  const w = new Worker(${JSON.stringify(worker)});
  await new Promise((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await new Promise((r) => setTimeout(r, 5 * round));
  await w.terminate();
  finished++;
}
console.log('terminated', finished);
`);
    expect(res.stderr).not.toMatch(/terminate called|Aborted|FATAL/);
    expect(res.signal).toBeNull();
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('terminated 8');
  });

  it('process.exit() during a run exits cleanly with its code', () => {
    const res = runScript('exit.mts', `import { Graph } from @graph;
import { compileGraph } from @runtime;
${GRAPH}
const rt = await compileGraph(g, { threads: 2 });
const x = new Float32Array(rt.inputSize).fill(1);
void rt.run(x);
void rt.run(x);
setImmediate(() => process.exit(7));
`);
    expect(res.stderr).not.toMatch(/terminate called|Aborted|FATAL/);
    expect(res.signal).toBeNull();
    expect(res.status).toBe(7);
  });
});
