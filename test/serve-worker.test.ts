/**
 * `mobilenet worker` on BullMQ: a real redis-server (Debian's package) on
 * 127.0.0.1 at a random port, two real worker processes on one queue of a
 * few hundred images, one of them SIGKILLed mid-run. Every job must be
 * completed exactly once with the same answer as classify() in this process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, type Prediction } from '../lib/classify.js';
import { loadModel } from '../lib/model.js';
import { expectSame, spawnCli, type Child } from './helpers/server.js';
import { hasShared, shared } from './helpers/shared.js';

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedis) console.warn('[mobilenet-xnnpack tests] redis-server not found (apt-get install redis-server): worker tests skipped');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!hasShared || !hasRedis)('mobilenet worker (BullMQ on a real Redis)', () => {
  let redis: ChildProcess;
  let redisDir: string;
  let url: string;
  const workers: Child[] = [];

  beforeAll(async () => {
    redisDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-redis-'));
    const port = await freePort();
    redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    redis.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    await waitFor('redis-server', () => /Ready to accept connections/.test(log) || redis.exitCode !== null, 30_000);
    if (redis.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
    url = `redis://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    for (const w of workers) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    if (redis !== undefined && redis.exitCode === null) {
      redis.kill('SIGTERM');
      await new Promise((r) => redis.once('exit', r));
    }
    fs.rmSync(redisDir, { recursive: true, force: true });
  });

  it('two workers share a queue of 300 images; one is SIGKILLed mid-run; every job is done exactly once, like classify()', async () => {
    const weights = shared('models', 'mobilenet_v1_0.25_224', 'model.json');
    const sample = shared('images', 'imagenet-sample');
    const files = fs.readdirSync(sample).filter((f) => f.endsWith('.JPEG')).sort().map((f) => path.join(sample, f));
    expect(files).toHaveLength(250);
    const model = await loadModel(weights, { threads: 1 });
    const refs = new Map<string, Prediction[]>();
    for (const f of files) refs.set(f, await classify(model, f, { topK: 1000 }));
    model.dispose();

    const name = 'classify-test';
    const connection = { url, maxRetriesPerRequest: null };
    const queue = new Queue(name, { connection });
    const events = new QueueEvents(name, { connection });
    await events.waitUntilReady();
    const completions = new Map<string, number>();
    const stalled = new Set<string>();
    events.on('completed', ({ jobId }) => completions.set(jobId, (completions.get(jobId) ?? 0) + 1));
    events.on('stalled', ({ jobId }) => stalled.add(jobId));
    try {
      // 250 by path (inside --root) and 50 as base64 bytes; 3 bad jobs.
      const good = [
        ...files.map((f) => ({ file: f, data: { path: path.relative(sample, f) } })),
        ...files.slice(0, 50).map((f) => ({ file: f, data: { image: fs.readFileSync(f).toString('base64'), top: 3 } })),
      ];
      const bad = [
        { data: { image: Buffer.from('not an image').toString('base64') }, reason: /Not an image or a corrupt image/ },
        { data: { path: '../../../../etc/passwd' }, reason: /outside the worker's --root/ },
        { data: { image: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>').toString('base64') }, reason: /SVG images are refused/ },
      ];
      const added = await queue.addBulk([...good, ...bad].map((j, i) => ({ name: 'classify', data: j.data, opts: { jobId: `job-${i}`, attempts: 3 } })));
      expect(added).toHaveLength(303);

      const args = (id: string): string[] => [
        'worker', '--redis', url, '--queue', name, '--weights', weights, '--threads', '1', '--jobs', '8', '--max-batch', '4',
        '--lock-ms', '3000', '--root', sample, '--name', id,
      ];
      const a = spawnCli(args('worker-a'));
      const b = spawnCli(args('worker-b'));
      workers.push(a, b);
      await waitFor('two workers', () => /consuming queue/.test(a.stdout()) && /consuming queue/.test(b.stdout()));

      // Let worker A get going, note the jobs it holds, and kill it without warning.
      // Wait on A's own completions, not the total: on a quiet machine B can finish the first 40 before A starts.
      await waitFor('worker A to complete 8 jobs', async () => (await queue.getCompleted(0, -1)).filter((j) => j.processedBy === 'worker-a').length >= 8);
      const heldByA = (await queue.getActive()).filter((j) => j.processedBy === 'worker-a').map((j) => j.id!);
      a.child.kill('SIGKILL');
      expect(await a.exited).toBe('SIGKILL');
      expect(heldByA.length).toBeGreaterThan(0);

      await waitFor('every job to finish', async () => {
        const c = await queue.getJobCounts('completed', 'failed');
        return c.completed! + c.failed! === 303;
      });
      const counts = await queue.getJobCounts('completed', 'failed', 'active', 'wait', 'delayed');
      expect(counts).toEqual({ completed: 300, failed: 3, active: 0, wait: 0, delayed: 0 });

      // Exactly once: one completion event per job, and each result matches classify().
      await waitFor('completion events', () => completions.size >= 300, 10_000);
      const by = new Map<string, number>();
      for (let i = 0; i < good.length; i++) {
        const job = (await queue.getJob(`job-${i}`))!;
        expect(await job.getState()).toBe('completed');
        expect(completions.get(job.id!)).toBe(1);
        expect(job.returnvalue.model).toBe('mobilenet_0.25_224');
        expectSame(job.returnvalue.predictions, refs.get(good[i]!.file)!, 'top' in good[i]!.data ? 3 : 5);
        by.set(job.processedBy!, (by.get(job.processedBy!) ?? 0) + 1);
      }
      expect(completions.size).toBe(300);
      // Both workers did work; A's unfinished jobs were taken over by B after their lock expired.
      expect(by.get('worker-a') ?? 0).toBeGreaterThan(0);
      expect(by.get('worker-b') ?? 0).toBeGreaterThan(0);
      const takenOver = [];
      for (const id of heldByA) {
        const job = (await queue.getJob(id))!;
        if (job.processedBy === 'worker-b') takenOver.push(id);
      }
      expect(takenOver.length).toBeGreaterThan(0);
      for (const id of takenOver) expect(stalled.has(id)).toBe(true);

      // Bad input fails its job once, with a reason, without retries.
      for (let i = 0; i < bad.length; i++) {
        const job = (await queue.getJob(`job-${good.length + i}`))!;
        expect(await job.getState()).toBe('failed');
        expect(job.failedReason).toMatch(bad[i]!.reason);
        expect(job.attemptsMade).toBe(1);
      }

      // SIGTERM: B finishes and exits 0.
      b.child.kill('SIGTERM');
      expect(await b.exited).toBe(0);
      expect(b.stdout()).toMatch(/closed\n$/);
    } finally {
      await events.close();
      await queue.close();
    }
  }, 600_000);
});
