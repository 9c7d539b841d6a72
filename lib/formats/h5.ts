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
 * Robustness: the file must be a regular file within the byte budget and
 * carry the HDF5 signature before h5wasm sees it. Reading runs in a child
 * process (`./h5-worker.js`): the HDF5 C library can loop forever on a
 * corrupt file (found by the fuzz test: one flipped byte in a
 * variable-length string reference), so each read has a time limit after
 * which the worker is killed and replaced; and the WebAssembly module's
 * memory leaves with the process (on a worker thread about 20 MB stayed
 * resident in the caller's process after the thread stopped). The worker first describes
 * the file (no values, links not followed, external links and virtual
 * datasets refused), then reads only the datasets `layer_names` /
 * `weight_names` reference, budgeted from their declared shapes and
 * element sizes; it can open no file but this one (external raw storage is
 * refused). HDF5's diagnostics never reach stderr; every failure becomes a
 * ModelFormatError naming the file. An idle worker is stopped (50 ms after
 * the last request). Writing (our own data) runs on the main
 * thread.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ModelFormatError, WeightMismatchError } from '../errors.js';
import { checkClassNames, parseClassNames } from './class-names.js';
import { flattenConfig } from '../keras/model-config.js';
import type { KerasLayerConfig, KerasModelConfig, NamedWeights, WeightTensor } from '../keras/types.js';
import { DEFAULT_HDF5_TIMEOUT_MS, MAX_HDF5_OBJECTS } from '../limits.js';
import * as v from '../validate.js';
import { normalizeModelConfig } from './config.js';
import { atomicWrite, FileProblem, jsonDepthProblem, statRegularFile } from './files.js';
import { halfToFloat, modelByteBudget, overBudget } from './tfjs.js';

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

/** An HDF5 object as described by the reader worker (`./h5-worker.ts`): attributes, children (groups), metadata (datasets). */
export interface H5TreeNode {
  type: 'Group' | 'Dataset' | 'Error' | 'Other' | 'SoftLink';
  path: string;
  attrs?: Record<string, unknown>;
  children?: Record<string, H5TreeNode>;
  metadata?: Record<string, unknown>;
  message?: string;
  /** Target of a soft link (not followed). */
  target?: string;
}

export interface H5ReadOptions {
  /**
   * Longest time the HDF5 library may take on one file (default 120 s). A
   * corrupt file can send the HDF5 C library into an endless loop; it runs
   * in a worker process, which is killed when the time is up.
   */
  timeoutMs?: number;
  /** Most bytes of weights the load may allocate (default `DEFAULT_MAX_MODEL_BYTES`, 1 GiB). */
  maxModelBytes?: number;
}

function isReadError(v: unknown): v is { __error: string } {
  return typeof v === 'object' && v !== null && typeof (v as { __error?: unknown }).__error === 'string';
}

/** The node at a relative path (components separated by '/'); soft links are not followed. */
export function treeGet(node: H5TreeNode, rel: string): H5TreeNode | undefined {
  let cur: H5TreeNode | undefined = node;
  for (const part of rel.split('/')) {
    if (part.length === 0) continue;
    cur = cur?.children !== undefined && Object.prototype.hasOwnProperty.call(cur.children, part) ? cur.children[part] : undefined;
    if (cur === undefined) return undefined;
  }
  return cur;
}

type Worker = ChildProcess;

/**
 * The worker is `h5-worker.js` beside this module (plain JavaScript: in lib/
 * and, copied by tsc, in dist/), run by this Node.js binary without the
 * caller's Node.js options (an `--inspect` port, a TypeScript loader) and
 * with no terminal: HDF5's diagnostics go into the replies.
 */
