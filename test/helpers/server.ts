/**
 * Starts `mobilenet serve` (or `worker`) as a real child process from the
 * TypeScript sources and talks to it over real HTTP on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { expect } from 'vitest';
import type { Prediction } from '../../lib/classify.js';
import { childEnv } from './env.js';
import { repoRoot } from './shared.js';

export interface Child {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name). */
  exited: Promise<number | string>;
}

/** Spawns `mobilenet <args>` with the sources (tsx). */
export function spawnCli(args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'test', 'helpers', 'cli.ts'), ...args], {
    cwd: repoRoot,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  return { child, stdout: () => out, stderr: () => err, exited };
}

export interface Server extends Child {
  url: string;
  port: number;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | string>;
}

/**
 * Starts `mobilenet serve --port 0 <args>` and waits for its "listening on"
 * line. The event-loop lag check is off unless `args` set it: on a loaded
 * test machine it would answer 503 at random.
 */
export async function startServer(args: string[], timeoutMs = 120_000): Promise<Server> {
  const lag = args.includes('--max-event-loop-delay') ? [] : ['--max-event-loop-delay', '0'];
  const c = spawnCli(['serve', '--port', '0', '--host', '127.0.0.1', ...lag, ...args]);
  const started = Date.now();
  for (;;) {
    const m = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(c.stdout());
    if (m !== null) {
      return {
        ...c,
        url: m[1]!,
        port: Number(m[2]),
        stop: async () => {
          if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
          return c.exited;
        },
      };
    }
    if (c.child.exitCode !== null) throw new Error(`server exited with ${c.child.exitCode}: ${c.stderr()}`);
    if (Date.now() - started > timeoutMs) {
      c.child.kill('SIGKILL');
      throw new Error(`server did not start in ${timeoutMs} ms: ${c.stdout()} ${c.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/**
 * One HTTP request on its own connection (no keep-alive), so that a refused
 * or reset connection is visible as an error, not retried.
 */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** POST an image as the raw body. */
export function postImage(base: string, bytes: Buffer | string, type = 'image/jpeg', query = ''): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (type !== '') headers['content-type'] = type;
  return request(`${base}/v1/classify${query}`, { method: 'POST', headers, body: bytes });
}

/** A multipart/form-data body (built by the WHATWG FormData + Response of Node itself). */
export async function multipartBody(parts: Array<{ field: string; name: string; type: string; bytes: Buffer }>): Promise<{ body: Buffer; type: string }> {
  const form = new FormData();
  for (const p of parts) form.append(p.field, new Blob([p.bytes], { type: p.type }), p.name);
  const res = new Response(form);
  return { body: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type')! };
}

/** The value of one Prometheus sample line, e.g. `metric(text, 'mobilenet_batch_size_count')`. */
export function metric(text: string, name: string): number | undefined {
  const escaped = name.replace(/[{}"=,.]/g, (c) => `\\${c}`);
  const m = new RegExp(`^${escaped} (\\S+)$`, 'm').exec(text);
  return m === null ? undefined : Number(m[1]);
}

const TOL = 1e-5;

/**
 * Same answer as classify(): the same top-1 class, every returned
 * probability within TOL of classify()'s for that class, and the k returned
 * probabilities equal to classify()'s k highest (near-ties may swap ranks).
 */
export function expectSame(got: Prediction[], all: Prediction[], k = 5): void {
  expect(got).toHaveLength(k);
  expect(got[0]!.index).toBe(all[0]!.index);
  const byIndex = new Map(all.map((p) => [p.index, p]));
  for (const p of got) {
    const ref = byIndex.get(p.index)!;
    expect(p.label).toBe(ref.label);
    expect(Math.abs(p.probability - ref.probability)).toBeLessThan(TOL);
  }
  for (let i = 0; i < k; i++) expect(Math.abs(got[i]!.probability - all[i]!.probability)).toBeLessThan(TOL);
}

