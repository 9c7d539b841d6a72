/**
 * Reader of the TensorFlow.js *layers* format: `model.json` + binary shards.
 *
 * - `model.json` with `format: "layers-model"` or without `format` (older
 *   converters); `modelTopology` is either `{keras_version, backend,
 *   model_config, ...}` or the model config itself.
 * - Sequential configs are converted to functional ones (`toFunctional`).
 * - Weight bytes of a manifest group are its shard files concatenated in
 *   order, read relative to `model.json`.
 * - Weights are decoded exactly like tfjs-core's `io.decodeWeights`:
 *   float32 as is; `quantization: {dtype: 'uint8'|'uint16', scale, min}` as
 *   `q * scale + min` computed in double precision and rounded to float32;
 *   `{dtype: 'float16'}` as IEEE half → float (exact). `{dtype, scale,
 *   offset}` (zero-point form, no `min`) is read as `min = -offset * scale`.
 *
 * Entries with `group: "optimizer"` (training state) are skipped (not decoded).
 *
 * Untrusted input: shard paths must stay inside the model's directory
 * (relative, no `..` escape, symbolic links resolved and checked), shards
 * must be regular files, and the whole load (shard bytes + decoded float32
 * weights) is budgeted from the manifest and the shard sizes before any
 * shard is read (`maxModelBytes`, default `DEFAULT_MAX_MODEL_BYTES`).
 *
 * Every problem is a `ModelFormatError` naming the file.
 */
import path from 'node:path';
import { toFunctional } from '../keras/model-config.js';
import { ModelFormatError } from '../errors.js';
import { parseClassNames } from './class-names.js';
import type { KerasModelConfig, NamedWeights } from '../keras/types.js';
import { DEFAULT_MAX_MODEL_BYTES } from '../limits.js';
import * as v from '../validate.js';
import { CHUNK, copySteps, runSteps, runStepsAsync, type Steps } from '../cooperative.js';
import { FileProblem, jsonDepthProblem, readRegularFile, resolveInside, statRegularFile } from './files.js';

export interface TfjsWeightEntry {
  name: string;
  shape: number[];
  dtype: string;
  /** 'optimizer' entries (training state) are skipped when decoding. */
  group?: string;
  quantization?: { dtype: string; scale?: number; min?: number; offset?: number; original_dtype?: string };
}

export interface TfjsWeightGroup {
  paths: string[];
  weights: TfjsWeightEntry[];
}

export interface TfjsModelJson {
  /** The functional Keras model config. */
  config: KerasModelConfig;
  manifest: TfjsWeightGroup[];
  kerasVersion?: string;
  backend?: string;
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  /** `userDefinedMetadata.classNames` (a classifier trained by `mobilenet train`). */
  classNames?: string[];
}

export interface TfjsModelFile extends TfjsModelJson {
  format: 'tfjs';
  path: string;
  weights: NamedWeights;
  /** Quantization dtypes found in the manifest (empty: all float32). */
  quantization: string[];
}

/** Reads the bytes of one shard; returns null when the file does not exist. */
export type ShardReader = (file: string) => Promise<Uint8Array | null>;

export interface TfjsReadOptions {
  /** Most bytes the load may allocate: shard bytes plus decoded float32 weights (default `DEFAULT_MAX_MODEL_BYTES`, 1 GiB). */
  maxModelBytes?: number;
}

/** The byte budget of a load: the option, else the default. */
export function modelByteBudget(options: { maxModelBytes?: number } | undefined): number {
  return options?.maxModelBytes === undefined ? DEFAULT_MAX_MODEL_BYTES : v.positiveInteger(options.maxModelBytes, 'maxModelBytes');
}