function startWorker(): Worker {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return fork(fileURLToPath(new URL('./h5-worker.js', import.meta.url)), [], {
    execArgv: [],
    env,
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
}

interface Pending {
  resolve: (m: WorkerReply) => void;
  reject: (e: Error) => void;
  file: string;
  worker: Worker;
}

interface WorkerReply {
  id: number;
  tree?: H5TreeNode;
  values?: Record<string, Uint8Array>;
  error?: string;
  diagnostics?: string;
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
  const w = startWorker();
  w.on('message', (m: WorkerReply) => {
    const p = pending.get(m.id);
    if (p === undefined) return;
    pending.delete(m.id);
    p.resolve(m);
  });
  w.on('error', (e) => {
    if (worker === w) worker = null;
    failAll(w, `the HDF5 library failed on this file: ${errText(e)}`);
  });
  w.on('exit', (code, signal) => {
    if (worker === w) worker = null;
    failAll(w, `the HDF5 reader stopped (${signal === null ? `exit code ${code}` : `signal ${signal}`})`);
  });
  // An idle reader must not keep the process alive (a pending request's timer does).
  w.unref();
  w.channel?.unref();
  worker = w;
  return w;
}

/** Sends one request to the reader worker (one at a time), with a time limit. */
function request(file: string, body: Record<string, unknown>, options: H5ReadOptions): Promise<WorkerReply> {
  const timeoutMs = options.timeoutMs === undefined ? DEFAULT_HDF5_TIMEOUT_MS : v.positiveInteger(options.timeoutMs, 'timeoutMs');
  const run = (): Promise<WorkerReply> =>
    new Promise<WorkerReply>((resolve, reject) => {
      const w = getWorker();
      const id = nextId++;
      const timer = setTimeout(() => {
        if (!pending.has(id)) return;
        pending.delete(id);
        if (worker === w) worker = null;
        w.kill('SIGKILL');
        reject(new ModelFormatError(`the HDF5 library did not finish reading within ${timeoutMs} ms (corrupt file?)`, file));
      }, timeoutMs);
      pending.set(id, {
        file,
        worker: w,
        resolve: (m) => {
          clearTimeout(timer);
          if (m.error !== undefined) {
            const e = m.error;
            reject(new ModelFormatError(e.startsWith('HDF5 library') || e.startsWith('it refers') || / refused|limit of/.test(e) ? e : `corrupt HDF5 file: ${e}`, file));
          } else resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      w.send({ ...body, id, file }, (err) => {
        // The worker exited between its last reply and this request: 'exit' has not been handled yet.
        if (err === null || !pending.has(id)) return;
        pending.delete(id);
        clearTimeout(timer);
        if (worker === w) worker = null;
        reject(new ModelFormatError(`the HDF5 reader could not be reached: ${errText(err)}`, file));
      });
    });
  active++;
  const result = queue.then(run, run).finally(() => {
    active--;
    if (active === 0) scheduleIdleStop();
  });
  queue = result.catch(() => undefined);
  return result;
}

/** Requests queued or running. */
let active = 0;
/**
 * An idle reader is stopped after this long: its thread and the HDF5
 * library's WebAssembly memory (tens of MB) are not kept for the life of the
 * process after a model is loaded. Reads in a row keep one worker.
 */
const IDLE_STOP_MS = 50;

function scheduleIdleStop(): void {
  const w = worker;
  if (w === null) return;
  setTimeout(() => {
    if (active !== 0 || worker !== w) return;
    worker = null;
    // Closing the channel ends it (it exits on 'disconnect').
    w.disconnect();
  }, IDLE_STOP_MS).unref();
}

/**
 * Describes every group, attribute and dataset of an HDF5 file (dataset
 * values are not read: see `readH5Datasets`). Links are not followed;
 * external links and virtual datasets are refused.
 */
export async function dumpH5(file: string, options: H5ReadOptions = {}): Promise<H5TreeNode> {
  const budget = modelByteBudget(options);
  const m = await request(file, { op: 'tree', maxNodes: MAX_HDF5_OBJECTS, maxAttrBytes: budget }, options);
  return m.tree as H5TreeNode;
}

/** Reads the raw bytes of the listed datasets (absolute paths), within the byte budget computed from their declared shapes. */
export async function readH5Datasets(file: string, paths: string[], options: H5ReadOptions = {}): Promise<Map<string, Uint8Array>> {
  const budget = modelByteBudget(options);
  if (paths.length === 0) return new Map();
  const m = await request(file, { op: 'read', paths, maxBytes: budget }, options);
  return new Map(Object.entries(m.values ?? {}));
}

function errText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Checks the file is a regular file and starts with the HDF5 signature (at 0 or a user-block offset 512, 1024, …). */
async function checkHdf5File(file: string, maxBytes: number): Promise<number> {
  try {
    await statRegularFile(file, maxBytes);
  } catch (e) {
    if (e instanceof FileProblem) {
      throw new ModelFormatError(e.code === 'DIR' ? 'is a directory, not an HDF5 file' : e.code === 'TOOBIG' ? `${e.message} (raise it with the maxModelBytes option or MOBILENET_MAX_MODEL_BYTES)` : e.message, file, { cause: e });
    }
    throw e;
  }
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelFormatError(code === 'ENOENT' ? 'file not found' : `cannot read: ${errText(e)}`, file, { cause: e });
  }
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new ModelFormatError('not a regular file: only regular files are read', file);
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

export { checkHdf5File };

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


/** Checks a dataset's description (shape, float type) before its bytes are read. */
function checkDatasetMeta(ds: H5TreeNode, where: string, file: string): { shape: number[]; size: number; littleEndian: boolean } {
  if (ds.type !== 'Dataset' || ds.metadata === undefined) throw new ModelFormatError(`${where} is not a dataset`, file);
  const meta = ds.metadata as { type: number; size: number; littleEndian: boolean; shape: number[] | null };
  const shape = meta.shape ?? [];
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ModelFormatError(`dataset ${where} has an invalid shape ${JSON.stringify(shape)}`, file);
  }
  // H5T_FLOAT is class 1.
  if (meta.type !== 1 || ![2, 4, 8].includes(meta.size)) {
    throw new ModelFormatError(`dataset ${where} is not float16/float32/float64 (HDF5 type class ${meta.type}, ${meta.size} bytes)`, file);
  }
  return { shape, size: meta.size, littleEndian: meta.littleEndian !== false };
}

/** Decodes the raw bytes of a float16/32/64 dataset (either byte order) to float32. */
export function readDataset(ds: H5TreeNode, raw: Uint8Array | undefined, where: string, file: string): WeightTensor {
  const { shape, size, littleEndian } = checkDatasetMeta(ds, where, file);
  const n = v.product(shape);
  if (raw === undefined) throw new ModelFormatError(`dataset ${where} was not read`, file);
  if (raw.byteLength !== n * size) throw new ModelFormatError(`dataset ${where} holds ${raw.byteLength} bytes but its shape ${JSON.stringify(shape)} needs ${n * size}`, file);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const data = new Float32Array(n);
  if (size === 4) {
    if (littleEndian && raw.byteOffset % 4 === 0 && new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) data.set(new Float32Array(raw.buffer, raw.byteOffset, n));
    else for (let i = 0; i < n; i++) data[i] = dv.getFloat32(4 * i, littleEndian);
  } else if (size === 8) {
    for (let i = 0; i < n; i++) data[i] = dv.getFloat64(8 * i, littleEndian);
  } else {
    for (let i = 0; i < n; i++) data[i] = halfToFloat(dv.getUint16(2 * i, littleEndian));
  }
  return { shape: [...shape], data };
}

/** Parses a `model_config` JSON string (Keras 2 or Keras 3 form) into the Keras 2 functional form. */
function parseModelConfig(text: string, file: string): KerasModelConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`model_config attribute is not valid JSON (${errText(e)})`, file, { cause: e });
  }
  const deep = jsonDepthProblem(json);
  if (deep !== null) throw new ModelFormatError(`model_config attribute: ${deep}`, file);
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

interface PlannedH5 extends RawH5 {
  /** Weight name → dataset node and its description for messages. */
  wanted: Array<{ name: string; node: H5TreeNode; where: string }>;
}

function readTree(root: H5TreeNode, file: string, configOnly: boolean): PlannedH5 {
  const out: PlannedH5 = { layerOrder: [], weights: new Map(), wanted: [] };
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
      if (ds !== undefined && ds.type === 'SoftLink') {
        throw new ModelFormatError(`weight '${wn}' of layer '${layer}' is a soft link to ${ds.target ?? '?'}: links are not followed (Keras never writes them)`, file);
      }
      if (ds === undefined || ds.type !== 'Dataset') {
        throw new ModelFormatError(`weight '${wn}' listed in weight_names of layer '${layer}' has no dataset at ${layer}/${wn}`, file);
      }
      const name = h5WeightKey(layer, wn, weightNames);
      if (out.weights.has(name) || out.wanted.some((w) => w.name === name)) throw new ModelFormatError(`weight ${name} appears twice (layer '${layer}', '${wn}')`, file);
      checkDatasetMeta(ds, `${layer}/${wn}`, file);
      out.wanted.push({ name, node: ds, where: `${layer}/${wn}` });
    }
  }
  return out;
}

