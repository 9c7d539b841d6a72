/**
 * Embeddings: the pooled feature vector of a MobileNet (or any model of the
 * supported layers), whatever its head.
 *
 * The model config is cut at its global pooling layer: the last
 * GlobalAveragePooling2D / GlobalMaxPooling2D that every path from the input
 * to the output goes through (so the squeeze-and-excite poolings inside V3
 * blocks, which sit on side branches, are never taken). Everything after it
 * (reshape, dropout, the classifier, softmax, a custom head) is dropped; a
 * pooling with `keepdims` is followed by a Flatten. A model without such a
 * pooling whose output is a feature map `[H, W, C]` (no top, `pooling: null`)
 * gets a GlobalAveragePooling2D appended: its embedding is the average of the
 * last feature map, as Keras's `pooling='avg'` computes it.
 *
 * The cut is a plain Keras config, lowered like any other model (no lowering
 * internals involved). `Model.embed()` / `Model.embedBatch()` (lib/model.ts)
 * build it once, on first use, and run it with the functions below.
 */
import { defaultConcurrency, pipelineBatches } from './batch.js';
import { ModelFormatError } from './errors.js';
import { imageLimitOptions, loadImageTensor, RESIZE_MODES, sourceName, type Background, type ImageLimitOptions, type ImageSource, type ResizeMode } from './image.js';
import { analyzeModel } from './keras/layers.js';
import type { KerasLayerConfig, KerasModelConfig, ModelAnalysis, NamedWeights, Preprocessing } from './keras/types.js';
import * as v from './validate.js';

const GLOBAL_POOLS: Record<string, 'avg' | 'max'> = { GlobalAveragePooling2D: 'avg', GlobalMaxPooling2D: 'max' };

export interface EmbeddingCut {
  /** The truncated config: input → … → pooling (→ Flatten), output shape [dimension]. */
  config: KerasModelConfig;
  /** The pooling layer cut at (for an appended pooling: its name, `embedding_pool`). */
  layer: string;
  pooling: 'avg' | 'max';
  /** Whether the pooling was appended (the model had none: its output is a feature map). */
  appended: boolean;
  /** Length of the embedding (channels of the pooled feature map). */
  dimension: number;
  /** Whether the cut config is the model's own config unchanged (a no-top pooled model). */
  identity: boolean;
}

function layerName(l: KerasLayerConfig): string {
  return (l.config?.name ?? l.name) as string;
}

/** Whether every path from the input to the output goes through `layer`. */
function dominatesOutput(analysis: ModelAnalysis, layer: string): boolean {
  if (layer === analysis.outputLayer) return true;
  const forward = new Map<string, string[]>();
  for (const l of analysis.layers) {
    for (const i of l.inbound) {
      let list = forward.get(i);
      if (list === undefined) forward.set(i, (list = []));
      list.push(l.name);
    }
  }
  const seen = new Set<string>([analysis.inputLayer]);
  const stack = [analysis.inputLayer];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n === analysis.outputLayer) return false;
    for (const m of forward.get(n) ?? []) {
      if (m === layer || seen.has(m)) continue;
      seen.add(m);
      stack.push(m);
    }
  }
  return true;
}

