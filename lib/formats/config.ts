/**
 * Model config normalization shared by the readers: any Keras model config
 * (Keras 2 Model/Functional/Sequential, Keras 3 Functional/Sequential as
 * written in `.keras` `config.json` and in Keras 3's legacy `.h5`
 * `model_config`) → the Keras 2 functional form of `lib/keras/types.ts`.
 * Used by `./h5.ts` and `./keras3.ts` (which therefore do not import each
 * other both ways).
 */
import { ModelFormatError, UnsupportedLayerError } from '../errors.js';
import type { KerasLayerConfig, KerasModelConfig } from '../keras/types.js';
import { jsonDepthProblem } from './files.js';
import { toFunctional } from './tfjs.js';

export const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Is this serialized layer a Keras 3 operation on tensors (`keras.src.ops.numpy.Add`), not a layer? */
export function isK3Op(l: unknown): boolean {
  return isObject(l) && typeof l.module === 'string' && /^keras(\.src)?\.ops(\.|$)/.test(l.module);
}


const K3_OP_TO_TFOP: Record<string, string> = {
  Add: '__operators__.add',
  Multiply: 'math.multiply',
  Subtract: 'math.subtract',
  Divide: 'math.truediv',
  TrueDivide: 'math.truediv',
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
    if (nodes.length !== 1 || !isObject(nodes[0])) throw new UnsupportedLayerError(name, `${String(l.module)}.${l.class_name}`, 'an operation used more than once', file);
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
    throw new UnsupportedLayerError(name, `${String(l.module)}.${l.class_name}`, `operation with ${tensors.length} tensor(s) and ${values.length} other argument(s)`, file);
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
      throw new UnsupportedLayerError(name, l.class_name, "Keras 3 'hard_sigmoid' activation inside a layer (only as an Activation layer)", file);
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
  // The depth limit first (iterative): the conversions below recurse over the value.
  const deep = jsonDepthProblem(json);
  if (deep !== null) throw new ModelFormatError(`model config: ${deep}`, file);
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

