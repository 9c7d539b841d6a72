/**
 * Image classification on a loaded model: decode + preprocess (lib/image.ts),
 * predict, top-k with labels (lib/labels.ts).
 *
 * `classifyBatch` runs the batch pipeline of lib/batch.ts (decoding overlaps
 * inference, bounded buffers). Per-image decode errors come back as results
 * with `error`, in input order.
 */
import type { Preprocessing } from './keras/types.js';
import { imageLimitOptions, loadImageTensor, RESIZE_MODES, sourceName, type Background, type ImageLimitOptions, type ImageSource, type ResizeMode } from './image.js';
import { resolveLabels } from './labels.js';
import { defaultConcurrency, pipelineBatches } from './batch.js';
import { NotAClassifierError } from './errors.js';
import * as v from './validate.js';

/** What classification needs from a model; `Model` from lib/model.ts satisfies it. */
export interface Predictor {
  /** Per-sample input shape [height, width, channels]. */
  readonly inputShape: readonly number[];
  /** Number of outputs (classes). */
  readonly classes: number;
  /** Per-sample output shape, when known: must be [classes] (a classifier, not a feature map). */
  readonly outputShape?: readonly number[];
  /**
   * 'softmax'/'sigmoid': the output is probabilities over classes; null: it
   * is not (features, logits) and classification refuses the model;
   * undefined: not known (accepted).
   */
  readonly outputActivation?: string | null;
  /** How pixels become input: 'tf' (x / 127.5 - 1) or 'none' (0..255). */
  readonly preprocessing: Preprocessing;
  /** Class names stored with the model; used when `options.labels` is not given. */
  readonly labels?: readonly string[] | undefined;
  /** `input` holds `batch` samples NHWC; resolves to `batch × classes` scores. */
  predict(input: Float32Array, options: { batch: number }): Promise<Float32Array>;
}

export interface Prediction {
  index: number;
  label: string;
  probability: number;
}

/** Besides its own options, the image limits of `decodeImage` (`allowSvg`, `maxImageBytes`, …; lib/limits.ts). */
export interface ClassifyOptions extends ImageLimitOptions {
  /** Number of predictions, highest first (default 5 or the number of classes if fewer; more than the classes is a RangeError). */
  topK?: number;
  /** 'crop' (default, the reference pipeline) or 'squash' (Keras load_img(target_size)). */
  resize?: ResizeMode;
  /** Class names (one per output) or a path to a labels file; default ImageNet for 1000 classes. */
  labels?: readonly string[] | string;
  /** What transparent pixels become (default white; 'drop' discards alpha). */
  background?: Background;
}

export interface BatchOptions extends ClassifyOptions {
  /** Images per inference call (default 1). */
  batchSize?: number;
  /** Images decoded at once (default: two per core, at most libuv's pool size, UV_THREADPOOL_SIZE). */
  concurrency?: number;
}

export interface BatchResult {
  /** Position of the image in the input sequence. */
  position: number;
  source: ImageSource;
  /** The path, or a short description of a buffer / raw pixels. */
  name: string;
  predictions?: Prediction[];
  error?: Error;
}

function checkPredictor(model: unknown): Predictor {
  const m = model as Predictor;
  if (typeof m !== 'object' || m === null || typeof m.predict !== 'function') {
    throw v.typeError('model with predict()', 'model', model);
  }
  v.shape(m.inputShape, 'model.inputShape', 3);
  if (m.inputShape[2] !== 3) throw v.rangeError('3 input channels', 'model.inputShape', m.inputShape);
  v.positiveInteger(m.classes, 'model.classes');
  const useEmbed = 'For feature vectors use model.embed() / model.embedBatch(), or `mobilenet embed` on the command line.';
  if (m.outputShape !== undefined && m.outputShape.length !== 1) {
    throw new NotAClassifierError(
      `The model's output (shape [${m.outputShape.join(', ')}] per image) is a feature map, not class probabilities ` +
        `(a feature extractor such as a MobileNet without top and without pooling). ${useEmbed}`,
    );
  }
  if (m.outputActivation === null) {
    throw new NotAClassifierError(
      `The model's output (${m.classes} values per image) is not a probability distribution over classes: its last layer is not a softmax or sigmoid ` +
        `(a feature extractor such as a MobileNet without top, or a model that outputs logits), so its values are not class probabilities. ${useEmbed}`,
    );
  }
  return m;
}

