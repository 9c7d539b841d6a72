/**
 * The classification pipeline the HTTP server and the BullMQ worker share:
 * admission (a bounded number of images in flight), input checks (empty,
 * SVG, pixel limit), decoding on libuv's thread pool (sharp) with bounded
 * concurrency, micro-batched inference (batcher.ts), top-k with labels.
 *
 * Every refusal is a ServiceError with the HTTP status it is answered with:
 * 400 not an image / corrupt, 413 too many pixels, 415 SVG refused,
 * 503 queue full or closing.
 */
import os from 'node:os';
import sharp, { type Metadata } from 'sharp';
import { topK, type Prediction, type Predictor } from '../classify.js';
import { ImageDecodeError } from '../errors.js';
import { loadImageTensor, type ResizeMode } from '../image.js';
import { resolveLabels } from '../labels.js';
import * as v from '../validate.js';
import { MicroBatcher, type BatchStats } from './batcher.js';
import { ClosingError, QueueFullError, ServiceError } from './errors.js';

/** Default pixel limit of one uploaded image (width × height): 50 megapixels. */
export const DEFAULT_MAX_PIXELS = 50_000_000;

export interface ClassifierOptions {
  /** Largest inference batch (default 8; 1 turns micro-batching off). */
  maxBatch?: number;
  /** Longest wait of a batch's first image for others, ms (default 5). */
  maxWaitMs?: number;
  /** Images admitted at once (decoding, waiting or running); more get 503 (default 256). */
  maxQueue?: number;
  /** Images decoded at once (default: the number of cores). */
  concurrency?: number;
  /** Largest image accepted, in pixels (default 50,000,000). */
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

/** Is this (after an optional BOM and whitespace) an XML document with an <svg> element? */
export function looksLikeSvg(bytes: Uint8Array): boolean {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0a || bytes[i] === 0x0d)) i++;
  if (bytes[i] !== 0x3c) return false; // '<'
  const head = Buffer.from(bytes.buffer, bytes.byteOffset + i, Math.min(bytes.length - i, 4096)).toString('latin1');
  return /<svg[\s>]/i.test(head);
}

const SVG_REFUSED = 'SVG images are refused (an SVG can reference other files); start the server with --allow-svg to accept them';

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
    this.maxPixels = options.maxPixels === undefined ? DEFAULT_MAX_PIXELS : v.positiveInteger(options.maxPixels, 'maxPixels');
    if (options.allowSvg !== undefined && typeof options.allowSvg !== 'boolean') throw v.typeError('boolean', 'allowSvg', options.allowSvg);
    this.allowSvg = options.allowSvg ?? false;
    this.resize = options.resize === undefined ? 'crop' : v.oneOf(options.resize, 'resize', ['crop', 'squash'] as const);
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
    const svgType = contentType !== undefined && /^image\/svg\+xml\b/i.test(contentType);
    if (!this.allowSvg && (svgType || looksLikeSvg(image))) throw new ServiceError(SVG_REFUSED, 415, 'SVG_REFUSED');
    await this.acquire();
    try {
      let meta: Metadata;
      try {
        meta = await sharp(image, { limitInputPixels: false }).metadata();
      } catch (e) {
        throw new ServiceError(`Not an image or a corrupt image: ${(e as Error).message}`, 400, 'BAD_IMAGE', { cause: e });
      }
      if (meta.format === 'svg' && !this.allowSvg) throw new ServiceError(SVG_REFUSED, 415, 'SVG_REFUSED');
      const pixels = (meta.width ?? 0) * (meta.height ?? 0);
      if (pixels > this.maxPixels) {
        throw new ServiceError(
          `The image is ${meta.width}x${meta.height} = ${pixels} pixels, over the limit of ${this.maxPixels}`,
          413,
          'TOO_MANY_PIXELS',
        );
      }
      const [height, width] = this.model.inputShape as [number, number, number];
      try {
        return await loadImageTensor(image, {
          width,
          height,
          resize: this.resize,
          preprocessing: this.model.preprocessing,
          limitInputPixels: this.maxPixels,
        });
      } catch (e) {
        if (e instanceof ImageDecodeError) {
          const msg = e.message.replace(/^<buffer of \d+ bytes>: /, '');
          if (/^image too large/.test(msg)) throw new ServiceError(`The image is too large: ${msg}`, 413, 'TOO_MANY_PIXELS', { cause: e });
          throw new ServiceError(`Not an image or a corrupt image: ${msg}`, 400, 'BAD_IMAGE', { cause: e });
        }
        throw e;
      }
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
