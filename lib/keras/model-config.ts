/**
 * Reading a Keras model config into a flat list of layers, the one place
 * that rewrites configs for analysis and lowering:
 * - Sequential configs become functional ones (`toFunctional`);
 * - each layer's first inbound node gives its inbound layer names and call
 *   keyword arguments (a tensor in the kwargs, TFOpLambda's `y`, is an extra
 *   input);
 * - nested models (a `Functional`/`Model`/`Sequential` used as a layer, as
 *   Keras transfer learning does: `x = base_model(inputs)`) are inlined: the
 *   nested model's InputLayer is replaced by the tensor that fed it and
 *   references to the nested model become references to its output layer.
 *   Layer names stay as they are (weights are `<inner layer>/<weight>`, as
 *   TensorFlow.js names them; `.h5` files may prefix them with the nested
 *   model's name, which `matchWeights` accepts).
 *
 * Limits (a `ModelFormatError` naming the file, never a stack overflow):
 * models nested more than `MAX_MODEL_NESTING` deep, config values (arrays,
 * objects) nested more than `MAX_CONFIG_DEPTH` deep.
 */
import { ModelFormatError, UnsupportedLayerError } from '../errors.js';
import { isTensorRef, type Cfg } from './config.js';
import type { KerasLayerConfig, KerasModelConfig } from './types.js';

/** Models nested inside models, at most (Keras applications under a head nest 1 deep). */
export const MAX_MODEL_NESTING = 16;
/** Arrays/objects nested inside a model config, at most (a MobileNet config is 8 deep; each nested model adds 4). */
export const MAX_CONFIG_DEPTH = 256;

const NESTED_CLASSES: ReadonlySet<string> = new Set(['Model', 'Functional', 'Sequential']);

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** One layer of a flattened model. */
export interface FlatLayer {
  name: string;
  className: string;
  config: Cfg;
  inbound: string[];
  callKwargs: Cfg;
  /** The inbound node's own tensors (`inbound` without the tensors passed as kwargs). */
  refs: string[];
}

export interface FlatModel {
  name: string;
  layers: FlatLayer[];
  input: string;
  output: string;
  /** Names of the nested models that were inlined (outermost first). */
  nested: string[];
}

/**
 * Throws a ModelFormatError when `value` nests arrays/objects more than
 * `limit` deep. Iterative (any depth is safe), linear in the value's size.
 */
export function checkConfigDepth(value: unknown, file?: string, limit = MAX_CONFIG_DEPTH): void {
  const values: object[] = [];
  const depths: number[] = [];
  if (typeof value === 'object' && value !== null) {
    values.push(value);
    depths.push(0);
  }
  while (values.length > 0) {
    const x = values.pop() as Record<string, unknown>;
    const d = depths.pop() as number;
    if (d >= limit) throw new ModelFormatError(`model config values are nested more than ${limit} deep`, file);
    if (Array.isArray(x)) {
      for (const c of x) {
        if (typeof c === 'object' && c !== null) {
          values.push(c);
          depths.push(d + 1);
        }
      }
    } else {
      for (const k in x) {
        const c = x[k];
        if (typeof c === 'object' && c !== null) {
          values.push(c);
          depths.push(d + 1);
        }
      }
    }
  }
}

function fail(file: string | undefined, message: string): never {
  throw new ModelFormatError(message, file);
}

/**
 * Converts a Keras Sequential config (Keras 2: `config.layers` or the older
 * bare list) into the functional form of `KerasModelConfig`. Functional
 * configs are checked and returned unchanged.
 */
