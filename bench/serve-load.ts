/**
 * Load benchmark of `mobilenet serve` with autocannon, on 127.0.0.1 only:
 * two servers (micro-batching off: --max-batch 1; on: --max-batch 8
 * --max-wait-ms 2) get the same POST /v1/classify load in alternating
 * rounds (so a noisy, shared machine slows both alike), `--requests` each.
 * Reports requests/s, p50/p99 latency, non-2xx answers, and each server's
 * RSS before (after warm-up) and after its requests; plus the load average.
 *
 *   npx tsx bench/serve-load.ts [--requests 10000] [--connections 32] [--rounds 5]
 *                               [--max-seconds 900] [--weights F] [--image F] [--threads N] [--json out.json]
 *
 * Bounded in count (--requests) and time (--max-seconds overall: rounds stop early).
 */
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { request, startServer, type Server } from '../test/helpers/server.js';
import { hasShared, shared } from '../test/helpers/shared.js';

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
const total = Number(values.requests);
const connections = Number(values.connections);
const rounds = Number(values.rounds);
const deadline = Date.now() + Number(values['max-seconds']) * 1000;
const weights = values.weights ?? (hasShared ? shared('models', 'mobilenet_v1_0.75_224', 'model.json') : undefined);
const imageFile = values.image ?? (hasShared ? shared('images', 'cat.jpg') : undefined);
if (imageFile === undefined) throw new Error('pass --image (no shared directory)');
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
}

const configs: Config[] = [
  { name: 'no batching (--max-batch 1)', args: ['--max-batch', '1'], latencies: [], seconds: 0, ok: 0, non2xx: 0, errors: 0 },
  { name: 'micro-batching (--max-batch 8 --max-wait-ms 2)', args: ['--max-batch', '8', '--max-wait-ms', '2'], latencies: [], seconds: 0, ok: 0, non2xx: 0, errors: 0 },
];

function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) / 1024;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function round(c: Config, amount: number): Promise<void> {
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
  const timer = setTimeout(() => instance.stop(), Math.max(1000, deadline - Date.now()));
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
    console.error(`${c.name}: ready on ${c.server.url}, top-1 ${check.json.predictions[0].label}, RSS ${c.rssBefore.toFixed(1)} MiB`);
  }
  const perRound = Math.ceil(total / rounds);
  for (let r = 0; r < rounds && Date.now() < deadline; r++) {
    for (const c of configs) {
      const amount = Math.min(perRound, total - c.latencies.length);
      if (amount > 0 && Date.now() < deadline) await round(c, amount);
      console.error(`round ${r + 1}/${rounds} ${c.name}: ${c.latencies.length} requests so far`);
    }
  }
  for (const c of configs) c.rssAfter = rssMiB(c.server!.child.pid!);
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
    rss_before_mib: c.rssBefore!,
    rss_after_mib: c.rssAfter!,
  };
});
const result = {
  date: new Date().toISOString(),
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`,
  weights,
  image: imageFile,
  connections,
  rounds,
  load_average_before: loadBefore,
  load_average_after: loadAfter,
  rows,
};
if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify(result, null, 2) + '\n');
console.log(`| config | requests | req/s | p50 ms | p99 ms | non-2xx | RSS before → after (MiB) |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const r of rows) {
  console.log(
    `| ${r.config} | ${r.requests} | ${r.req_per_s.toFixed(1)} | ${r.p50_ms.toFixed(1)} | ${r.p99_ms.toFixed(1)} | ${r.non2xx + r.errors} | ${r.rss_before_mib.toFixed(1)} → ${r.rss_after_mib.toFixed(1)} |`,
  );
}
console.log(`\n${result.machine}; ${connections} connections; load average (1, 5, 15 min) before ${loadBefore}, after ${loadAfter}`);
