/**
 * Load rows: what loading a model costs the process, each model in a fresh
 * child process:
 *  - stall_ms: the longest event-loop stall while loading, measured as the
 *    largest gap between ticks of a 1 ms interval timer (monitorEventLoopDelay
 *    under-reports long stalls);
 *  - stall_cpu_ms: the most CPU time the main thread used between two of
 *    those ticks (Linux: /proc/thread-self/schedstat), i.e. the longest stall
 *    without the time the thread waited for a CPU: on a busy machine
 *    stall_ms measures the scheduler, this the work (null elsewhere);
 *  - rss_growth_mb: RSS after loading (and a GC) minus RSS after importing the
 *    library, against the target 2 x float32 weight bytes + 10 MB;
 *  - what that growth is: js_heap_mb, the growth of V8's heap (resident
 *    pages of all its spaces; young_mb of it is the young generation, which
 *    V8 doubles when enough objects survive its scavenges and shrinks only
 *    on memory-reducing GCs: a process that has done any JavaScript work
 *    since startup already has it at its working size), and native_mb, the
 *    rest (the addon's graph and packed weights, XNNPACK's buffers, C heap,
 *    code pages first touched).
 *
 *   npx tsx bench/load.ts [--root DIR] [--threads N] [--repeat N] [--warm-heap] [--json FILE]
 *
 * `--warm-heap` first grows V8's young generation to its working size (short-
 * lived objects kept across a few scavenges) before the RSS after import is
 * taken, so that the growth is what the model holds rather than V8's
 * one-time sizing of a fresh process (6-9 MB, young_mb in the default mode).
 * It takes the young generation to its maximum (RSS after import ~30 MB
 * higher), so compare native_mb, not RSS, with the default mode; native
 * memory freed by the warm-up is not reused by the load (V8's heap pages are
 * not malloc memory).
 *
 * `--repeat N` loads each model N times (interleaved, each in a fresh
 * process) and adds min / median rows: the machine's load moves both numbers.
 *
 * `npm run bench` adds the same two numbers (stall, RSS growth) to the
 * mobilenet-xnnpack rows of every model it benchmarks (`measureLoad`).
 *
 * `--root` loads the library from another checkout (e.g. to measure before a
 * change: `--root /path/to/old/checkout`).
 */
import { fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { sharedDir } from '../test/helpers/shared.js';

const here = path.dirname(fileURLToPath(import.meta.url));

interface Case {
  id: string;
  describe: string;
}

const CASES: Case[] = [
  { id: 'default', describe: "loadModel(defaultModelPath()) (V1 0.75 float16 model.json)" },
  { id: 'h5', describe: 'loadModel(shared/models/keras-h5/mobilenet_2_5_224_tf_no_top.h5)' },
  { id: 'v3-large', describe: "Model.fromArchitecture('v3-large')" },
  { id: 'v1-1.0', describe: "Model.fromArchitecture('v1')" },
];

export interface LoadRow {
  case: string;
  load_ms: number;
  stall_ms: number;
  stall_cpu_ms: number | null;
  rss_after_import_mb: number;
  rss_after_load_mb: number;
  rss_growth_mb: number;
  /** Of rss_growth_mb: V8's heap (resident pages), its young generation, and the rest (native). */
  js_heap_mb: number;
  young_mb: number;
  native_mb: number;
  weight_mb: number;
  target_mb: number;
  met: boolean;
}

/** CPU time the calling thread has used (ms), or null where /proc/thread-self/schedstat is missing. */
function threadCpuMs(): number | null {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
}

/** Grows V8's young generation to its working size: objects that survive a few scavenges, then dropped. */
function warmHeap(): void {
  const keep: unknown[][] = [];
  for (let i = 0; i < 400; i++) {
    keep.push(Array.from({ length: 5000 }, (_, j) => ({ j })));
    if (keep.length > 40) keep.shift();
  }
}

async function child(root: string, id: string, threads: number, warm: boolean): Promise<LoadRow> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const mod = (await import(pathToFileURL(path.join(root, 'lib', 'model.ts')).href)) as typeof import('../lib/model.js');
  const dm = (await import(pathToFileURL(path.join(root, 'lib', 'default-model.ts')).href)) as typeof import('../lib/default-model.js');
  const settle = async (): Promise<number> => {
    for (let i = 0; i < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    return process.memoryUsage.rss() / 2 ** 20;
  };
  const heap = (): { all: number; young: number } => {
    let all = 0;
    let young = 0;
    for (const sp of v8.getHeapSpaceStatistics()) {
      all += sp.physical_space_size;
      if (sp.space_name === 'new_space') young += sp.physical_space_size;
    }
    return { all: all / 2 ** 20, young: young / 2 ** 20 };
  };
  if (warm) warmHeap();
  const before = await settle();
  const heapBefore = heap();
  let last = performance.now();
  let stall = 0;
  let lastCpu = threadCpuMs();
  let stallCpu = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    stall = Math.max(stall, now - last);
    last = now;
    if (lastCpu !== null) {
      const cpu = threadCpuMs()!;
      stallCpu = Math.max(stallCpu, cpu - lastCpu);
      // Taken again: the tick's own read is not counted as the next interval's work.
      lastCpu = threadCpuMs();
    }
  }, 1);
  const t0 = performance.now();
  let model;
  const shared = sharedDir ?? path.join(root, '..', 'shared');
  if (id.startsWith('file:')) model = await mod.loadModel(id.slice('file:'.length), { threads });
  else if (id === 'default') model = await mod.loadModel(dm.defaultModelPath(), { threads });
  else if (id === 'h5') model = await mod.loadModel(path.join(shared, 'models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'), { threads });
  else if (id === 'v3-large') model = await mod.Model.fromArchitecture('v3-large', { threads });
  else model = await mod.Model.fromArchitecture('v1', { threads });
  const loadMs = performance.now() - t0;
  // One more tick after the promise settles, so a stall at the very end is counted.
  await new Promise((r) => setTimeout(r, 5));
  clearInterval(timer);
  const after = await settle();
  const heapAfter = heap();
  const weightMb = (model.analysis.totalParams * 4) / 2 ** 20;
  const growth = after - before;
  const target = 2 * weightMb + 10;
  model.dispose();
  const r2 = (x: number): number => Math.round(x * 10) / 10;
  return {
    case: id, load_ms: r2(loadMs), stall_ms: r2(stall), stall_cpu_ms: lastCpu === null ? null : r2(stallCpu), rss_after_import_mb: r2(before), rss_after_load_mb: r2(after),
    rss_growth_mb: r2(growth), js_heap_mb: r2(heapAfter.all - heapBefore.all), young_mb: r2(heapAfter.young - heapBefore.young),
    native_mb: r2(growth - (heapAfter.all - heapBefore.all)), weight_mb: r2(weightMb), target_mb: r2(target), met: growth <= target,
  };
}

