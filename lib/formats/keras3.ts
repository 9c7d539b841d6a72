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
import fs from 'node:fs/promises';
import path from 'node:path';
import { unzipSync, zipSync, type Zippable } from 'fflate';
import { MobileNetError, ModelFormatError, UnsupportedLayerError, WeightMismatchError } from '../errors.js';
import { checkClassNames, parseClassNames } from './class-names.js';
import type { KerasLayerConfig, KerasModelConfig, ModelAnalysis, NamedWeights, WeightTensor } from '../keras/types.js';
import * as v from '../validate.js';
import { atomicWrite, dumpH5, ensureGroup, layerName, loadH5wasm, readDataset, treeGet, withTempFile, type H5ReadOptions, type H5TreeNode } from './h5.js';
import { toFunctional } from './tfjs.js';

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

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

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

function isK3Op(l: unknown): boolean {
  return isObject(l) && typeof l.module === 'string' && /^keras(\.src)?\.ops(\.|$)/.test(l.module);
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

const K3_OP_TO_TFOP: Record<string, string> = {
  Add: '__operators__.add',
  Multiply: 'math.multiply',
  Subtract: 'math.subtract',
  Divide: 'math.truediv',
  TrueDivide: 'math.truediv',
};
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

// ---------------------------------------------------------------- config: Keras 3 → Keras 2

/** Is this a Keras 3 serialized config (layers with `module` / dict inbound nodes)? */
function isKeras3Config(c: Record<string, unknown>): boolean {
  if (typeof c.module === 'string' || 'registered_name' in c) return true;
  const cfg = c.config;
  const layers = isObject(cfg) ? cfg.layers : Array.isArray(cfg) ? cfg : undefined;
  if (!Array.isArray(layers)) return false;
  return layers.some((l) => isObject(l) && (typeof l.module === 'string' || (Array.isArray(l.inbound_nodes) && l.inbound_nodes.some((n) => isObject(n)))));
}

/** Keras 3 serialized objects (`{module, class_name, config, registered_name}`) → Keras 2 (`{class_name, config}`), dtype policies → dtype names. */
function k3ValueToK2(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(k3ValueToK2);
  if (!isObject(x)) return x;
  if (x.class_name === 'DTypePolicy' || x.class_name === 'FloatDTypePolicy') {
    const c = x.config;
    if (isObject(c) && typeof c.name === 'string') return c.name;
  }
  if (x.class_name === 'function' && typeof x.config === 'string') return x.config;
  if (x.class_name === '__tuple__' && Array.isArray(x.items)) return x.items.map(k3ValueToK2);
  const out: Record<string, unknown> = {};
  const serialized = typeof x.class_name === 'string' && 'config' in x;
  for (const [k, val] of Object.entries(x)) {
    if (serialized && (k === 'module' || k === 'registered_name')) continue;
    out[k] = k3ValueToK2(val);
  }
  return out;
}

function k3LayerConfigToK2(className: string, config: Record<string, unknown>): Record<string, unknown> {
  const c = k3ValueToK2(config) as Record<string, unknown>;
  if (className === 'InputLayer') {
    if (c.batch_input_shape === undefined) {
      if (Array.isArray(c.batch_shape)) c.batch_input_shape = c.batch_shape;
      else if (Array.isArray(c.shape)) c.batch_input_shape = [null, ...c.shape];
    }
    delete c.batch_shape;
    delete c.shape;
  }
  return c;
}

/** Collects `__keras_tensor__` histories in argument order. */
function kerasTensors(x: unknown, out: Array<[string, number, number]>, file: string): void {
  if (Array.isArray(x)) {
    for (const y of x) kerasTensors(y, out, file);
    return;
  }
  if (!isObject(x)) return;
  if (x.class_name === '__keras_tensor__') {
    const h = isObject(x.config) ? x.config.keras_history : undefined;
    if (!Array.isArray(h) || typeof h[0] !== 'string' || !Number.isInteger(h[1]) || !Number.isInteger(h[2])) {
      throw new ModelFormatError(`a __keras_tensor__ has no valid keras_history: ${JSON.stringify(x).slice(0, 200)}`, file);
    }
    out.push([h[0], h[1] as number, h[2] as number]);
    return;
  }
  for (const y of Object.values(x)) kerasTensors(y, out, file);
}

function tensorTriples(x: unknown, file: string): Array<[string, number, number]> {
  if (!Array.isArray(x)) throw new ModelFormatError(`input_layers/output_layers is not a list: ${JSON.stringify(x)}`, file);
  if (x.length === 3 && typeof x[0] === 'string') return [[x[0], Number(x[1]), Number(x[2])]];
  return x.map((t) => {
    if (!Array.isArray(t) || typeof t[0] !== 'string') throw new ModelFormatError(`input_layers/output_layers entry is not [name, node, tensor]: ${JSON.stringify(t)}`, file);
    return [t[0], Number(t[1] ?? 0), Number(t[2] ?? 0)];
  });
}

/** Positional args of a Keras 3 node in order: tensors as histories, other values as they are. */
function nodeArgs(args: unknown, file: string): Array<{ tensor: [string, number, number] } | { value: unknown }> {
  const out: Array<{ tensor: [string, number, number] } | { value: unknown }> = [];
  for (const a of Array.isArray(args) ? args : [args]) {
    const ts: Array<[string, number, number]> = [];
    kerasTensors(a, ts, file);
    if (ts.length > 0) for (const t of ts) out.push({ tensor: t });
    else out.push({ value: a });
  }
  return out;
}

function k3LayerToK2(l: unknown, i: number, file: string): KerasLayerConfig[] {
  if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) {
    throw new ModelFormatError(`layer ${i} of config.json is not {class_name, config}`, file);
  }
  const config = k3LayerConfigToK2(l.class_name, l.config);
  const name = config.name ?? l.name;
  if (typeof name !== 'string') throw new ModelFormatError(`layer ${i} (${l.class_name}) of config.json has no name`, file);
  config.name = name;
  const nodes = l.inbound_nodes ?? [];
  if (!Array.isArray(nodes)) throw new ModelFormatError(`layer '${name}' has an inbound_nodes that is not a list`, file);
  if (isK3Op(l)) {
    // A Keras 3 operation on tensors (x + 3.0, x * y): TFOpLambda with a scalar, or Add/Multiply/Subtract of tensors.
    if (nodes.length !== 1 || !isObject(nodes[0])) throw new UnsupportedLayerError(name, `${String(l.module)}.${l.class_name}`, 'an operation used more than once');
    const args = nodeArgs((nodes[0] as Record<string, unknown>).args, file);
    const tensors = args.filter((a): a is { tensor: [string, number, number] } => 'tensor' in a);
    const values = args.filter((a): a is { value: unknown } => 'value' in a);
    const fn = K3_OP_TO_TFOP[l.class_name];
    if (fn !== undefined && tensors.length === 1 && values.length === 1 && typeof values[0]?.value === 'number' && ('tensor' in (args[0] as object) || fn === '__operators__.add' || fn === 'math.multiply')) {
      const [ln, ni, ti] = (tensors[0] as { tensor: [string, number, number] }).tensor;
      return [{ class_name: 'TFOpLambda', name, config: { name, trainable: true, dtype: 'float32', function: fn }, inbound_nodes: [[[ln, ni, ti, { y: values[0]?.value as number, name: null }]]] }];
    }
    if (['Add', 'Multiply', 'Subtract'].includes(l.class_name) && tensors.length === 2 && values.length === 0) {
      return [{ class_name: l.class_name, name, config: { name, trainable: true, dtype: 'float32' }, inbound_nodes: [tensors.map(({ tensor: [ln, ni, ti] }) => [ln, ni, ti, {}] as [string, number, number, Record<string, unknown>])] }];
    }
    throw new UnsupportedLayerError(name, `${String(l.module)}.${l.class_name}`, `operation with ${tensors.length} tensor(s) and ${values.length} other argument(s)`);
  }
  const inbound: KerasLayerConfig['inbound_nodes'] = nodes.map((n) => {
    if (isObject(n)) {
      const tensors: Array<[string, number, number]> = [];
      kerasTensors(n.args, tensors, file);
      const kwargs = isObject(n.kwargs) ? (k3ValueToK2(n.kwargs) as Record<string, unknown>) : {};
      return tensors.map(([ln, ni, ti], k) => [ln, ni, ti, k === 0 ? kwargs : {}] as [string, number, number, Record<string, unknown>]);
    }
    return n as KerasLayerConfig['inbound_nodes'][number];
  });
  if (config.activation === 'hard_sigmoid') {
    // Keras 3's hard_sigmoid is relu6(x + 3) / 6; the Keras 2 form's is clip(0.2 x + 0.5, 0, 1).
    if (l.class_name !== 'Activation' || inbound.length !== 1 || inbound[0]?.length !== 1) {
      throw new UnsupportedLayerError(name, l.class_name, "Keras 3 'hard_sigmoid' activation inside a layer (only as an Activation layer)");
    }
    const [ln, ni, ti] = inbound[0][0] as [string, number, number];
    const a = `${name}/hard_sigmoid_add`;
    const r = `${name}/hard_sigmoid_relu6`;
    return [
      { class_name: 'TFOpLambda', name: a, config: { name: a, trainable: true, dtype: 'float32', function: '__operators__.add' }, inbound_nodes: [[[ln, ni, ti, { y: 3, name: null }]]] },
      { class_name: 'ReLU', name: r, config: { name: r, trainable: true, dtype: 'float32', max_value: 6, negative_slope: 0, threshold: 0 }, inbound_nodes: [[[a, 0, 0, {}]]] },
      { class_name: 'TFOpLambda', name, config: { name, trainable: true, dtype: 'float32', function: 'math.multiply' }, inbound_nodes: [[[r, 0, 0, { y: 1 / 6, name: null }]]] },
    ];
  }
  return [{ class_name: l.class_name, name, config: config as KerasLayerConfig['config'], inbound_nodes: inbound }];
}

