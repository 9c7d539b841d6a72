/**
 * Load benchmark of `mobilenet serve` with autocannon, on 127.0.0.1 only:
 * two servers (micro-batching off: --max-batch 1; on: --max-batch 8
 * --max-wait-ms 2) get the same POST /v1/classify load in alternating
 * rounds (so a noisy, shared machine slows both alike), `--requests` each.
 * Reports requests/s, p50/p99 latency, non-2xx answers, the mean batch size
 * (from the server's /metrics), and each server's RSS before (after
 * warm-up) and after its requests; plus the load average. Prints a
 * Markdown table ready for the README (and `--json` writes the numbers).
 *
 *   npx tsx bench/serve-load.ts [--requests 10000] [--connections 32] [--rounds 5]
 *                               [--max-seconds 900] [--weights F] [--image F] [--threads N] [--json out.json]
 *
 * Bounded in count (--requests per server) and time (--max-seconds for the
 * whole load phase, both servers: a round in progress is stopped at the
 * deadline, later rounds are skipped; a server's start is bounded at 120 s).
 * Image: ../shared/images/cat.jpg when the shared directory is there, else
 * examples/jack-o-lantern.jpg.
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import path from 'node:path';
import { metric, request, startServer, type Server } from '../test/helpers/server.js';
import { hasShared, repoRoot, shared } from '../test/helpers/shared.js';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    connections: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '5' },
    'max-seconds': { type: 'string', default: '900' },
    weights: { type: 'string' },
    image: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'string' },
  },
});
function positive(name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Expected positive integer for --${name} but received ${JSON.stringify(value)}`);
  return n;
}
const total = positive('requests', values.requests);
const connections = positive('connections', values.connections);
const rounds = positive('rounds', values.rounds);
const maxSeconds = positive('max-seconds', values['max-seconds']);
// Set when the servers are ready: bounds the load phase (each server's start is bounded by startServer's 120 s).
let deadline = Infinity;
const weights = values.weights ?? (hasShared ? shared('models', 'mobilenet_v1_0.75_224', 'model.json') : undefined);
const imageFile = values.image ?? (hasShared ? shared('images', 'cat.jpg') : path.join(repoRoot, 'examples', 'jack-o-lantern.jpg'));
const image = fs.readFileSync(imageFile);

interface Config {
  name: string;
  args: string[];
  server?: Server;
  latencies: number[];
  seconds: number;
  ok: number;
  non2xx: number;
  errors: number;
  rssBefore?: number;
  rssAfter?: number;
  meanBatch?: number;
  /** mobilenet_batch_size's [sum, count] after warm-up. */
  batchesBefore?: [number, number];
  modelName?: string;
  threads?: number;
}

const configs: Config[] = [
  { name: 'no batching (`--max-batch 1`)', args: ['--max-batch', '1'], latencies: [], seconds: 0, ok: 0, non2xx: 0, errors: 0 },
  { name: 'micro-batching (`--max-batch 8 --max-wait-ms 2`)', args: ['--max-batch', '8', '--max-wait-ms', '2'], latencies: [], seconds: 0, ok: 0, non2xx: 0, errors: 0 },
];

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) / 1024;
}

