/**
 * `npm run bench:classify [-- --rounds R --dir DIR]`: the end-to-end row of
 * the benchmark suite — `mobilenet classify DIR --json` as a user runs it
 * (files on disk → decode → inference → JSON lines on stdout), in its own
 * process, for each setting side by side: the automatic batching (the
 * default), `--batch 1` (the default before automatic batching) and
 * `--batch 8`. Settings are interleaved round by round (rotated order) so
 * that a noisy machine slows them alike; images/s = images / wall time of
 * the classify run (the summary line's figure, model load excluded), median
 * over rounds. The load average is recorded beside the numbers.
 *
 * Results: bench/results/local/classify-e2e-<date>.json (untracked), or
 * bench/results/ with --update.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { sharedDirSetting } from '../test/helpers/env.js';
import { resultsDir } from './lib/out.js';

const exec = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string' },
    update: { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const rounds = Number(values.rounds);
const dir = values.dir ?? path.resolve(root, sharedDirSetting, 'images', 'imagenet-sample');
const settings: Array<{ name: string; args: string[] }> = [
  { name: 'auto (default)', args: [] },
  { name: '--batch 1 (old default)', args: ['--batch', '1'] },
  { name: '--batch 8', args: ['--batch', '8'] },
  { name: 'auto, --threads 1', args: ['--threads', '1'] },
];

async function once(args: string[]): Promise<{ images: number; rate: number }> {
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

/** bin/mobilenet.js on the sources (no build step needed). */
const CLI =
  "import { main } from './lib/cli/index.ts'; " +
  'process.exitCode = await main(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });';

const rates = new Map<string, number[]>(settings.map((s) => [s.name, []]));
const loadStart = os.loadavg();
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < settings.length; i++) {
    const s = settings[(i + r) % settings.length]!;
    const { rate } = await once(s.args);
    rates.get(s.name)!.push(rate);
    process.stderr.write(`[classify-e2e] round ${r + 1} ${s.name}: ${rate.toFixed(1)} images/s (load ${os.loadavg()[0]!.toFixed(2)})\n`);
  }
}
const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const rows = settings.map((s) => ({ setting: s.name, args: s.args, images_per_s: Number(median(rates.get(s.name)!).toFixed(1)), runs: rates.get(s.name)! }));
const result = {
  date: new Date().toISOString(),
  what: `mobilenet classify ${path.relative(root, dir)} --json (default model), end to end`,
  cores: os.availableParallelism(),
  cpu: os.cpus()[0]?.model,
  load_avg_start: loadStart,
  load_avg_end: os.loadavg(),
  rows,
};
const outDir = resultsDir(values);
fs.mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `classify-e2e-${result.date.slice(0, 10)}.json`);
fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
for (const row of rows) process.stdout.write(`${row.setting.padEnd(26)} ${row.images_per_s.toFixed(1).padStart(7)} images/s\n`);
process.stdout.write(`load average ${result.load_avg_start.map((x) => x.toFixed(2)).join(' ')} -> ${result.load_avg_end.map((x) => x.toFixed(2)).join(' ')}; written ${path.relative(root, file)}\n`);
