/**
 * The end-to-end row of the benchmark suite: `mobilenet classify DIR --json`
 * as a user runs it (files on disk → decode → inference → JSON lines on
 * stdout), each run in its own process, for several settings side by side:
 * the automatic policy (the default: lib/batch.ts `autoBatch`), `--batch 1`,
 * `--batch 8` (the policy's decodes in flight and threads, another batch) and
 * `--threads <all cores>` (the policy with every core given to inference).
 * Settings are interleaved round by round (rotated order) so that a noisy
 * machine slows them alike; images/s = images / wall time of the classify
 * run (the summary line's figure, model load excluded), median over rounds.
 * Used by bench/classify-e2e.ts (`npm run bench:classify`) and bench/run.ts.
 */
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { quantile } from './stats.js';

const exec = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** bin/mobilenet.js on the sources (no build step needed). */
const CLI =
  "import { main } from './lib/cli/index.ts'; " +
  'process.exitCode = await main(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });';

export interface ClassifyE2ERow {
  setting: string;
  args: string[];
  /** Median over rounds. */
  images_per_s: number;
  runs: number[];
}

export interface ClassifyE2EResult {
  what: string;
  images: number;
  cores: number;
  load_avg_start: number[];
  load_avg_end: number[];
  rows: ClassifyE2ERow[];
}

/** The target of issue 13: at least this many images/s at the default on the 2-core reference machine. */
export const CLASSIFY_E2E_TARGET = 150;

async function once(dir: string, args: string[]): Promise<{ images: number; rate: number }> {
  const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CLI, 'classify', dir, '--json', ...args], {
    cwd: root,
    maxBuffer: 1 << 28,
  });
  const lines = stdout.trim().split('\n').length;
  const m = /(\d+) images?, (\d+) errors?, ([\d.]+) images\/s/.exec(stderr);
  if (m === null) throw new Error(`no summary line in: ${stderr}`);
  if (Number(m[1]) !== lines) throw new Error(`summary says ${m[1]} images but ${lines} JSON lines came out`);
  return { images: lines, rate: Number(m[3]) };
}

export async function measureClassifyE2E(dir: string, rounds: number, log: (line: string) => void = () => undefined): Promise<ClassifyE2EResult> {
  const cores = os.availableParallelism();
  const settings: Array<{ name: string; args: string[] }> = [
    { name: 'auto (default)', args: [] },
    { name: '--batch 1', args: ['--batch', '1'] },
    { name: '--batch 8', args: ['--batch', '8'] },
    { name: `--threads ${cores} (all cores)`, args: ['--threads', String(cores)] },
  ];
  const rates = new Map<string, number[]>(settings.map((s) => [s.name, []]));
  const loadStart = os.loadavg();
  let images = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < settings.length; i++) {
      const s = settings[(i + r) % settings.length]!;
      const run = await once(dir, s.args);
      images = run.images;
      rates.get(s.name)!.push(run.rate);
      log(`[classify-e2e] round ${r + 1} ${s.name}: ${run.rate.toFixed(1)} images/s (load ${os.loadavg()[0]!.toFixed(2)})`);
    }
  }
  return {
    what: `mobilenet classify ${path.relative(root, dir)} --json (default model), end to end`,
    images,
    cores,
    load_avg_start: loadStart.map((x) => Math.round(x * 100) / 100),
    load_avg_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
    rows: settings.map((s) => ({ setting: s.name, args: s.args, images_per_s: Math.round(quantile(rates.get(s.name)!, 0.5) * 10) / 10, runs: rates.get(s.name)! })),
  };
}

/** The rows as a markdown table, with the load average and the target. */
export function classifyE2ETable(r: ClassifyE2EResult): string[] {
  const auto = r.rows[0]!.images_per_s;
  const lines = [
    `End to end: \`${r.what}\`, ${r.images} images, ${r.cores} cores, load average ${r.load_avg_start.map((x) => x.toFixed(2)).join(' ')} → ${r.load_avg_end.map((x) => x.toFixed(2)).join(' ')}. ` +
      `Target (issue 13): the default ≥ ${CLASSIFY_E2E_TARGET} images/s on 2 cores.`,
    '',
    '| setting | images/s (median) | vs auto | runs |',
    '|---|---:|---:|---|',
  ];
  for (const row of r.rows) {
    lines.push(`| ${row.setting} | ${row.images_per_s.toFixed(1)} | ${(row.images_per_s / auto).toFixed(2)}x | ${row.runs.map((x) => x.toFixed(1)).join(', ')} |`);
  }
  return lines;
}
