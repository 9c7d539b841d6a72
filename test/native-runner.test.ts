/**
 * The raw C++ benchmark runner (bench/native/runner.cc, built next to the
 * addon) reads the graph file the benchmarks write and must compute what the
 * addon computes: same lowering code, same XNNPACK, same thread count, so the
 * outputs are expected bitwise equal (asserted within 1e-6 to allow for a
 * different microkernel choice at another batch split).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Graph } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { nativePath, xnnpackInfo } from '../lib/binding.js';
import { writeGraphFile } from '../bench/lib/graph-file.js';

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

/** A MobileNet-like chain (every op alone is covered by test/schema-ops.test.ts). */
function graph(): Graph {
  const g = new Graph();
  const x = g.input([12, 12, 3]);
  const p = g.pad(x, { prePadding: [0, 0, 0], postPadding: [1, 1, 0] });
  const c = g.conv2d(p, { filter: random(8 * 9 * 3, 1), bias: random(8, 2), kernel: 3, stride: 2, outputChannels: 8, outputMin: 0, outputMax: 6 });
  const d = g.depthwiseConv2d(c, { filter: random(9 * 8, 3), bias: random(8, 4), kernel: 3, padding: [1, 1, 1, 1] });
  const h = g.hardswish(d);
  const se = g.sigmoid(g.globalAveragePool(h));
  const m = g.multiply(h, se);
  const r = g.add(m, c, { outputMax: 4 });
  const k = g.add(r, g.constant(random(8, 5), [8]));
  const a = g.averagePool2d(g.clamp(k, -1, 1), { pool: 2 });
  const f = g.fullyConnected(g.reshape(a, [72]), { weights: random(10 * 72, 6), bias: random(10, 7), outputChannels: 10 });
  g.output(g.softmax(f));
  return g;
}

describe('raw C++ runner (bench/native)', () => {
  const runner = path.join(path.dirname(nativePath()), 'xnnpack_bench_runner');

  it('is built next to the addon and matches the addon on the same graph file', async () => {
    expect(fs.existsSync(runner), `${runner} (built by scripts/build-native.mjs)`).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-runner-'));
    try {
      const g = graph();
      const file = path.join(dir, 'g.mnxg');
      writeGraphFile(file, g);
      const rt = await compileGraph(g, { batch: 2, threads: 1 });
      const x = random(rt.inputSize, 9);
      fs.writeFileSync(path.join(dir, 'x.f32'), Buffer.from(x.buffer));
      const expected = rt.runSync(x);
      const r = spawnSync(runner, ['--graph', file, '--input', path.join(dir, 'x.f32'), '--batch', '2', '--threads', '1', '--runs', '3', '--warmup', '1', '--times'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const json = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { output: number[]; times_ms: number[]; median_ms: number; xnnpack: string };
      expect(json.times_ms).toHaveLength(3);
      expect(json.median_ms).toBeGreaterThan(0);
      expect(json.xnnpack.startsWith(xnnpackInfo().source)).toBe(true);
      expect(json.output).toHaveLength(expected.length);
      for (let i = 0; i < expected.length; i++) expect(Math.abs((json.output[i] as number) - (expected[i] as number))).toBeLessThanOrEqual(1e-6);
      // --serve: a ready line, then one JSON line per command.
      const served = spawnSync(runner, ['--graph', file, '--input', path.join(dir, 'x.f32'), '--batch', '2', '--threads', '1', '--warmup', '1', '--serve'], {
        encoding: 'utf8', input: 'output\ntime 2\nrss\nnonsense\nquit\n',
      });
      expect(served.status, served.stderr).toBe(0);
      const lines = served.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines).toHaveLength(5);
      expect(lines[0]!.ready).toBe(true);
      expect(lines[0]!.load_ms as number).toBeGreaterThan(0);
      expect(lines[1]!.output).toEqual(json.output);
      expect(lines[2]!.times_ms as number[]).toHaveLength(2);
      expect(lines[3]!.peak_rss_mb as number).toBeGreaterThan(1);
      expect(lines[4]!.error).toBe('unknown command nonsense');
      rt.dispose();

      // A bad graph file (the old text format; a truncated graph): one JSON error line and exit status 1, no crash.
      fs.writeFileSync(path.join(dir, 'bad.mnxg'), 'MNXG 1\ntensor 0 1 3 4 4 3 -1 0\nnode conv2d 7 input=0\n');
      const bad = spawnSync(runner, ['--graph', path.join(dir, 'bad.mnxg')], { encoding: 'utf8' });
      expect(bad.status).toBe(1);
      expect(JSON.parse(bad.stdout.trim()).error).toMatch(/bad\.mnxg: Invalid serialized graph at byte 8: unsupported version/);
      const bytes = fs.readFileSync(file);
      fs.writeFileSync(path.join(dir, 'cut.mnxg'), bytes.subarray(0, bytes.length - 7));
      const cut = spawnSync(runner, ['--graph', path.join(dir, 'cut.mnxg')], { encoding: 'utf8' });
      expect(cut.status).toBe(1);
      expect(JSON.parse(cut.stdout.trim()).error).toMatch(/Invalid serialized graph at byte \d+: data section/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