/** The message for a load over budget (names the option and the environment variable). */
export function overBudget(what: string, bytes: number, budget: number): string {
  return `${what} needs ${bytes} bytes: too large, the limit is ${budget} bytes (raise it with the maxModelBytes option or MOBILENET_MAX_MODEL_BYTES)`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(file: string, message: string, cause?: unknown): never {
  throw new ModelFormatError(message, file, cause === undefined ? undefined : { cause });
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2 };

/** Sequential → functional config conversion (lives with the other config rewriting in lib/keras/model-config.ts). */
export { toFunctional };

/** Parses and checks the text of a layers-format `model.json`. */
export function parseModelJson(text: string, file: string): TfjsModelJson {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(file, `not valid JSON (${(e as Error).message}); truncated or not a TF.js model.json`, e);
  }
  const deep = jsonDepthProblem(json);
  if (deep !== null) fail(file, deep);
  if (!isObject(json)) fail(file, 'model.json is not a JSON object');
  const format = json.format;
  if (format !== undefined && format !== 'layers-model') {
    fail(file, `not a TF.js layers model: format is ${JSON.stringify(format)} (expected "layers-model")`);
  }
  const topology = json.modelTopology;
  if (!isObject(topology)) fail(file, 'not a TF.js layers model: no modelTopology object');
  if (Array.isArray(topology.node) || isObject(topology.library)) {
    fail(file, 'not a TF.js layers model: modelTopology is a TensorFlow graph (graph model)');
  }
  const modelConfig = isObject(topology.model_config) ? topology.model_config : topology;
  if (typeof modelConfig.class_name !== 'string' || !('config' in modelConfig)) {
    fail(file, 'not a TF.js layers model: modelTopology holds no Keras model_config');
  }
  const config = toFunctional(modelConfig, file);
  const manifestRaw = json.weightsManifest ?? [];
  if (!Array.isArray(manifestRaw)) fail(file, 'weightsManifest is not a list');
  const manifest: TfjsWeightGroup[] = manifestRaw.map((g, gi) => {
    if (!isObject(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) {
      fail(file, `weightsManifest group ${gi + 1} is not {paths, weights}`);
    }
    for (const p of g.paths) {
      if (typeof p !== 'string' || p.length === 0) fail(file, `weightsManifest group ${gi + 1} has a path that is not a string`);
    }
    const weights = g.weights.map((w, wi): TfjsWeightEntry => {
      const where = `weightsManifest group ${gi + 1} weight ${wi + 1}`;
      if (!isObject(w) || typeof w.name !== 'string') fail(file, `${where} has no name`);
      if (!Array.isArray(w.shape) || !w.shape.every((d) => typeof d === 'number' && Number.isInteger(d) && d >= 0)) {
        fail(file, `${where} (${w.name}) has an invalid shape ${JSON.stringify(w.shape)}`);
      }
      const dtype = w.dtype ?? 'float32';
      if (dtype !== 'float32') fail(file, `${where} (${w.name}) has dtype ${JSON.stringify(dtype)}; only float32 weights are supported`);
      const entry: TfjsWeightEntry = { name: w.name, shape: [...(w.shape as number[])], dtype };
      if (typeof w.group === 'string') entry.group = w.group;
      if (w.quantization !== undefined && w.quantization !== null) {
        const q = w.quantization;
        if (!isObject(q) || (q.dtype !== 'uint8' && q.dtype !== 'uint16' && q.dtype !== 'float16')) {
          fail(file, `${where} (${w.name}) has unknown quantization ${JSON.stringify(q)}; supported: uint8, uint16, float16`);
        }
        const quant: NonNullable<TfjsWeightEntry['quantization']> = { dtype: q.dtype };
        if (q.dtype !== 'float16') {
          const scale = q.scale;
          const min = q.min;
          const offset = q.offset;
          if (typeof scale !== 'number' || !Number.isFinite(scale)) fail(file, `${where} (${w.name}): ${q.dtype} quantization without a finite scale`);
          quant.scale = scale;
          if (typeof min === 'number' && Number.isFinite(min)) quant.min = min;
          else if (typeof offset === 'number' && Number.isFinite(offset)) quant.offset = offset;
          else fail(file, `${where} (${w.name}): ${q.dtype} quantization without a finite min or offset`);
        }
        entry.quantization = quant;
      }
      return entry;
    });
    return { paths: [...(g.paths as string[])], weights };
  });
  const out: TfjsModelJson = { config, manifest };
  if (typeof topology.keras_version === 'string') out.kerasVersion = topology.keras_version;
  if (typeof topology.backend === 'string') out.backend = topology.backend;
  if (typeof format === 'string') out.format = format;
  if (typeof json.generatedBy === 'string') out.generatedBy = json.generatedBy;
  if (typeof json.convertedBy === 'string') out.convertedBy = json.convertedBy;
  if (isObject(json.userDefinedMetadata)) {
    const names = parseClassNames(json.userDefinedMetadata.classNames, file, 'userDefinedMetadata.classNames');
    if (names !== undefined) out.classNames = names;
  }
  return out;
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

let halfTable: Float32Array | null = null;

/** IEEE 754 binary16 → float32 (exact; the same values as tfjs-core's decoder). */
export function halfToFloat(h: number): number {
  if (halfTable === null) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) {
      const sign = i & 0x8000 ? -1 : 1;
      const exp = (i >> 10) & 0x1f;
      const frac = i & 0x3ff;
      let v: number;
      if (exp === 0) v = frac * 2 ** -24;
      else if (exp === 31) v = frac === 0 ? Infinity : NaN;
      else v = (1 + frac / 1024) * 2 ** (exp - 15);
      halfTable[i] = sign * v;
    }
  }
  return halfTable[h & 0xffff] as number;
}

