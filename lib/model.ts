/**
 * A loaded MobileNet (or any Keras model made of the supported layers):
 * `loadModel(path, options)` reads a TF.js `model.json`, a Keras `.h5` or a
 * Keras 3 `.keras` file; files that carry a model config are built from it,
 * weights-only files from the architecture options (`lib/architectures`).
 *
 * A model keeps one recorded graph, handed to its backend once (native: the
 * serialized graph, parsed and held in C++; the JavaScript weight arrays are
 * then garbage), and compiles a runtime per batch size from it, off the
 * event loop, on first use. The runtime cache is bounded: at most
 * `MAX_CACHED_BATCH_SIZES` batch sizes are kept; compiling another disposes
 * the least recently used one (its pending runs finish first).
 */
import fsp from 'node:fs/promises';
import type { Graph } from './graph.js';
import {
  Runtime, compilePrepared, compilePreparedSync, resolveCompileOptions, loadBackend,
  type BackendName, type PreparedGraph,
} from './runtime.js';
import { DisposedError, ModelFormatError } from './errors.js';
import * as v from './validate.js';
import { analyzeModel } from './keras/layers.js';
import { lowerModelAsync, type LowerStats } from './keras/lower.js';
import { matchWeightsSteps } from './keras/weights.js';
import { flattenConfig } from './keras/model-config.js';
import { formatSummary, type SummaryOptions } from './keras/summary.js';
import { randomWeightsSteps } from './keras/random.js';
import { runStepsAsync, yieldToEventLoop } from './cooperative.js';
import type { Architecture, KerasModelConfig, ModelAnalysis, NamedWeights, Preprocessing } from './keras/types.js';
import { buildArchitecture, describeWeights, ARCHITECTURES } from './architectures/index.js';
import {
  apiNames, BUILDER_KEYS, checkApplicable, pickBuilderOptions, rejectBuilderOptions, resolveWeightsOnlySteps, type BuilderOptions, type OptionNamer,
} from './architectures/options.js';
import { defaultModelPath } from './default-model.js';
import { readModelFile, type ModelFormat } from './formats/index.js';
import { DEFAULT_MAX_COMPILE_BYTES, DEFAULT_MAX_MODEL_BYTES } from './limits.js';
import { compileTooLarge, estimateCompileBytes, type CompileEstimate } from './memory.js';
import { embeddingCut, embedImage, embedImages, weightsFor, type EmbedBatchOptions, type EmbeddingCut, type EmbeddingResult, type EmbedOptions } from './embed.js';
import type { ImageSource } from './image.js';
import { QuantizationError } from './errors.js';
import type { CalibrationSource } from './quantize/calibrate.js';
import { checkInt8Options, quantizeFloatGraph, type Int8Options, type QuantizationInfo } from './quantize/pipeline.js';
import { toGraph, type QGraph } from './quantize/qgraph.js';
import { isInt8Model, loadInt8Model, type Int8Metadata } from './quantize/format.js';

/**
 * Options of `loadModel` and `Model.fromArchitecture`: compile options and
 * the builder options (`BuilderOptions`, lib/architectures/options.ts). The
 * builder options apply to weights-only files, where what they leave out is
 * read from the file and what they state must agree with it; a file with a
 * model config takes none of them (except `inputShape` for a config with
 * unknown dimensions).
 */
export interface ModelOptions extends BuilderOptions {
  /** Worker threads of each runtime's pool (native). Default: all cores. */
  threads?: number;
  /** Batch size compiled at load time (others are compiled on first use, then cached). Default 1. */
  batch?: number;
  /** Default 'native'. */
  backend?: BackendName;
  /** For weights-only files: the family (default: recognized from the weights). A file with a config must be of this family. */
  architecture?: Architecture;
  /** Override the detected preprocessing. */
  preprocessing?: Preprocessing;
  /** Fold BatchNorm and fuse activations (default true; false is for testing). */
  fuse?: boolean;
  /** Most bytes a model file load may allocate (default 1 GiB, `MOBILENET_MAX_MODEL_BYTES`; see lib/limits.ts). */
  maxModelBytes?: number;
  /** Most bytes one compiled runtime may need by estimate (default 4 GiB, `MOBILENET_MAX_COMPILE_BYTES`; see lib/memory.ts). */
  maxCompileBytes?: number;
  /**
   * 'int8': quantize after loading (post-training, `calibration` required;
   * docs/int8.md) and run XNNPACK's QS8 kernels. Default 'float32'. A saved
   * int8 model (`mobilenet quantize`) loads as int8 without it.
   */
  precision?: 'float32' | 'int8';
  /** Calibration images for precision 'int8': a directory (its image files by name), image paths, or preprocessed samples. */
  calibration?: CalibrationSource;
  /** Quantization options for precision 'int8' (images, method, floatHead, biasCorrection; docs/int8.md). */
  quantization?: Omit<Int8Options, 'calibration'>;
}

