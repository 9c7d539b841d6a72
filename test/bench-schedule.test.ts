/**
 * The benchmark's scheduling option and the setting printed beside every
 * figure (bench/run.ts, bench/report.ts). No timing: the reports are
 * rendered from a hand-made results object.
 */
import { describe, expect, it } from 'vitest';
import { runBench } from '../bench/run.js';
import { engineLabel, markdown, summaryTable } from '../bench/report.js';
import type { BenchResults, ResultRow } from '../bench/lib/results.js';

const row = (engine: ResultRow['engine'], threads: number, setting: string, median: number): ResultRow => ({
  engine, model: 'm', threads, batch: 1, median_ms: median, p90_ms: median, p99_ms: median, runs: 3, images_per_s: 1000 / median, setting,
});

const results: BenchResults = {
  date: '2026-12-02T09:00:00.000Z',
  mode: 'quick',
  machine: { cpu: 'cpu', cores: 2, flags: [], memory_gb: 1, os: 'os', node: 'v20', xnnpack: 'x', host: 'h', load_avg: [0, 0, 0] } as unknown as BenchResults['machine'],
  settings: { rounds: 2, warmup: 1, runs_batch1: 3, runs_slow_engines: 1, batch_n: 4, runs_batch_n: 2, schedule: 'phased' },
  models: [{ id: 'm', label: 'M', params: 1, macs: 1e6, input: [224, 224, 3] }],
  results: [
    row('mobilenet-xnnpack', 1, 'default, interleaved', 4),
    row('onnxruntime-node', 1, 'default: intra-op spinning on (1 thread: no pool to spin), interleaved', 5),
    row('onnxruntime-node', 2, 'default: intra-op spinning on, phase-isolated', 3),
  ],
  concurrency: [{ engine: 'onnxruntime-node', model: 'm', threads: 2, concurrency: 4, requests: 8, median_ms: 3, p90_ms: 3, p99_ms: 3, images_per_s: 300, setting: 'default: intra-op spinning on, phase-isolated' }],
  targets: [],
  duration_s: 1,
  load_avg_end: [0, 0, 0],
};

describe('bench scheduling', () => {
  it('prints the setting beside every figure: rows, summary columns, concurrency rows, method line', () => {
    const md = markdown(results);
    expect(md).toContain('| m | onnxruntime-node (default: intra-op spinning on, phase-isolated) | 2 | 1 | 3 |');
    expect(md).toContain('| m | mobilenet-xnnpack (default, interleaved) | 1 | 1 | 4 |');
    expect(md).toContain('| m | onnxruntime-node (default: intra-op spinning on, phase-isolated) | 2 | 4 | 8 |');
    expect(md).toContain('all-core rows phase-isolated');
    expect(summaryTable(results)[0]).toContain('onnxruntime-node 2T (default: intra-op spinning on, phase-isolated)');
    const interleaved = markdown({ ...results, settings: { ...results.settings, schedule: 'interleaved' } });
    expect(interleaved).toContain('all-core rows interleaved too');
    expect(engineLabel({ engine: 'tfjs-wasm' })).toBe('tfjs-wasm');
  });

  it('refuses an unknown --schedule before doing any work', async () => {
    await expect(runBench(['--schedule', 'sometimes'])).rejects.toThrow('Expected one of phased, interleaved for --schedule but received "sometimes"');
  });
});
