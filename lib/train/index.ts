/**
 * Training a classifier for your own classes on a frozen MobileNet:
 *
 * 1. the images (a folder per class, or a list) are split, stratified and
 *    seeded, into training and validation sets;
 * 2. each image is embedded once by the backbone cut at its global pooling
 *    (`Model.embedder()`, batched; with `augment: 'flip'` the mirrored
 *    training images are embedded too); images that fail to decode are
 *    reported and skipped;
 * 3. a softmax head (Dense, optional dropout) is fitted on the cached
 *    embeddings (./softmax.ts: cross-entropy + L2, Adam, early stopping on
 *    the validation loss, seeded);
 * 4. the result is one Keras model — backbone, global pooling, [Dropout,]
 *    Dense softmax — with the class names, returned as a `Model` and saved
 *    by `saveClassifier` in any format the project writes.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { defaultModelPath } from '../default-model.js';
import { ModelFormatError, OutputExistsError, TrainingDataError } from '../errors.js';
import { decodeImage, pixelsToTensor, type Background, type ImageSource, type ResizeMode } from '../image.js';
import { mulberry32 } from '../keras/random.js';
import type { KerasLayerConfig, KerasModelConfig, NamedWeights } from '../keras/types.js';
import { loadModel, Model } from '../model.js';
import * as v from '../validate.js';
import { datasetFromList, readImageFolder, stratifiedSplit, type Dataset, type Skipped } from './dataset.js';
import { evaluateProbabilities, type Evaluation } from './report.js';
import { fitSoftmax, predictSoftmax, type EpochStats } from './softmax.js';

export { readImageFolder, datasetFromList, stratifiedSplit, IMAGE_EXTENSIONS } from './dataset.js';
export type { Dataset, LabelledImage, Skipped } from './dataset.js';
export { evaluateProbabilities, formatEvaluation } from './report.js';
export type { Evaluation, ClassMetrics } from './report.js';
export { fitSoftmax, predictSoftmax } from './softmax.js';
export type { SoftmaxOptions, SoftmaxHead, EpochStats } from './softmax.js';

export type TrainProgress =
  | { phase: 'embed'; done: number; total: number; failed: number; file?: string; error?: Error }
  | ({ phase: 'fit' } & EpochStats);

export interface TrainOptions {
  /** A folder with one sub-folder of images per class. */
  dir?: string;
  /** Or the images in code: `[{ image, label }]` or `{ className: [images] }`. */
  images?: ReadonlyArray<{ image: ImageSource; label: string }> | Readonly<Record<string, readonly ImageSource[]>>;
  /** The frozen MobileNet: a loaded `Model` (not disposed here) or a model file (default: the shipped V1 0.75). */
  backbone?: string | Model;
  /** Maximum epochs of the head (default 200; early stopping usually ends sooner). */
  epochs?: number;
  /** Fraction of each class held out for validation and early stopping (default 0.2; 0: none). */
  validationSplit?: number;
  /** 'flip': the horizontally mirrored training images are added (embedded once more). */
  augment?: 'flip' | readonly 'flip'[];
  /** Dropout before the Dense layer (default 0: no Dropout layer). */
  dropout?: number;
  /** L2 penalty on the Dense kernel (default 1e-4). */
  l2?: number;
  /** Adam step size (default 0.001). */
  learningRate?: number;
  /** Head mini-batch (default 32). */
  batchSize?: number;
  /** Images per backbone inference call (default 8). */
  embedBatchSize?: number;
  /** Epochs without a lower validation loss before stopping (default 10). */
  patience?: number;
  /** Seed of the split, the shuffles and the dropout masks (default 1). */
  seed?: number;
  /** Backbone threads (when `backbone` is a path). */
  threads?: number;
  resize?: ResizeMode;
  background?: Background;
  onProgress?: (p: TrainProgress) => void;
  /**
   * Embeddings of file paths from earlier runs with the same backbone and
   * resize/background options (keys: the path, `+flip` for mirrored copies):
   * filled by this run, read by the next, so trying other head options or
   * labels costs no backbone inference. The caller keeps it per backbone.
   */
  embeddingCache?: Map<string, Float32Array>;
}

