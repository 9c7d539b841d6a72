/**
 * The end-to-end row of the benchmark suite: `mobilenet classify DIR --json`
 * as a user runs it (files on disk → decode → inference → JSON lines on
 * stdout), each run in its own process, for several settings side by side:
 * the automatic policy (the default: lib/batch.ts `autoBatch`), `--batch 1`,
 * `--batch 8` (the policy's decodes in flight and threads, another batch) and
 * `--threads <all cores>` (the policy with every core given to inference).
 * Settings are interleaved round by round (rotated order) so that a noisy
 * machine slows them alike; images/s = images / wall time of the classify
 * run (the summary line's figure, model load excluded), median over rounds;
 * CPU ms/image = the process's CPU time (all threads) from its first result
 * line to its end over the images after the first, median over rounds (CPU
 * per image bounds the throughput, and varies less than it with the load).
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

/**
 * bin/mobilenet.js on the sources (no build step needed), plus one line on
 * stderr after the run: the process's CPU time (every thread: decoders,
 * inference, JavaScript) from its first write to stdout (the first result)
 * to the end, so that model load and start-up are left out.
 */
const CLI =
  "import { main } from './lib/cli/index.ts'; " +
  'let first; const write = process.stdout.write.bind(process.stdout); ' +
  'process.stdout.write = (...a) => { first ??= process.cpuUsage(); return write(...a); }; ' +
  'process.exitCode = await main(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() }); ' +
  'const c = process.cpuUsage(first); process.stderr.write(`[bench] cpu_us_after_first_result=${first === undefined ? 0 : c.user + c.system}\\n`);';

export interface ClassifyE2ERow {
  setting: string;
  args: string[];
  /** Median over rounds. */
  images_per_s: number;
  runs: number[];
  /** CPU time of the whole process (all threads) per image, ms, from the first result to the end (images 2..N): median over rounds. */
  cpu_ms_per_image?: number;
  cpu_runs?: number[];
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

async function once(dir: string, args: string[]): Promise<{ images: number; rate: number; cpuMs: number }> {
  const { stdout, stderr } = await exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CLI, 'classify', dir, '--json', ...args], {
    cwd: root,
    maxBuffer: 1 << 28,
  });
  const lines = stdout.trim().split('\n').length;
  const m = /(\d+) images?, (\d+) errors?, ([\d.]+) images\/s/.exec(stderr);
  if (m === null) throw new Error(`no summary line in: ${stderr}`);
  if (Number(m[1]) !== lines) throw new Error(`summary says ${m[1]} images but ${lines} JSON lines came out`);
  const cpu = /\[bench\] cpu_us_after_first_result=(\d+)/.exec(stderr);
  if (cpu === null) throw new Error(`no CPU line in: ${stderr}`);
  return { images: lines, rate: Number(m[3]), cpuMs: lines > 1 ? Number(cpu[1]) / 1000 / (lines - 1) : NaN };
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
  const cpus = new Map<string, number[]>(settings.map((s) => [s.name, []]));
  const loadStart = os.loadavg();
  let images = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < settings.length; i++) {
      const s = settings[(i + r) % settings.length]!;
      const run = await once(dir, s.args);
      images = run.images;
      rates.get(s.name)!.push(run.rate);
      cpus.get(s.name)!.push(Math.round(run.cpuMs * 100) / 100);
      log(`[classify-e2e] round ${r + 1} ${s.name}: ${run.rate.toFixed(1)} images/s, ${run.cpuMs.toFixed(2)} ms CPU/image (load ${os.loadavg()[0]!.toFixed(2)})`);
    }
  }
  return {
    what: `mobilenet classify ${path.relative(root, dir)} --json (default model), end to end`,
    images,
    cores,
    load_avg_start: loadStart.map((x) => Math.round(x * 100) / 100),
    load_avg_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
    rows: settings.map((s) => ({
      setting: s.name,
      args: s.args,
      images_per_s: Math.round(quantile(rates.get(s.name)!, 0.5) * 10) / 10,
      runs: rates.get(s.name)!,
      cpu_ms_per_image: Math.round(quantile(cpus.get(s.name)!, 0.5) * 100) / 100,
      cpu_runs: cpus.get(s.name)!,
    })),
  };
}

/** The rows as a markdown table, with the load average and the target. */
export function classifyE2ETable(r: ClassifyE2EResult): string[] {
  const auto = r.rows[0]!.images_per_s;
  const lines = [
    `End to end: \`${r.what}\`, ${r.images} images, ${r.cores} cores, load average ${r.load_avg_start.map((x) => x.toFixed(2)).join(' ')} → ${r.load_avg_end.map((x) => x.toFixed(2)).join(' ')}. ` +
      `Target (issue 13): the default ≥ ${CLASSIFY_E2E_TARGET} images/s on 2 cores.`,
    '',
    '| setting | images/s (median) | vs auto | runs | CPU ms/image (median) |',
    '|---|---:|---:|---|---:|',
  ];
  for (const row of r.rows) {
    // Older result files have no CPU figure.
    const cpu = row.cpu_ms_per_image === undefined ? '' : row.cpu_ms_per_image.toFixed(2);
    lines.push(`| ${row.setting} | ${row.images_per_s.toFixed(1)} | ${(row.images_per_s / auto).toFixed(2)}x | ${row.runs.map((x) => x.toFixed(1)).join(', ')} | ${cpu} |`);
  }
  return lines;
}
