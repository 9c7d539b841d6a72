/**
 * The batch pipeline shared by `classifyBatch` (lib/classify.ts) and
 * `embedImages` (lib/embed.ts): images in, decoded + preprocessed into batch
 * buffers, one inference call per batch, batches out in input order.
 *
 * Decoding and inference overlap as a stream, not batch by batch: up to
 * `concurrency` images are decoding at every moment (sharp decodes on
 * libuv's thread pool), across batch boundaries, while the model runs the
 * previous batch on its own worker thread (the native runtime does not use
 * libuv's pool). A batch goes to the model as soon as its last image is
 * decoded and the model has finished the batch before it (one call at a
 * time: the runtime is idle at each call, so it takes the input without
 * keeping a copy of the buffer); its buffer is reused once the caller has taken that batch's
 * results, so a slow consumer (e.g. a stdout that applies backpressure)
 * slows the pipeline instead of letting results pile up. With
 * `ceil(concurrency / batchSize) + 2` buffers (the decodes in flight, the
 * batch the model runs, the batch the caller holds), at most that many
 * batches of images are pulled ahead of the caller.
 * Decode errors become per-image errors; a failing model or input iterator
 * throws from the generator.
 *
 * Hand-written rather than a stream library: the ordering (decode out of
 * order into fixed slots, infer in order, bounded buffers) is the whole
 * logic, and no generic queue expresses it more simply.
 */
import os from 'node:os';
import { threadpoolSize } from './env.js';
import { loadImageTensor, type ImageSource, type PreprocessOptions } from './image.js';
import * as v from './validate.js';

export interface BatchSlot {
  /** Position of the image in the input sequence. */
  position: number;
  source: ImageSource;
  error?: Error;
}

export interface DecodedBatch {
  /** The images of this batch (at most batchSize), in input order. */
  slots: BatchSlot[];
  /** The model's output for the whole (padded) batch, or null when every image failed to decode. */
  output: Float32Array | null;
}

export interface PipelineOptions {
  batchSize: number;
  /** Images decoding at once. */
  concurrency: number;
  /** Values per image (height × width × 3). */
  sampleSize: number;
  decode: PreprocessOptions;
}

/** Runs `batch` samples (NHWC) through the model. */
export type BatchPredict = (input: Float32Array, batch: number) => Promise<Float32Array>;

/** An iterator over a sync or async iterable of images (TypeError otherwise). */
export function imageIterator(images: Iterable<ImageSource> | AsyncIterable<ImageSource>): AsyncIterator<ImageSource> | Iterator<ImageSource> {
  if (images !== null && typeof images === 'object' && Symbol.asyncIterator in images) {
    return (images as AsyncIterable<ImageSource>)[Symbol.asyncIterator]();
  }
  if (images !== null && typeof images === 'object' && Symbol.iterator in images) {
    return (images as Iterable<ImageSource>)[Symbol.iterator]();
  }
  throw v.typeError('iterable or async iterable of images', 'images', images);
}

/** The number of cores this process may use. */
export function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Images decoding at once by default: two per core, at most libuv's pool (sharp decodes there). */
export function defaultConcurrency(c = cores(), pool = threadpoolSize()): number {
  return Math.max(1, Math.min(2 * c, pool));
}

export interface BatchPlan {
  /** Images per inference call. */
  batch: number;
  /** Images decoding at once. */
  concurrency: number;
  /** Inference threads. */
  threads: number;
}

/**
 * Batch size, images decoding in flight and inference threads for `n` images
 * on `c` cores with libuv's pool of `pool` threads (what `mobilenet classify`
 * and `mobilenet embed` use when not told). Measured on 2 cores
 * (docs/benchmarks.md): decoding a JPEG costs about twice the CPU of running
 * it through the default model, and inference on one thread costs no less
 * per image at batch 4 or 8 than at 1 (larger batches leave the cache), so:
 * - one image: batch 1, all cores to inference (latency);
 * - a few (fewer than 8): one batch, all cores to inference, all decoding at once;
 * - many: two images decoding per core (a decode waits on file reads too),
 *   at most the pool's size, and inference gets the cores the decoders leave:
 *   a third, at least 1, at least the cores beyond the pool. Inference on
 *   every core would fight the decoders (its worker threads wait for each
 *   other in spin loops while decoders hold the cores). With one inference
 *   thread, batch 1: each image goes to the model as soon as it is decoded
 *   (the finest overlap); with more, batches of 4 give the threads work to
 *   share.
 */