function checkTopK(topK: unknown, classes: number): number {
  if (topK === undefined) return Math.min(5, classes);
  const k = v.positiveInteger(topK, 'topK');
  if (k > classes) throw v.rangeError(`integer from 1 to ${classes} (the model's number of classes)`, 'topK', topK);
  return k;
}

/**
 * The `k` highest scores of `scores[offset .. offset + count)`, highest
 * first, ties broken by the lower index; NaN ranks below every number.
 */
export function topK(
  scores: Float32Array | readonly number[],
  k: number,
  labels: readonly string[],
  offset = 0,
  count = scores.length - offset,
): Prediction[] {
  v.positiveInteger(k, 'k');
  const idx: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < count; i++) {
    let s = scores[offset + i]!;
    if (Number.isNaN(s)) s = -Infinity;
    const n = idx.length;
    // Strictly greater than the current last: ties keep the earlier (lower) index ahead.
    if (n === k && !(s > val[n - 1]!)) continue;
    let j = n === k ? n - 1 : n;
    while (j > 0 && s > val[j - 1]!) {
      if (j < k) {
        idx[j] = idx[j - 1]!;
        val[j] = val[j - 1]!;
      }
      j--;
    }
    idx[j] = i;
    val[j] = s;
  }
  return idx.map((i) => ({ index: i, label: labels[i] ?? `class_${i}`, probability: scores[offset + i]! }));
}

/** Classifies one image: `[{ index, label, probability }]`, highest first. */
export async function classify(model: Predictor, image: ImageSource, options: ClassifyOptions = {}): Promise<Prediction[]> {
  const m = checkPredictor(model);
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  const k = checkTopK(options.topK, m.classes);
  const labels = resolveLabels(options.labels ?? m.labels, m.classes);
  const [height, width] = m.inputShape as [number, number, number];
  const input = await loadImageTensor(image, {
    ...imageLimitOptions(options),
    width,
    height,
    resize: options.resize,
    background: options.background,
    preprocessing: m.preprocessing,
  });
  const scores = await m.predict(input, { batch: 1 });
  return topK(scores, k, labels, 0, m.classes);
}

/**
 * Classifies a sequence of images (array, iterable or async iterable),
 * yielding one result per image in input order. Decode errors are results
 * with `error`; a failing model (e.g. disposed) throws.
 */
export async function* classifyBatch(
  model: Predictor,
  images: Iterable<ImageSource> | AsyncIterable<ImageSource>,
  options: BatchOptions = {},
): AsyncGenerator<BatchResult, void, undefined> {
  const m = checkPredictor(model);
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  const batchSize = options.batchSize === undefined ? 1 : v.positiveInteger(options.batchSize, 'batchSize');
  const concurrency =
    options.concurrency === undefined ? defaultConcurrency() : v.positiveInteger(options.concurrency, 'concurrency');
  const k = checkTopK(options.topK, m.classes);
  const labels = resolveLabels(options.labels ?? m.labels, m.classes);
  const [height, width] = m.inputShape as [number, number, number];
  const sampleSize = height * width * 3;
  // Validate decode options once, up front, rather than as N per-image errors.
  v.oneOf(options.resize ?? 'crop', 'resize', RESIZE_MODES);
  const decode = { ...imageLimitOptions(options), width, height, resize: options.resize, background: options.background, preprocessing: m.preprocessing };
  const predict = (input: Float32Array, batch: number): Promise<Float32Array> => m.predict(input, { batch });
  for await (const { slots, output } of pipelineBatches(predict, images, { batchSize, concurrency, sampleSize, decode })) {
    for (let i = 0; i < slots.length; i++) {
      const { position, source, error } = slots[i]!;
      const name = sourceName(source);
      if (error !== undefined || output === null) yield { position, source, name, error };
      else yield { position, source, name, predictions: topK(output, k, labels, i * m.classes, m.classes) };
    }
  }
}
