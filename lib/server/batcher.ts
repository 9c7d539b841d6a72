/**
 * Dynamic micro-batching: preprocessed images submitted one at a time are
 * grouped into one `predict()` call of up to `maxBatch` samples. A batch
 * starts when `maxBatch` images wait, when the oldest has waited
 * `maxWaitMs`, or, while a batch runs, as soon as it finishes (images that
 * arrived during a run have already waited). One batch runs at a time (the
 * native runtime serializes anyway); results are handed back per image.
 *
 * Batch sizes are rounded up to a power of two (or maxBatch), the rest of the
 * batch padded: each size is a compiled runtime with its own packed weights
 * and activation buffers, so maxBatch 8 holds 4 runtimes (1, 2, 4, 8), not 8;
 * never more than the model's runtime cache keeps (MAX_CACHED_BATCH_SIZES).
 *
 * The queue is bounded: `submit()` rejects with QueueFullError when
 * `maxQueue` images wait, so memory never grows without bound.
 */
import type { Predictor } from '../classify.js';
import { MAX_CACHED_BATCH_SIZES } from '../model.js';
import * as v from '../validate.js';
import { ClosingError, QueueFullError } from './errors.js';

export interface BatcherOptions {
  /** Largest batch per inference call (1 = no batching). */
  maxBatch: number;
  /** Longest time the first image of a batch waits for others, ms (0 = run at once). */
  maxWaitMs: number;
  /** Images that may wait for inference; more are refused with QueueFullError. */
  maxQueue: number;
}

interface Pending {
  input: Float32Array;
  resolve: (scores: Float32Array) => void;
  reject: (e: unknown) => void;
}

export interface BatchStats {
  size: number;
  seconds: number;
}

export class MicroBatcher {
  readonly maxBatch: number;
  readonly maxWaitMs: number;
  readonly maxQueue: number;
  /** The batch sizes inference runs with: powers of two below maxBatch, and maxBatch. */
  readonly sizes: readonly number[];
  /** Called after every inference call (metrics). */
  onBatch: ((stats: BatchStats) => void) | undefined;
  private readonly model: Predictor;
  private readonly sampleSize: number;
  private readonly waiting: Pending[] = [];
  private readonly buffers = new Map<number, Float32Array>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private closed = false;

  constructor(model: Predictor, options: BatcherOptions) {
    this.model = model;
    this.maxBatch = v.positiveInteger(options.maxBatch, 'maxBatch');
    this.maxWaitMs = v.nonNegativeInteger(options.maxWaitMs, 'maxWaitMs');
    this.maxQueue = v.positiveInteger(options.maxQueue, 'maxQueue');
    this.sampleSize = v.product(model.inputShape);
    const sizes: number[] = [];
    for (let n = 1; n < this.maxBatch; n *= 2) sizes.push(n);
    sizes.push(this.maxBatch);
    // No more sizes than the model keeps compiled (else runtimes would be evicted and recompiled):
    // keep 1 and the largest ones.
    if (sizes.length > MAX_CACHED_BATCH_SIZES) sizes.splice(1, sizes.length - MAX_CACHED_BATCH_SIZES);
    this.sizes = Object.freeze(sizes);
  }

  /** Images waiting for inference (not counting the running batch). */
  get depth(): number {
    return this.waiting.length;
  }

  /**
   * Compiles the runtime of every batch size (so no request pays for a
   * compile) by running each once on zeros.
   */
  async warmUp(): Promise<void> {
    for (const n of this.sizes) await this.model.predict(this.buffer(n), { batch: n });
  }

  /** Queues one preprocessed image; resolves to its scores (`classes` values). */
  submit(input: Float32Array): Promise<Float32Array> {
    if (this.closed) return Promise.reject(new ClosingError());
    v.float32Array(input, 'input', this.sampleSize);
    if (this.waiting.length >= this.maxQueue) return Promise.reject(new QueueFullError(this.maxQueue));
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /** Refuses new images; resolves when the queued ones are answered. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.running !== null || this.waiting.length > 0) {
      if (this.running === null) this.flush();
      await this.running;
    }
  }

  private buffer(n: number): Float32Array {
    let b = this.buffers.get(n);
    if (b === undefined) {
      b = new Float32Array(n * this.sampleSize);
      this.buffers.set(n, b);
    }
    return b;
  }

  private schedule(): void {
    if (this.running !== null || this.waiting.length === 0) return;
    if (this.waiting.length >= this.maxBatch || this.maxWaitMs === 0) {
      this.flush();
    } else if (this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, this.maxWaitMs);
    }
  }

  private flush(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.running !== null || this.waiting.length === 0) return;
    const items = this.waiting.splice(0, this.maxBatch);
    const n = items.length;
    const size = this.sizes.find((s) => s >= n)!;
    // One buffer per batch size, reused: only one batch runs at a time, and
    // predict() holds its input until it settles. Padding samples are zeros.
    const buffer = this.buffer(size);
    items.forEach((it, i) => buffer.set(it.input, i * this.sampleSize));
    buffer.fill(0, n * this.sampleSize);
    const classes = this.model.classes;
    const started = performance.now();
    this.running = this.model.predict(buffer, { batch: size }).then(
      (scores) => {
        this.onBatch?.({ size: n, seconds: (performance.now() - started) / 1000 });
        items.forEach((it, i) => it.resolve(scores.slice(i * classes, (i + 1) * classes)));
      },
      (e: unknown) => {
        for (const it of items) it.reject(e);
      },
    );
    void this.running.finally(() => {
      this.running = null;
      // Whatever arrived during the run has waited already: run it now.
      if (this.waiting.length > 0) this.flush();
    });
  }
}