export interface TrainReport {
  classNames: string[];
  /** Images per class used for training / validation (after skipping failures). */
  trainCounts: number[];
  validationCounts: number[];
  /** Names of the images in the validation split (in input order). */
  validationFiles: string[];
  /** Training samples including mirrored copies. */
  trainSamples: number;
  /** Files not used: no image extension, outside a class folder, or not decodable. */
  skipped: Skipped[];
  /** Backbone: architecture, the pooling layer, the embedding length. */
  backbone: { architecture: string; layer: string; pooling: 'avg' | 'max'; dimension: number; path?: string };
  epochs: number;
  bestEpoch: number;
  history: EpochStats[];
  /** The head on the training samples. */
  train: Evaluation;
  /** The head on the validation split (null without one). */
  validation: Evaluation | null;
  /** Milliseconds spent embedding and fitting. */
  embedMs: number;
  fitMs: number;
  seed: number;
}

export interface TrainResult {
  /** The whole classifier (backbone + pooling + head), labels = class names. Dispose it. */
  model: Model;
  config: KerasModelConfig;
  weights: NamedWeights;
  classNames: string[];
  report: TrainReport;
}

const HEAD = 'classifier';

function layerName(l: KerasLayerConfig): string {
  return (l.config?.name ?? l.name) as string;
}

function unique(base: string, taken: Set<string>): string {
  let n = base;
  for (let i = 1; taken.has(n); i++) n = `${base}_${i}`;
  taken.add(n);
  return n;
}

/** The backbone's feature config with `[Dropout →] Dense(softmax)` appended, and its weights. */
export function classifierConfig(
  embedding: { config: KerasModelConfig; weights: NamedWeights },
  head: { kernel: Float32Array; bias: Float32Array; inputs: number; classes: number },
  dropout = 0,
): { config: KerasModelConfig; weights: NamedWeights } {
  const base = embedding.config.config;
  const taken = new Set(base.layers.map(layerName));
  let tail = base.output_layers[0]![0];
  const layers: KerasLayerConfig[] = [...base.layers];
  if (dropout > 0) {
    const name = unique(`${HEAD}_dropout`, taken);
    layers.push({ class_name: 'Dropout', name, config: { name, trainable: true, dtype: 'float32', rate: dropout, noise_shape: null, seed: null }, inbound_nodes: [[[tail, 0, 0, {}]]] });
    tail = name;
  }
  const dense = unique(HEAD, taken);
  // The top-level name too: Keras 2 writes it, and TensorFlow.js reads layers by it.
  layers.push({
    class_name: 'Dense',
    name: dense,
    config: {
      name: dense,
      trainable: true,
      dtype: 'float32',
      units: head.classes,
      activation: 'softmax',
      use_bias: true,
      kernel_initializer: { class_name: 'GlorotUniform', config: { seed: null } },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
    inbound_nodes: [[[tail, 0, 0, {}]]],
  });
  const weights: NamedWeights = new Map(embedding.weights);
  weights.set(`${dense}/kernel`, { shape: [head.inputs, head.classes], data: head.kernel });
  weights.set(`${dense}/bias`, { shape: [head.classes], data: head.bias });
  const config: KerasModelConfig = {
    class_name: embedding.config.class_name === 'Model' ? 'Model' : 'Functional',
    config: { ...base, name: `${base.name}_classifier`, layers, output_layers: [[dense, 0, 0]] },
  };
  return { config, weights };
}

function flipHorizontal(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(rgb.length);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width; x++) {
      const s = row + x * 3;
      const d = row + (width - 1 - x) * 3;
      out[d] = rgb[s]!;
      out[d + 1] = rgb[s + 1]!;
      out[d + 2] = rgb[s + 2]!;
    }
  }
  return out;
}

function checkFraction(x: unknown, name: string, max: number): number {
  const f = v.finiteNumber(x, name);
  if (f < 0 || f >= max) throw v.rangeError(`number in [0, ${max})`, name, x);
  return f;
}

/**
 * Embeds every item once (and its mirror when `flip[i]`): Float32Array of
 * (items + mirrors) × d, in item order (mirror right after its original).
 */
