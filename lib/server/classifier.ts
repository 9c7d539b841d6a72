/**
 * The classification pipeline the HTTP server and the BullMQ worker share:
 * admission (a bounded number of images in flight), input checks (empty,
 * SVG, pixel limit), decoding on libuv's thread pool (sharp) with bounded
 * concurrency, micro-batched inference (batcher.ts), top-k with labels.
 *
 * The limits and the SVG refusal are the image module's (lib/image.ts,
 * defaults in lib/limits.ts): `maxPixels` is its `limitInputPixels`,
 * `allowSvg` its `allowSvg`, and its decoded-bytes and decode-time limits
 * apply unchanged. Every refusal is a ServiceError with the HTTP status it
 * is answered with, chosen from the ImageDecodeError's `reason`: 400 not
 * an image / corrupt / too slow to decode, 413 too many pixels or decoded
 * bytes, 415 SVG refused, 503 queue full or closing.
 */
import os from 'node:os';
import { topK, type Prediction, type Predictor } from '../classify.js';
import { ImageDecodeError, type ImageProblem } from '../errors.js';
import { loadImageTensor, RESIZE_MODES, type ResizeMode } from '../image.js';
import { resolveLabels } from '../labels.js';
import { DEFAULT_SERVER_MAX_PIXELS } from '../limits.js';
import * as v from '../validate.js';
import { MicroBatcher, type BatchStats } from './batcher.js';
import { ClosingError, QueueFullError, ServiceError } from './errors.js';

export interface ClassifierOptions {
  /** Largest inference batch (default 8; 1 turns micro-batching off). */
  maxBatch?: number;
  /** Longest wait of a batch's first image for others, ms (default 5). */
  maxWaitMs?: number;
  /** Images admitted at once (decoding, waiting or running); more get 503 (default 256). */
  maxQueue?: number;
  /** Images decoded at once (default: the number of cores). */
  concurrency?: number;
  /** Largest image accepted, in pixels (default 50,000,000, lib/limits.ts). */
  maxPixels?: number;
  /** Accept SVG input (default false: an SVG may reference files beside it). */
  allowSvg?: boolean;
  /** Class names (array or labels file); default ImageNet for 1000 classes. */
  labels?: readonly string[] | string;
  /** 'crop' (default) or 'squash'. */
  resize?: ResizeMode;
}

export interface ClassifierHooks {
  onBatch?: (stats: BatchStats) => void;
}

const SVG_REFUSED = 'SVG images are refused (an SVG can reference other files); start the server with --allow-svg to accept them';

/** HTTP status and error code of each image problem. */
const STATUS: Record<ImageProblem, [number, string]> = {
  'svg-refused': [415, 'SVG_REFUSED'],
  'too-many-pixels': [413, 'TOO_MANY_PIXELS'],
  'too-many-bytes': [413, 'IMAGE_TOO_LARGE'],
  timeout: [400, 'DECODE_TIMEOUT'],
  file: [400, 'BAD_IMAGE'],
  undecodable: [400, 'BAD_IMAGE'],
};

/** The image module's refusal as the service's error: its message without the source name and the library option hint. */
function serviceError(e: ImageDecodeError): ServiceError {
  const [status, code] = STATUS[e.reason];
  if (e.reason === 'svg-refused') return new ServiceError(SVG_REFUSED, status, code, { cause: e });
  const detail = e.message
    .replace(/^<buffer of \d+ bytes>: /, '')
    .replace(/ \(raise [^)]*\)$/, '');
  const message =
    e.reason === 'too-many-pixels'
      ? `The image is too large: ${detail.replace(/^image too large: /, '')} (the server's --max-pixels)`
      : e.reason === 'too-many-bytes'
        ? `The image is too large: ${detail.replace(/^image too large: /, '')}`
        : `Not an image or a corrupt image: ${detail}`;
  return new ServiceError(message, status, code, { cause: e });
}