/** Images and inference calls so far (the mobilenet_batch_size histogram's sum and count). */
async function batchTotals(server: Server): Promise<[number, number]> {
  const m = (await request(`${server.url}/metrics`)).text;
  return [metric(m, 'mobilenet_batch_size_sum') ?? 0, metric(m, 'mobilenet_batch_size_count') ?? 0];
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** One round: `amount` requests, stopped after `budgetMs` if not done by then. */
async function round(c: Config, amount: number, budgetMs: number): Promise<void> {
  const started = performance.now();
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  const instance = autocannon(
    {
      url: `${c.server!.url}/v1/classify`,
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: image,
      connections,
      amount,
      timeout: 60,
    },
    () => finished(),
  );
  instance.on('response', (_client, status, _bytes, ms) => {
    if (status >= 200 && status < 300) c.ok++;
    else c.non2xx++;
    c.latencies.push(ms);
  });
  instance.on('reqError', () => c.errors++);
  const timer = setTimeout(() => instance.stop(), Math.max(1000, budgetMs));
  await done;
  clearTimeout(timer);
  c.seconds += (performance.now() - started) / 1000;
}

const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(', ');
const loadBefore = load();
try {
  for (const c of configs) {
    const extra = values.threads === undefined ? [] : ['--threads', values.threads];
    c.server = await startServer([...(weights === undefined ? [] : ['--weights', weights]), ...extra, ...c.args]);
    // Warm-up (first decodes, allocator) and a correctness check of the answer.
    const check = await request(`${c.server.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: image });
    if (check.status !== 200) throw new Error(`${c.name}: ${check.status} ${check.text}`);
    for (let i = 0; i < 50; i++) await request(`${c.server.url}/v1/classify`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: image });
    c.rssBefore = rssMiB(c.server.child.pid!);
    const info = (await request(`${c.server.url}/v1/models`)).json.models[0];
    c.modelName = info.name;
    c.threads = info.threads;
    c.batchesBefore = await batchTotals(c.server);
    console.error(`${c.name}: ready on ${c.server.url}, top-1 ${check.json.predictions[0].label}, RSS ${c.rssBefore.toFixed(1)} MiB`);
  }
  deadline = Date.now() + maxSeconds * 1000;
  const perRound = Math.ceil(total / rounds);
  let slotsLeft = rounds * configs.length;
  for (let r = 0; r < rounds && Date.now() < deadline; r++) {
    for (const c of configs) {
      const amount = Math.min(perRound, total - c.latencies.length);
      // The time left is shared evenly by the rounds left, so a time-bound run still loads both servers alike.
      const budget = (deadline - Date.now()) / slotsLeft--;
      if (amount > 0 && Date.now() < deadline) await round(c, amount, budget);
      console.error(`round ${r + 1}/${rounds} ${c.name}: ${c.latencies.length} requests so far`);
    }
  }
  for (const c of configs) {
    c.rssAfter = rssMiB(c.server!.child.pid!);
    const [sum, count] = await batchTotals(c.server!);
    c.meanBatch = (sum - c.batchesBefore![0]) / (count - c.batchesBefore![1]);
  }
} finally {
  for (const c of configs) await c.server?.stop();
}
const loadAfter = load();

const rows = configs.map((c) => {
  const sorted = [...c.latencies].sort((a, b) => a - b);
  return {
    config: c.name,
    requests: c.latencies.length,
    ok: c.ok,
    non2xx: c.non2xx,
    errors: c.errors,
    req_per_s: c.latencies.length / c.seconds,
    p50_ms: percentile(sorted, 50),
    p99_ms: percentile(sorted, 99),
    mean_batch: c.meanBatch!,
    rss_before_mib: c.rssBefore!,
    rss_after_mib: c.rssAfter!,
  };
});
const result = {
  date: new Date().toISOString(),
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`,
  weights: weights ?? 'the shipped default model',
  model: configs[0]!.modelName,
  threads: configs[0]!.threads,
  image: imageFile,
  requests_per_server: total,
  max_seconds: maxSeconds,
  connections,
  rounds,
  load_average_before: loadBefore,
  load_average_after: loadAfter,
  rows,
};
if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
const n = (x: number, digits = 0): string => x.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const short = rows.some((r) => r.requests < total);
console.log(
  `Run of ${result.date.slice(0, 10)} (${result.model}, ${path.basename(imageFile)}, ${result.threads} thread(s), ${connections} connections; ` +
    `${result.machine}; load average (1, 5, 15 min) ${loadBefore} before, ${loadAfter} after)` +
    (short ? `. The ${maxSeconds} s bound ended the run before ${n(total)} requests per server:` : ':'),
);
console.log('');
console.log(`| config | requests | req/s | p50 ms | p99 ms | non-2xx | mean batch | RSS before → after (MiB) |`);
console.log(`|---|---|---|---|---|---|---|---|`);
for (const r of rows) {
  console.log(
    `| ${r.config} | ${n(r.requests)} | ${n(r.req_per_s, 1)} | ${n(r.p50_ms, 1)} | ${n(r.p99_ms, 1)} | ${n(r.non2xx + r.errors)} | ${n(r.mean_batch, 2)} | ${n(r.rss_before_mib, 1)} → ${n(r.rss_after_mib, 1)} |`,
  );
}