async function embedAll(
  embedder: Model,
  data: Dataset,
  flip: readonly boolean[],
  options: { batch: number; resize?: ResizeMode; background?: Background; onProgress?: TrainOptions['onProgress']; cache?: Map<string, Float32Array> },
): Promise<{ rows: Float32Array[][]; failed: Map<number, Error> }> {
  const cache = options.cache;
  const keyOf = (i: number, mirrored: boolean): string | undefined => {
    const src = data.items[i]!.source;
    return cache !== undefined && typeof src === 'string' ? `${src}${mirrored ? '+flip' : ''}` : undefined;
  };
  const [height, width] = embedder.inputShape as [number, number, number];
  const sample = height * width * 3;
  const batch = options.batch;
  const input = new Float32Array(batch * sample);
  const rows: Float32Array[][] = data.items.map(() => []);
  const failed = new Map<number, Error>();
  const total = data.items.length;
  let done = 0;
  const decodeOptions = { width, height, ...(options.resize === undefined ? {} : { resize: options.resize }), ...(options.background === undefined ? {} : { background: options.background }) };
  // Work units: (item, mirrored). Decoding runs a few images ahead of inference.
  const queue: Array<{ item: number; rgb: Uint8Array; mirrored: boolean }> = [];
  const cached = (i: number, mirrored: boolean): Float32Array | undefined => {
    const key = keyOf(i, mirrored);
    return key === undefined ? undefined : cache!.get(key);
  };
  const flush = async (): Promise<void> => {
    while (queue.length > 0) {
      const part = queue.splice(0, batch);
      input.fill(0);
      part.forEach((u, i) => pixelsToTensor(u.rgb, embedder.preprocessing, input, i * sample));
      const out = await embedder.predict(input, { batch });
      const d = out.length / batch;
      part.forEach((u, i) => {
        const row = out.slice(i * d, (i + 1) * d);
        rows[u.item]![u.mirrored ? 1 : 0] = row;
        const key = keyOf(u.item, u.mirrored);
        if (key !== undefined) cache!.set(key, row);
      });
    }
  };
  const chunk = Math.max(batch, 8);
  for (let start = 0; start < total; start += chunk) {
    const ids = Array.from({ length: Math.min(chunk, total - start) }, (_, i) => start + i);
    const decoded = await Promise.all(
      ids.map(async (i) => {
        const hit = cached(i, false);
        if (hit !== undefined && (!flip[i] || cached(i, true) !== undefined)) {
          rows[i] = flip[i] ? [hit, cached(i, true)!] : [hit];
          return null;
        }
        try {
          return await decodeImage(data.items[i]!.source, decodeOptions);
        } catch (e) {
          return e instanceof Error ? e : new Error(String(e));
        }
      }),
    );
    decoded.forEach((r, j) => {
      const i = ids[j]!;
      if (r === null) return;
      if (r instanceof Error) {
        failed.set(i, r);
      } else {
        queue.push({ item: i, rgb: r, mirrored: false });
        if (flip[i]) queue.push({ item: i, rgb: flipHorizontal(r, width, height), mirrored: true });
      }
    });
    await flush();
    for (const i of ids) {
      done++;
      const error = failed.get(i);
      options.onProgress?.({ phase: 'embed', done, total, failed: failed.size, file: data.items[i]!.name, ...(error === undefined ? {} : { error }) });
    }
  }
  return { rows, failed };
}

