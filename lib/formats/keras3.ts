/**
 * Keras 3 `.keras` files: a zip archive (written by `keras.saving.save_model`,
 * `saving_lib.py`) holding
 * - `config.json`: the model serialized by `serialize_keras_object`
 *   (`{module, class_name: "Functional", config: {name, layers, input_layers,
 *   output_layers}, registered_name, build_config, compile_config}`; each
 *   layer `{module, class_name, config, registered_name, build_config, name,
 *   inbound_nodes: [{args: [<__keras_tensor__ with keras_history>], kwargs}]}`),
 * - `metadata.json`: `{keras_version, date_saved}`,
 * - `model.weights.h5`: the variables, at paths built by `_save_state`:
 *   a Functional model's layers are the container `layers`, and each layer
 *   is addressed by its *class* name in snake case, numbered per class in
 *   layer order (`layers/conv2d`, `layers/conv2d_1`, …,
 *   `layers/batch_normalization_3`, `layers/depthwise_conv2d`, …), never by
 *   its own name; its variables are datasets `vars/0`, `vars/1`, … in the
 *   layer's variable order (trainable then non-trainable: kernel, bias;
 *   gamma, beta, moving_mean, moving_variance).
 *
 * Reading converts the Keras 3 config to the Keras 2 functional form of
 * `lib/keras/types.ts` and names `vars/i` after the i-th weight the layer
 * class declares (`analyzeModel`'s WeightSpec order). Writing does the
 * reverse. `normalizeModelConfig` also serves the `.h5` reader (Keras 3
 * writes its own config form into legacy `.h5` files).
 */
import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { Unzip, UnzipPassThrough, zipSync, type AsyncFlateStreamHandler, type FlateError, type UnzipDecoder, type UnzipFile, type Zippable } from 'fflate';
import { MobileNetError, ModelFormatError, WeightMismatchError } from '../errors.js';
import { checkClassNames, parseClassNames } from './class-names.js';
import { flattenConfig } from '../keras/model-config.js';
import type { KerasModelConfig, ModelAnalysis, NamedWeights, WeightTensor } from '../keras/types.js';
import * as v from '../validate.js';
import { isK3Op, isObject, normalizeModelConfig } from './config.js';
import { atomicWrite, FileProblem, jsonDepthProblem, statRegularFile, withTempFile, withTempPath } from './files.js';
import { dumpH5, ensureGroup, layerName, loadH5wasm, readDataset, readH5Datasets, treeGet, type H5ReadOptions, type H5TreeNode } from './h5.js';
import { MAX_KERAS_JSON_ENTRY_BYTES, MAX_ZIP_ENTRIES } from '../limits.js';
import { modelByteBudget, overBudget } from './tfjs.js';

const fsc = fsSync.constants;

export { normalizeModelConfig };

type H5Group = import('h5wasm/node').Group;

export interface Keras3ReadResult {
  config: KerasModelConfig;
  weights: NamedWeights;
  kerasVersion?: string;
  dateSaved?: string;
  /** `metadata.json`'s `class_names` (a classifier trained by `mobilenet train`). */
  classNames?: string[];
}

export interface Keras3WriteOptions {
  /** `metadata.json` keras_version (default "3.10.0"). */
  kerasVersion?: string;
  /** `metadata.json` date_saved (default now, in Keras's `%Y-%m-%d@%H:%M:%S`). */
  date?: Date;
  /** Written as `metadata.json`'s `class_names`. */
  classNames?: readonly string[];
}


