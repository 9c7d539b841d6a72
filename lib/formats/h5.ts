/**
 * Keras HDF5 (`.h5`) reader and writer, on `h5wasm` (the HDF5 C library
 * compiled to WebAssembly; it reads and writes real files on disk).
 *
 * Layouts (Keras 2 `hdf5_format.py`, Keras 3 `legacy_h5_format.py`):
 * - weights-only files (`model.save_weights('x.h5')`, the official Keras
 *   Applications downloads): root attribute `layer_names` (the model's
 *   layers in order), one group per layer with attribute `weight_names`
 *   (e.g. `conv1/kernel:0`), each weight a dataset at
 *   `<layer>/<weight name>`, i.e. `conv1/conv1/kernel:0`.
 * - full-model files (`model.save('x.h5')`): root attributes
 *   `keras_version`, `backend`, `model_config` (JSON), and the same weight
 *   layout inside the group `model_weights` (which carries `layer_names`,
 *   `backend`, `keras_version` itself).
 * - `layer_names` / `weight_names` longer than HDF5's object-header limit
 *   (64512 bytes) are split into `layer_names0`, `layer_names1`, …
 * - strings may be variable- or fixed-length, str or bytes.
 *
 * Weight names are normalized to the TF.js manifest form
 * `<layer>/<weight>` without `:0`: the layer is the group listed in
 * `layer_names`, the weight the last `/` component of its `weight_names`
 * entry (`conv_dw_1/depthwise_kernel:0` → `conv_dw_1/depthwise_kernel`;
 * Keras 3's `conv1/kernel` → `conv1/kernel`; a nested scope such as
 * `model/block_1_expand/kernel:0` under layer `block_1_expand` →
 * `block_1_expand/kernel`).
 *
 * Robustness: the file is checked for the HDF5 signature before h5wasm
 * sees it. Reading runs on a worker thread (`dumpH5`): the HDF5 C library
 * can loop forever on a corrupt file (found by the fuzz test: one flipped
 * byte in a variable-length string reference), so each read has a time
 * limit after which the worker is terminated and replaced; HDF5's
 * diagnostic stack (printed on stderr) is silenced in that worker; every
 * failure becomes a ModelFormatError naming the file. Writing (our own
 * data) runs on the main thread.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ModelFormatError, WeightMismatchError } from '../errors.js';
import { checkClassNames, parseClassNames } from './class-names.js';
import { halfToFloat } from './tfjs.js';
import type { KerasLayerConfig, KerasModelConfig, NamedWeights, WeightTensor } from '../keras/types.js';
import * as v from '../validate.js';

type H5Module = typeof import('h5wasm/node');
type H5Group = import('h5wasm/node').Group;

/** The limit Keras splits long attribute lists at (`HDF5_OBJECT_HEADER_LIMIT`). */
export const HDF5_OBJECT_HEADER_LIMIT = 64512;

const HDF5_MAGIC = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

export interface H5ReadResult {
  config?: KerasModelConfig;
  weights: NamedWeights;
  kerasVersion?: string;
  backend?: string;
  /** The `layer_names` attribute, in file order. */
  layerOrder: string[];
  /** The root `class_names` attribute (a classifier trained by `mobilenet train`). */
  classNames?: string[];
}

export interface H5WriteOptions {
  /** Written as `keras_version` (default "2.15.0", the last Keras 2 release line). */
  kerasVersion?: string;
  /** Written as `backend` (default "tensorflow"). */
  backend?: string;
  /** Written as the root attribute `class_names` (JSON list). */
  classNames?: readonly string[];
}

let h5Promise: Promise<H5Module['default']> | null = null;

/** Loads h5wasm once. */
export async function loadH5wasm(): Promise<H5Module['default']> {
  if (h5Promise === null) {
    h5Promise = (async () => {
      const mod = (await import('h5wasm/node')) as H5Module;
      await mod.default.ready;
      return mod.default;
    })();
  }
  return h5Promise;
}

