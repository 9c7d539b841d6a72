/**
 * A BullMQ worker that classifies images from a Redis-backed queue, so any
 * number of processes and machines can share one backlog. Retries, locks
 * and stalled-job recovery are BullMQ's: a worker that dies mid-job loses
 * its lock and another worker takes the job over.
 *
 * Job data (`ClassifyJobData`): `{ image: <base64 bytes> }` or
 * `{ path: <file> }` (resolved inside `root` when one is given), and an
 * optional `top`. Result stored on the job: `{ model, predictions }`.
 * Bad input (not an image, too many pixels, SVG refused, missing file)
 * fails the job at once with an UnrecoverableError (no retries); other
 * errors fail the attempt and BullMQ retries it as the job's `attempts` say.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Prediction } from '../classify.js';
import type { Model } from '../model.js';
import { FileProblem, readRegularFile } from '../formats/files.js';
import { DEFAULT_MAX_IMAGE_FILE_BYTES } from '../limits.js';
import * as v from '../validate.js';
import { ImageClassifier, type ClassifierOptions } from './classifier.js';
import { ServiceError } from './errors.js';

export interface ClassifyJobData {
  /** The encoded image, base64. */
  image?: string;
  /** Or a file path the worker reads. */
  path?: string;
  /** Predictions wanted (default 5). */
  top?: number;
}

export interface ClassifyJobResult {
  model: string;
  predictions: Prediction[];
}

export interface WorkerOptions extends ClassifierOptions {
  /** Redis URL, e.g. redis://127.0.0.1:6379. */
  redis: string;
  /** Queue name. */
  queue: string;
  /** Jobs processed at once by this process (default 2 × maxBatch): they meet in micro-batches. */
  jobs?: number;
  /** Directory `path` jobs must stay inside (default: any path). */
  root?: string;
  /** Lock duration, ms: a dead worker's jobs are taken over after about this long (BullMQ default 30000). */
  lockMs?: number;
  /** Worker name stored on each job it processes (`job.processedBy`); default host:pid. */
  name?: string;
}

export interface RunningWorker {
  worker: Worker<ClassifyJobData, ClassifyJobResult>;
  classifier: ImageClassifier;
  /** Finishes the active jobs, then disconnects. */
  close(): Promise<void>;
}

function isInside(dir: string, file: string): boolean {
  const rel = path.relative(dir, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * The image bytes of a job: `{ image }` (base64) or `{ path }` (a regular
 * file, inside `root` when given), at most `maxBytes` either way. Every
 * problem is an UnrecoverableError (no retry). Exported for tests.
 */
export async function readJobImage(data: ClassifyJobData, root: string | undefined, maxBytes = DEFAULT_MAX_IMAGE_FILE_BYTES): Promise<Uint8Array> {
  if (typeof data !== 'object' || data === null) throw new UnrecoverableError('Job data must be an object { image } or { path }');
  if (typeof data.image === 'string') {
    // Bounded before decoding: base64 carries 3 bytes per 4 characters.
    const declared = Math.floor((data.image.length * 3) / 4);
    if (declared > maxBytes) {
      throw new UnrecoverableError(`Job image is ${data.image.length} base64 characters (about ${declared} bytes), more than the limit of ${maxBytes} bytes`);
    }
    const bytes = Buffer.from(data.image, 'base64');
    if (bytes.length === 0) throw new UnrecoverableError('Job image is empty (expected base64 bytes)');
    return bytes;
  }
  if (typeof data.path !== 'string' || data.path === '') throw new UnrecoverableError('Job data has neither image (base64) nor path');
  let file = path.resolve(root ?? '/', data.path);
  if (root !== undefined) {
    // Lexical containment first (a path that leaves root is refused whether or not its target exists),
    // then on real paths: a symlink inside root may not lead outside it.
    if (!isInside(root, file)) throw new UnrecoverableError(`${data.path}: outside the worker's --root ${root}`);
    try {
      file = await fs.promises.realpath(file);
    } catch (e) {
      throw new UnrecoverableError(`${data.path}: cannot read file (${(e as Error).message})`);
    }
    if (!isInside(root, file)) throw new UnrecoverableError(`${data.path}: outside the worker's --root ${root} (through a symbolic link)`);
  }
  try {
    return await readRegularFile(file, maxBytes);
  } catch (e) {
    throw new UnrecoverableError(`${data.path}: ${e instanceof FileProblem ? e.message : `cannot read file (${(e as Error).message})`}`);
  }
}

export async function startWorker(model: Model, options: WorkerOptions): Promise<RunningWorker> {
  if (typeof options.redis !== 'string' || !/^rediss?:\/\//.test(options.redis)) throw v.typeError('redis:// URL', 'redis', options.redis);
  if (typeof options.queue !== 'string' || options.queue === '') throw v.typeError('queue name', 'queue', options.queue);
  const classifier = new ImageClassifier(model, options);
  const jobs = options.jobs === undefined ? Math.min(2 * classifier.batcher.maxBatch, classifier.maxQueue) : v.positiveInteger(options.jobs, 'jobs');
  const lockDuration = options.lockMs === undefined ? 30_000 : v.positiveInteger(options.lockMs, 'lockMs');
  const root = options.root === undefined ? undefined : await fs.promises.realpath(path.resolve(options.root));

  const processor = async (job: Job<ClassifyJobData, ClassifyJobResult>): Promise<ClassifyJobResult> => {
    const bytes = await readJobImage(job.data, root);
    const top = job.data.top;
    if (top !== undefined && (!Number.isInteger(top) || top <= 0)) throw new UnrecoverableError(v.message('positive integer', 'top', top));
    try {
      return { model: model.name, predictions: await classifier.classify(bytes, { topK: top }) };
    } catch (e) {
      // Bad input does not get better on retry.
      if (e instanceof ServiceError && e.statusCode < 500) throw new UnrecoverableError(e.message);
      throw e;
    }
  };

  const worker = new Worker<ClassifyJobData, ClassifyJobResult>(options.queue, processor, {
    connection: { url: options.redis, maxRetriesPerRequest: null },
    concurrency: jobs,
    lockDuration,
    stalledInterval: Math.max(1000, Math.floor(lockDuration / 2)),
    name: options.name ?? `${os.hostname()}:${process.pid}`,
    autorun: false,
  });
  // Every batch size's runtime is compiled before the first job.
  await classifier.warmUp();
  await worker.waitUntilReady();
  void worker.run();
  return {
    worker,
    classifier,
    async close() {
      await worker.close();
      await classifier.close();
    },
  };
}