/** Keras's `naming.to_snake_case`. */
export function toSnakeCase(name: string): string {
  let s = name.replace(/\W+/g, '');
  s = s.replace(/(.)([A-Z][a-z]+)/g, '$1_$2');
  return s.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/** The `model.weights.h5` path of each layer: `layers/<snake class>[_k]` (saving_lib `_save_container_state`). */
export function keras3LayerPaths(layers: ReadonlyArray<{ class_name: string }>): string[] {
  const used = new Map<string, number>();
  return layers.map((l) => {
    const base = toSnakeCase(l.class_name);
    const n = used.get(base);
    if (n === undefined) {
      used.set(base, 0);
      return `layers/${base}`;
    }
    used.set(base, n + 1);
    return `layers/${base}_${n + 1}`;
  });
}

/**
 * Layer name → `model.weights.h5` path. Keras 3 operations that are not
 * layers (`x + 3.0` is a `keras.src.ops.numpy.Add`) are not in
 * `model.layers` and take no path; neither does a Sequential's InputLayer.
 */
export function keras3PathMap(entries: ReadonlyArray<{ name: string; class_name: string; op?: boolean }>): Map<string, string> {
  const layers = entries.filter((e) => e.op !== true);
  const paths = keras3LayerPaths(layers);
  return new Map(layers.map((e, i) => [e.name, paths[i] as string]));
}


/** The path map of a Keras 2 form config as written by `writeKeras3` (TFOpLambda layers become operations). */
function keras2PathMap(config: KerasModelConfig): Map<string, string> {
  return keras3PathMap(config.config.layers.map((l) => ({ name: layerName(l), class_name: l.class_name, op: l.class_name === 'TFOpLambda' && TFOP_TO_K3_OP[String(l.config.function)] !== undefined })));
}

/** The path map of a raw Keras 3 config.json object. */
function rawKeras3PathMap(json: unknown): Map<string, string> {
  if (!isObject(json) || !isObject(json.config) || !Array.isArray(json.config.layers)) return new Map();
  let layers = json.config.layers as unknown[];
  if (json.class_name === 'Sequential' && isObject(layers[0]) && layers[0].class_name === 'InputLayer') layers = layers.slice(1);
  return keras3PathMap(
    layers.filter(isObject).map((l) => ({
      name: String((isObject(l.config) ? l.config.name : undefined) ?? l.name),
      class_name: String(l.class_name),
      op: isK3Op(l),
    })),
  );
}

const TFOP_TO_K3_OP: Record<string, string> = {
  '__operators__.add': 'Add',
  'math.add': 'Add',
  'math.multiply': 'Multiply',
  'math.subtract': 'Subtract',
  '__operators__.sub': 'Subtract',
  'math.truediv': 'TrueDivide',
  'math.divide': 'TrueDivide',
  '__operators__.truediv': 'TrueDivide',
};

// ---------------------------------------------------------------- config: Keras 2 → Keras 3

function k2ValueToK3(key: string, x: unknown): unknown {
  if (Array.isArray(x)) return x.map((y) => k2ValueToK3('', y));
  if (!isObject(x)) return x;
  if (typeof x.class_name === 'string' && 'config' in x && !('module' in x)) {
    const module = /initializer$/.test(key) ? 'keras.initializers' : /regularizer$/.test(key) ? 'keras.regularizers' : /constraint$/.test(key) ? 'keras.constraints' : 'keras';
    return { module, class_name: x.class_name, config: k2ValueToK3('', x.config), registered_name: null };
  }
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(x)) out[k] = k2ValueToK3(k, val);
  return out;
}

function k2LayerConfigToK3(className: string, config: Record<string, unknown>): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(config)) c[k] = k2ValueToK3(k, val);
  if (className === 'InputLayer') {
    const shape = c.batch_input_shape ?? c.batch_shape;
    return { batch_shape: shape, dtype: typeof c.dtype === 'string' ? c.dtype : 'float32', sparse: false, name: c.name };
  }
  if (typeof c.dtype === 'string') {
    c.dtype = { module: 'keras', class_name: 'DTypePolicy', config: { name: c.dtype }, registered_name: null };
  }
  return c;
}

/** Keras 2 node entries of one inbound node (both the list-of-lists and the single-entry forms). */
function nodeEntries(node: unknown): Array<[string, number, number, Record<string, unknown>]> {
  if (!Array.isArray(node)) return [];
  if (typeof node[0] === 'string') return [[node[0], Number(node[1] ?? 0), Number(node[2] ?? 0), isObject(node[3]) ? node[3] : {}]];
  return node.map((e) => {
    const a = e as unknown[];
    return [String(a[0]), Number(a[1] ?? 0), Number(a[2] ?? 0), isObject(a[3]) ? (a[3] as Record<string, unknown>) : {}];
  });
}

/**
 * The Keras 3 `config.json` object for a Keras 2 functional config.
 * `shapes` (layer → output shape without batch) fills the tensors' shapes and `build_config`.
 */