export function autoBatch(n: number, c: number, pool = threadpoolSize()): BatchPlan {
  if (n <= 1) return { batch: 1, concurrency: 1, threads: c };
  const concurrency = Math.min(n, defaultConcurrency(c, pool));
  if (n < 8) return { batch: n, concurrency, threads: c };
  const threads = Math.min(c, Math.max(1, Math.round(c / 3), c - pool));
  return { batch: threads === 1 ? 1 : 4, concurrency, threads };
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

const END = Symbol('end');

/**
 * Decodes `images` into batches and runs each through `predict`, yielding
 * the batches in input order (see the module comment). The last batch is
 * padded to `batchSize` (stale or zero samples whose outputs are ignored) so
 * that one compiled runtime serves every call.
 */
export async function* pipelineBatches(
  predict: BatchPredict,
  images: Iterable<ImageSource> | AsyncIterable<ImageSource>,
  options: PipelineOptions,
): AsyncGenerator<DecodedBatch, void, undefined> {
  const iterator = imageIterator(images);
  const { batchSize, concurrency, sampleSize, decode } = options;
  // Enough buffers for `concurrency` decodes beside the batch the model runs and the one the caller holds.
  const depth = Math.ceil(concurrency / batchSize) + 2;
  const free: Float32Array[] = [];
  let allocated = 0;
  let stopped = false;
  let exhausted = false;
  let inFlight = 0;
  const bufferWaiters: Array<() => void> = [];
  const permitWaiters: Array<() => void> = [];
  const queue: Array<Promise<(DecodedBatch & { buffer: Float32Array }) | typeof END>> = [];
  let queueWaiter: (() => void) | null = null;
  const outstanding = new Set<Promise<unknown>>();

  const push = (p: Promise<(DecodedBatch & { buffer: Float32Array }) | typeof END>): void => {
    p.catch(() => undefined); // handled by the consumer; never an unhandled rejection
    queue.push(p);
    queueWaiter?.();
  };
  const wakeAll = (): void => {
    for (const w of bufferWaiters.splice(0)) w();
    for (const w of permitWaiters.splice(0)) w();
  };
  const takeBuffer = async (): Promise<Float32Array | null> => {
    for (;;) {
      if (stopped) return null;
      const b = free.pop();
      if (b !== undefined) return b;
      if (allocated < depth) {
        allocated++;
        return new Float32Array(batchSize * sampleSize);
      }
      await new Promise<void>((resolve) => bufferWaiters.push(resolve));
    }
  };
  const giveBuffer = (b: Float32Array): void => {
    free.push(b);
    bufferWaiters.shift()?.();
  };
  const acquire = async (): Promise<boolean> => {
    while (!stopped && inFlight >= concurrency) await new Promise<void>((resolve) => permitWaiters.push(resolve));
    if (stopped) return false;
    inFlight++;
    return true;
  };
  const release = (): void => {
    inFlight--;
    permitWaiters.shift()?.();
  };

  const fill = async (): Promise<void> => {
    let position = 0;
    // Resolves once the model has finished the previous batch: batches reach it in order, and one at a
    // time, so the runtime is idle at each call and takes the input without keeping a copy of it.
    let previousDone: Promise<unknown> = Promise.resolve();
    while (!stopped && !exhausted) {
      const buffer = await takeBuffer();
      if (buffer === null) return;
      const slots: BatchSlot[] = [];
      const decodes: Array<Promise<void>> = [];
      while (slots.length < batchSize && (await acquire())) {
        let r: IteratorResult<ImageSource>;
        try {
          r = await iterator.next();
        } catch (e) {
          release();
          outstanding.add(Promise.all(decodes));
          throw e;
        }
        if (r.done === true) {
          release();
          exhausted = true;
          break;
        }
        const i = slots.length;
        const slot: BatchSlot = { position: position++, source: r.value };
        slots.push(slot);
        decodes.push(
          loadImageTensor(slot.source, decode, buffer, i * sampleSize).then(
            () => release(),
            (e: unknown) => {
              slot.error = toError(e);
              buffer.fill(0, i * sampleSize, (i + 1) * sampleSize);
              release();
            },
          ),
        );
      }
      if (slots.length === 0) {
        await Promise.all(decodes);
        giveBuffer(buffer);
        return;
      }
      const after = previousDone;
      // Wrapped in an object so that `then` does not wait for the inference itself.
      const submitted = Promise.all([Promise.all(decodes), after]).then(() => ({
        inference: !stopped && slots.some((s) => s.error === undefined) ? predict(buffer, batchSize) : null,
      }));
      previousDone = submitted.then(({ inference }) => inference).catch(() => undefined);
      const batch = submitted.then(async ({ inference }) => ({ slots, output: inference === null ? null : await inference, buffer }));
      const tracked = batch.catch(() => undefined);
      outstanding.add(tracked);
      void tracked.then(() => outstanding.delete(tracked));
      push(batch);
    }
  };

  const filling = fill().then(
    () => push(Promise.resolve(END)),
    (e: unknown) => push(Promise.reject(toError(e))),
  );
  try {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (queueWaiter = resolve));
      queueWaiter = null;
      const batch = await queue.shift()!;
      if (batch === END) return;
      yield { slots: batch.slots, output: batch.output };
      // Reused only once the caller has taken the results: a slow consumer holds the pipeline back.
      giveBuffer(batch.buffer);
    }
  } finally {
    stopped = true;
    wakeAll();
    await filling;
    // Decodes and inferences still running finish before the caller moves on (e.g. disposes the model).
    await Promise.all([...outstanding]);
    if (!exhausted) await (iterator as AsyncIterator<ImageSource>).return?.();
  }
}