/** An HDF5 object as read by the reader worker: attributes, children (groups), metadata and value (datasets). */
export interface H5TreeNode {
  type: 'Group' | 'Dataset' | 'Error' | 'Other';
  path: string;
  attrs?: Record<string, unknown>;
  children?: Record<string, H5TreeNode>;
  metadata?: Record<string, unknown>;
  value?: unknown;
  message?: string;
}

export interface H5ReadOptions {
  /**
   * Longest time the HDF5 library may take on one file (default 120 s). A
   * corrupt file can send the HDF5 C library into an endless loop; it runs
   * on a worker thread, which is terminated when the time is up.
   */
  timeoutMs?: number;
}

function isReadError(v: unknown): v is { __error: string } {
  return typeof v === 'object' && v !== null && typeof (v as { __error?: unknown }).__error === 'string';
}

/** The node at a relative path (components separated by '/'). */
export function treeGet(node: H5TreeNode, rel: string): H5TreeNode | undefined {
  let cur: H5TreeNode | undefined = node;
  for (const part of rel.split('/')) {
    if (part.length === 0) continue;
    cur = cur?.children !== undefined && Object.prototype.hasOwnProperty.call(cur.children, part) ? cur.children[part] : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

const MAX_NODES = 200_000;
const MAX_ELEMENTS = 2 ** 29;

/** The reader worker: plain JavaScript (CommonJS, eval'd), so that it runs from the sources and from dist alike. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
// HDF5 prints its error stack on fd 2; corrupt files are reported as typed errors instead.
const origWriteSync = fs.writeSync;
fs.writeSync = function (fd, buf, ...rest) {
  if (fd === 2) {
    if (typeof buf === 'string') return Buffer.byteLength(buf);
    const off = typeof rest[0] === 'number' ? rest[0] : 0;
    return typeof rest[1] === 'number' ? rest[1] : buf.byteLength - off;
  }
  return origWriteSync.call(fs, fd, buf, ...rest);
};
const ready = import(workerData.h5url).then(async (m) => { const h5 = m.default; await h5.ready; return h5; });
const msg = (e) => String((e && e.message) || e);
parentPort.on('message', async ({ id, file, maxNodes, maxElements }) => {
  let f = null;
  try {
    const h5 = await ready;
    f = new h5.File(file, 'r');
    if (f.file_id === undefined || BigInt(f.file_id) < 0n) throw new Error('HDF5 library cannot open the file (corrupt or truncated HDF5)');
    const transfer = new Set();
    let nodes = 0;
    let elements = 0;
    const attrsOf = (o) => {
      const out = {};
      let names;
      try { names = Object.keys(o.attrs); } catch (e) { return { __attrs_error: { __error: msg(e) } }; }
      for (const name of names) {
        try {
          let v = o.attrs[name].value;
          if (ArrayBuffer.isView(v)) v = v.slice();
          out[name] = v;
        } catch (e) { out[name] = { __error: msg(e) }; }
      }
      return out;
    };
    const walk = (g, p, depth) => {
      if (++nodes > maxNodes) throw new Error('more than ' + maxNodes + ' HDF5 objects');
      if (depth > 64) throw new Error('HDF5 groups nested more than 64 deep');
      const node = { type: 'Group', path: p, attrs: attrsOf(g), children: {} };
      let keys;
      try { keys = g.keys(); } catch (e) { return { type: 'Error', path: p, message: msg(e) }; }
      for (const k of keys) {
        const cp = p === '/' ? '/' + k : p + '/' + k;
        let child;
        try { child = g.get(k); } catch (e) { node.children[k] = { type: 'Error', path: cp, message: msg(e) }; continue; }
        if (!child) { node.children[k] = { type: 'Error', path: cp, message: 'cannot open' }; continue; }
        if (child.type === 'Group') node.children[k] = walk(child, cp, depth + 1);
        else if (child.type === 'Dataset') {
          if (++nodes > maxNodes) throw new Error('more than ' + maxNodes + ' HDF5 objects');
          let metadata;
          try { metadata = child.metadata; } catch (e) { node.children[k] = { type: 'Error', path: cp, message: msg(e) }; continue; }
          const n = Number(metadata.total_size);
          if (!(n >= 0) || elements + n > maxElements) throw new Error('dataset ' + cp + ' is too large (' + n + ' elements)');
          elements += n;
          let value;
          try {
            value = child.value;
            if (ArrayBuffer.isView(value)) {
              if (value.byteOffset !== 0 || value.byteLength !== value.buffer.byteLength) value = value.slice();
              transfer.add(value.buffer);
            }
          } catch (e) { value = { __error: msg(e) }; }
          node.children[k] = { type: 'Dataset', path: cp, metadata, attrs: attrsOf(child), value };
        } else node.children[k] = { type: 'Other', path: cp };
      }
      return node;
    };
    const tree = walk(f, '/', 0);
    parentPort.postMessage({ id, tree }, [...transfer]);
  } catch (e) {
    parentPort.postMessage({ id, error: msg(e) });
  } finally {
    try { if (f) f.close(); } catch (e) { /* nothing to release */ }
  }
});
`;

/** Finds h5wasm's Node entry point for the worker. */
function h5wasmUrl(): string {
  try {
    const meta = import.meta as unknown as { resolve?: (s: string) => string };
    if (typeof meta.resolve === 'function') {
      const u = meta.resolve('h5wasm/node');
      if (u.startsWith('file:')) return u;
    }
  } catch {
    // fall through to the node_modules search
  }
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'node_modules', 'h5wasm', 'dist', 'node', 'hdf5_hl.js');
    if (fs.existsSync(candidate)) return pathToFileURL(candidate).href;
    const up = path.dirname(dir);
    if (up === dir) throw new ModelFormatError('cannot locate the h5wasm package (npm install h5wasm)');
    dir = up;
  }
}

interface Pending {
  resolve: (t: H5TreeNode) => void;
  reject: (e: Error) => void;
  file: string;
  worker: Worker;
}

let worker: Worker | null = null;
const pending = new Map<number, Pending>();
let nextId = 1;
let queue: Promise<unknown> = Promise.resolve();

function failAll(w: Worker, message: string): void {
  for (const [id, p] of pending) {
    if (p.worker !== w) continue;
    pending.delete(id);
    p.reject(new ModelFormatError(message, p.file));
  }
}

function getWorker(): Worker {
  if (worker !== null) return worker;
  const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { h5url: h5wasmUrl() } });
  w.on('message', (m: { id: number; tree?: H5TreeNode; error?: string }) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    if (m.error !== undefined) p.reject(new ModelFormatError(m.error.startsWith('HDF5 library') ? m.error : `corrupt HDF5 file: ${m.error}`, p.file));
    else p.resolve(m.tree as H5TreeNode);
  });
  w.on('error', (e) => {
    if (worker === w) worker = null;
    failAll(w, `the HDF5 library failed on this file: ${errText(e)}`);
  });
  w.on('exit', (code) => {
    if (worker === w) worker = null;
    failAll(w, `the HDF5 reader stopped (exit code ${code})`);
  });
  // After the listeners (adding a 'message' listener refs the worker's port again):
  // an idle reader must not keep the process alive.
  w.unref();
  worker = w;
  return w;
}

/**
 * Reads every group, attribute and dataset of an HDF5 file on the reader
 * worker (one at a time), with a time limit.
 */
export function dumpH5(file: string, options: H5ReadOptions = {}): Promise<H5TreeNode> {
  const timeoutMs = options.timeoutMs === undefined ? 120_000 : v.positiveInteger(options.timeoutMs, 'timeoutMs');
  const run = (): Promise<H5TreeNode> =>
    new Promise<H5TreeNode>((resolve, reject) => {
      const w = getWorker();
      const id = nextId++;
      const timer = setTimeout(() => {
        if (!pending.has(id)) return;
        pending.delete(id);
        if (worker === w) worker = null;
        void w.terminate();
        reject(new ModelFormatError(`the HDF5 library did not finish reading within ${timeoutMs} ms (corrupt file?)`, file));
      }, timeoutMs);
      pending.set(id, {
        file,
        worker: w,
        resolve: (t) => {
          clearTimeout(timer);
          resolve(t);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      w.postMessage({ id, file, maxNodes: MAX_NODES, maxElements: MAX_ELEMENTS });
    });
  const result = queue.then(run, run);
  queue = result.catch(() => undefined);
  return result;
}

function errText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Checks the file exists and starts with the HDF5 signature (at 0 or a user-block offset 512, 1024, …). */
async function checkHdf5File(file: string): Promise<number> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelFormatError(code === 'ENOENT' ? 'file not found' : `cannot read: ${errText(e)}`, file, { cause: e });
  }
  try {
    const stat = await fh.stat();
    if (stat.isDirectory()) throw new ModelFormatError('is a directory, not an HDF5 file', file);
    const size = stat.size;
    const head = Buffer.alloc(8);
    for (let off = 0; off === 0 || off + 8 <= size; off = off === 0 ? 512 : off * 2) {
      const { bytesRead } = await fh.read(head, 0, 8, off);
      if (bytesRead === 8 && head.equals(HDF5_MAGIC)) return size;
      if (off >= 1 << 20) break;
    }
    throw new ModelFormatError(`not an HDF5 file (no HDF5 signature; ${size} bytes)`, file);
  } finally {
    await fh.close();
  }
}

/** Decodes an attribute value to a list of strings (str or bytes, scalar or list, fixed or variable length). */
function attrStrings(value: unknown, what: string, file: string): string[] {
  const out: string[] = [];
  const visit = (x: unknown): void => {
    if (typeof x === 'string') out.push(x);
    else if (x instanceof Uint8Array) out.push(Buffer.from(x).toString('utf8').replace(/\0+$/, ''));
    else if (Array.isArray(x)) for (const y of x) visit(y);
    else if (ArrayBuffer.isView(x) && (x as unknown as { length: number }).length === 0) {
      // numpy's empty list is stored as an empty float64 array.
    } else throw new ModelFormatError(`attribute ${what} is not a list of strings (found ${v.describe(x)})`, file);
  };
  visit(value);
  return out;
}

function readAttr(node: H5TreeNode, name: string, file: string): unknown {
  const attrs = node.attrs ?? {};
  if (!Object.prototype.hasOwnProperty.call(attrs, name)) return undefined;
  const v = attrs[name];
  if (isReadError(v)) throw new ModelFormatError(`cannot read attribute ${name} of ${node.path}: ${v.__error}`, file);
  return v;
}

/** Keras's `load_attributes_from_hdf5_group`: `name`, else `name0`, `name1`, … concatenated. */
function readStringListAttr(node: H5TreeNode, name: string, file: string): string[] | undefined {
  const names = Object.keys(node.attrs ?? {});
  if (names.includes(name)) return attrStrings(readAttr(node, name, file), `${node.path}:${name}`, file);
  if (!names.includes(`${name}0`)) return undefined;
  const out: string[] = [];
  for (let i = 0; names.includes(`${name}${i}`); i++) out.push(...attrStrings(readAttr(node, `${name}${i}`, file), `${node.path}:${name}${i}`, file));
  return out;
}

function readStringAttr(node: H5TreeNode, name: string, file: string): string | undefined {
  const raw = readAttr(node, name, file);
  if (raw === undefined || raw === null) return undefined;
  const list = attrStrings(raw, `${node.path}:${name}`, file);
  if (list.length !== 1) throw new ModelFormatError(`attribute ${name} is not a single string`, file);
  return list[0];
}

/** `<layer>/<last component of the weight name without :N>`. */
export function normalizeH5WeightName(layer: string, weightName: string): string {
  const parts = weightName.split('/');
  const last = (parts[parts.length - 1] as string).replace(/:\d+$/, '');
  return `${layer}/${last}`;
}

/**
 * The weight's key: `normalizeH5WeightName`, except in the group of a nested
 * model (a transfer-learning base saved as one layer: its weight names span
 * several layer scopes, `Conv1/kernel:0`, `bn_Conv1/gamma:0`, …), where it
 * is `<nested model>/<inner layer>/<weight>`; `matchWeights` removes the prefix.
 */
export function h5WeightKey(layer: string, weightName: string, groupWeightNames: readonly string[]): string {
  const scope = (n: string): string | undefined => n.split('/').slice(-2, -1)[0];
  const s = scope(weightName);
  if (s === undefined || s === layer || new Set(groupWeightNames.map(scope)).size < 2) return normalizeH5WeightName(layer, weightName);
  return `${layer}/${normalizeH5WeightName(s, weightName)}`;
}

function halfToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToFloat(bits[i] as number);
  return out;
}

export function readDataset(ds: H5TreeNode, where: string, file: string): WeightTensor {
  if (ds.type !== 'Dataset' || ds.metadata === undefined) throw new ModelFormatError(`${where} is not a dataset`, file);
  const meta = ds.metadata as { type: number; size: number; littleEndian: boolean; shape: number[] | null };
  const shape = meta.shape ?? [];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ModelFormatError(`dataset ${where} has an invalid shape ${JSON.stringify(shape)}`, file);
  }
  const n = v.product(shape);
  if (n > 2 ** 28) throw new ModelFormatError(`dataset ${where} has ${n} elements: too large`, file);
  // H5T_FLOAT is class 1.
  if (meta.type !== 1 || ![2, 4, 8].includes(meta.size)) {
    throw new ModelFormatError(`dataset ${where} is not float16/float32/float64 (HDF5 type class ${meta.type}, ${meta.size} bytes)`, file);
  }
  const raw = ds.value as unknown;
  if (isReadError(raw)) throw new ModelFormatError(`cannot read dataset ${where}: ${raw.__error}`, file);
  let data: Float32Array;
  if (raw instanceof Float32Array) data = raw;
  else if (raw instanceof Float64Array) data = Float32Array.from(raw);
  else if (meta.size === 2 && ArrayBuffer.isView(raw)) {
    const b = raw as ArrayBufferView;
    const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
    const bits = new Uint16Array(bytes.byteLength >> 1);
    const dv = new DataView(bytes.buffer);
    for (let i = 0; i < bits.length; i++) bits[i] = dv.getUint16(2 * i, meta.littleEndian !== false);
    data = halfToFloat32(bits);
  } else {
    throw new ModelFormatError(`dataset ${where} could not be read as floats (got ${v.describe(raw)})`, file);
  }
  if (data.length !== n) throw new ModelFormatError(`dataset ${where} holds ${data.length} values but its shape ${JSON.stringify(shape)} needs ${n}`, file);
  return { shape: [...shape], data };
}

/** Parses a `model_config` JSON string (Keras 2 or Keras 3 form) into the Keras 2 functional form. */
async function parseModelConfig(text: string, file: string): Promise<KerasModelConfig> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`model_config attribute is not valid JSON (${errText(e)})`, file, { cause: e });
  }
  const { normalizeModelConfig } = await import('./keras3.js');
  return normalizeModelConfig(json, file);
}

interface RawH5 {
  modelConfig?: string;
  kerasVersion?: string;
  backend?: string;
  layerOrder: string[];
  weights: NamedWeights;
  classNames?: string[];
}

function readTree(root: H5TreeNode, file: string, configOnly: boolean): RawH5 {
  const out: RawH5 = { layerOrder: [], weights: new Map() };
  const mc = readStringAttr(root, 'model_config', file);
  if (mc !== undefined) out.modelConfig = mc;
  const cn = readStringAttr(root, 'class_names', file);
  if (cn !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(cn);
    } catch (e) {
      throw new ModelFormatError(`the class_names attribute is not JSON (${(e as Error).message})`, file, { cause: e });
    }
    out.classNames = parseClassNames(parsed, file, 'the class_names attribute');
  }
  let weightsGroup: H5TreeNode = root;
  const keys = Object.keys(root.children ?? {});
  if (keys.includes('model_weights')) {
    const g = root.children?.model_weights;
    if (g === undefined || g.type !== 'Group') throw new ModelFormatError('model_weights is not a group', file);
    weightsGroup = g;
  } else if (out.modelConfig !== undefined && readStringListAttr(root, 'layer_names', file) === undefined) {
    throw new ModelFormatError('has a model_config but no model_weights group: not a Keras model file with weights', file);
  }
  const kv = readStringAttr(root, 'keras_version', file) ?? readStringAttr(weightsGroup, 'keras_version', file);
  if (kv !== undefined) out.kerasVersion = kv;
  const be = readStringAttr(root, 'backend', file) ?? readStringAttr(weightsGroup, 'backend', file);
  if (be !== undefined) out.backend = be;
  const layerNames = readStringListAttr(weightsGroup, 'layer_names', file);
  if (layerNames === undefined) {
    throw new ModelFormatError(
      `not a Keras HDF5 file: no layer_names attribute${weightsGroup === root ? ' at the root' : ' on model_weights'} (root holds: ${keys.slice(0, 8).join(', ') || 'nothing'})`,
      file,
    );
  }
  out.layerOrder = layerNames;
  if (configOnly) return out;
  for (const layer of layerNames) {
    const g = layer.length > 0 ? treeGet(weightsGroup, layer) : undefined;
    if (g === undefined) throw new ModelFormatError(`layer '${layer}' is listed in layer_names but has no group`, file);
    if (g.type !== 'Group') throw new ModelFormatError(`'${layer}' is not a group`, file);
    const weightNames = readStringListAttr(g, 'weight_names', file);
    if (weightNames === undefined) throw new ModelFormatError(`layer group '${layer}' has no weight_names attribute`, file);
    for (const wn of weightNames) {
      const ds = wn.length > 0 ? treeGet(g, wn) : undefined;
      if (ds === undefined || ds.type !== 'Dataset') {
        throw new ModelFormatError(`weight '${wn}' listed in weight_names of layer '${layer}' has no dataset at ${layer}/${wn}`, file);
      }
      const name = h5WeightKey(layer, wn, weightNames);
      if (out.weights.has(name)) throw new ModelFormatError(`weight ${name} appears twice (layer '${layer}', '${wn}')`, file);
      out.weights.set(name, readDataset(ds, `${layer}/${wn}`, file));
    }
  }
  return out;
}

async function readRaw(file: string, configOnly: boolean, options: H5ReadOptions = {}): Promise<RawH5> {
  const abs = path.resolve(file);
  await checkHdf5File(abs);
  const root = await dumpH5(abs, options);
  return readTree(root, abs, configOnly);
}

/**
 * Reads a Keras `.h5` file: weights-only (config undefined) or full model.
 */
export async function readH5(file: string, options: H5ReadOptions = {}): Promise<H5ReadResult> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  const abs = path.resolve(file);
  const raw = await readRaw(abs, false, options);
  const out: H5ReadResult = { weights: raw.weights, layerOrder: raw.layerOrder };
  if (raw.modelConfig !== undefined) out.config = await parseModelConfig(raw.modelConfig, abs);
  if (raw.kerasVersion !== undefined) out.kerasVersion = raw.kerasVersion;
  if (raw.backend !== undefined) out.backend = raw.backend;
  if (raw.classNames !== undefined) out.classNames = raw.classNames;
  return out;
}

/** Reads only the model config (undefined for weights-only files). */
export async function readH5Config(file: string, options: H5ReadOptions = {}): Promise<KerasModelConfig | undefined> {
  const abs = path.resolve(file);
  const raw = await readRaw(abs, true, options);
  return raw.modelConfig === undefined ? undefined : parseModelConfig(raw.modelConfig, abs);
}

/** Keras's variable order within a layer (trainable first, as `layer.weights`). */
const WEIGHT_ORDER = ['kernel', 'depthwise_kernel', 'pointwise_kernel', 'bias', 'gamma', 'beta', 'moving_mean', 'moving_variance'];

/** Groups weights by layer in Keras's per-layer order; names not of the form `<layer>/<w>` are an error. */
export function weightsByLayer(weights: NamedWeights): Map<string, Array<[string, WeightTensor]>> {
  const by = new Map<string, Array<[string, WeightTensor]>>();
  for (const [full, t] of weights) {
    const i = full.lastIndexOf('/');
    if (i <= 0 || i === full.length - 1) throw new WeightMismatchError(`weight name ${JSON.stringify(full)} is not of the form <layer>/<weight>`);
    const layer = full.slice(0, i);
    const list = by.get(layer) ?? [];
    list.push([full.slice(i + 1), t]);
    by.set(layer, list);
  }
  const rank = (n: string): number => {
    const r = WEIGHT_ORDER.indexOf(n);
    return r < 0 ? WEIGHT_ORDER.length : r;
  };
  for (const list of by.values()) list.sort((a, b) => rank(a[0]) - rank(b[0]));
  return by;
}

/** Layer name of a config layer. */
export function layerName(l: KerasLayerConfig): string {
  return (l.config?.name ?? l.name) as string;
}

function checkWeights(weights: NamedWeights): void {
  if (!(weights instanceof Map)) throw v.typeError('Map of weights', 'weights', weights);
  for (const [name, t] of weights) {
    if (typeof name !== 'string') throw v.typeError('string weight name', 'weights', name);
    v.float32Array(t?.data, `weights '${name}' data`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0)) throw v.typeError('array of non-negative integers', `weights '${name}' shape`, t.shape);
    if (v.product(t.shape) !== t.data.length) {
      throw new WeightMismatchError(`weight ${name} has shape ${JSON.stringify(t.shape)} (${v.product(t.shape)} values) but ${t.data.length} values`);
    }
  }
}

/** The layers to write, in order, with their weights; weights of layers absent from the config are an error. */
export function planLayers(config: KerasModelConfig | undefined, weights: NamedWeights): Array<{ name: string; weights: Array<[string, WeightTensor]> }> {
  const by = weightsByLayer(weights);
  if (config === undefined) return [...by].map(([name, w]) => ({ name, weights: w }));
  const names = config.config.layers.map(layerName);
  const known = new Set(names);
  const extra = [...by.keys()].filter((l) => !known.has(l));
  if (extra.length > 0) {
    throw new WeightMismatchError(`weights for layers that are not in the model config: ${extra.slice(0, 10).join(', ')}${extra.length > 10 ? ', …' : ''}`);
  }
  return names.map((name) => ({ name, weights: by.get(name) ?? [] }));
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/** A scalar variable-length string attribute, as h5py writes `bytes` (ASCII) or `str` (UTF-8). */
function putString(g: H5Group, name: string, value: string): void {
  g.create_attribute(name, value, null, isAscii(value) ? 'A' : 'S');
}

/** Keras's `save_attributes_to_hdf5_group`: a fixed-length string array, split into name0, name1, … above 64512 bytes. */
function putStringList(g: H5Group, name: string, list: string[]): void {
  if (list.length === 0) {
    // np.asarray([]) is an empty float64 array; Keras writes exactly that.
    g.create_attribute(name, new Float64Array(0), [0], '<d');
    return;
  }
  const width = Math.max(1, ...list.map((s) => Buffer.byteLength(s)));
  const bad = list.filter((s) => Buffer.byteLength(s) > HDF5_OBJECT_HEADER_LIMIT);
  if (bad.length > 0) throw new RangeError(`Expected names shorter than ${HDF5_OBJECT_HEADER_LIMIT} bytes for ${name} but received ${v.describe(bad[0])}`);
  const dtype = `${list.every(isAscii) ? 'A' : 'S'}${width + 1}`;
  let chunks = 1;
  // np.array_split: the first (len % chunks) chunks get one more element.
  const split = (k: number): string[][] => {
    const out: string[][] = [];
    const base = Math.floor(list.length / k);
    const extra = list.length % k;
    let o = 0;
    for (let i = 0; i < k; i++) {
      const n = base + (i < extra ? 1 : 0);
      out.push(list.slice(o, o + n));
      o += n;
    }
    return out;
  };
  while (split(chunks).some((c) => c.length * (width + 1) > HDF5_OBJECT_HEADER_LIMIT)) chunks++;
  if (chunks === 1) g.create_attribute(name, list, [list.length], dtype);
  else split(chunks).forEach((c, i) => g.create_attribute(`${name}${i}`, c, [c.length], dtype));
}

/**
 * Writes the Keras weights layout (`save_weights_to_hdf5_group`) into group `g`.
 * Dataset of weight `w` of layer `L`: `L/L/w:0`, listed as `L/w:0` in `weight_names`.
 */
function writeWeightsGroup(g: H5Group, plan: ReturnType<typeof planLayers>, kerasVersion: string, backend: string): void {
  putStringList(g, 'layer_names', plan.map((l) => l.name));
  putString(g, 'backend', backend);
  putString(g, 'keras_version', kerasVersion);
  // Groups in name order (as Keras 3 does) so that a layer named `Conv` is
  // created before `Conv/BatchNorm`, which nests inside it.
  const sorted = [...plan].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const layer of sorted) {
    const lg = ensureGroup(g, layer.name);
    const names = layer.weights.map(([w]) => `${layer.name}/${w}:0`);
    putStringList(lg, 'weight_names', names);
    if (layer.weights.length === 0) continue;
    const scope = ensureGroup(lg, layer.name);
    for (const [w, t] of layer.weights) {
      scope.create_dataset({ name: `${w}:0`, data: t.data, shape: t.shape, dtype: '<f' });
    }
  }
}

/** Opens or creates the group at a relative path, creating intermediate groups (as h5py does). */
export function ensureGroup(g: H5Group, rel: string): H5Group {
  let cur = g;
  for (const part of rel.split('/')) {
    if (part.length === 0) continue;
    if (cur.keys().includes(part)) {
      const next = cur.get(part) as H5Group | null;
      if (next === null || (next as { type?: string }).type !== 'Group') throw new ModelFormatError(`cannot create group ${rel}: ${part} exists and is not a group`);
      cur = next;
    } else {
      cur = cur.create_group(part);
    }
  }
  return cur;
}

async function atomicWrite(target: string, write: (tmp: string) => Promise<void> | void): Promise<void> {
  const abs = path.resolve(target);
  const dir = path.dirname(abs);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(abs)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await write(tmp);
    await fsp.rename(tmp, abs);
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes a Keras HDF5 file. With a config: the Keras 2 full-model layout
 * (`model.save('x.h5')`: root `keras_version`, `backend`, `model_config`,
 * weights under `model_weights/`). With `config` undefined: the weights-only
 * layout (`save_weights`), layers in the order their weights appear.
 * Atomic: written to a temporary file in the same directory, then renamed.
 */
export async function writeH5(file: string, config: KerasModelConfig | undefined, weights: NamedWeights, options: H5WriteOptions = {}): Promise<void> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  if (file.length === 0) throw v.rangeError('non-empty path', 'path', file);
  checkWeights(weights);
  const kerasVersion = options.kerasVersion ?? '2.15.0';
  const backend = options.backend ?? 'tensorflow';
  if (typeof kerasVersion !== 'string') throw v.typeError('string', 'kerasVersion', kerasVersion);
  const classNames = checkClassNames(options.classNames);
  const plan = planLayers(config, weights);
  const h5 = await loadH5wasm();
  await atomicWrite(file, (tmp) => {
    const f = new h5.File(tmp, 'w');
    try {
      const root = f as unknown as H5Group;
      if (config !== undefined) {
        putString(root, 'keras_version', kerasVersion);
        putString(root, 'backend', backend);
        putString(root, 'model_config', JSON.stringify(config));
        if (classNames !== undefined) putString(root, 'class_names', JSON.stringify(classNames));
        writeWeightsGroup(root.create_group('model_weights'), plan, kerasVersion, backend);
      } else {
        writeWeightsGroup(root, plan, kerasVersion, backend);
      }
    } finally {
      f.close();
    }
  });
}

/** Writes bytes to a temporary file, runs `fn` on its path, removes it. */
export async function withTempFile<T>(bytes: Uint8Array, suffix: string, fn: (p: string) => Promise<T>): Promise<T> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mobilenet-'));
  const p = path.join(dir, `data${suffix}`);
  try {
    await fsp.writeFile(p, bytes);
    return await fn(p);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

export { atomicWrite, readRaw as readH5Raw };