export function toKeras3Config(config: KerasModelConfig, shapes: ReadonlyMap<string, readonly number[]> = new Map()): Record<string, unknown> {
  const tensor = (ln: string, ni: number, ti: number): Record<string, unknown> => ({
    class_name: '__keras_tensor__',
    config: { shape: shapes.has(ln) ? [null, ...(shapes.get(ln) as number[])] : null, dtype: 'float32', keras_history: [ln, ni, ti] },
  });
  const layers = config.config.layers.map((l) => {
    const name = layerName(l);
    const op = l.class_name === 'TFOpLambda' ? TFOP_TO_K3_OP[String(l.config.function)] : undefined;
    const single = (l.inbound_nodes ?? []).length === 1 ? nodeEntries(l.inbound_nodes[0]) : [];
    if (op !== undefined && single.length === 1 && typeof single[0]?.[3].y === 'number') {
      // Keras 3 has no TFOpLambda: `x + 3.0` is the operation keras.src.ops.numpy.Add.
      const [ln, ni, ti, kw] = single[0] as [string, number, number, Record<string, unknown>];
      return { module: 'keras.src.ops.numpy', class_name: op, config: { name }, registered_name: op, name, inbound_nodes: [{ args: [tensor(ln, ni, ti), kw.y], kwargs: {} }] };
    }
    const nodes = (l.inbound_nodes ?? []).map((node) => {
      const entries = nodeEntries(node);
      const tensors = entries.map(([ln, ni, ti]) => tensor(ln, ni, ti));
      const kwargs = entries.length === 1 ? k2ValueToK3('', entries[0]?.[3] ?? {}) : {};
      return { args: tensors.length === 1 ? tensors : [tensors], kwargs };
    });
    const out: Record<string, unknown> = {
      module: 'keras.layers',
      class_name: l.class_name,
      config: k2LayerConfigToK3(l.class_name, { ...l.config, name }),
      registered_name: null,
    };
    const first = nodes.length > 0 ? nodeEntries(l.inbound_nodes[0]) : [];
    if (first.length > 0) {
      const inShapes = first.map(([ln]) => (shapes.has(ln) ? [null, ...(shapes.get(ln) as number[])] : null));
      out.build_config = { input_shape: inShapes.length === 1 ? inShapes[0] : inShapes };
    }
    out.name = name;
    out.inbound_nodes = nodes;
    return out;
  });
  const triples = (t: Array<[string, number, number]>): unknown => (t.length === 1 ? [t[0]] : t);
  return {
    module: 'keras.src.models.functional',
    class_name: 'Functional',
    config: { name: config.config.name, trainable: true, layers, input_layers: triples(config.config.input_layers), output_layers: triples(config.config.output_layers) },
    registered_name: 'Functional',
    build_config: { input_shape: null },
    compile_config: null,
  };
}

// ---------------------------------------------------------------- weights

interface LayerWeights {
  name: string;
  className: string;
  /** Full weight names (`<layer>/<w>`) in the layer's variable order, with expected shapes. */
  specs: Array<{ fullName: string; shape: number[] }>;
}

/** `file`: the archive read, named in the config's errors (none when writing). */
async function layerWeightSpecs(config: KerasModelConfig, file?: string): Promise<{ layers: LayerWeights[]; shapes: Map<string, number[]>; analysis: ModelAnalysis }> {
  const { analyzeModel } = await import('../keras/layers.js');
  const analysis = analyzeModel(config, file === undefined ? {} : { file });
  const byName = new Map(analysis.layers.map((l) => [l.name, l]));
  const shapes = new Map(analysis.layers.map((l) => [l.name, [...l.outputShape]]));
  const layers = config.config.layers.map((l) => {
    const name = layerName(l);
    const a = byName.get(name);
    return { name, className: l.class_name, specs: (a?.weights ?? []).map((w) => ({ fullName: w.fullName, shape: [...w.shape] })) };
  });
  return { layers, shapes, analysis };
}

function keras3Date(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}@${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Reads a Keras 3 `.keras` archive. */
export async function readKeras3(file: string, options: H5ReadOptions = {}): Promise<Keras3ReadResult> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  const abs = path.resolve(file);
  const budget = modelByteBudget(options);
  return withTempPath('.weights.h5', async (tmp) => {
    const { config, metadata, paths, hasWeights, weightsBytes, names } = await readArchive(abs, tmp, budget);
    if (!hasWeights) {
      throw new ModelFormatError(`.keras archive has no model.weights.h5 (it holds ${names.join(', ') || 'nothing'}): a model without weights cannot be loaded`, abs);
    }
    let specs: Awaited<ReturnType<typeof layerWeightSpecs>>;
    try {
      specs = await layerWeightSpecs(config, abs);
    } catch (e) {
      if (e instanceof MobileNetError || e instanceof TypeError || e instanceof RangeError) throw e;
      throw new ModelFormatError(`config.json does not describe a valid model: ${(e as Error).message}`, abs, { cause: e });
    }
    // The archive's inflated model.weights.h5 already counts against the budget.
    const weights = await readKeras3Weights(tmp, abs, paths, specs.layers, { ...options, maxModelBytes: Math.max(1, budget - weightsBytes) });
    const out: Keras3ReadResult = { config, weights };
    if (typeof metadata.keras_version === 'string') out.kerasVersion = metadata.keras_version;
    if (typeof metadata.date_saved === 'string') out.dateSaved = metadata.date_saved;
    const classNames = parseClassNames(metadata.class_names, abs, "metadata.json's class_names");
    if (classNames !== undefined) out.classNames = classNames;
    return out;
  });
}