/**
 * One load row, in a fresh child process: `id` is one of the cases above or
 * `file:<path>` (a model file loaded with loadModel; bench/run.ts passes the
 * model.json of each benchmarked model).
 */
export function measureLoad(id: string, threads: number, root = path.resolve(here, '..'), warm = false): Promise<LoadRow> {
  return new Promise<LoadRow>((resolve, reject) => {
    const p = fork(fileURLToPath(import.meta.url), ['--case', id, '--root', root, '--threads', String(threads), ...(warm ? ['--warm-heap'] : [])], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    p.once('message', (m) => resolve(m as LoadRow));
    p.once('exit', (code) => code !== 0 && reject(new Error(`${id}: load child exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string', default: path.resolve(here, '..') },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      json: { type: 'string' },
      case: { type: 'string' },
      repeat: { type: 'string', default: '1' },
      'warm-heap': { type: 'boolean', default: false },
    },
  });
  const root = path.resolve(values.root!);
  const threads = Number(values.threads);
  if (values.case !== undefined) {
    process.send!(await child(root, values.case, threads, values['warm-heap']!));
    return;
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`Expected positive integer for repeat but received ${values.repeat}`);
  const rows: LoadRow[] = [];
  const loadAvg = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' / ');
  const warm = values['warm-heap']!;
  console.log(`load rows: ${root}, ${threads} thread(s)${warm ? ', young generation warmed before the RSS after import' : ''}, load average ${loadAvg()}`);
  console.log('| case | load ms | longest stall ms (CPU ms) | RSS after import MB | RSS growth MB | of which JS heap (young) MB | native MB | float32 weights MB | target MB | met |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (let i = 0; i < repeat; i++) {
    for (const c of CASES) {
      const row = await measureLoad(c.id, threads, root, warm);
      rows.push(row);
      console.log(`| ${c.describe} | ${row.load_ms} | ${row.stall_ms} (${row.stall_cpu_ms ?? '–'}) | ${row.rss_after_import_mb} | ${row.rss_growth_mb} | ${row.js_heap_mb} (${row.young_mb}) | ${row.native_mb} | ${row.weight_mb} | ${row.target_mb} | ${row.met ? 'yes' : 'no'} |`);
    }
  }
  if (repeat > 1) {
    const stat = (xs: number[]): string => {
      const s = [...xs].sort((a, b) => a - b);
      const mid = s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
      return `${Math.round(s[0]! * 10) / 10} / ${Math.round(mid * 10) / 10}`;
    };
    console.log(`\n${repeat} runs each, min / median (load average now ${loadAvg()}):`);
    console.log('| case | longest stall ms | stall CPU ms | RSS growth MB | JS heap MB | native MB | target MB |');
    console.log('|---|---|---|---|---|---|---|');
    for (const c of CASES) {
      const mine = rows.filter((r) => r.case === c.id);
      const col = (k: 'stall_ms' | 'stall_cpu_ms' | 'rss_growth_mb' | 'js_heap_mb' | 'native_mb'): string => stat(mine.map((r) => r[k] ?? NaN));
      console.log(`| ${c.describe} | ${col('stall_ms')} | ${col('stall_cpu_ms')} | ${col('rss_growth_mb')} | ${col('js_heap_mb')} | ${col('native_mb')} | ${mine[0]!.target_mb} |`);
    }
  }
  if (values.json !== undefined) fs.writeFileSync(values.json, JSON.stringify({ root, threads, repeat, warm_heap: warm, load_avg: os.loadavg(), rows }, null, 2));
}

// Run as a script (or as a load child), not when bench/run.ts imports measureLoad.
if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