export interface FromArchitectureOptions extends ModelOptions {
  /** Seed of the random weights (default 1). */
  seed?: number;
}

const MODEL_OPTION_KEYS: readonly string[] = ['threads', 'batch', 'backend', 'architecture', ...BUILDER_KEYS, 'preprocessing', 'fuse', 'seed', 'maxModelBytes', 'maxCompileBytes', 'precision', 'calibration', 'quantization'];
const INT8_KEYS = ['precision', 'calibration', 'quantization'] as const;

function checkOptions(options: unknown): ModelOptions & { seed?: number } {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw v.typeError('object', 'options', options);
  for (const key of Object.keys(options)) {
    if (!MODEL_OPTION_KEYS.includes(key)) {
      throw new RangeError(`Expected one of ${MODEL_OPTION_KEYS.join(', ')} for option name but received ${JSON.stringify(key)}`);
    }
  }
  const o = options as ModelOptions;
  if (o.architecture !== undefined) v.oneOf(o.architecture, 'architecture', ARCHITECTURES);
  if (o.preprocessing !== undefined) v.oneOf(o.preprocessing, 'preprocessing', ['tf', 'none'] as const);
  if (o.fuse !== undefined && typeof o.fuse !== 'boolean') throw v.typeError('boolean', 'fuse', o.fuse);
  if (o.maxModelBytes !== undefined) v.positiveInteger(o.maxModelBytes, 'maxModelBytes');
  if (o.maxCompileBytes !== undefined) v.positiveInteger(o.maxCompileBytes, 'maxCompileBytes');
  if (o.precision !== undefined) v.oneOf(o.precision, 'precision', ['float32', 'int8'] as const);
  if (o.precision !== 'int8' && (o.calibration !== undefined || o.quantization !== undefined)) {
    throw new RangeError(`Expected precision 'int8' with calibration or quantization options but received ${JSON.stringify(o.precision ?? 'float32')}`);
  }
  if (o.precision === 'int8') {
    if (o.quantization !== undefined && (typeof o.quantization !== 'object' || o.quantization === null)) throw v.typeError('object', 'quantization', o.quantization);
    if (o.calibration === undefined) throw new QuantizationError("precision 'int8' needs calibration images: pass calibration (a directory, image paths or preprocessed samples), or load a model saved by `mobilenet quantize`");
    checkInt8Options({ ...(o.quantization ?? {}), calibration: o.calibration });
  }
  return o;
}

/** Options without the int8 ones (what an embedding model or a re-lowering is built with). */
function floatOptions(o: ModelOptions): ModelOptions {
  const rest: Record<string, unknown> = { ...o };
  for (const k of INT8_KEYS) delete rest[k];
  return rest as ModelOptions;
}


/** Recognizes the Keras Applications MobileNets by their layer names (an analysis: nested models included). */
export function detectArchitecture(model: KerasModelConfig | ModelAnalysis): Architecture | 'custom' {
  const names = new Set<string>();
  const layers: ReadonlyArray<{ name?: unknown; config?: { name?: unknown } }> = 'layers' in model ? model.layers : (model.config?.layers ?? []);
  for (const l of layers) {
    const n = l?.config?.name ?? l?.name;
    if (typeof n === 'string') names.add(n);
  }
  if (names.has('conv_dw_1') && names.has('conv_pw_1') && names.has('conv_pw_13')) return 'v1';
  if (names.has('Conv1') && names.has('block_1_expand') && names.has('block_16_project')) return 'v2';
  if (names.has('expanded_conv_14_project')) return 'v3-large';
  if (names.has('expanded_conv_10_project') && !names.has('expanded_conv_11_project')) return 'v3-small';
  return 'custom';
}

/** 'none' when a Rescaling layer reads the model input directly (V3 with preprocessing), else 'tf'. */
export function detectPreprocessing(analysis: ModelAnalysis): Preprocessing {
  for (const l of analysis.layers) {
    if (l.className === 'Rescaling' && l.inbound.length === 1 && l.inbound[0] === analysis.inputLayer) return 'none';
  }
  return 'tf';
}