async function readRaw(file: string, configOnly: boolean, options: H5ReadOptions = {}): Promise<RawH5> {
  const abs = path.resolve(file);
  const budget = modelByteBudget(options);
  await checkHdf5File(abs, budget);
  const root = await dumpH5(abs, options);
  const planned = readTree(root, abs, configOnly);
  // Only the datasets the layers reference are read; the worker budgets them from their declared shapes first.
  const bytes = await readH5Datasets(abs, planned.wanted.map((w) => w.node.path), options);
  let decoded = 0;
  for (const w of planned.wanted) {
    const t = readDataset(w.node, bytes.get(w.node.path), w.where, abs);
    bytes.delete(w.node.path);
    decoded += t.data.byteLength;
    if (decoded > budget) throw new ModelFormatError(overBudget('decoding the weights to float32', decoded, budget), abs);
    planned.weights.set(w.name, t);
  }
  const { wanted: _wanted, ...raw } = planned;
  return raw;
}

/**
 * Reads a Keras `.h5` file: weights-only (config undefined) or full model.
 */
export async function readH5(file: string, options: H5ReadOptions = {}): Promise<H5ReadResult> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  const abs = path.resolve(file);
  const raw = await readRaw(abs, false, options);
  const out: H5ReadResult = { weights: raw.weights, layerOrder: raw.layerOrder };
  if (raw.modelConfig !== undefined) out.config = parseModelConfig(raw.modelConfig, abs);
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

/**
 * Writes a Keras HDF5 file. With a config: the Keras 2 full-model layout
 * (`model.save('x.h5')`: root `keras_version`, `backend`, `model_config`,
 * weights under `model_weights/`). With `config` undefined: the weights-only
 * layout (`save_weights`), layers in the order their weights appear.
 * Atomic: written to a temporary file in the same directory, then renamed.
 */
export async function writeH5(file: string, nestedConfig: KerasModelConfig | undefined, weights: NamedWeights, options: H5WriteOptions = {}): Promise<void> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  if (file.length === 0) throw v.rangeError('non-empty path', 'path', file);
  // Nested models (a base model under a head) are written inlined, as the flat equivalent: the weights are named by their layers.
  const config = nestedConfig === undefined ? undefined : flattenConfig(nestedConfig);
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

export { readRaw as readH5Raw };