function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export class ImageClassifier {
  readonly batcher: MicroBatcher;
  readonly maxQueue: number;
  readonly concurrency: number;
  readonly maxPixels: number;
  readonly allowSvg: boolean;
  readonly labels: readonly string[];
  private readonly model: Predictor;
  private readonly resize: ResizeMode;
  private admitted = 0;
  private decoding = 0;
  private readonly decodeWaiters: Array<() => void> = [];
  private closed = false;
  private readonly drained: Array<() => void> = [];

  constructor(model: Predictor, options: ClassifierOptions = {}, hooks: ClassifierHooks = {}) {
    this.model = model;
    this.maxQueue = options.maxQueue === undefined ? 256 : v.positiveInteger(options.maxQueue, 'maxQueue');
    this.concurrency = options.concurrency === undefined ? cores() : v.positiveInteger(options.concurrency, 'concurrency');
    this.maxPixels = options.maxPixels === undefined ? DEFAULT_SERVER_MAX_PIXELS : v.positiveInteger(options.maxPixels, 'maxPixels');
    if (options.allowSvg !== undefined && typeof options.allowSvg !== 'boolean') throw v.typeError('boolean', 'allowSvg', options.allowSvg);
    this.allowSvg = options.allowSvg ?? false;
    this.resize = options.resize === undefined ? 'crop' : v.oneOf(options.resize, 'resize', RESIZE_MODES);
    this.labels = resolveLabels(options.labels, model.classes);
    this.batcher = new MicroBatcher(model, {
      maxBatch: options.maxBatch ?? 8,
      maxWaitMs: options.maxWaitMs ?? 5,
      maxQueue: this.maxQueue,
    });
    this.batcher.onBatch = hooks.onBatch;
  }

  /** Images admitted and not yet answered. */
  get inFlight(): number {
    return this.admitted;
  }

  /** True when another image would be refused with 503. */
  get full(): boolean {
    return this.admitted >= this.maxQueue;
  }

  /** Compiles every batch size's runtime before the first request. */
  warmUp(): Promise<void> {
    return this.batcher.warmUp();
  }

  /**
   * Classifies one encoded image. `contentType` (when known) lets an SVG be
   * refused by its declared type too. Throws ServiceError for bad input.
   */
  async classify(image: Uint8Array, options: { topK?: number; contentType?: string } = {}): Promise<Prediction[]> {
    if (this.closed) throw new ClosingError();
    const k = options.topK === undefined ? Math.min(5, this.model.classes) : Math.min(v.positiveInteger(options.topK, 'top'), this.model.classes);
    if (this.admitted >= this.maxQueue) throw new QueueFullError(this.maxQueue);
    this.admitted++;
    try {
      const input = await this.decode(image, options.contentType);
      const scores = await this.batcher.submit(input);
      return topK(scores, k, this.labels, 0, this.model.classes);
    } finally {
      this.admitted--;
      if (this.admitted === 0) for (const resolve of this.drained.splice(0)) resolve();
    }
  }

  /** Refuses new images and waits for the admitted ones to be answered. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.admitted > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    await this.batcher.close();
  }

  private async decode(image: Uint8Array, contentType: string | undefined): Promise<Float32Array> {
    if (!(image instanceof Uint8Array)) throw v.typeError('Uint8Array', 'image', image);
    if (image.length === 0) throw new ServiceError('The image is empty (0 bytes)', 400, 'EMPTY_IMAGE');
    // The declared type is refused before anything is decoded; the bytes themselves are checked by the image module.
    if (!this.allowSvg && contentType !== undefined && /^image\/svg\+xml\b/i.test(contentType)) throw new ServiceError(SVG_REFUSED, 415, 'SVG_REFUSED');
    await this.acquire();
    try {
      const [height, width] = this.model.inputShape as [number, number, number];
      return await loadImageTensor(image, {
        width,
        height,
        resize: this.resize,
        preprocessing: this.model.preprocessing,
        limitInputPixels: this.maxPixels,
        allowSvg: this.allowSvg,
      });
    } catch (e) {
      throw e instanceof ImageDecodeError ? serviceError(e) : e;
    } finally {
      this.release();
    }
  }

  // A counting semaphore for decodes (a dozen lines; not worth a dependency).
  private async acquire(): Promise<void> {
    if (this.decoding < this.concurrency) {
      this.decoding++;
      return;
    }
    await new Promise<void>((resolve) => this.decodeWaiters.push(resolve));
  }

  private release(): void {
    const next = this.decodeWaiters.shift();
    if (next !== undefined) next();
    else this.decoding--;
  }
}