/** Trains a softmax classifier on a frozen MobileNet; see the module comment. */
export async function trainClassifier(options: TrainOptions): Promise<TrainResult> {
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  if ((options.dir === undefined) === (options.images === undefined)) throw new TypeError('Expected exactly one of dir, images for training data but received ' + (options.dir === undefined ? 'neither' : 'both'));
  const validationSplit = options.validationSplit === undefined ? 0.2 : checkFraction(options.validationSplit, 'validationSplit', 1);
  const dropout = options.dropout === undefined ? 0 : checkFraction(options.dropout, 'dropout', 1);
  const seed = options.seed === undefined ? 1 : v.nonNegativeInteger(options.seed, 'seed');
  const embedBatch = options.embedBatchSize === undefined ? 8 : v.positiveInteger(options.embedBatchSize, 'embedBatchSize');
  const augment = options.augment === undefined ? [] : typeof options.augment === 'string' ? [options.augment] : [...options.augment];
  for (const a of augment) v.oneOf(a, 'augment', ['flip'] as const);
  if (options.epochs !== undefined) v.positiveInteger(options.epochs, 'epochs');
  const data = options.dir !== undefined ? readImageFolder(options.dir) : datasetFromList(options.images);
  const k = data.classNames.length;

  const ownBackbone = !(options.backbone instanceof Model);
  const backbone =
    options.backbone instanceof Model
      ? options.backbone
      : await loadModel(options.backbone ?? defaultModelPath(), options.threads === undefined ? {} : { threads: options.threads });
  try {
    if (backbone.architecture === 'custom') {
      throw new ModelFormatError('is not a MobileNet (no MobileNet V1, V2 or V3 layer names): pass a MobileNet backbone', backbone.path ?? backbone.name);
    }
    const info = backbone.embeddingInfo();
    const embedder = await backbone.embedder();
    const rand = mulberry32(seed);
    const split = stratifiedSplit(data.items.map((it) => it.label), k, validationSplit, rand);
    const isTrain = new Array<boolean>(data.items.length).fill(false);
    for (const i of split.train) isTrain[i] = true;
    const flip = isTrain.map((t) => t && augment.includes('flip'));

    const t0 = performance.now();
    const { rows, failed } = await embedAll(embedder, data, flip, {
      batch: embedBatch,
      ...(options.resize === undefined ? {} : { resize: options.resize }),
      ...(options.background === undefined ? {} : { background: options.background }),
      ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
      ...(options.embeddingCache === undefined ? {} : { cache: options.embeddingCache }),
    });
    const embedMs = performance.now() - t0;
    const skipped: Skipped[] = [...data.skipped];
    for (const [i, e] of failed) skipped.push({ file: data.items[i]!.name, reason: e.message });

    const d = info.dimension;
    const gather = (ids: number[], withMirrors: boolean): { x: Float32Array; y: Int32Array; labels: number[] } => {
      const xs: Float32Array[] = [];
      const labels: number[] = [];
      for (const i of ids) {
        const r = rows[i]!;
        for (let j = 0; j < (withMirrors ? r.length : Math.min(1, r.length)); j++) {
          xs.push(r[j]!);
          labels.push(data.items[i]!.label);
        }
      }
      const x = new Float32Array(xs.length * d);
      xs.forEach((row, j) => x.set(row, j * d));
      return { x, y: Int32Array.from(labels), labels };
    };
    const trainIds = split.train.filter((i) => !failed.has(i));
    const valIds = split.validation.filter((i) => !failed.has(i));
    const trainCounts = data.classNames.map((_, c) => trainIds.filter((i) => data.items[i]!.label === c).length);
    const validationCounts = data.classNames.map((_, c) => valIds.filter((i) => data.items[i]!.label === c).length);
    const noImages = data.classNames.filter((_, c) => trainCounts[c]! + validationCounts[c]! === 0);
    if (noImages.length > 0) {
      throw new TrainingDataError(`class${noImages.length > 1 ? 'es' : ''} ${noImages.map((c) => `'${c}'`).join(', ')}: no image could be decoded`);
    }
    const trainSet = gather(trainIds, true);
    const valSet = gather(valIds, false);

    const t1 = performance.now();
    const head = fitSoftmax({ x: trainSet.x, y: trainSet.y }, valSet.y.length > 0 ? { x: valSet.x, y: valSet.y } : undefined, d, k, {
      ...(options.epochs === undefined ? {} : { epochs: options.epochs }),
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.learningRate === undefined ? {} : { learningRate: options.learningRate }),
      ...(options.l2 === undefined ? {} : { l2: options.l2 }),
      ...(options.patience === undefined ? {} : { patience: options.patience }),
      dropout,
      seed,
      ...(options.onProgress === undefined ? {} : { onEpoch: (e: EpochStats) => options.onProgress!({ phase: 'fit', ...e }) }),
    });
    const fitMs = performance.now() - t1;
    const trainEval = evaluateProbabilities(predictSoftmax(head, trainSet.x), trainSet.labels, data.classNames);
    const valEval = valSet.y.length > 0 ? evaluateProbabilities(predictSoftmax(head, valSet.x), valSet.labels, data.classNames) : null;

    const { config, weights } = classifierConfig(await backbone.embeddingParts(), head, dropout);
    const model = await Model.fromConfig(config, weights, { threads: backbone.threads, backend: backbone.backend, preprocessing: backbone.preprocessing }, { labels: data.classNames });
    const report: TrainReport = {
      classNames: data.classNames,
      trainCounts,
      validationCounts,
      validationFiles: valIds.map((i) => data.items[i]!.name),
      trainSamples: trainSet.y.length,
      skipped,
      backbone: { architecture: backbone.architecture, layer: info.layer, pooling: info.pooling, dimension: d, ...(backbone.path === undefined ? {} : { path: backbone.path }) },
      epochs: head.epochs,
      bestEpoch: head.bestEpoch,
      history: head.history,
      train: trainEval,
      validation: valEval,
      embedMs,
      fitMs,
      seed,
    };
    return { model, config, weights, classNames: data.classNames, report };
  } finally {
    if (ownBackbone) backbone.dispose();
  }
}