/** Reads only the config of a `.keras` archive. */
export async function readKeras3Config(file: string, options: { maxModelBytes?: number } = {}): Promise<KerasModelConfig> {
  return (await readArchive(path.resolve(file), null, modelByteBudget(options))).config;
}

/**
 * fflate decoder for deflated zip entries that inflates with Node's zlib
 * (streaming, on the libuv thread pool). fflate's own AsyncUnzipInflate
 * inflates entries that *declare* a small size on the main thread, which a
 * zip bomb with a lying header would turn into a long synchronous inflate.
 */
class ThreadPoolInflate implements UnzipDecoder {
  static compression = 8;
  ondata: AsyncFlateStreamHandler = () => undefined;
  private readonly z = zlib.createInflateRaw();
  private done = false;
  constructor() {
    this.z.on('data', (d: Buffer) => {
      if (!this.done) this.ondata(null, new Uint8Array(d.buffer, d.byteOffset, d.byteLength) as Uint8Array<ArrayBuffer>, false);
    });
    this.z.on('end', () => {
      if (this.done) return;
      this.done = true;
      this.ondata(null, new Uint8Array(0), true);
    });
    this.z.on('error', (e: Error) => {
      if (this.done) return;
      this.done = true;
      this.ondata(Object.assign(e, { code: 0 }) as unknown as FlateError, new Uint8Array(0), true);
    });
  }
  push(chunk: Uint8Array, final: boolean): void {
    if (this.done) return;
    this.z.write(chunk);
    if (final) this.z.end();
  }
  terminate = (): void => {
    this.done = true;
    this.z.destroy();
  };
}

interface ArchiveContents {
  config: KerasModelConfig;
  metadata: Record<string, unknown>;
  paths: Map<string, string>;
  hasWeights: boolean;
  /** Bytes of model.weights.h5 written to the temporary file. */
  weightsBytes: number;
  /** Entry names in archive order. */
  names: string[];
}

const SMALL_ENTRY = MAX_KERAS_JSON_ENTRY_BYTES;

interface CentralEntry {
  size: number;
  compressedSize: number;
  method: number;
  crc: number;
}

/**
 * The zip central directory (APPNOTE 4.3.12–4.3.16, with zip64), parsed
 * here because fflate's streaming reader sees only the local headers: name
 * → declared sizes, method and CRC-32. Refuses a directory that is cut,
 * lies outside the file, or lists a name twice.
 */
