/**
 * Writer of the TensorFlow.js layers format, as `tensorflowjs_converter
 * --input_format keras` writes it:
 * - `model.json`: `{format: "layers-model", generatedBy, convertedBy,
 *   modelTopology: {keras_version, backend, model_config}, weightsManifest:
 *   [{paths, weights: [{name, shape, dtype: "float32", quantization?}]}]}`;
 * - one weight group, its bytes split into 4 MiB shards
 *   `group1-shard1ofN.bin` … (the converter's `write_weights.py`);
 * - quantization per tensor, exactly as the converter's `quantization.py`:
 *   uint8/uint16 affine with the range "nudged" so that 0 is representable
 *   (`{dtype, min, scale, original_dtype: "float32"}`, decoded by
 *   TensorFlow.js as `q * scale + min`; error at most scale / 2 per value),
 *   float16 as IEEE half, round to nearest even
 *   (`{dtype: "float16", original_dtype: "float32"}`; relative error at most
 *   2^-11, values beyond ±65504 become ±Infinity).
 * - inbound nodes in the nested form TF.js parses (Keras 2.4+'s single-entry
 *   form of TFOpLambda nodes is rewritten; the meaning is the same).
 * Files are written under temporary names and renamed; model.json last.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { WeightMismatchError } from '../errors.js';
import { flattenConfig } from '../keras/model-config.js';
import type { KerasModelConfig, NamedWeights, WeightTensor } from '../keras/types.js';
import * as v from '../validate.js';
import { planLayers } from './h5.js';
import { checkClassNames } from './class-names.js';

export type TfjsQuantization = 'uint8' | 'uint16' | 'float16';

export interface TfjsWriteOptions {
  quantize?: TfjsQuantization;
  /** Shard size in bytes (default 4 MiB, the converter's default). */
  shardBytes?: number;
  /** modelTopology.keras_version (default "2.15.0"). */
  kerasVersion?: string;
  /** modelTopology.backend (default "tensorflow"). */
  backend?: string;
  /** Stored as `userDefinedMetadata.classNames`. */
  classNames?: readonly string[];
}

export interface TfjsWriteResult {
  modelJson: string;
  shards: string[];
  bytes: number;
}

export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

const PACKAGE_VERSION = '0.1.0';

/** Round half to even (numpy's `np.round`). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  if (Math.abs(x % 1) === 0.5) return 2 * Math.round(x / 2);
  return r;
}

/** float32 value → IEEE binary16 bits, round to nearest even (numpy `astype(np.float16)`). */
export function floatToHalf(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a / 2 ** -24);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let q = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (q === 1024) {
    q = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | q;
}

export interface AffineQuantized {
  data: Uint8Array | Uint16Array;
  min: number;
  scale: number;
}

/**
 * The converter's `quantize_weights` for uint8/uint16: min/max in double,
 * range nudged so 0 maps to an integer when 0 is inside it, values clipped,
 * `np.round((x - min) / scale)` evaluated in float32 as numpy does on a
 * float32 array with scalar operands.
 */
export function quantizeAffine(values: Float32Array, dtype: 'uint8' | 'uint16'): AffineQuantized {
  const quantMax = dtype === 'uint8' ? 255 : 65535;
  const out = dtype === 'uint8' ? new Uint8Array(values.length) : new Uint16Array(values.length);
  let min = Infinity;
  let max = -Infinity;
  for (const x of values) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  if (values.length === 0 || min === max) return { data: out, min: values.length === 0 ? 0 : min, scale: 1 };
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    throw new WeightMismatchError(`cannot quantize to ${dtype}: the tensor holds non-finite values (min ${min}, max ${max})`);
  }
  const scale = (max - min) / quantMax;
  let nudgedMin = min;
  let nudgedMax = max;
  if (min <= 0 && 0 <= max) {
    const zero = roundHalfEven((0 - min) / scale);
    nudgedMin = -zero * scale;
    nudgedMax = quantMax * scale + nudgedMin;
  }
  const lo = Math.fround(nudgedMin);
  const hi = Math.fround(nudgedMax);
  const s = Math.fround(scale);
  for (let i = 0; i < values.length; i++) {
    const c = Math.min(Math.max(values[i] as number, lo), hi);
    const q = roundHalfEven(Math.fround(Math.fround(c - lo) / s));
    out[i] = Math.min(Math.max(q, 0), quantMax);
  }
  return { data: out, min: nudgedMin, scale };
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: 'float32';
  quantization?: { dtype: TfjsQuantization; min?: number; scale?: number; original_dtype: 'float32' };
}