/** Batch sizes whose compiled runtime a Model keeps (least recently used evicted). */
export const MAX_CACHED_BATCH_SIZES = 4;

/** The activation producing the graph output (through reshapes): softmax/sigmoid, else null. */
function outputActivation(graph: Graph): 'softmax' | 'sigmoid' | null {
  const producer = new Map(graph.nodes.map((n) => [n.output, n]));
  let node = producer.get(graph.outputTensor);
  while (node !== undefined && node.op === 'reshape') node = producer.get(node.inputs[0] ?? -1);
  return node !== undefined && (node.op === 'softmax' || node.op === 'sigmoid') ? node.op : null;
}

export interface ModelInfo {
  format?: ModelFormat;
  path?: string;
  /** Class names stored with the model (one per output). */
  labels?: readonly string[];
}

/** Gives the C heap's free memory back when a load's weights have been collected. */
const releaseAfterCollect = new FinalizationRegistry<{ releaseFreeMemory?(): Promise<boolean> }>((backend) => {
  void backend.releaseFreeMemory?.();
});

/** `Model.build` for `loadModelFile` (the class keeps it private). */
let buildModel: (config: KerasModelConfig, weights: NamedWeights, options: ModelOptions, info: ModelInfo, reload?: () => Promise<NamedWeights>) => Promise<Model>;

export class Model implements Disposable {
  static {
    buildModel = (config, weights, options, info, reload) => Model.build(config, weights, options, info, reload);
  }

  /** Per-sample input shape [H, W, C]. */
  readonly inputShape: readonly number[];
  /** Per-sample output shape (e.g. [1000]). */
  readonly outputShape: readonly number[];
  /** Outputs per sample (the product of outputShape). */
  readonly classes: number;
  /**
   * 'softmax' or 'sigmoid' when the output is probabilities over classes (a
   * classifier); null for anything else (features, logits). `classify` needs
   * a classifier; feature vectors come from `embed`.
   */
  readonly outputActivation: 'softmax' | 'sigmoid' | null;
  readonly preprocessing: Preprocessing;
  readonly architecture: Architecture | 'custom';
  readonly analysis: ModelAnalysis;
  readonly name: string;
  readonly backend: BackendName;
  readonly threads: number;
  /** Where it was loaded from (loadModel only). */
  readonly format: ModelFormat | undefined;
  readonly path: string | undefined;
  /** Class names stored with the model (e.g. by `mobilenet train`); `classify` uses them. */
  readonly labels: readonly string[] | undefined;
  /** What the lowering fused. */
  readonly loweringStats: LowerStats;
  private int8: QuantizationInfo | null = null;
  private readonly inputSize: number;
  private prepared: PreparedGraph | null;
  /** Batch size -> runtime (compiled or compiling), in least-recently-used order. */
  private readonly runtimes = new Map<number, Promise<Runtime>>();
  private readonly ready = new Map<number, Runtime>();
  private isDisposed = false;
  /** Compile memory estimate for batch 1 (lib/memory.ts) and its limit. */
  private compileCost: CompileEstimate | null = null;
  private maxCompileBytes = DEFAULT_MAX_COMPILE_BYTES;
  /**
   * The flat config and options it was built from, and how to get its
   * weights back (the embedding model and `loweredGraph()` use them): the
   * weights themselves are not kept once compiled when they can be read
   * again (the model file, the seed of random weights), so a loaded model
   * holds only its parsed graph and compiled runtimes.
   */
  private source: { config: KerasModelConfig; weights: () => Promise<NamedWeights>; options: ModelOptions } | null = null;
  private embedding: { cut: EmbeddingCut; model: Promise<Model> | null } | null = null;

  private constructor(
    analysis: ModelAnalysis,
    prepared: PreparedGraph,
    shapes: { inputShape: readonly number[]; outputShape: readonly number[]; outputActivation: 'softmax' | 'sigmoid' | null },
    stats: LowerStats,
    backend: BackendName,
    threads: number,
    architecture: Architecture | 'custom',
    preprocessing: Preprocessing,
    info: ModelInfo,
  ) {
    this.analysis = analysis;
    this.prepared = prepared;
    this.loweringStats = stats;
    this.backend = backend;
    this.threads = threads;
    this.name = analysis.name;
    this.architecture = architecture;
    this.preprocessing = preprocessing;
    this.inputShape = Object.freeze([...shapes.inputShape]);
    this.outputShape = Object.freeze([...shapes.outputShape]);
    this.inputSize = v.product(this.inputShape);
    this.classes = v.product(this.outputShape);
    this.outputActivation = shapes.outputActivation;
    this.format = info.format;
    this.path = info.path;
    this.labels = info.labels === undefined ? undefined : Object.freeze([...info.labels]);
  }