async function readCentralDirectory(abs: string, size: number): Promise<Map<string, CentralEntry>> {
  const corrupt = (what: string): ModelFormatError => new ModelFormatError(`corrupt .keras zip archive: ${what}`, abs);
  const readAt = async (pos: number, len: number): Promise<Buffer> => {
    if (pos < 0 || len < 0 || pos + len > size) throw corrupt(`the central directory points outside the file (${len} bytes at offset ${pos} of ${size})`);
    const buf = Buffer.alloc(len);
    const h = await fs.open(abs, fsc.O_RDONLY | (fsc.O_NONBLOCK ?? 0));
    try {
      const { bytesRead } = await h.read(buf, 0, len, pos);
      if (bytesRead !== len) throw corrupt('the file changed while it was read');
    } finally {
      await h.close();
    }
    return buf;
  };
  const tailLen = Math.min(size, 22 + 65535);
  const tail = await readAt(size - tailLen, tailLen);
  // The end-of-central-directory record must be there (a cut archive is corrupt, even if its first entries stream fine).
  const at = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (at < 0 || at + 22 > tailLen) throw corrupt('no end of central directory record (truncated?)');
  const eocd = size - tailLen + at;
  let count = tail.readUInt16LE(at + 10);
  let cdSize = tail.readUInt32LE(at + 12);
  let cdOffset = tail.readUInt32LE(at + 16);
  let cdEnd = eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // zip64: the locator sits just before the end record and points at the zip64 end record.
    if (eocd < 20) throw corrupt('zip64 sizes without a zip64 end of central directory locator');
    const loc = await readAt(eocd - 20, 20);
    if (loc.readUInt32LE(0) !== 0x07064b50) throw corrupt('zip64 sizes without a zip64 end of central directory locator');
    const recAt = Number(loc.readBigUInt64LE(8));
    const rec = await readAt(recAt, 56);
    if (rec.readUInt32LE(0) !== 0x06064b50) throw corrupt('no zip64 end of central directory record where its locator points');
    count = Number(rec.readBigUInt64LE(32));
    cdSize = Number(rec.readBigUInt64LE(40));
    cdOffset = Number(rec.readBigUInt64LE(48));
    cdEnd = recAt;
  }
  if (count > MAX_ZIP_ENTRIES) throw corrupt(`the central directory lists ${count} entries (at most ${MAX_ZIP_ENTRIES})`);
  if (cdOffset + cdSize !== cdEnd) throw corrupt(`the central directory (${cdSize} bytes at offset ${cdOffset}) does not end where its end record begins (offset ${cdEnd})`);
  const cd = await readAt(cdOffset, cdSize);
  const out = new Map<string, CentralEntry>();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw corrupt(`central directory entry ${i + 1} of ${count} is cut or has no signature`);
    const flags = cd.readUInt16LE(p + 8);
    const method = cd.readUInt16LE(p + 10);
    const crc = cd.readUInt32LE(p + 16);
    let compressedSize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nameLen = cd.readUInt16LE(p + 28);
    const extraLen = cd.readUInt16LE(p + 30);
    const commentLen = cd.readUInt16LE(p + 32);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cd.length) throw corrupt(`central directory entry ${i + 1} of ${count} is cut`);
    const nameBytes = cd.subarray(p + 46, p + 46 + nameLen);
    const name = nameBytes.toString(flags & 0x800 ? 'utf8' : 'latin1');
    // zip64 extended information (header 0x0001): 8-byte sizes for the fields set to 0xffffffff, in this order.
    const extra = cd.subarray(p + 46 + nameLen, p + 46 + nameLen + extraLen);
    for (let e = 0; e + 4 <= extra.length; ) {
      const id = extra.readUInt16LE(e);
      const len = extra.readUInt16LE(e + 2);
      if (id === 0x0001) {
        let q = e + 4;
        const next = (): number => {
          if (q + 8 > e + 4 + len || q + 8 > extra.length) throw corrupt(`central directory entry ${JSON.stringify(name)} has a cut zip64 field`);
          const v = Number(extra.readBigUInt64LE(q));
          q += 8;
          return v;
        };
        if (usize === 0xffffffff) usize = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
      }
      e += 4 + len;
    }
    if (out.has(name)) throw new ModelFormatError(`zip entry ${JSON.stringify(name)} appears twice in the central directory: refused (inconsistent archive)`, abs);
    out.set(name, { size: usize, compressedSize, method, crc });
    p = end;
  }
  if (p !== cd.length) throw corrupt(`the central directory holds ${cd.length - p} bytes after its ${count} entries`);
  return out;
}

/**
 * Streams the archive through fflate's zip parser: `config.json` and
 * `metadata.json` inflate into memory, `model.weights.h5` (when
 * `weightsTo` is given) into that file. Declared sizes are checked against
 * the budget before an entry is inflated, and the inflated bytes are
 * counted as they arrive (a header that lies is caught too).
 */