function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 1; ; i++) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`;
}

/**
 * Cuts a (flat, functional) model config at its global pooling layer; see
 * the module comment. `analysis` is `analyzeModel(config)` when the caller
 * has it already.
 *
 * @throws ModelFormatError when the model has no such pooling and its output
 * is not a feature map (e.g. a Flatten + Dense head).
 */
export function embeddingCut(config: KerasModelConfig, analysis: ModelAnalysis = analyzeModel(config)): EmbeddingCut {
  const byName = new Map(analysis.layers.map((l) => [l.name, l]));
  let cut: string | undefined;
  for (const l of analysis.layers) {
    if (GLOBAL_POOLS[l.className] !== undefined && dominatesOutput(analysis, l.name)) cut = l.name;
  }
  let tail: string;
  let appended = false;
  if (cut === undefined) {
    if (analysis.outputShape.length !== 3) {
      throw new ModelFormatError(
        `model '${analysis.name}' has no global pooling layer on the way to its output and its output [${analysis.outputShape.join(', ')}] is not a feature map: there is no pooled embedding to cut`,
      );
    }
    tail = analysis.outputLayer;
    appended = true;
  } else {
    tail = cut;
  }
  // The layers the tail depends on, in the config's order.
  const keep = new Set<string>();
  const stack = [tail];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (keep.has(n)) continue;
    keep.add(n);
    for (const i of byName.get(n)?.inbound ?? []) stack.push(i);
  }
  const layers: KerasLayerConfig[] = config.config.layers.filter((l) => keep.has(layerName(l)));
  const taken = new Set(config.config.layers.map(layerName));
  const channels = (byName.get(tail)?.outputShape ?? []).at(-1) ?? 0;
  let pooling: 'avg' | 'max' = 'avg';
  let layer = tail;
  if (appended) {
    layer = uniqueName('embedding_pool', taken);
    taken.add(layer);
    layers.push({
      class_name: 'GlobalAveragePooling2D',
      name: layer,
      config: { name: layer, trainable: false, data_format: 'channels_last', keepdims: false },
      inbound_nodes: [[[tail, 0, 0, {}]]],
    });
    tail = layer;
  } else {
    pooling = GLOBAL_POOLS[byName.get(tail)!.className]!;
    if (byName.get(tail)!.outputShape.length !== 1) {
      const flat = uniqueName('embedding_flatten', taken);
      taken.add(flat);
      layers.push({ class_name: 'Flatten', name: flat, config: { name: flat, trainable: false, data_format: 'channels_last' }, inbound_nodes: [[[tail, 0, 0, {}]]] });
      tail = flat;
    }
  }
  const identity = tail === analysis.outputLayer && analysis.outputShape.length === 1;
  const out: KerasModelConfig = {
    class_name: config.class_name,
    config: { ...config.config, layers, output_layers: [[tail, 0, 0]] },
  };
  return { config: out, layer, pooling, appended, dimension: channels, identity };
}

/** The weights of `weights` that the layers of `config` use (a cut drops the head's). */
export function weightsFor(config: KerasModelConfig, weights: NamedWeights, inputShape?: readonly number[]): NamedWeights {
  const analysis = analyzeModel(config, inputShape === undefined ? {} : { inputShape });
  const out: NamedWeights = new Map();
  for (const l of analysis.layers) {
    for (const w of l.weights) {
      const t = weights.get(w.fullName);
      if (t !== undefined) out.set(w.fullName, t);
    }
  }
  return out;
}

/** Scales a vector to unit L2 norm in place (a zero vector stays zero). */
export function l2Normalize(x: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  if (s > 0) {
    const k = 1 / Math.sqrt(s);
    for (let i = 0; i < x.length; i++) x[i]! *= k;
  }
  return x;
}

/** Cosine similarity of two vectors of the same length. */
export function cosineSimilarity(a: Float32Array | readonly number[], b: Float32Array | readonly number[]): number {
  if (a.length !== b.length) throw v.rangeError(`vector of length ${a.length}`, 'b', b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/** What embedding needs from a model: the cut model (`Model` satisfies it). */
export interface Embedder {
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly preprocessing: Preprocessing;
  predict(input: Float32Array, options: { batch: number }): Promise<Float32Array>;
}

/** Besides its own options, the image limits of `decodeImage` (`allowSvg`, `maxImageBytes`, …; lib/limits.ts). */
export interface EmbedOptions extends ImageLimitOptions {
  /** Scale each vector to unit L2 norm (default false: the raw pooled features). */
  normalize?: boolean;
  /** 'crop' (default) or 'squash'. */
  resize?: ResizeMode;
  /** What transparent pixels become (default white; 'drop' discards alpha). */
  background?: Background;
}

export interface EmbedBatchOptions extends EmbedOptions {
  /** Images per inference call (default 8, at most the number of images pulled so far). */
  batchSize?: number;
  /** Images decoded at once (default: two per core, at most libuv's pool size, UV_THREADPOOL_SIZE). */
  concurrency?: number;
}

export interface EmbeddingResult {
  /** Position of the image in the input sequence. */
  position: number;
  source: ImageSource;
  /** The path, or a short description of a buffer / raw pixels. */
  name: string;
  embedding?: Float32Array;
  error?: Error;
}

function checkOptions(options: unknown): EmbedBatchOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  const o = options as EmbedBatchOptions;
  if (o.normalize !== undefined && typeof o.normalize !== 'boolean') throw v.typeError('boolean', 'normalize', o.normalize);
  if (o.resize !== undefined) v.oneOf(o.resize, 'resize', RESIZE_MODES);
  return o;
}

/** The embedding of one image (decoded and preprocessed as the model expects). */
export async function embedImage(model: Embedder, image: ImageSource, options?: EmbedOptions): Promise<Float32Array> {
  const o = checkOptions(options);
  const [height, width] = model.inputShape as [number, number, number];
  const input = await loadImageTensor(image, { ...imageLimitOptions(o), width, height, resize: o.resize, background: o.background, preprocessing: model.preprocessing });
  const out = await model.predict(input, { batch: 1 });
  return o.normalize === true ? l2Normalize(out) : out;
}

/**
 * Embeddings of a sequence of images (array, iterable or async iterable), one
 * result per image in input order, through the batch pipeline of
 * lib/batch.ts (decoding overlaps inference). Decode errors are results with `error`; a failing model throws.
 */
export async function* embedImages(
  model: Embedder,
  images: Iterable<ImageSource> | AsyncIterable<ImageSource>,
  options?: EmbedBatchOptions,
): AsyncGenerator<EmbeddingResult, void, undefined> {
  const o = checkOptions(options);
  const batchSize = o.batchSize === undefined ? 8 : v.positiveInteger(o.batchSize, 'batchSize');
  const concurrency = o.concurrency === undefined ? defaultConcurrency() : v.positiveInteger(o.concurrency, 'concurrency');
  const [height, width] = model.inputShape as [number, number, number];
  const sampleSize = height * width * 3;
  const dim = v.product(model.outputShape);
  const decode = { ...imageLimitOptions(o), width, height, resize: o.resize, background: o.background, preprocessing: model.preprocessing };
  const predict = (input: Float32Array, batch: number): Promise<Float32Array> => model.predict(input, { batch });
  for await (const { slots, output } of pipelineBatches(predict, images, { batchSize, concurrency, sampleSize, decode })) {
    for (let i = 0; i < slots.length; i++) {
      const { position, source, error } = slots[i]!;
      const name = sourceName(source);
      if (error !== undefined || output === null) {
        yield { position, source, name, error };
      } else {
        const e = output.slice(i * dim, (i + 1) * dim);
        yield { position, source, name, embedding: o.normalize === true ? l2Normalize(e) : e };
      }
    }
  }
}