function elementCount(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Bytes one manifest entry occupies in its group's buffer. */
export function entryByteLength(w: TfjsWeightEntry): number {
  const per = w.quantization ? (BYTES[w.quantization.dtype] as number) : (BYTES[w.dtype] ?? 4);
  return elementCount(w.shape) * per;
}

/** Decodes the weights of one group from its concatenated bytes. */
export function decodeGroup(bytes: Uint8Array, group: TfjsWeightGroup, file: string, into: NamedWeights = new Map()): NamedWeights {
  return runSteps(decodeGroupSteps(bytes, group, file, into));
}

/** `decodeGroup` in steps (lib/cooperative.ts): yields every `CHUNK` values. */
export function* decodeGroupSteps(bytes: Uint8Array, group: TfjsWeightGroup, file: string, into: NamedWeights = new Map()): Steps<NamedWeights> {
  let offset = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (const w of group.weights) {
    const n = elementCount(w.shape);
    const len = entryByteLength(w);
    if (offset + len > bytes.byteLength) {
      fail(file, `weight ${w.name} needs bytes ${offset}..${offset + len} but the group has ${bytes.byteLength} bytes`);
    }
    if (w.group === 'optimizer') {
      offset += len;
      continue;
    }
    const data = new Float32Array(n);
    const q = w.quantization;
    for (let start = 0; start < n; start += CHUNK) {
      const end = Math.min(n, start + CHUNK);
      if (q === undefined) {
        if (littleEndian && (bytes.byteOffset + offset) % 4 === 0) data.set(new Float32Array(bytes.buffer, bytes.byteOffset + offset + 4 * start, end - start), start);
        else for (let i = start; i < end; i++) data[i] = view.getFloat32(offset + 4 * i, true);
      } else if (q.dtype === 'float16') {
        for (let i = start; i < end; i++) data[i] = halfToFloat(view.getUint16(offset + 2 * i, true));
      } else {
        const scale = q.scale as number;
        const min = q.min !== undefined ? q.min : -(q.offset as number) * scale;
        if (q.dtype === 'uint8') {
          for (let i = start; i < end; i++) data[i] = (bytes[offset + i] as number) * scale + min;
        } else {
          for (let i = start; i < end; i++) data[i] = view.getUint16(offset + 2 * i, true) * scale + min;
        }
      }
      yield;
    }
    offset += len;
    if (into.has(w.name)) fail(file, `weight ${w.name} appears twice in the weightsManifest`);
    into.set(w.name, { shape: [...w.shape], data });
  }
  return into;
}

function shardProblem(modelFile: string, gi: number, e: unknown): never {
  if (e instanceof FileProblem) fail(modelFile, `weightsManifest group ${gi + 1}: ${e.message}`, e);
  throw e;
}

/**
 * Reads the shards of a parsed model.json (paths relative to `dir`, kept
 * inside it) and decodes every weight, within the byte budget.
 */
export async function readManifestWeights(
  manifest: TfjsWeightGroup[],
  dir: string,
  modelFile: string,
  readShard?: ShardReader,
  options: TfjsReadOptions = {},
): Promise<NamedWeights> {
  const budget = modelByteBudget(options);
  // 1. Budget from the manifest alone: bytes to read + float32 values to allocate.
  let declared = 0;
  const plans = manifest.map((group, gi) => {
    const need = group.weights.reduce((s, w) => s + entryByteLength(w), 0);
    const decoded = group.weights.reduce((s, w) => s + (w.group === 'optimizer' ? 0 : elementCount(w.shape) * 4), 0);
    if (!Number.isSafeInteger(need) || !Number.isSafeInteger(decoded)) fail(modelFile, `weightsManifest group ${gi + 1} declares an impossible number of bytes`);
    declared += need + decoded;
    return { group, gi, need, paths: [] as string[] };
  });
  if (declared > budget) fail(modelFile, overBudget('the weightsManifest', declared, budget));
  // 2. Paths inside the model's directory; with the default reader, regular files whose sizes fit the budget.
  let onDisk = 0;
  const resolved = new Map<string, string>();
  const sizes = new Map<string, number>();
  for (const plan of plans) {
    for (const p of plan.group.paths) {
      let abs = resolved.get(p);
      if (abs === undefined) {
        try {
          // Symbolic links are checked when the shards are read from disk (not by a caller's own reader).
          abs = await resolveInside(dir, p, { checkLinks: readShard === undefined });
        } catch (e) {
          shardProblem(modelFile, plan.gi, e);
        }
        resolved.set(p, abs);
      }
      plan.paths.push(abs);
      if (readShard === undefined) {
        try {
          let size = sizes.get(abs);
          if (size === undefined) {
            size = await statRegularFile(abs);
            sizes.set(abs, size);
          }
          onDisk += size;
        } catch (e) {
          if (e instanceof FileProblem && e.code === 'ENOENT') {
            fail(abs, `weight shard not found (listed in ${modelFile}, group ${plan.gi + 1}, which needs ${plan.need} bytes)`);
          }
          fail(abs, `weight shard (listed in ${modelFile}, group ${plan.gi + 1}) ${e instanceof FileProblem ? e.message : String(e)}`, e);
        }
      }
    }
  }
  if (readShard === undefined && onDisk + declared - plans.reduce((s, p) => s + p.need, 0) > budget) {
    fail(modelFile, overBudget(`reading the shards (${onDisk} bytes on disk) and decoding them`, onDisk + declared, budget));
  }
  // 3. Read and decode.
  const reader: ShardReader =
    readShard ??
    (async (file) => {
      try {
        return await readRegularFile(file, budget);
      } catch (e) {
        if (e instanceof FileProblem && e.code === 'ENOENT') return null;
        throw new ModelFormatError(`cannot read shard: ${(e as Error).message}`, file, { cause: e });
      }
    });
  const weights: NamedWeights = new Map();
  let readBytes = 0;
  for (const { group, gi, need, paths } of plans) {
    const parts: Uint8Array[] = [];
    let have = 0;
    for (const shardPath of paths) {
      // The group's bytes are its shards concatenated: once they cover what the weights need, the rest is not read.
      if (have >= need && need > 0) break;
      const bytes = await reader(shardPath);
      if (bytes === null) {
        fail(shardPath, `weight shard not found (listed in ${modelFile}, group ${gi + 1}, which needs ${need} bytes)`);
      }
      parts.push(bytes);
      have += bytes.byteLength;
      readBytes += bytes.byteLength;
      if (readBytes > budget) fail(modelFile, overBudget('reading the shards', readBytes, budget));
    }
    if (have < need) {
      fail(paths.join(', '), `weight shard too short: group ${gi + 1} of ${modelFile} needs ${need} bytes but its shard file(s) hold ${have} bytes`);
    }
    const concat = function* (): Steps<Uint8Array> {
      if (parts.length === 1) return parts[0] as Uint8Array;
      const buf = new Uint8Array(have);
      let o = 0;
      for (const p of parts) {
        yield* copySteps(buf, p, o);
        o += p.byteLength;
      }
      return buf;
    };
    await runStepsAsync(
      (function* () {
        return yield* decodeGroupSteps(yield* concat(), group, modelFile, weights);
      })(),
    );
  }
  return weights;
}

/** Reads only `model.json` (no shards). */
export async function readTfjsModelJson(file: string, options: TfjsReadOptions = {}): Promise<TfjsModelJson> {
  let text: string;
  try {
    text = (await readRegularFile(file, modelByteBudget(options))).toString('utf8');
  } catch (e) {
    fail(file, e instanceof Error ? e.message : String(e), e);
  }
  // A UTF-8 byte order mark (some editors write one) is not JSON.
  return parseModelJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, file);
}

/** Reads a layers-format `model.json` and all its weights. */
export async function readTfjs(file: string, readShard?: ShardReader, options: TfjsReadOptions = {}): Promise<TfjsModelFile> {
  const abs = path.resolve(file);
  const parsed = await readTfjsModelJson(abs, options);
  const weights = await readManifestWeights(parsed.manifest, path.dirname(abs), abs, readShard, options);
  const quantization = [...new Set(parsed.manifest.flatMap((g) => g.weights.map((w) => w.quantization?.dtype)).filter((d): d is string => d !== undefined))];
  return { ...parsed, format: 'tfjs', path: abs, weights, quantization };
}
