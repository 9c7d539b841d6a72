/**
 * Post-training quantization of a lowered float graph, without a `Model`:
 * used by `loadModel(path, { precision: 'int8', calibration })` (lib/model.ts)
 * and by `quantizeModel` (./index.ts). It imports nothing of lib/model.ts,
 * so model.ts can use it without an import cycle.
 */
import type { BackendName } from '../backends/types.js';
import { loadBinding, xnnpackInfo } from '../binding.js';
import { NativeLoadError, QuantizationError } from '../errors.js';
import type { Graph } from '../graph.js';
import type { Preprocessing } from '../keras/types.js';
import { OP_NAMES } from '../schema.js';
import * as v from '../validate.js';
import { calibrate, calibrationSamples, RANGE_METHODS, type CalibrationOptions, type CalibrationSource, type RangeMethod } from './calibrate.js';
import { equalizeActivations } from './equalize.js';
import { fromFloatGraph, type QGraph, type QNode, type QOp } from './qgraph.js';
import { defaultFloatHead, FLOAT_ONLY_OPS, headStart, nativeFloatOps, quantizableBody, quantizeGraph } from './quantize.js';

export interface Int8Options extends CalibrationOptions {
  /** Calibration images: a directory (its image files by name), a list of image paths, or preprocessed samples. */
  calibration: CalibrationSource;
  /** Keep the classifier head (from the last global pooling on) in float32. Default: true when it is a single layer (V1, V2), false for V3's two-layer head (docs/int8.md). */
  floatHead?: boolean;
  /** Correct each quantized layer's bias for the mean shift its weight rounding causes. Default true. */
  biasCorrection?: boolean;
  /** Activation ranges: 'minmax' (default) or 'mse' (see docs/int8.md). */
  method?: RangeMethod;
  /** Called after each calibration image. */
  onProgress?: (done: number) => void;
  /** Layers (node names, e.g. 'conv1') kept in float32 inside the int8 network. Default none. */
  floatLayers?: readonly string[];
  /**
   * Ops kept in float32 inside the int8 body, instead of those the target backend has no
   * int8 kernel for (`floatOpsFor`). Default: the target's.
   */
  floatOps?: readonly QOp[];
  /**
   * Activation range equalization (equalize.ts): 'free' rescales the channels of activations read only by
   * depthwise / float layers, 'all' also those read by int8 convolutions, 'off' none. Default 'free'.
   */
  equalization?: Equalization;
}

/** Activation range equalization modes (the one list: API check and `mobilenet quantize --equalization`). */
export const EQUALIZATIONS = ['off', 'free', 'all'] as const;
export type Equalization = (typeof EQUALIZATIONS)[number];

export interface QuantizationInfo {
  method: RangeMethod;
  calibrationImages: number;
  floatHead: boolean;
  biasCorrection: boolean;
  weights: string;
  activations: string;
  /** Ops kept in float32 inside the int8 body (no int8 kernel on the target). */
  floatOps?: string[];
  /** Layers kept in float32 by request (`floatLayers`). */
  floatLayers?: string[];
  /** Activation range equalization ('off' when absent: models saved before it existed). */
  equalization?: Equalization;
}

/** Checks the int8 options (typed errors before anything is read). */
export function checkInt8Options(options: unknown): Int8Options {
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  const o = options as Int8Options;
  if (o.calibration === undefined) throw new QuantizationError('calibration images are required (a directory, a list of image paths or preprocessed samples)');
  if (o.floatHead !== undefined && typeof o.floatHead !== 'boolean') throw v.typeError('boolean', 'floatHead', o.floatHead);
  if (o.biasCorrection !== undefined && typeof o.biasCorrection !== 'boolean') throw v.typeError('boolean', 'biasCorrection', o.biasCorrection);
  if (o.images !== undefined) v.positiveInteger(o.images, 'images');
  if (o.method !== undefined) v.oneOf(o.method, 'method', RANGE_METHODS);
  if (o.equalization !== undefined) v.oneOf(o.equalization, 'equalization', EQUALIZATIONS);
  if (o.floatLayers !== undefined && (!Array.isArray(o.floatLayers) || o.floatLayers.some((n) => typeof n !== 'string'))) throw v.typeError('array of layer names', 'floatLayers', o.floatLayers);
  if (o.floatOps !== undefined) {
    if (!Array.isArray(o.floatOps)) throw v.typeError('array of op names', 'floatOps', o.floatOps);
    for (const op of o.floatOps) v.oneOf(op, 'floatOps', OP_NAMES);
  }
  return o;
}