async function readArchive(abs: string, weightsTo: string | null, budget: number): Promise<ArchiveContents> {
  let size: number;
  try {
    size = await statRegularFile(abs, budget);
  } catch (e) {
    if (e instanceof FileProblem) {
      const m = e.code === 'DIR' ? 'is a directory, not a .keras file' : e.code === 'TOOBIG' ? `${e.message} (raise it with the maxModelBytes option or MOBILENET_MAX_MODEL_BYTES)` : e.message;
      throw new ModelFormatError(m, abs, { cause: e });
    }
    throw e;
  }
  const head = Buffer.alloc(4);
  const fh = await fs.open(abs, fsc.O_RDONLY | (fsc.O_NONBLOCK ?? 0));
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  if (size < 4 || head[0] !== 0x50 || head[1] !== 0x4b) throw new ModelFormatError('not a .keras file (not a zip archive)', abs);
  // The central directory is what Python's zipfile (Keras) reads; the stream below reads the local
  // headers. Both must describe the same entries with the same sizes, or two readers of one archive
  // would see different files.
  const central = await readCentralDirectory(abs, size);
  {
    let declaredTotal = size;
    for (const name of ['config.json', 'metadata.json', ...(weightsTo !== null ? ['model.weights.h5'] : [])]) {
      const e = central.get(name);
      if (e === undefined) continue;
      if (name !== 'model.weights.h5' && e.size > SMALL_ENTRY) throw new ModelFormatError(`zip entry ${name} declares ${e.size} bytes: too large for a ${name}`, abs);
      declaredTotal += e.size;
      if (declaredTotal > budget) throw new ModelFormatError(`zip entry ${name} declares ${e.size} bytes: ${overBudget('inflating the archive', declaredTotal, budget)}`, abs);
    }
  }

  const small = new Map<string, Uint8Array[]>();
  let inflated = size; // the archive's own bytes are in memory only chunk by chunk, but count them: disk + memory both bounded
  let weightsBytes = 0;
  let hasWeights = false;
  let failure: Error | null = null;
  const running = new Set<Promise<void>>();
  const terminators: Array<() => void> = [];
  const fail = (e: Error): void => {
    if (failure === null) failure = e;
    for (const t of terminators) t();
  };
  const names: string[] = [];
  const seen = new Set<string>();
  const unzip = new Unzip((f: UnzipFile) => {
    if (failure !== null) return;
    const cd = central.get(f.name);
    if (cd === undefined) {
      fail(new ModelFormatError(`zip entry ${JSON.stringify(f.name)} has a local header but is not in the central directory: refused (inconsistent archive)`, abs));
      return;
    }
    if (seen.has(f.name)) {
      fail(new ModelFormatError(`zip entry ${JSON.stringify(f.name)} appears twice: refused (inconsistent archive)`, abs));
      return;
    }
    names.push(f.name);
    seen.add(f.name);
    if (f.originalSize !== undefined && (f.originalSize !== cd.size || f.size !== cd.compressedSize || f.compression !== cd.method)) {
      fail(
        new ModelFormatError(
          `zip entry ${f.name}: its local header declares ${f.originalSize} bytes (${String(f.size)} compressed, method ${f.compression}) but the central directory declares ${cd.size} (${cd.compressedSize} compressed, method ${cd.method}): refused (inconsistent archive)`,
          abs,
        ),
      );
      return;
    }
    const wanted = f.name === 'config.json' || f.name === 'metadata.json' || (weightsTo !== null && f.name === 'model.weights.h5');
    if (f.name === 'model.weights.h5') hasWeights = true;
    if (!wanted) return;
    // With a data descriptor (general purpose flag bit 3) the local header has no sizes: the central directory's count.
    const limit = cd.size;
    if (inflated + limit > budget) {
      fail(new ModelFormatError(`zip entry ${f.name} declares ${limit} bytes: ${overBudget('inflating the archive', inflated + limit, budget)}`, abs));
      return;
    }
    let got = 0;
    let crc = 0;
    const out = f.name === 'model.weights.h5' && weightsTo !== null ? fsSync.createWriteStream(weightsTo) : null;
    const parts: Uint8Array[] = [];
    if (out === null) small.set(f.name, parts);
    let settle!: () => void;
    const p = new Promise<void>((resolve) => {
      settle = resolve;
    });
    running.add(p);
    terminators.push(() => {
      f.terminate();
      out?.destroy();
      settle();
    });
    f.ondata = (err, data, final) => {
      if (failure !== null) return;
      if (err) {
        fail(new ModelFormatError(`corrupt .keras zip archive: ${f.name}: ${err.message}`, abs, { cause: err }));
        return;
      }
      got += data.byteLength;
      inflated += data.byteLength;
      if (got > limit) {
        fail(new ModelFormatError(`zip entry ${f.name} inflates to more than the ${limit} bytes it declares: refused (zip bomb?)`, abs));
        return;
      }
      crc = zlib.crc32(data, crc);
      if (final && got !== limit) {
        fail(new ModelFormatError(`zip entry ${f.name} inflates to ${got} bytes but declares ${limit}: refused (inconsistent archive)`, abs));
        return;
      }
      if (final && crc !== cd.crc) {
        fail(new ModelFormatError(`zip entry ${f.name}: CRC-32 of the inflated bytes is ${crc.toString(16).padStart(8, '0')}, the central directory says ${cd.crc.toString(16).padStart(8, '0')}: corrupt archive`, abs));
        return;
      }
      if (inflated > budget) {
        fail(new ModelFormatError(`zip entry ${f.name}: ${overBudget('inflating the archive', inflated, budget)}`, abs));
        return;
      }
      if (out !== null) {
        if (data.byteLength > 0) out.write(data);
        weightsBytes += data.byteLength;
        if (final) out.end(() => settle());
      } else {
        if (data.byteLength > 0) parts.push(data);
        if (final) settle();
      }
    };
    out?.on('error', (e) => fail(new ModelFormatError(`cannot write a temporary file: ${e.message}`, abs, { cause: e })));
    try {
      f.start();
    } catch (e) {
      fail(new ModelFormatError(`corrupt .keras zip archive: ${(e as Error).message}`, abs, { cause: e }));
    }
  });
  unzip.register(UnzipPassThrough);
  unzip.register(ThreadPoolInflate);
  try {
    const stream = fsSync.createReadStream(abs, { highWaterMark: 1 << 20 });
    let prev: Uint8Array | null = null;
    for await (const chunk of stream) {
      if (failure !== null) {
        stream.destroy();
        break;
      }
      if (prev !== null) unzip.push(prev, false);
      prev = new Uint8Array(chunk as Buffer);
    }
    if (failure === null) unzip.push(prev ?? new Uint8Array(0), true);
  } catch (e) {
    if (e instanceof ModelFormatError) fail(e);
    else fail(new ModelFormatError(`corrupt .keras zip archive: ${(e as Error).message}`, abs, { cause: e }));
  }
  // Entries inflate asynchronously: wait for every one started (or stopped by a failure).
  while (running.size > 0 && failure === null) {
    const snapshot = [...running];
    await Promise.all(snapshot);
    for (const q of snapshot) running.delete(q);
  }
  if (failure !== null) throw failure;
  const missing = [...central.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) {
    throw new ModelFormatError(`the central directory lists ${missing.map((n) => JSON.stringify(n)).join(', ')} but the archive holds no such entry: refused (inconsistent archive)`, abs);
  }

  const join = (name: string): Uint8Array | undefined => {
    const parts = small.get(name);
    return parts === undefined ? undefined : Buffer.concat(parts);
  };
  const cfgBytes = join('config.json');
  if (cfgBytes === undefined) throw new ModelFormatError('.keras archive has no config.json', abs);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cfgBytes).toString('utf8'));
  } catch (e) {
    throw new ModelFormatError(`config.json is not valid JSON (${(e as Error).message})`, abs, { cause: e });
  }
  const deep = jsonDepthProblem(json);
  if (deep !== null) throw new ModelFormatError(`config.json: ${deep}`, abs);
  const config = normalizeModelConfig(json, abs);
  let metadata: Record<string, unknown> = {};
  const md = join('metadata.json');
  if (md !== undefined) {
    try {
      const m = JSON.parse(Buffer.from(md).toString('utf8')) as unknown;
      if (isObject(m) && jsonDepthProblem(m, 8) === null) metadata = m;
    } catch {
      // metadata is informative only
    }
  }
  return { config, metadata, paths: rawKeras3PathMap(json), hasWeights, weightsBytes, names };
}