/**
 * Any Keras model config (Keras 2 Model/Functional/Sequential, Keras 3
 * Functional/Sequential) → the Keras 2 functional form.
 */
export function normalizeModelConfig(json: unknown, file = 'model config'): KerasModelConfig {
  if (!isObject(json) || typeof json.class_name !== 'string') throw new ModelFormatError('model config is not an object with a class_name', file);
  if (!isKeras3Config(json)) return toFunctional(json, file);
  const cfg = json.config;
  if (json.class_name === 'Sequential') {
    const rawLayers = isObject(cfg) && Array.isArray(cfg.layers) ? cfg.layers : Array.isArray(cfg) ? cfg : null;
    if (rawLayers === null) throw new ModelFormatError('Sequential config has no layers list', file);
    const layers = rawLayers.map((l, i) => {
      if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) throw new ModelFormatError(`layer ${i} of the Sequential config is not {class_name, config}`, file);
      return { class_name: l.class_name, config: k3LayerConfigToK2(l.class_name, l.config) };
    });
    const name = isObject(cfg) && typeof cfg.name === 'string' ? cfg.name : 'sequential';
    return toFunctional({ class_name: 'Sequential', config: { name, layers } }, file);
  }
  if (!isObject(cfg) || !Array.isArray(cfg.layers)) throw new ModelFormatError(`model config of class ${json.class_name} has no layers list`, file);
  const layers = cfg.layers.flatMap((l, i) => k3LayerToK2(l, i, file));
  const out = {
    class_name: json.class_name === 'Functional' ? 'Functional' : json.class_name,
    config: {
      name: typeof cfg.name === 'string' ? cfg.name : 'model',
      layers,
      input_layers: tensorTriples(cfg.input_layers, file),
      output_layers: tensorTriples(cfg.output_layers, file),
    },
  };
  return toFunctional(out, file);
}

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