export function toFunctional(modelConfig: unknown, file = 'model config'): KerasModelConfig {
  if (!isObject(modelConfig) || typeof modelConfig.class_name !== 'string') {
    fail(file, 'model config is not an object with a class_name');
  }
  const cls = modelConfig.class_name;
  if (cls !== 'Sequential') {
    const cfg = modelConfig.config;
    if (!isObject(cfg) || !Array.isArray(cfg.layers)) fail(file, `model config of class ${cls} has no layers list`);
    if (!Array.isArray(cfg.input_layers) || !Array.isArray(cfg.output_layers)) {
      fail(file, `model config of class ${cls} has no input_layers/output_layers`);
    }
    for (const [i, l] of (cfg.layers as unknown[]).entries()) {
      if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) {
        fail(file, `layer ${i} of the model config is not {class_name, config}`);
      }
      const name = (l.config as Record<string, unknown>).name ?? l.name;
      if (typeof name !== 'string') fail(file, `layer ${i} (${l.class_name}) of the model config has no name`);
      if (!Array.isArray(l.inbound_nodes)) fail(file, `layer '${name}' of the model config has no inbound_nodes list`);
    }
    return modelConfig as unknown as KerasModelConfig;
  }
  const raw = modelConfig.config;
  const rawLayers = Array.isArray(raw) ? raw : isObject(raw) && Array.isArray(raw.layers) ? raw.layers : null;
  if (rawLayers === null) fail(file, 'Sequential config has no layers list');
  const modelName = isObject(raw) && typeof raw.name === 'string' ? raw.name : 'sequential';
  const layers: KerasLayerConfig[] = [];
  let prev: string | null = null;
  for (const [i, l] of rawLayers.entries()) {
    if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) {
      fail(file, `layer ${i} of the Sequential config is not {class_name, config}`);
    }
    const config = { ...(l.config as Record<string, unknown>) };
    const name = config.name ?? l.name ?? `${l.class_name.toLowerCase()}_${i}`;
    if (typeof name !== 'string') fail(file, `layer ${i} (${l.class_name}) of the Sequential config has no name`);
    config.name = name;
    if (prev === null && l.class_name !== 'InputLayer') {
      const shape = config.batch_input_shape ?? (Array.isArray(config.input_shape) ? [null, ...config.input_shape] : undefined);
      if (!Array.isArray(shape)) fail(file, `first layer '${name}' of the Sequential config has no batch_input_shape`);
      const inputName = `${name}_input`;
      layers.push({
        class_name: 'InputLayer',
        name: inputName,
        config: { name: inputName, batch_input_shape: shape, dtype: config.dtype ?? 'float32', sparse: false },
        inbound_nodes: [],
      });
      prev = inputName;
    }
    layers.push({ class_name: l.class_name, name, config: config as KerasLayerConfig['config'], inbound_nodes: prev === null ? [] : [[[prev, 0, 0, {}]]] });
    prev = name;
  }
  if (prev === null || layers.length === 0) fail(file, 'Sequential config has no layers');
  const first = layers[0] as KerasLayerConfig;
  return {
    class_name: 'Functional',
    config: { name: modelName, layers, input_layers: [[first.config.name, 0, 0]], output_layers: [[prev, 0, 0]] },
  };
}

/** The first inbound node of a layer: inbound layer names and call kwargs. */
function parseInbound(layer: KerasLayerConfig, name: string, file: string | undefined): { inbound: string[]; kwargs: Cfg; refs: string[] } {
  const nodes = layer.inbound_nodes as unknown;
  if (nodes === undefined || nodes === null) return { inbound: [], kwargs: {}, refs: [] };
  if (!Array.isArray(nodes)) fail(file, `layer '${name}': inbound_nodes is not a list`);
  if (nodes.length === 0) return { inbound: [], kwargs: {}, refs: [] };
  if (nodes.length > 1) throw new UnsupportedLayerError(name, layer.class_name, 'a layer called more than once (shared layer)', file);
  let node = nodes[0] as unknown;
  // TFOpLambda (and layers preserving their input structure) store the node unwrapped: [name, 0, 0, kwargs].
  if (isTensorRef(node)) node = [node];
  if (!Array.isArray(node)) fail(file, `layer '${name}': malformed inbound node`);
  const inbound: string[] = [];
  let kwargs: Cfg = {};
  for (const ref of node) {
    if (!isTensorRef(ref)) fail(file, `layer '${name}': malformed inbound tensor`);
    if (ref[2] !== 0) throw new UnsupportedLayerError(name, layer.class_name, `input from output ${ref[2]} of '${ref[0]}' (only single-output layers)`, file);
    inbound.push(ref[0]);
    const k = (ref as unknown[])[3];
    if (isObject(k)) kwargs = { ...kwargs, ...k };
  }
  const refs = [...inbound];
  // A tensor passed as a keyword argument (TFOpLambda `y`) is an extra input.
  for (const value of Object.values(kwargs)) if (isTensorRef(value)) inbound.push(value[0]);
  return { inbound, kwargs, refs };
}

/** [[name, 0, 0]] or (Keras 3 single) [name, 0, 0] → name. */
function endpoint(r: unknown, what: string, names: ReadonlySet<string>, file: string | undefined): string {
  const ref = Array.isArray(r) && r.length === 1 && Array.isArray(r[0]) ? r[0] : Array.isArray(r) && typeof r[0] === 'string' ? r : null;
  if (!isTensorRef(ref)) {
    if (Array.isArray(r) && r.length > 1 && Array.isArray(r[0])) fail(file, `model has ${r.length} ${what}s (only one is supported)`);
    fail(file, `model ${what}_layers is malformed`);
  }
  if (!names.has(ref[0])) fail(file, `model ${what} '${ref[0]}' is not a layer`);
  return ref[0];
}

/**
 * Flattens a model config: Sequential → functional, inbound nodes parsed,
 * nested models inlined (outer layer names and inner ones must not clash).
 * `file` names the model file in errors.
 *
 * @throws ModelFormatError for a malformed config or nesting beyond the limits
 * @throws UnsupportedLayerError for shared layers, multi-output references, nested models with several inputs
 */
export function flattenModel(config: KerasModelConfig, file?: string): FlatModel {
  checkConfigDepth(config, file);
  const taken = new Set<string>();
  const nested: string[] = [];
  const model = flattenInto(config, file, 0, taken, nested);
  return { ...model, nested };
}