async function readKeras3Weights(tmp: string, abs: string, paths: Map<string, string>, layers: LayerWeights[], options: H5ReadOptions): Promise<NamedWeights> {
  const fh = await fs.open(tmp, 'r');
  const head = Buffer.alloc(8);
  try {
    await fh.read(head, 0, 8, 0);
  } finally {
    await fh.close();
  }
  if (head.readUInt32BE(0) !== 0x89484446) throw new ModelFormatError('model.weights.h5 in the archive is not an HDF5 file', abs);
  const inner = (e: unknown): never => {
    if (e instanceof ModelFormatError) throw new ModelFormatError(`model.weights.h5: ${e.message.replace(`${tmp}: `, '')}`, abs, { cause: e });
    throw e;
  };
  const root = await dumpH5(tmp, options).catch(inner);
  const wanted: Array<{ fullName: string; node: H5TreeNode; where: string }> = [];
  const problems: string[] = [];
  layers.forEach((layer) => {
    const p = paths.get(layer.name);
    if (p === undefined) {
      if (layer.specs.length > 0) problems.push(`layer '${layer.name}' (${layer.className}) has weights but no path in model.weights.h5`);
      return;
    }
    const vars = treeGet(root, `${p}/vars`);
    const keys = vars !== undefined && vars.type === 'Group' ? Object.keys(vars.children ?? {}) : [];
    if (keys.length !== layer.specs.length) {
      if (layer.specs.length > 0 || keys.length > 0) {
        problems.push(`layer '${layer.name}' (${layer.className}, ${p}/vars) expects ${layer.specs.length} variables [${layer.specs.map((s) => s.fullName).join(', ')}] but the file has ${keys.length}`);
      }
      return;
    }
    layer.specs.forEach((spec, k) => {
      const ds = treeGet(vars as H5TreeNode, String(k));
      if (ds === undefined || ds.type !== 'Dataset') {
        problems.push(`${p}/vars/${k} (${spec.fullName}) is ${ds?.type === 'SoftLink' ? `a soft link to ${ds.target ?? '?'} (links are not followed)` : 'missing'}`);
        return;
      }
      wanted.push({ fullName: spec.fullName, node: ds, where: `model.weights.h5 ${p}/vars/${k}` });
    });
  });
  if (problems.length > 0) throw new WeightMismatchError(`${abs}: model.weights.h5 does not match config.json: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; … (${problems.length} problems)` : ''}`);
  const bytes = await readH5Datasets(tmp, wanted.map((w) => w.node.path), options).catch(inner);
  const weights: NamedWeights = new Map();
  for (const w of wanted) {
    weights.set(w.fullName, readDataset(w.node, bytes.get(w.node.path), w.where, abs));
    bytes.delete(w.node.path);
  }
  return weights;
}

/** Writes a Keras 3 `.keras` archive (atomic: temporary file + rename). */
export async function writeKeras3(file: string, nestedConfig: KerasModelConfig, weights: NamedWeights, options: Keras3WriteOptions = {}): Promise<void> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  if (!(weights instanceof Map)) throw v.typeError('Map of weights', 'weights', weights);
  // Nested models (a base model under a head) are written inlined, as the flat equivalent: the weights are named by their layers.
  const config = flattenConfig(nestedConfig);
  const { layers, shapes, analysis } = await layerWeightSpecs(config);
  // The one weight-matching routine: every missing, extra or mis-shaped weight, summarized.
  const { matchWeights } = await import('../keras/weights.js');
  try {
    matchWeights(analysis, weights, { allowNonFinite: true });
  } catch (e) {
    if (e instanceof WeightMismatchError) throw new WeightMismatchError(`cannot write .keras: ${e.message}`, e.details, { cause: e });
    throw e;
  }
  const paths = keras2PathMap(config);
  const h5 = await loadH5wasm();
  const weightsBytes = await withTempFile(new Uint8Array(0), '.weights.h5', async (tmp) => {
    const f = new h5.File(tmp, 'w');
    try {
      const root = f as unknown as H5Group;
      root.create_group('vars').create_attribute('name', config.config.name, null, 'S');
      layers.forEach((l) => {
        const p = paths.get(l.name);
        if (p === undefined) return; // an operation (TFOpLambda), not a layer
        const vars = ensureGroup(root, `${p}/vars`);
        vars.create_attribute('name', l.name, null, 'S');
        l.specs.forEach((s, k) => {
          const t = weights.get(s.fullName) as WeightTensor;
          vars.create_dataset({ name: String(k), data: t.data, shape: t.shape, dtype: '<f' });
        });
      });
    } finally {
      f.close();
    }
    return fs.readFile(tmp);
  });
  const classNames = checkClassNames(options.classNames);
  const metadata = {
    keras_version: options.kerasVersion ?? '3.10.0',
    date_saved: keras3Date(options.date ?? new Date()),
    ...(classNames === undefined ? {} : { class_names: classNames }),
  };
  const zippable: Zippable = {
    'metadata.json': [Buffer.from(JSON.stringify(metadata)), { level: 0 }],
    'config.json': [Buffer.from(JSON.stringify(toKeras3Config(config, shapes))), { level: 0 }],
    'model.weights.h5': [new Uint8Array(weightsBytes), { level: 0 }],
  };
  const zip = zipSync(zippable);
  await atomicWrite(file, (tmp) => fs.writeFile(tmp, zip));
}