  /**
   * Builds a model from a Keras model config and its named weights. The
   * model keeps a reference to `weights` (for `embed` and `loweredGraph()`).
   */
  static async fromConfig(config: KerasModelConfig, weights: NamedWeights, options: ModelOptions = {}, info: ModelInfo = {}): Promise<Model> {
    return Model.build(config, weights, options, info);
  }

  /**
   * `fromConfig`; with `reload`, the weights are not kept: `reload` gives
   * them again (by the config's names) when the embedding model or the
   * lowered graph needs them.
   */
  private static async build(
    config: KerasModelConfig,
    weights: NamedWeights,
    options: ModelOptions,
    info: ModelInfo,
    reload?: () => Promise<NamedWeights>,
  ): Promise<Model> {
    const o = checkOptions(options);
    const compile = resolveCompileOptions({ threads: o.threads, batch: o.batch, backend: o.backend });
    if (!(weights instanceof Map)) throw v.typeError('Map of named weights', 'weights', weights);
    // Transfer-learning models hold the MobileNet as a nested model: analysis inlines it.
    // (Turns of the event loop around it: a few ms each for a large config, after reading or building it.)
    await yieldToEventLoop();
    const analysis = analyzeModel(config, { ...(o.inputShape === undefined ? {} : { inputShape: o.inputShape }), ...(info.path === undefined ? {} : { file: info.path }) });
    await yieldToEventLoop();
    const detected = detectArchitecture(analysis);
    // Lowering and serializing run in steps with turns of the event loop between them (lib/cooperative.ts).
    const lowered = await lowerModelAsync(analysis, weights, {
      ...(o.fuse === undefined ? {} : { fuse: o.fuse }),
      ...(info.path === undefined ? {} : { file: info.path }),
      identify: (shapes) => describeWeights(shapes, analysis.inputShape),
    });
    if (info.labels !== undefined && info.labels.length !== v.product(analysis.outputShape)) {
      throw new ModelFormatError(`stores ${info.labels.length} class names but the model has ${v.product(analysis.outputShape)} outputs`, info.path);
    }
    const backend = await loadBackend(compile.backend);
    const architecture = o.architecture ?? detected;
    const preprocessing = o.preprocessing ?? detectPreprocessing(analysis);
    let g = lowered.graph;
    const shapes = {
      inputShape: g.tensors[g.inputTensor]?.shape ?? analysis.inputShape,
      outputShape: g.tensors[g.outputTensor]?.shape ?? analysis.outputShape,
      outputActivation: outputActivation(g),
    };
    let int8: QuantizationInfo | null = null;
    if (o.precision === 'int8') {
      // Ops this backend has no int8 kernel for stay float32 (between converts).
      const q = await quantizeFloatGraph(g, shapes.inputShape, preprocessing, { ...(o.quantization ?? {}), calibration: o.calibration! }, compile.backend, compile.threads);
      g = toGraph(q.graph);
      int8 = q.quantization;
    }
    const compileCost = estimateCompileBytes(g, 1);
    const prepared = await backend.prepareAsync(g);
    // The native backend holds its own copy: drop the JavaScript weight arrays.
    if (compile.backend === 'native') g.dispose();
    const model = new Model(analysis, prepared, shapes, lowered.stats, compile.backend, compile.threads, architecture, preprocessing, info);
    model.int8 = int8;
    model.compileCost = compileCost;
    if (o.maxCompileBytes !== undefined) model.maxCompileBytes = o.maxCompileBytes;
    // Embedding cuts and re-lowering use the flat (inlined) config and the matched weights.
    const flat = analysis.nestedModels.length > 0 ? flattenConfig(config, info.path) : config;
    let sourceWeights: () => Promise<NamedWeights>;
    if (reload === undefined) {
      const kept = lowered.weights;
      sourceWeights = () => Promise.resolve(kept);
    } else {
      sourceWeights = async () => runStepsAsync(matchWeightsSteps(analysis, await reload(), info.path === undefined ? {} : { file: info.path }));
    }
    model.source = { config: flat, weights: sourceWeights, options: { ...floatOptions(o), threads: compile.threads, backend: compile.backend, preprocessing } };
    // Compile the default batch now (off the event loop): backend problems surface at load, and the first predict is fast.
    try {
      await model.runtime(compile.batch);
    } catch (e) {
      model.dispose();
      throw e;
    }
    // Loading allocated and freed several copies of the weights: give the C
    // heap's free memory back (off the event loop) now, and again once the
    // garbage collector has freed the JavaScript copies (the weights Map).
    if (backend.releaseFreeMemory !== undefined) {
      await backend.releaseFreeMemory();
      if (reload !== undefined) releaseAfterCollect.register(weights, backend);
    }
    return model;
  }