function flattenInto(config: KerasModelConfig, file: string | undefined, depth: number, taken: Set<string>, nested: string[]): Omit<FlatModel, 'nested'> {
  if (!isObject(config) || !isObject(config.config) && !Array.isArray(config.config)) fail(file, 'model config has no "config" object');
  const cls = config.class_name;
  if (cls === 'Sequential') config = toFunctional(config, file);
  else if (cls !== 'Model' && cls !== 'Functional') fail(file, `model class ${JSON.stringify(String(cls))} (expected a functional "Model" or "Functional", or "Sequential")`);
  const c = config.config;
  if (!Array.isArray(c.layers) || c.layers.length === 0) fail(file, 'model config has no layers');
  const own = new Set<string>();
  const parsed: FlatLayer[] = c.layers.map((l, i) => {
    if (!isObject(l) || typeof l.class_name !== 'string' || !isObject(l.config)) fail(file, `layer ${i} is malformed`);
    const name = l.name ?? l.config.name;
    if (typeof name !== 'string' || name === '') fail(file, `layer ${i} has no name`);
    if (own.has(name)) fail(file, `two layers are named '${name}'`);
    own.add(name);
    const { inbound, kwargs, refs } = parseInbound(l, name, file);
    return { name, className: l.class_name, config: { ...l.config, name }, inbound, callKwargs: kwargs, refs };
  });
  const input = endpoint(c.input_layers, 'input', own, file);
  const output = endpoint(c.output_layers, 'output', own, file);
  const name = typeof c.name === 'string' ? c.name : 'model';
  const flat: FlatLayer[] = [];
  /** Outer name of a nested model → the layer that now produces its output. */
  const redirect = new Map<string, string>();
  for (const l of parsed) {
    if (!NESTED_CLASSES.has(l.className)) {
      if (depth > 0 && l.name === input) {
        flat.push(l); // replaced by the outer tensor: its name may repeat an outer one
        continue;
      }
      if (taken.has(l.name)) fail(file, `two layers are named '${l.name}' (one in a nested model)`);
      taken.add(l.name);
      flat.push(l);
      continue;
    }
    if (depth + 1 > MAX_MODEL_NESTING) fail(file, `models are nested more than ${MAX_MODEL_NESTING} deep (at '${l.name}')`);
    if (l.inbound.length !== 1) throw new UnsupportedLayerError(l.name, l.className, `a nested model with ${l.inbound.length} inputs (only one)`, file);
    nested.push(l.name);
    const inner = flattenInto({ class_name: l.className, config: l.config as unknown as KerasModelConfig['config'] }, file, depth + 1, taken, nested);
    const source = l.inbound[0] as string;
    const frozen = l.config.trainable === false;
    for (const il of inner.layers) {
      if (il.name === inner.input) continue;
      flat.push({ ...renamed(il, (n) => (n === inner.input ? source : n)), config: frozen ? { ...il.config, trainable: false } : il.config });
    }
    redirect.set(l.name, inner.output === inner.input ? source : inner.output);
  }
  if (redirect.size > 0) {
    // A nested model may feed another: follow the redirections to a real layer.
    const resolve = (n: string): string => {
      let r = n;
      for (let i = 0; redirect.has(r) && i <= redirect.size; i++) r = redirect.get(r) as string;
      return r;
    };
    for (let i = 0; i < flat.length; i++) flat[i] = renamed(flat[i] as FlatLayer, resolve);
    if (redirect.has(input)) fail(file, `model input '${input}' is a nested model`);
    return { name, layers: flat, input, output: resolve(output) };
  }
  return { name, layers: flat, input, output };
}

/** A layer with its input names mapped (inbound, node tensors and tensors in the kwargs). */
function renamed(l: FlatLayer, f: (name: string) => string): FlatLayer {
  let callKwargs = l.callKwargs;
  for (const [k, value] of Object.entries(l.callKwargs)) {
    if (isTensorRef(value) && f(value[0]) !== value[0]) callKwargs = { ...callKwargs, [k]: [f(value[0]), ...value.slice(1)] };
  }
  return { ...l, inbound: l.inbound.map(f), refs: l.refs.map(f), callKwargs };
}

/**
 * The flat functional config of a model (nested models inlined, as
 * `flattenModel` does), for code that edits configs by top-level layers
 * (e.g. cutting a model at its pooling for embeddings).
 */
export function flattenConfig(config: KerasModelConfig, file?: string): KerasModelConfig {
  const m = flattenModel(config, file);
  if (m.nested.length === 0) return config;
  const layers: KerasLayerConfig[] = m.layers.map((l) => ({
    class_name: l.className,
    name: l.name,
    config: l.config as KerasLayerConfig['config'],
    inbound_nodes: l.refs.length === 0 ? [] : [l.refs.map((r) => [r, 0, 0, l.callKwargs] as [string, number, number, Cfg])],
  }));
  return { class_name: 'Functional', config: { name: m.name, layers, input_layers: [[m.input, 0, 0]], output_layers: [[m.output, 0, 0]] } };
}