/**
 * The ops an int8 model for `backend` keeps in float32 (between a dequantize
 * and a quantize convert) because the backend has no int8 kernel for them:
 * for 'native' those the loaded addon reports it lacks (`xnnpackInfo().int8`,
 * see `nativeFloatOps`: Debian 12's libxnnpack-dev lacks more than the
 * vendored XNNPACK); for 'reference' only the schema's float32-only ops
 * (`FLOAT_ONLY_OPS`, e.g. `averagePool2d`), which every backend keeps in
 * float32. The one place `loadModel(...,
 * { precision: 'int8' })`, `quantizeModel` and `mobilenet quantize` get them.
 */
export function floatOpsFor(backend: BackendName): ReadonlySet<QOp> {
  return backend === 'native' ? nativeFloatOps(xnnpackInfo().int8) : FLOAT_ONLY_OPS;
}

/** The backend quantization targets by default: 'native' when the addon loads here, else 'reference'. */
export function defaultQuantizeBackend(): BackendName {
  try {
    loadBinding();
    return 'native';
  } catch (e) {
    if (e instanceof NativeLoadError) return 'reference';
    throw e;
  }
}

/**
 * Calibrates the float graph on the images (run on `backend`, with `threads`
 * for 'native') and rewrites it into the typed int8 graph for `backend`: the
 * ops it has no int8 kernel for stay float32 (`floatOpsFor`, unless
 * `options.floatOps` says which).
 */
export async function quantizeFloatGraph(
  floatGraph: Graph,
  inputShape: readonly number[],
  preprocessing: Preprocessing,
  options: Int8Options,
  backend: BackendName,
  threads?: number,
): Promise<{ graph: QGraph; quantization: QuantizationInfo }> {
  const o = checkInt8Options(options);
  const floatOps: ReadonlySet<QOp> = new Set([...FLOAT_ONLY_OPS, ...(o.floatOps ?? floatOpsFor(backend))]);
  const fg = fromFloatGraph(floatGraph);
  const floatHead = o.floatHead ?? defaultFloatHead(fg);
  // Fail on an unquantizable graph before reading any image.
  quantizableBody(fg, { floatHead, floatOps });
  let done = 0;
  const samples = calibrationSamples(o.calibration, inputShape, preprocessing, o);
  const counted = (async function* () {
    for await (const s of samples) {
      yield s;
      o.onProgress?.(++done);
    }
  })();
  const method = o.method ?? 'minmax';
  const floatLayers = new Set(o.floatLayers ?? []);
  for (const name of floatLayers) {
    if (!fg.nodes.some((n) => n.name === name)) throw new QuantizationError(`floatLayers names '${name}', which is not a layer of the model`);
  }
  // Calibration runs the float graph on the same backend (XNNPACK for 'native').
  const calibration = await calibrate(fg, counted, { method, backend, ...(threads === undefined ? {} : { threads }) });
  const { images } = calibration;
  const biasCorrection = o.biasCorrection ?? true;
  const equalization = o.equalization ?? 'free';
  let { ranges, means } = calibration;
  let qg = fg;
  if (equalization !== 'off') {
    const bodyEnd = quantizableBody(fg, { floatHead, floatOps });
    const isFloat = (n: QNode, i: number): boolean => i >= bodyEnd || floatOps.has(n.op) || (n.name !== undefined && floatLayers.has(n.name));
    ({ graph: qg, ranges, means } = equalizeActivations(fg, calibration, { isFloat, costly: equalization === 'all' }));
  }
  const graph = quantizeGraph(qg, ranges, { floatHead, floatLayers, floatOps, ...(biasCorrection ? { biasCorrection: means } : {}) });
  const usedFloatOps = [...floatOps].filter((op) => fg.nodes.slice(0, headStart(fg)).some((n) => n.op === op));
  return {
    graph,
    quantization: {
      method,
      calibrationImages: images,
      floatHead: floatHead && headStart(fg) < fg.nodes.length,
      biasCorrection,
      weights: 'qcint8 symmetric per output channel',
      activations: 'qint8 asymmetric per tensor',
      ...(usedFloatOps.length > 0 ? { floatOps: usedFloatOps } : {}),
      ...(floatLayers.size > 0 ? { floatLayers: [...floatLayers] } : {}),
      equalization,
    },
  };
}