async function layerWeightSpecs(config: KerasModelConfig): Promise<{ layers: LayerWeights[]; shapes: Map<string, number[]>; analysis: ModelAnalysis }> {
  const { analyzeModel } = await import('../keras/layers.js');
  const analysis = analyzeModel(config);
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
  const { entries, config, metadata, paths } = await readArchive(abs, true);
  const weightsBytes = entries['model.weights.h5'];
  if (weightsBytes === undefined) {
    throw new ModelFormatError(
      `.keras archive has no model.weights.h5 (it holds ${Object.keys(entries).join(', ') || 'nothing'}): a model without weights cannot be loaded`,
      abs,
    );
  }
  let specs: Awaited<ReturnType<typeof layerWeightSpecs>>;
  try {
    specs = await layerWeightSpecs(config);
  } catch (e) {
    if (e instanceof MobileNetError || e instanceof TypeError || e instanceof RangeError) throw e;
    throw new ModelFormatError(`config.json does not describe a valid model: ${(e as Error).message}`, abs, { cause: e });
  }
  const weights = await withTempFile(weightsBytes, '.weights.h5', async (tmp) => readKeras3Weights(tmp, abs, paths, specs.layers, options));
  const out: Keras3ReadResult = { config, weights };
  if (typeof metadata.keras_version === 'string') out.kerasVersion = metadata.keras_version;
  if (typeof metadata.date_saved === 'string') out.dateSaved = metadata.date_saved;
  const classNames = parseClassNames(metadata.class_names, abs, "metadata.json's class_names");
  if (classNames !== undefined) out.classNames = classNames;
  return out;
}

