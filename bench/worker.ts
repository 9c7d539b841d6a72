/**
 * Child process hosting one engine for one model and thread count (see
 * bench/engines.ts). The parent (bench/run.ts) drives it over IPC so that
 * one engine at a time runs (interleaved rounds, or phases in which its
 * process is the only engine process alive).
 *
 * Messages in:  {type: 'load', spec, preprocessing} | {type: 'output', batch}
 *               | {type: 'time', batch, runs} | {type: 'concurrency', concurrency, total}
 *               | {type: 'exit'}
 * Messages out: {type: 'ok', ...payload} | {type: 'error', message}
 */
import { createEngine, type EngineInstance, type LoadSpec } from './engines.js';
import { makeInput } from './lib/models.js';
import { nowMs } from './lib/stats.js';
import type { Preprocessing } from '../lib/keras/types.js';

type Message =
  | { type: 'load'; spec: LoadSpec; preprocessing: Preprocessing }
  | { type: 'output'; batch: number }
  | { type: 'time'; batch: number; runs: number }
  | { type: 'concurrency'; concurrency: number; total: number }
  | { type: 'exit' };

let engine: EngineInstance | null = null;
let spec: LoadSpec | null = null;
let preprocessing: Preprocessing = 'tf';
const inputs = new Map<number, Float32Array>();

function input(batch: number): Float32Array {
  let x = inputs.get(batch);
  if (x === undefined) {
    x = makeInput((spec as LoadSpec).inputShape, preprocessing, batch);
    inputs.set(batch, x);
  }
  return x;
}

function send(msg: Record<string, unknown>): Promise<void> {
  return new Promise((resolve) => process.send!(msg, () => resolve()));
}

function rssMb(): number {
  // maxRSS is in kilobytes.
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

async function handle(msg: Message): Promise<Record<string, unknown>> {
  switch (msg.type) {
    case 'load': {
      spec = msg.spec;
      preprocessing = msg.preprocessing;
      const before = rssMb();
      const t0 = nowMs();
      engine = await createEngine(spec);
      const loadMs = engine.loadMs ?? nowMs() - t0;
      return { load_ms: loadMs, notes: engine.notes ?? '', setting: engine.setting ?? 'default', rss_before_load_mb: before };
    }
    case 'output': {
      if (engine === null) throw new Error('not loaded');
      const out = await engine.run(input(msg.batch), msg.batch);
      return { output: Array.from(out) };
    }
    case 'time': {
      if (engine === null) throw new Error('not loaded');
      const x = input(msg.batch);
      if (engine.time !== undefined) return { times: await engine.time(x, msg.batch, msg.runs) };
      const times: number[] = [];
      for (let i = 0; i < msg.runs; i++) {
        const t0 = nowMs();
        await engine.run(x, msg.batch);
        times.push(nowMs() - t0);
      }
      return { times };
    }
    case 'concurrency': {
      if (engine === null) throw new Error('not loaded');
      const e = engine;
      const x = input(1);
      const latencies: number[] = [];
      let issued = 0;
      const t0 = nowMs();
      // Closed loop: `concurrency` clients, each sending its next request when the previous one returns.
      const client = async (): Promise<void> => {
        while (issued < msg.total) {
          issued++;
          const s = nowMs();
          await e.run(x, 1);
          latencies.push(nowMs() - s);
        }
      };
      await Promise.all(Array.from({ length: msg.concurrency }, client));
      return { latencies, wall_ms: nowMs() - t0 };
    }
    case 'exit': {
      const own = engine?.peakRssMb ? await engine.peakRssMb() : undefined;
      if (engine !== null) await engine.dispose();
      engine = null;
      return { peak_rss_mb: own === undefined ? rssMb() : Math.round(own) };
    }
    default:
      throw new Error(`unknown message ${JSON.stringify(msg)}`);
  }
}

process.on('message', (msg: Message) => {
  handle(msg).then(
    async (payload) => {
      await send({ type: 'ok', ...payload });
      if (msg.type === 'exit') process.exit(0);
    },
    async (e: unknown) => {
      const err = e as Error;
      await send({ type: 'error', message: `${err.name}: ${err.message}`.split('\n').slice(0, 3).join(' ') });
      if (msg.type === 'exit') process.exit(1);
    },
  );
});

// The parent went away (killed, crashed): do not linger.
process.on('disconnect', () => process.exit(0));