  /**
   * A model from an int8 graph saved by `mobilenet quantize` / `QuantizedModel.save`
   * (lib/quantize/format.ts). It classifies and predicts; it has no Keras
   * config, so `embed` and `summary` need the float model.
   */
  static async fromInt8(graph: QGraph, meta: Int8Metadata, options: ModelOptions = {}, info: ModelInfo = {}): Promise<Model> {
    const o = checkOptions(options);
    if (o.precision === 'float32') throw new RangeError(`Expected precision 'int8' (or none) for the int8 model ${info.path ?? ''} but received "float32"`.replace('  ', ' '));
    const compile = resolveCompileOptions({ threads: o.threads, batch: o.batch, backend: o.backend });
    const backend = await loadBackend(compile.backend);
    const g = toGraph(graph);
    const analysis: ModelAnalysis = {
      name: meta.name,
      layers: [],
      inputLayer: '',
      outputLayer: '',
      inputShape: [...meta.inputShape],
      outputShape: [...meta.outputShape],
      totalParams: g.tensors.reduce((n, t) => n + (t.data?.length ?? 0), 0),
      trainableParams: 0,
      nonTrainableParams: 0,
      macs: 0,
      nestedModels: [],
    };
    const shapes = { inputShape: meta.inputShape, outputShape: meta.outputShape, outputActivation: outputActivation(g) };
    const compileCost = estimateCompileBytes(g, 1);
    const prepared = backend.prepare(g);
    if (compile.backend === 'native') g.dispose();
    const stats: LowerStats = { nodes: graph.nodes.length, foldedAffine: 0, fusedClamps: 0, fusedPads: 0, hardswish: 0 } as LowerStats;
    const architecture = (ARCHITECTURES as readonly string[]).includes(meta.architecture) ? (meta.architecture as Architecture) : 'custom';
    const model = new Model(analysis, prepared, shapes, stats, compile.backend, compile.threads, architecture, o.preprocessing ?? meta.preprocessing, info);
    model.int8 = meta.quantization;
    model.compileCost = compileCost;
    if (o.maxCompileBytes !== undefined) model.maxCompileBytes = o.maxCompileBytes;
    try {
      await model.runtime(compile.batch);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  /** A model of a named architecture with seeded random weights (benchmarks, tests). */
  static async fromArchitecture(architecture: Architecture, options: FromArchitectureOptions = {}): Promise<Model> {
    const o = checkOptions(options);
    v.oneOf(architecture, 'architecture', ARCHITECTURES);
    const b = pickBuilderOptions(o);
    checkApplicable(architecture, b);
    const config = buildArchitecture(architecture, b);
    await yieldToEventLoop();
    const analysis = analyzeModel(config);
    await yieldToEventLoop();
    // The weights are allocated here: refuse (alpha: 40 is 27 GB) before allocating.
    const limit = o.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES;
    if (analysis.totalParams * 4 > limit) {
      throw new RangeError(
        `Expected a model of at most ${limit} bytes of weights for ${architecture} but received ${analysis.totalParams} parameters (${analysis.totalParams * 4} bytes); raise the maxModelBytes option or MOBILENET_MAX_MODEL_BYTES`,
      );
    }
    const seed = o.seed ?? 1;
    const weights = await runStepsAsync(randomWeightsSteps(analysis, seed));
    const { seed: _seed, ...rest } = o;
    // The same seed gives the same weights again: they are not kept.
    return Model.build(config, weights, { ...rest, architecture }, {}, () => runStepsAsync(randomWeightsSteps(analysis, seed)));
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** 'int8' when the model runs quantized (XNNPACK's QS8 kernels, or the int8 reference). */
  get precision(): 'float32' | 'int8' {
    return this.int8 === null ? 'float32' : 'int8';
  }

  /** How an int8 model was quantized (undefined for float32). */
  get quantization(): QuantizationInfo | undefined {
    return this.int8 ?? undefined;
  }

  private live(): PreparedGraph {
    if (this.isDisposed || this.prepared === null) throw new DisposedError('Model');
    return this.prepared;
  }

  /**
   * The lowered float graph (BatchNorm folded, activations fused); lib/quantize
   * reads it. Lowered again from the model's weights (read again from the
   * model file or regenerated from the seed) on each call: the model itself
   * keeps only what running and recompiling need.
   */
  async loweredGraph(): Promise<Graph> {
    const src = this.liveSource('loweredGraph');
    const weights = await src.weights();
    return (await lowerModelAsync(this.analysis, weights, src.options.fuse === undefined ? {} : { fuse: src.options.fuse })).graph;
  }

  private liveSource(what: string): NonNullable<Model['source']> {
    this.live();
    if (this.source === null) throw new RangeError(`Expected a model with its Keras config for ${what} but received the saved int8 model ${this.path ?? this.name}`);
    return this.source;
  }

  private touch(batch: number, rt: Promise<Runtime>): void {
    this.runtimes.delete(batch);
    this.runtimes.set(batch, rt);
    while (this.runtimes.size > MAX_CACHED_BATCH_SIZES) {
      const [oldest, p] = this.runtimes.entries().next().value as [number, Promise<Runtime>];
      this.runtimes.delete(oldest);
      this.ready.delete(oldest);
      void p.then((r) => r.dispose(), () => undefined);
    }
  }

  /**
   * The compiled runtime for a batch size: compiled off the event loop on first
   * use, then cached (at most MAX_CACHED_BATCH_SIZES batch sizes).
   */
  runtime(batch = 1): Promise<Runtime> {
    try {
      const prepared = this.live();
      v.positiveInteger(batch, 'batch');
      let rt = this.runtimes.get(batch);
      if (rt === undefined) {
        const c = this.compileCost;
        if (c !== null) {
          const estimate: CompileEstimate = { ...c, batch, total: c.weightBytes + batch * (c.activationBytesPerSample + c.ioBytesPerSample) };
          if (estimate.total > this.maxCompileBytes) throw new RangeError(compileTooLarge(estimate, this.maxCompileBytes));
        }
        const opts = { batch, threads: this.threads, backend: this.backend };
        rt = compilePrepared(prepared, opts, this).then((r) => {
          if (this.isDisposed || this.runtimes.get(batch) !== rt) {
            // Disposed or evicted while compiling.
            if (this.isDisposed) r.dispose();
            return r;
          }
          this.ready.set(batch, r);
          return r;
        });
        rt.catch(() => {
          if (this.runtimes.get(batch) === rt) this.runtimes.delete(batch);
        });
      }
      this.touch(batch, rt);
      return rt;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The compiled runtime for a batch size, compiled on the calling thread when not cached. */
  runtimeSync(batch = 1): Runtime {
    const prepared = this.live();
    v.positiveInteger(batch, 'batch');
    let rt = this.ready.get(batch);
    if (rt === undefined) {
      rt = compilePreparedSync(prepared, { batch, threads: this.threads, backend: this.backend }, this);
      this.ready.set(batch, rt);
      const r = rt;
      this.runtimes.get(batch)?.then((other) => other !== r && other.dispose(), () => undefined);
      this.touch(batch, Promise.resolve(rt));
    }
    return rt;
  }

  private prepare(input: unknown, options: unknown): { data: Float32Array; batch: number } {
    this.live();
    if (options !== undefined && (typeof options !== 'object' || options === null)) throw v.typeError('object', 'options', options);
    const requested = (options as { batch?: unknown } | undefined)?.batch;
    let data: Float32Array;
    if (Array.isArray(input)) {
      if (input.length === 0) throw v.rangeError('non-empty array of Float32Array', 'input', input);
      input.forEach((x, i) => v.float32Array(x, `input[${i}]`, this.inputSize));
      data = new Float32Array(input.length * this.inputSize);
      input.forEach((x: Float32Array, i) => data.set(x, i * this.inputSize));
    } else {
      data = v.float32Array(input, 'input');
    }
    let batch: number;
    if (requested !== undefined) {
      batch = v.positiveInteger(requested, 'batch');
      v.float32Array(data, 'input', batch * this.inputSize);
    } else {
      if (data.length === 0 || data.length % this.inputSize !== 0) {
        throw v.rangeError(`Float32Array with a length that is a positive multiple of ${this.inputSize}`, 'input', data);
      }
      batch = data.length / this.inputSize;
    }
    return { data, batch };
  }

  /**
   * Runs the model on `batch` samples (NHWC, preprocessed as `preprocessing`
   * says) off the main thread. Without `batch`, it is the input length over
   * the sample size. Returns batch × classes values.
   */
  predict(input: Float32Array | readonly Float32Array[], options?: { batch?: number }): Promise<Float32Array> {
    // Not an async function: a compiled runtime's promise is returned as it is
    // (no extra promise hops between the run's end and the caller).
    let data: Float32Array;
    let batch: number;
    try {
      ({ data, batch } = this.prepare(input, options));
    } catch (e) {
      return Promise.reject(e);
    }
    const rt = this.ready.get(batch);
    if (rt !== undefined && !rt.disposed) {
      const result = rt.run(data); // never throws: failures reject
      this.touch(batch, this.runtimes.get(batch) ?? Promise.resolve(rt));
      return result;
    }
    // Not compiled yet: keep the input as it is now while the runtime compiles.
    return this.predictWhenCompiled(data === input ? data.slice() : data, batch);
  }

  private async predictWhenCompiled(data: Float32Array, batch: number): Promise<Float32Array> {
    return (await this.runtime(batch)).run(data);
  }

  /** `predict` on the calling thread (blocks the event loop). */
  predictSync(input: Float32Array | readonly Float32Array[], options?: { batch?: number }): Float32Array {
    const { data, batch } = this.prepare(input, options);
    return this.runtimeSync(batch).runSync(data);
  }

  /**
   * Where the embedding is taken: the global pooling layer cut at (see
   * lib/embed.ts), the pooling, and the vector's length.
   * @throws ModelFormatError for a model without a pooled embedding.
   */
  embeddingInfo(): { layer: string; pooling: 'avg' | 'max'; appended: boolean; dimension: number } {
    this.live();
    const { layer, pooling, appended, dimension } = this.cut();
    return { layer, pooling, appended, dimension };
  }

  private cut(): EmbeddingCut {
    if (this.embedding === null) {
      const src = this.source;
      if (src === null) throw new RangeError(`Expected a model with its Keras config for embeddings but received the saved int8 model ${this.path ?? this.name}: load the float model (embeddings run in float32)`);
      this.embedding = { cut: embeddingCut(src.config, this.analysis), model: null };
    }
    return this.embedding.cut;
  }

  /**
   * The feature-extractor config (this model's config cut at its global
   * pooling, output [dimension]) and the weights its layers use: what
   * `trainClassifier` puts a new head on.
   */
  async embeddingParts(): Promise<{ config: KerasModelConfig; weights: NamedWeights; inputShape: readonly number[] }> {
    const cut = this.cut();
    const { weights, options } = this.liveSource('embeddingParts');
    return { config: cut.config, weights: weightsFor(cut.config, await weights(), options.inputShape), inputShape: this.inputShape };
  }

  /**
   * The feature-extractor model (this model cut at its global pooling), built
   * on first use and disposed with this model. For a no-top pooled model it
   * is the model itself.
   */
  embedder(): Promise<Model> {
    this.live();
    const cut = this.cut();
    const e = this.embedding!;
    if (e.model === null) {
      if (cut.identity) {
        e.model = Promise.resolve(this);
      } else {
        const { weights, options } = this.liveSource('embeddings');
        const cutWeights = async (): Promise<NamedWeights> => weightsFor(cut.config, await weights(), options.inputShape);
        e.model = cutWeights().then((w) => Model.build(cut.config, w, { ...options, batch: 1 }, {}, cutWeights));
        e.model.catch(() => {
          if (this.embedding !== null) this.embedding.model = null;
        });
      }
    }
    return e.model;
  }

  /**
   * The pooled feature vector of one image (length `embeddingInfo().dimension`),
   * whatever the model's head; `normalize: true` scales it to unit L2 norm.
   */
  async embed(image: ImageSource, options?: EmbedOptions): Promise<Float32Array> {
    return embedImage(await this.embedder(), image, options);
  }

  /**
   * Embeddings of many images, batched (default 8 per call), one result per
   * image in input order; decode errors are results with `error`.
   */
  async *embedBatch(
    images: Iterable<ImageSource> | AsyncIterable<ImageSource>,
    options?: EmbedBatchOptions,
  ): AsyncGenerator<EmbeddingResult, void, undefined> {
    yield* embedImages(await this.embedder(), images, options);
  }

  /** Keras-style summary table: layers, output shapes, parameters; totals and MACs. */
  summary(options?: SummaryOptions): string {
    if (this.isDisposed) throw new DisposedError('Model');
    return formatSummary(this.analysis, options);
  }

  /** Frees the runtimes and weights. Safe to call twice; later use throws DisposedError. */
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    const embedder = this.embedding?.model;
    this.embedding = null;
    this.source = null;
    if (embedder) {
      void embedder.then(
        (m) => {
          if (m !== this) m.dispose();
        },
        () => undefined,
      );
    }
    for (const rt of this.runtimes.values()) void rt.then((r) => r.dispose(), () => undefined);
    this.runtimes.clear();
    this.ready.clear();
    this.prepared?.dispose();
    this.prepared = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Loads a model file: TF.js `model.json` (or its directory), Keras `.h5`
 * (full model or weights only) or Keras 3 `.keras`. Without a path, the
 * model that ships in the package (MobileNet V1 0.75-224 ImageNet,
 * `defaultModelPath()`): `loadModel()`, `loadModel({ threads: 2 })`.
 *
 * Weights-only files are resolved by `resolveWeightsOnly`: builder options
 * left out are read from the weights, options given must agree with them.
 * Files with a model config take no builder options (RangeError).
 */
export async function loadModel(options?: ModelOptions): Promise<Model>;
export async function loadModel(path: string, options?: ModelOptions): Promise<Model>;
export async function loadModel(pathOrOptions?: string | ModelOptions, maybeOptions?: ModelOptions): Promise<Model> {
  let path: string;
  let options: ModelOptions | undefined;
  if (typeof pathOrOptions === 'string') {
    path = pathOrOptions;
    options = maybeOptions;
  } else if (pathOrOptions === undefined || (typeof pathOrOptions === 'object' && pathOrOptions !== null && !Array.isArray(pathOrOptions))) {
    if (maybeOptions !== undefined) throw v.typeError('string', 'path', pathOrOptions);
    path = defaultModelPath();
    options = pathOrOptions;
  } else {
    throw v.typeError('string', 'path', pathOrOptions);
  }
  return loadModelFile(path, options, apiNames);
}

/** `loadModel(path, options)` with option names in messages as `names` says (the CLI passes its flags). */
export async function loadModelFile(path: string, options: ModelOptions | undefined, names: OptionNamer): Promise<Model> {
  const o = checkOptions(options);
  // Check the compile options before reading anything.
  resolveCompileOptions({ threads: o.threads, batch: o.batch, backend: o.backend });
  if (await isInt8Model(path)) {
    // Saved by `mobilenet quantize`: already int8.
    if (o.calibration !== undefined) throw new RangeError(`Expected no calibration for ${path}, which is already an int8 model, but received calibration images`);
    const { graph, meta, path: file } = await loadInt8Model(path);
    return Model.fromInt8(graph, meta, o, { path: file });
  }
  const readOptions = o.maxModelBytes === undefined ? {} : { maxModelBytes: o.maxModelBytes };
  const file = await readModelFile(path, readOptions);
  const info: ModelInfo = { format: file.format, path: file.path };
  // The weights are read again when needed (embed, loweredGraph), from the same file unchanged.
  const reload = reader(file.path, readOptions, await fileStamp(file.path));
  if (file.classNames !== undefined) info.labels = file.classNames;
  if (file.config === undefined) {
    const shapes = new Map([...file.weights].map(([k, t]) => [k, t.shape] as [string, number[]]));
    const r = await runStepsAsync(resolveWeightsOnlySteps(shapes, o, file.path, names));
    const filled: ModelOptions = { ...o, ...r.options, architecture: r.architecture };
    return buildModel(r.config, file.weights, filled, info, reload);
  }
  rejectBuilderOptions(o, file.path, detectArchitecture(file.config), names, ['inputShape']);
  return buildModel(file.config, file.weights, o, info, reload);
}

/**
 * Reads a model file's weights again, if it has not changed. (A function of
 * its own so that the closure holds the path, not the first read's weights.)
 */
function reader(file: string, readOptions: { maxModelBytes?: number }, stamp: string): () => Promise<NamedWeights> {
  return async () => {
    if ((await fileStamp(file)) !== stamp) {
      throw new ModelFormatError('changed on disk since the model was loaded (its weights are read again for embed() and loweredGraph()): load the model again', file);
    }
    return (await readModelFile(file, readOptions)).weights;
  };
}

/** Size and modification time of a file, to tell whether it changed. */
async function fileStamp(file: string): Promise<string> {
  const st = await fsp.stat(file);
  return `${st.size}:${st.mtimeMs}`;
}