/** Reads only the config of a `.keras` archive. */
export async function readKeras3Config(file: string): Promise<KerasModelConfig> {
  return (await readArchive(path.resolve(file), false)).config;
}

const MAX_ENTRY = 2 ** 31;

async function readArchive(abs: string, withWeights: boolean): Promise<{ entries: Record<string, Uint8Array>; config: KerasModelConfig; metadata: Record<string, unknown>; paths: Map<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await fs.readFile(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelFormatError(code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not a .keras file' : `cannot read: ${(e as Error).message}`, abs, { cause: e });
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b) throw new ModelFormatError('not a .keras file (not a zip archive)', abs);
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => {
        if (f.originalSize > MAX_ENTRY) throw new ModelFormatError(`zip entry ${f.name} declares ${f.originalSize} bytes: too large`, abs);
        return f.name === 'config.json' || f.name === 'metadata.json' || (withWeights && f.name === 'model.weights.h5');
      },
    });
  } catch (e) {
    if (e instanceof ModelFormatError) throw e;
    throw new ModelFormatError(`corrupt .keras zip archive: ${(e as Error).message}`, abs, { cause: e });
  }
  const cfgBytes = entries['config.json'];
  if (cfgBytes === undefined) throw new ModelFormatError('.keras archive has no config.json', abs);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(cfgBytes).toString('utf8'));
  } catch (e) {
    throw new ModelFormatError(`config.json is not valid JSON (${(e as Error).message})`, abs, { cause: e });
  }
  const config = normalizeModelConfig(json, abs);
  let metadata: Record<string, unknown> = {};
  const md = entries['metadata.json'];
  if (md !== undefined) {
    try {
      const m = JSON.parse(Buffer.from(md).toString('utf8')) as unknown;
      if (isObject(m)) metadata = m;
    } catch {
      // metadata is informative only
    }
  }
  return { entries, config, metadata, paths: rawKeras3PathMap(json) };
}

async function readKeras3Weights(tmp: string, abs: string, paths: Map<string, string>, layers: LayerWeights[], options: H5ReadOptions): Promise<NamedWeights> {
  const head = await fs.readFile(tmp).then((b) => b.subarray(0, 8));
  if (head.length < 8 || head.readUInt32BE(0) !== 0x89484446) throw new ModelFormatError('model.weights.h5 in the archive is not an HDF5 file', abs);
  let root: H5TreeNode;
  try {
    root = await dumpH5(tmp, options);
  } catch (e) {
    if (e instanceof ModelFormatError) throw new ModelFormatError(`model.weights.h5: ${e.message.replace(`${tmp}: `, '')}`, abs, { cause: e });
    throw e;
  }
  const weights: NamedWeights = new Map();
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
        problems.push(`${p}/vars/${k} (${spec.fullName}) is missing`);
        return;
      }
      weights.set(spec.fullName, readDataset(ds, `model.weights.h5 ${p}/vars/${k}`, abs));
    });
  });
  if (problems.length > 0) throw new WeightMismatchError(`${abs}: model.weights.h5 does not match config.json: ${problems.slice(0, 10).join('; ')}${problems.length > 10 ? `; … (${problems.length} problems)` : ''}`);
  return weights;
}

/** Writes a Keras 3 `.keras` archive (atomic: temporary file + rename). */
export async function writeKeras3(file: string, config: KerasModelConfig, weights: NamedWeights, options: Keras3WriteOptions = {}): Promise<void> {
  if (typeof file !== 'string') throw v.typeError('string', 'path', file);
  if (!(weights instanceof Map)) throw v.typeError('Map of weights', 'weights', weights);
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
