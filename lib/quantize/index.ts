/**
 * int8 post-training quantization of Keras MobileNets, in TypeScript.
 *
 *   const q = await quantizeModel('model.json', { calibration: 'images/' });
 *   await q.save('model-int8/');            // model.json + weights.bin
 *   const again = await loadQuantizedModel('model-int8/');
 *   const scores = await again.predict(input, { batch: 1 });
 *
 * Pipeline: the float model is loaded and lowered as usual (BatchNorm folded,
 * activations fused: `lib/keras/lower.ts`), turned into an all-float typed
 * graph, run on the calibration images to record activation ranges
 * (`calibrate.ts`, min/max), then rewritten into the int8 graph
 * (`quantize.ts`).
 *
 * Execution: `QuantizedModel.predict` runs the int8 graph on the plain
 * TypeScript int8 reference kernels (`lib/backends/reference-qs8.ts`), which
 * emulate XNNPACK's QS8 arithmetic: it is the check, not the fast path. On
 * XNNPACK's QS8/QC8 kernels the same graph runs through `loadModel` (a saved
 * int8 directory, or `loadModel(path, { precision: 'int8', calibration })`),
 * which serializes it through the op schema like any float graph
 * (docs/int8.md).
 */
import { createRequire } from 'node:module';
import { loadModel, Model, type ModelOptions } from '../model.js';
import { QReferenceRuntime } from '../backends/reference-qs8.js';
import { DisposedError } from '../errors.js';
import type { Preprocessing } from '../keras/types.js';
import * as v from '../validate.js';
import type { CalibrationOptions, CalibrationSource, RangeMethod } from './calibrate.js';
import type { QGraph, QOp } from './qgraph.js';
import { BACKENDS, type BackendName } from '../backends/types.js';
import { checkInt8Options, defaultQuantizeBackend, quantizeFloatGraph, type Equalization } from './pipeline.js';
import { loadInt8Model, saveInt8Model, type Int8Metadata } from './format.js';

export { QuantizationError } from '../errors.js';
export type { QGraph, QTensor, QNode, DType } from './qgraph.js';
export type { CalibrationSource, CalibrationOptions } from './calibrate.js';

export type { Int8Metadata } from './format.js';
export { isInt8Model, INT8_FORMAT, INT8_FORMAT_VERSION } from './format.js';

export interface QuantizeOptions extends CalibrationOptions {
  /** Calibration images: a directory (its image files by name), a list of image paths, or preprocessed samples. */
  calibration: CalibrationSource;
  /** Keep the classifier head (from the last global pooling on) in float32. Default: true when it is a single layer (V1, V2), false for V3's two-layer head (docs/int8.md). */
  floatHead?: boolean;
  /**
   * Correct each quantized layer's bias for the mean output shift its weight
   * rounding causes (measured with the calibration images' mean activations). Default true.
   */
  biasCorrection?: boolean;
  /**
   * Activation ranges: 'minmax' (default) the extremes seen; 'mse' a second pass over the
   * calibration images picks, per tensor, the shrunk range with the least expected quantization error.
   */
  method?: RangeMethod;
  /** Options for reading the float model (architecture options for weights-only files, …). */
  model?: Omit<ModelOptions, 'backend' | 'threads' | 'batch'>;
  /** Called after each calibration image. */
  onProgress?: (done: number) => void;
  /**
   * The backend the int8 model is for: 'native' (the default when the addon loads) keeps in
   * float32 the ops the loaded XNNPACK build has no int8 kernel for and calibrates on XNNPACK;
   * 'reference' quantizes every op the op schema has in int8 (`FLOAT_ONLY_OPS` stay float32 for both) and
   * calibrates on the TypeScript kernels.
   */
  backend?: BackendName;
  /** Ops to keep in float32 inside the int8 body instead of the backend's (`floatOpsFor`). */
  floatOps?: readonly QOp[];
  /** Layers (node names, e.g. 'conv1') kept in float32 inside the int8 network (accuracy-sensitive layers). */
  floatLayers?: readonly string[];
  /**
   * Activation range equalization (docs/int8.md): 'free' (default) rescales the channels of activations
   * read only by depthwise convolutions or float layers so each spans the tensor's int8 range; 'all' also
   * those read by int8 convolutions; 'off' none.
   */
  equalization?: Equalization;
}

function packageVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}

/** An int8 model: its typed graph and metadata; runs on the TypeScript int8 reference kernels. */
export class QuantizedModel implements Disposable {
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly classes: number;
  readonly preprocessing: Preprocessing;
  readonly architecture: string;
  readonly name: string;
  readonly metadata: Int8Metadata;
  private g: QGraph | null;
  private readonly runtimes = new Map<number, QReferenceRuntime>();