function encode(name: string, t: WeightTensor, quantize: TfjsQuantization | undefined): { entry: ManifestEntry; bytes: Uint8Array } {
  const entry: ManifestEntry = { name, shape: [...t.shape], dtype: 'float32' };
  if (quantize === undefined) {
    const copy = new Float32Array(t.data);
    return { entry, bytes: new Uint8Array(copy.buffer) };
  }
  if (quantize === 'float16') {
    const h = new Uint16Array(t.data.length);
    for (let i = 0; i < h.length; i++) h[i] = floatToHalf(t.data[i] as number);
    entry.quantization = { dtype: 'float16', original_dtype: 'float32' };
    return { entry, bytes: new Uint8Array(h.buffer) };
  }
  let q: AffineQuantized;
  try {
    q = quantizeAffine(t.data, quantize);
  } catch (e) {
    throw new WeightMismatchError(`${name}: ${(e as Error).message}`);
  }
  entry.quantization = { dtype: quantize, min: q.min, scale: q.scale, original_dtype: 'float32' };
  return { entry, bytes: new Uint8Array(q.data.buffer, q.data.byteOffset, q.data.byteLength) };
}

/** Where model.json goes: `out` itself when it ends in `.json`, else `out/model.json`. */
export function modelJsonPath(out: string): string {
  return out.toLowerCase().endsWith('.json') ? path.resolve(out) : path.resolve(out, 'model.json');
}

async function writeAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
}

/** Writes a TF.js layers model (model.json + shards) into `out` (a directory, or a path ending in .json). */
export async function writeTfjs(out: string, nestedConfig: KerasModelConfig, weights: NamedWeights, options: TfjsWriteOptions = {}): Promise<TfjsWriteResult> {
  if (typeof out !== 'string') throw v.typeError('string', 'path', out);
  if (out.length === 0) throw v.rangeError('non-empty path', 'path', out);
  if (typeof nestedConfig !== 'object' || nestedConfig === null || typeof nestedConfig.config !== 'object') throw v.typeError('Keras model config', 'config', nestedConfig);
  // Nested models (a base model under a head) are written inlined, as the flat equivalent: the weights are named by their layers.
  const config = flattenConfig(nestedConfig);
  if (!(weights instanceof Map)) throw v.typeError('Map of weights', 'weights', weights);
  const quantize = options.quantize === undefined ? undefined : v.oneOf(options.quantize, 'quantize', ['uint8', 'uint16', 'float16'] as const);
  const shardBytes = options.shardBytes === undefined ? DEFAULT_SHARD_BYTES : v.positiveInteger(options.shardBytes, 'shardBytes');
  for (const [name, t] of weights) {
    v.float32Array(t?.data, `weights '${name}' data`);
    if (v.product(t.shape) !== t.data.length) throw new WeightMismatchError(`weight ${name} has shape ${JSON.stringify(t.shape)} but ${t.data.length} values`);
  }
  const classNames = checkClassNames(options.classNames);
  const plan = planLayers(config, weights);
  const entries: ManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (const layer of plan) {
    for (const [w, t] of layer.weights) {
      const { entry, bytes } = encode(`${layer.name}/${w}`, t, quantize);
      entries.push(entry);
      chunks.push(bytes);
      total += bytes.byteLength;
    }
  }
  const all = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    all.set(c, o);
    o += c.byteLength;
  }
  const jsonPath = modelJsonPath(out);
  const dir = path.dirname(jsonPath);
  await fs.mkdir(dir, { recursive: true });
  const n = Math.max(1, Math.ceil(total / shardBytes));
  const shards: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `group1-shard${i + 1}of${n}.bin`;
    await writeAtomic(path.join(dir, name), all.subarray(i * shardBytes, Math.min(total, (i + 1) * shardBytes)));
    shards.push(name);
  }
  const kerasVersion = options.kerasVersion ?? '2.15.0';
  // TF.js reads inbound nodes only in the nested form [[[layer, node, tensor, kwargs], ...]];
  // Keras 2.4+ writes single-input nodes with call kwargs (TFOpLambda) as [layer, node, tensor, kwargs].
  const topologyConfig: KerasModelConfig = {
    ...config,
    config: {
      ...config.config,
      layers: config.config.layers.map((l) => ({
        ...l,
        inbound_nodes: (l.inbound_nodes ?? []).map((n) => (typeof (n as unknown[])[0] === 'string' ? ([n] as unknown as typeof n) : n)),
      })),
    },
  };
  const modelJson = {
    format: 'layers-model',
    generatedBy: `keras v${kerasVersion}`,
    convertedBy: `mobilenet-xnnpack v${PACKAGE_VERSION}`,
    modelTopology: { keras_version: kerasVersion, backend: options.backend ?? 'tensorflow', model_config: topologyConfig },
    weightsManifest: [{ paths: shards, weights: entries }],
    ...(classNames === undefined ? {} : { userDefinedMetadata: { classNames } }),
  };
  await writeAtomic(jsonPath, JSON.stringify(modelJson));
  return { modelJson: jsonPath, shards: shards.map((s) => path.join(dir, s)), bytes: total };
}