export type SaveFormat = 'tfjs' | 'h5' | 'keras';

/** The format an output path means: `.h5`/`.hdf5`, `.keras`, else a TF.js directory (`…/model.json` means its directory). */
export function saveFormat(out: string): SaveFormat {
  const lower = out.toLowerCase();
  if (lower.endsWith('.h5') || lower.endsWith('.hdf5')) return 'h5';
  if (lower.endsWith('.keras')) return 'keras';
  return 'tfjs';
}

/** Throws OutputExistsError when the path (for TF.js: the directory) exists. */
export function checkOutputFree(out: string): string {
  if (typeof out !== 'string' || out.length === 0) throw v.typeError('non-empty path', 'out', out);
  let target = path.resolve(out);
  if (saveFormat(out) === 'tfjs' && path.basename(target).toLowerCase() === 'model.json') target = path.dirname(target);
  if (fs.existsSync(target)) throw new OutputExistsError(target);
  return target;
}

/**
 * Saves a trained classifier (with its class names) as a TF.js layers
 * directory, a Keras `.h5` or a Keras 3 `.keras` file. Never overwrites:
 * everything is written under a temporary name beside the target and renamed
 * into place at the end (a failure leaves nothing behind).
 */
export async function saveClassifier(result: Pick<TrainResult, 'config' | 'weights' | 'classNames'>, out: string, options: { format?: SaveFormat } = {}): Promise<{ path: string; format: SaveFormat }> {
  const format = options.format === undefined ? saveFormat(out) : v.oneOf(options.format, 'format', ['tfjs', 'h5', 'keras'] as const);
  const target = checkOutputFree(out);
  const dir = path.dirname(target);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(target)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const { config, weights, classNames } = result;
  // Every weight present with its shape before anything is written (the writers trust their input).
  const [{ analyzeModel }, { matchWeights }] = await Promise.all([import('../keras/layers.js'), import('../keras/lower.js')]);
  matchWeights(analyzeModel(config), weights);
  try {
    if (format === 'tfjs') {
      const { writeTfjs } = await import('../formats/tfjs-write.js');
      await writeTfjs(tmp, config, weights, { classNames });
      if (fs.existsSync(target)) throw new OutputExistsError(target);
      await fsp.rename(tmp, target);
    } else {
      if (format === 'h5') await (await import('../formats/h5.js')).writeH5(tmp, config, weights, { classNames });
      else await (await import('../formats/keras3.js')).writeKeras3(tmp, config, weights, { classNames });
      try {
        await fsp.link(tmp, target); // fails with EEXIST instead of replacing
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new OutputExistsError(target);
        throw e;
      }
      await fsp.rm(tmp, { force: true });
    }
  } catch (e) {
    await fsp.rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return { path: format === 'tfjs' ? path.join(target, 'model.json') : target, format };
}