  constructor(graph: QGraph, metadata: Int8Metadata) {
    this.g = graph;
    this.metadata = metadata;
    this.inputShape = Object.freeze([...metadata.inputShape]);
    this.outputShape = Object.freeze([...metadata.outputShape]);
    this.classes = v.product(this.outputShape);
    this.preprocessing = metadata.preprocessing;
    this.architecture = metadata.architecture;
    this.name = metadata.name;
  }

  get graph(): QGraph {
    if (this.g === null) throw new DisposedError('QuantizedModel');
    return this.g;
  }

  /** Counts of tensors by dtype and of nodes by op and precision (for reports). */
  describe(): { int8Nodes: number; floatNodes: number; converts: number; weightBytes: number } {
    const g = this.graph;
    let int8Nodes = 0;
    let floatNodes = 0;
    let converts = 0;
    for (const n of g.nodes) {
      if (n.op === 'convert') converts++;
      else if (g.tensors[n.output]!.dtype === 'qint8') int8Nodes++;
      else floatNodes++;
    }
    let weightBytes = 0;
    for (const t of g.tensors) weightBytes += (t.data?.byteLength ?? 0) + (t.scales?.byteLength ?? 0);
    return { int8Nodes, floatNodes, converts, weightBytes };
  }

  private runtime(batch: number): QReferenceRuntime {
    let rt = this.runtimes.get(batch);
    if (rt === undefined) {
      rt = new QReferenceRuntime(this.graph, batch);
      this.runtimes.set(batch, rt);
    }
    return rt;
  }

  /** Runs `batch` preprocessed NHWC samples synchronously; returns batch × classes values. */
  predictSync(input: Float32Array, options: { batch?: number } = {}): Float32Array {
    if (this.g === null) throw new DisposedError('QuantizedModel');
    const size = v.product(this.inputShape);
    v.float32Array(input, 'input');
    const batch = options.batch === undefined ? input.length / size : v.positiveInteger(options.batch, 'batch');
    if (!Number.isInteger(batch) || batch < 1 || input.length !== batch * size) {
      throw v.rangeError(`Float32Array of a positive multiple of ${size} values`, 'input', input);
    }
    const out = new Float32Array(batch * this.classes);
    this.runtime(batch).run(input, out);
    return out;
  }

  /** `predictSync` after yielding once to the event loop (the reference kernels run on the calling thread). */
  async predict(input: Float32Array, options: { batch?: number } = {}): Promise<Float32Array> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    return this.predictSync(input, options);
  }

  /** Writes the int8 model (model.json + weights.bin) into `dir`. */
  async save(dir: string): Promise<{ modelJson: string; weights: string }> {
    return saveInt8Model(dir, this.graph, this.metadata, `mobilenet-xnnpack ${packageVersion()}`);
  }

  get disposed(): boolean {
    return this.g === null;
  }

  dispose(): void {
    this.g = null;
    this.runtimes.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * Quantizes a float model (a `Model`, or a path `loadModel` reads) to int8
 * with post-training calibration.
 */
export async function quantizeModel(source: Model | string, options: QuantizeOptions): Promise<QuantizedModel> {
  checkInt8Options(options);
  const backend = options.backend === undefined ? defaultQuantizeBackend() : v.oneOf(options.backend, 'backend', BACKENDS);
  const owned = typeof source === 'string';
  const model = owned ? await loadModel(source, { ...(options.model ?? {}), backend: 'reference', batch: 1 }) : source;
  if (!(model instanceof Model)) throw v.typeError('Model or path', 'source', source);
  try {
    const { graph, quantization } = await quantizeFloatGraph(await model.loweredGraph(), model.inputShape, model.preprocessing, options, backend);
    const meta: Int8Metadata = {
      name: model.name,
      architecture: model.architecture,
      preprocessing: model.preprocessing,
      inputShape: [...model.inputShape],
      outputShape: [...model.outputShape],
      ...(owned ? { source: source as string } : model.path ? { source: model.path } : {}),
      quantization,
    };
    return new QuantizedModel(graph, meta);
  } finally {
    if (owned) model.dispose();
  }
}

/** Loads an int8 model saved by `QuantizedModel.save` / `mobilenet quantize` (its directory or model.json). */
export async function loadQuantizedModel(file: string): Promise<QuantizedModel> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  const { graph, meta } = await loadInt8Model(file);
  return new QuantizedModel(graph, meta);
}
