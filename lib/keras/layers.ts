/**
 * Keras layer semantics without running anything: for a functional model
 * config, the topological order, every layer's output shape (per sample, no
 * batch), the weights it expects in Keras order and shapes, parameter counts
 * (BatchNorm moving statistics non-trainable, as Keras counts them; every
 * weight of a layer with `trainable: false` non-trainable) and multiply-adds
 * per sample. MACs count Conv2D, DepthwiseConv2D and Dense only, the
 * convention of the published figures (V1 1.0-224: 569M, V2: 300M);
 * pooling, BatchNorm (folded at compile) and elementwise ops count 0.
 *
 * Handles Keras 2.1.4 (`Model`, `Activation('relu6')`), 2.2.4 (nsfwjs),
 * tf.keras 2.x (`Functional`, `TFOpLambda`) configs, and Keras 3 configs
 * already normalized to the Keras 2 form (see `lib/keras/types.ts`).
 */
import { ModelFormatError, UnsupportedLayerError } from '../errors.js';
import * as v from '../validate.js';
import { broadcastShapes } from '../graph.js';
import type { AnalyzedLayer, KerasLayerConfig, KerasModelConfig, ModelAnalysis, WeightSpec } from './types.js';

/** Activation names a layer (`Activation`, or a conv/dense `activation`) may carry. */
export const SUPPORTED_ACTIVATIONS: readonly string[] = [
  'linear', 'relu', 'relu6', 'softmax', 'sigmoid', 'hard_sigmoid', 'hard_swish', 'hard_silu', 'swish', 'silu',
];

/** TFOpLambda functions (elementwise with a scalar or a broadcastable tensor). */
export const SUPPORTED_TFOPS: readonly string[] = [
  '__operators__.add', 'math.add', 'math.multiply', 'math.subtract', 'math.truediv', 'math.divide',
  '__operators__.sub', '__operators__.truediv',
];

/** What one layer does, given its input shapes. */
export interface LayerInference {
  outputShape: number[];
  weights: WeightSpec[];
  macs: number;
}

type Cfg = Record<string, unknown>;

function fail(layer: string, cls: string, detail: string): never {
  throw new UnsupportedLayerError(layer, cls, detail);
}

function pairOf(value: unknown, layer: string, cls: string, key: string, dflt?: [number, number]): [number, number] {
  if (value === undefined || value === null) {
    if (dflt) return dflt;
    fail(layer, cls, `missing ${key}`);
  }
  const arr = typeof value === 'number' ? [value, value] : value;
  if (!Array.isArray(arr) || arr.length !== 2 || !arr.every((d) => Number.isInteger(d) && d > 0)) {
    fail(layer, cls, `${key} must be a positive integer or a pair of them, got ${JSON.stringify(value)}`);
  }
  return [arr[0] as number, arr[1] as number];
}

function positiveInt(value: unknown, layer: string, cls: string, key: string): number {
  if (!Number.isInteger(value) || (value as number) <= 0) fail(layer, cls, `${key} must be a positive integer, got ${JSON.stringify(value)}`);
  return value as number;
}

function checkDataFormat(cfg: Cfg, layer: string, cls: string): void {
  const f = cfg.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') fail(layer, cls, `data_format ${JSON.stringify(f)} (only channels_last)`);
}

function activationOf(cfg: Cfg, layer: string, cls: string): string {
  const a = cfg.activation;
  if (a === undefined || a === null) return 'linear';
  const name = typeof a === 'string' ? a : typeof a === 'object' && a !== null ? ((a as Cfg).config as Cfg | undefined)?.name ?? (a as Cfg).class_name : a;
  if (typeof name !== 'string' || !SUPPORTED_ACTIVATIONS.includes(name)) fail(layer, cls, `activation ${JSON.stringify(a)}`);
  return name;
}

/** Output size of one spatial dimension for Keras padding 'same' / 'valid'. */
export function convOutput(size: number, kernel: number, stride: number, dilation: number, padding: string): number {
  const eff = dilation * (kernel - 1) + 1;
  if (padding === 'same') return Math.ceil(size / stride);
  return Math.floor((size - eff) / stride) + 1;
}

/**
 * TensorFlow's 'same' padding for one dimension: [before, after].
 * Exported for the lowering (Keras 'same' = pad this much, then 'valid').
 */
export function samePadding(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const eff = dilation * (kernel - 1) + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + eff - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

function spatial(shape: readonly number[], layer: string, cls: string): [number, number, number] {
  if (shape.length !== 3) fail(layer, cls, `expects a rank-3 (H, W, C) input, got [${shape.join(', ')}]`);
  return shape as [number, number, number];
}

function paddingMode(cfg: Cfg, layer: string, cls: string): 'same' | 'valid' {
  const p = cfg.padding ?? 'valid';
  if (p !== 'same' && p !== 'valid') fail(layer, cls, `padding ${JSON.stringify(p)}`);
  return p;
}

function spec(layer: string, name: string, shape: number[], trainable: boolean): WeightSpec {
  return { name, fullName: `${layer}/${name}`, shape, trainable };
}

function channelAxisOk(axis: unknown, rank: number): boolean {
  const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis ?? -1;
  return a === -1 || a === rank; // rank includes the batch dim offset: per-sample rank r → batched axis r
}


/** A tensor reference inside call kwargs: [layerName, nodeIndex, tensorIndex]. */
function isTensorRef(x: unknown): x is [string, number, number] {
  return Array.isArray(x) && x.length >= 3 && typeof x[0] === 'string' && Number.isInteger(x[1]) && Number.isInteger(x[2]);
}

/**
 * Shape, weights and MACs of one layer. `inputs` are the per-sample shapes of
 * its inbound tensors; `inputShape` is only used by InputLayer (override).
 */
export function inferLayer(className: string, config: Cfg, inputs: readonly (readonly number[])[], callKwargs: Cfg = {}): LayerInference {
  const name = String(config.name);
  const cls = className;
  const one = (): readonly number[] => {
    if (inputs.length !== 1) fail(name, cls, `expects 1 input, got ${inputs.length}`);
    return inputs[0] as readonly number[];
  };
  const layerTrainable = config.trainable !== false;
  switch (className) {
    case 'InputLayer': {
      const raw = (config.batch_input_shape ?? config.batch_shape) as unknown;
      if (!Array.isArray(raw) || raw.length < 2) fail(name, cls, 'missing batch_input_shape');
      const s = raw.slice(1);
      if (!s.every((d) => Number.isInteger(d) && d > 0)) {
        throw new RangeError(`Expected static input shape for ${name} but received [${s.map((d) => (d === null ? 'None' : String(d))).join(', ')}]: pass inputShape`);
      }
      return { outputShape: s as number[], weights: [], macs: 0 };
    }
    case 'ZeroPadding2D': {
      const [h, w, c] = spatial(one(), name, cls);
      checkDataFormat(config, name, cls);
      const p = config.padding ?? 1;
      let t: number, b: number, l: number, r: number;
      if (typeof p === 'number') [t, b, l, r] = [p, p, p, p];
      else if (Array.isArray(p) && p.length === 2 && typeof p[0] === 'number') [t, b, l, r] = [p[0], p[0], p[1] as number, p[1] as number];
      else if (Array.isArray(p) && p.length === 2 && Array.isArray(p[0]) && Array.isArray(p[1])) [[t, b], [l, r]] = p as [[number, number], [number, number]];
      else fail(name, cls, `padding ${JSON.stringify(p)}`);
      if (![t, b, l, r].every((d) => Number.isInteger(d) && d >= 0)) fail(name, cls, `padding ${JSON.stringify(p)}`);
      return { outputShape: [h + t + b, w + l + r, c], weights: [], macs: 0 };
    }
    case 'Conv2D': {
      const [h, w, c] = spatial(one(), name, cls);
      checkDataFormat(config, name, cls);
      const filters = positiveInt(config.filters, name, cls, 'filters');
      const [kh, kw] = pairOf(config.kernel_size, name, cls, 'kernel_size');
      const [sh, sw] = pairOf(config.strides, name, cls, 'strides', [1, 1]);
      const [dh, dw] = pairOf(config.dilation_rate, name, cls, 'dilation_rate', [1, 1]);
      const groups = config.groups === undefined ? 1 : positiveInt(config.groups, name, cls, 'groups');
      if (c % groups !== 0 || filters % groups !== 0) fail(name, cls, `groups ${groups} must divide ${c} input and ${filters} output channels`);
      const pad = paddingMode(config, name, cls);
      activationOf(config, name, cls);
      const oh = convOutput(h, kh, sh, dh, pad);
      const ow = convOutput(w, kw, sw, dw, pad);
      if (oh <= 0 || ow <= 0) throw new RangeError(`Expected input larger than the kernel for ${name} but received [${h}, ${w}, ${c}]`);
      const weights = [spec(name, 'kernel', [kh, kw, c / groups, filters], layerTrainable)];
      if (config.use_bias !== false) weights.push(spec(name, 'bias', [filters], layerTrainable));
      return { outputShape: [oh, ow, filters], weights, macs: oh * ow * filters * kh * kw * (c / groups) };
    }
    case 'DepthwiseConv2D': {
      const [h, w, c] = spatial(one(), name, cls);
      checkDataFormat(config, name, cls);
      const m = config.depth_multiplier === undefined ? 1 : positiveInt(config.depth_multiplier, name, cls, 'depth_multiplier');
      const [kh, kw] = pairOf(config.kernel_size, name, cls, 'kernel_size');
      const [sh, sw] = pairOf(config.strides, name, cls, 'strides', [1, 1]);
      const [dh, dw] = pairOf(config.dilation_rate, name, cls, 'dilation_rate', [1, 1]);
      const pad = paddingMode(config, name, cls);
      activationOf(config, name, cls);
      const oh = convOutput(h, kh, sh, dh, pad);
      const ow = convOutput(w, kw, sw, dw, pad);
      if (oh <= 0 || ow <= 0) throw new RangeError(`Expected input larger than the kernel for ${name} but received [${h}, ${w}, ${c}]`);
      const weights = [spec(name, 'depthwise_kernel', [kh, kw, c, m], layerTrainable)];
      if (config.use_bias !== false) weights.push(spec(name, 'bias', [c * m], layerTrainable));
      return { outputShape: [oh, ow, c * m], weights, macs: oh * ow * c * m * kh * kw };
    }
    case 'BatchNormalization': {
      const s = one();
      if (s.length === 0) fail(name, cls, 'scalar input');
      if (!channelAxisOk(config.axis, s.length)) fail(name, cls, `axis ${JSON.stringify(config.axis)} (only the last axis)`);
      const c = s[s.length - 1] as number;
      const weights: WeightSpec[] = [];
      if (config.scale !== false) weights.push(spec(name, 'gamma', [c], layerTrainable));
      if (config.center !== false) weights.push(spec(name, 'beta', [c], layerTrainable));
      weights.push(spec(name, 'moving_mean', [c], false), spec(name, 'moving_variance', [c], false));
      return { outputShape: [...s], weights, macs: 0 };
    }
    case 'ReLU': {
      const s = one();
      const slope = config.negative_slope ?? 0;
      const threshold = config.threshold ?? 0;
      if (slope !== 0 || threshold !== 0) fail(name, cls, `negative_slope ${String(slope)} / threshold ${String(threshold)} (only 0)`);
      const max = config.max_value;
      if (max !== undefined && max !== null && !(typeof max === 'number' && max > 0)) fail(name, cls, `max_value ${JSON.stringify(max)}`);
      return { outputShape: [...s], weights: [], macs: 0 };
    }
    case 'Activation': {
      const s = one();
      activationOf(config, name, cls);
      return { outputShape: [...s], weights: [], macs: 0 };
    }
    case 'Softmax': {
      const s = one();
      const axis = config.axis ?? -1;
      if (!(axis === -1 || axis === s.length || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === s.length)))) {
        fail(name, cls, `axis ${JSON.stringify(axis)} (only the last axis)`);
      }
      return { outputShape: [...s], weights: [], macs: 0 };
    }
    case 'Rescaling': {
      const s = one();
      const scale = config.scale ?? 1;
      const offset = config.offset ?? 0;
      if (typeof scale !== 'number' || typeof offset !== 'number') fail(name, cls, 'per-channel scale/offset');
      return { outputShape: [...s], weights: [], macs: 0 };
    }
    case 'Dropout':
    case 'SpatialDropout2D':
    case 'GaussianNoise':
    case 'GaussianDropout':
    case 'AlphaDropout':
      return { outputShape: [...one()], weights: [], macs: 0 };
    case 'Add':
    case 'Multiply':
    case 'Subtract':
    case 'Maximum':
    case 'Minimum':
    case 'Average': {
      if (inputs.length < 2) fail(name, cls, `expects at least 2 inputs, got ${inputs.length}`);
      if (cls === 'Subtract' && inputs.length !== 2) fail(name, cls, 'expects exactly 2 inputs');
      let out: number[] | null = [...(inputs[0] as number[])];
      for (const s of inputs.slice(1)) {
        out = out && broadcastShapes(out, s);
        if (out === null) fail(name, cls, `incompatible input shapes ${inputs.map((x) => `[${x.join(', ')}]`).join(' and ')}`);
      }
      return { outputShape: out as number[], weights: [], macs: 0 };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D': {
      const [, , c] = spatial(one(), name, cls);
      checkDataFormat(config, name, cls);
      return { outputShape: config.keepdims === true ? [1, 1, c] : [c], weights: [], macs: 0 };
    }
    case 'AveragePooling2D':
    case 'MaxPooling2D': {
      const [h, w, c] = spatial(one(), name, cls);
      checkDataFormat(config, name, cls);
      const [ph, pw] = pairOf(config.pool_size, name, cls, 'pool_size', [2, 2]);
      const [sh, sw] = pairOf(config.strides, name, cls, 'strides', [ph, pw]);
      const pad = paddingMode(config, name, cls);
      const oh = convOutput(h, ph, sh, 1, pad);
      const ow = convOutput(w, pw, sw, 1, pad);
      if (oh <= 0 || ow <= 0) throw new RangeError(`Expected input no smaller than the pool for ${name} but received [${h}, ${w}, ${c}]`);
      return { outputShape: [oh, ow, c], weights: [], macs: 0 };
    }
    case 'Flatten': {
      const s = one();
      return { outputShape: [v.product(s)], weights: [], macs: 0 };
    }
    case 'Reshape': {
      const s = one();
      const target = config.target_shape;
      if (!Array.isArray(target) || target.length === 0) fail(name, cls, `target_shape ${JSON.stringify(target)}`);
      const total = v.product(s);
      const unknown = target.filter((d) => d === -1 || d === null).length;
      if (unknown > 1 || !target.every((d) => d === -1 || d === null || (Number.isInteger(d) && d > 0))) {
        fail(name, cls, `target_shape ${JSON.stringify(target)}`);
      }
      const known = v.product(target.filter((d) => d !== -1 && d !== null) as number[]);
      const out = target.map((d) => (d === -1 || d === null ? total / known : d)) as number[];
      if (!out.every((d) => Number.isInteger(d)) || v.product(out) !== total) {
        throw new RangeError(`Expected target_shape with ${total} elements for ${name} but received ${JSON.stringify(target)}`);
      }
      return { outputShape: out, weights: [], macs: 0 };
    }
    case 'Dense': {
      const s = one();
      if (s.length === 0) fail(name, cls, 'scalar input');
      const units = positiveInt(config.units, name, cls, 'units');
      activationOf(config, name, cls);
      const inC = s[s.length - 1] as number;
      const weights = [spec(name, 'kernel', [inC, units], layerTrainable)];
      if (config.use_bias !== false) weights.push(spec(name, 'bias', [units], layerTrainable));
      return { outputShape: [...s.slice(0, -1), units], weights, macs: (v.product(s) / inC) * inC * units };
    }
    case 'TFOpLambda': {
      const fn = config.function;
      if (typeof fn !== 'string' || !SUPPORTED_TFOPS.includes(fn)) fail(name, cls, `function ${JSON.stringify(fn)}`);
      const y = callKwargs.y;
      if (typeof y === 'number') return { outputShape: [...one()], weights: [], macs: 0 };
      if (isTensorRef(y)) {
        if (inputs.length !== 2) fail(name, cls, 'expects 2 inputs');
        const out = broadcastShapes(inputs[0] as number[], inputs[1] as number[]);
        if (out === null) fail(name, cls, 'incompatible input shapes');
        return { outputShape: out, weights: [], macs: 0 };
      }
      return fail(name, cls, `operand y ${JSON.stringify(y)} (only a number or a tensor)`);
    }
    default:
      return fail(name, cls, 'no implementation for this layer class');
  }
}

/** Parameter counts of a weight list. */
export function countParams(weights: readonly WeightSpec[]): { total: number; trainable: number } {
  let total = 0;
  let trainable = 0;
  for (const w of weights) {
    const n = v.product(w.shape);
    total += n;
    if (w.trainable) trainable += n;
  }
  return { total, trainable };
}

interface NormalizedLayer {
  name: string;
  className: string;
  config: Cfg;
  inbound: string[];
  callKwargs: Cfg;
}

/** The first inbound node of a layer: inbound layer names and call kwargs. */
function parseInbound(layer: KerasLayerConfig, name: string): { inbound: string[]; kwargs: Cfg } {
  const nodes = layer.inbound_nodes as unknown;
  if (nodes === undefined || nodes === null) return { inbound: [], kwargs: {} };
  if (!Array.isArray(nodes)) throw new ModelFormatError(`layer '${name}': inbound_nodes is not a list`);
  if (nodes.length === 0) return { inbound: [], kwargs: {} };
  if (nodes.length > 1) throw new UnsupportedLayerError(name, layer.class_name, 'a layer called more than once (shared layer)');
  let node = nodes[0] as unknown;
  // TFOpLambda (and layers preserving their input structure) store the node unwrapped: [name, 0, 0, kwargs].
  if (isTensorRef(node)) node = [node];
  if (!Array.isArray(node)) throw new ModelFormatError(`layer '${name}': malformed inbound node ${JSON.stringify(node)}`);
  const inbound: string[] = [];
  let kwargs: Cfg = {};
  for (const ref of node) {
    if (!isTensorRef(ref)) throw new ModelFormatError(`layer '${name}': malformed inbound tensor ${JSON.stringify(ref)}`);
    if (ref[2] !== 0) throw new UnsupportedLayerError(name, layer.class_name, `input from output ${ref[2]} of '${ref[0]}' (only single-output layers)`);
    inbound.push(ref[0]);
    const k = (ref as unknown[])[3];
    if (k && typeof k === 'object' && !Array.isArray(k)) kwargs = { ...kwargs, ...(k as Cfg) };
  }
  // A tensor passed as a keyword argument (TFOpLambda `y`) is an extra input.
  for (const value of Object.values(kwargs)) if (isTensorRef(value)) inbound.push(value[0]);
  return { inbound, kwargs };
}

function normalize(config: KerasModelConfig): { layers: NormalizedLayer[]; input: string; output: string; name: string } {
  if (typeof config !== 'object' || config === null || typeof config.config !== 'object' || config.config === null) {
    throw new ModelFormatError('model config has no "config" object');
  }
  const cls = config.class_name;
  if (cls !== 'Model' && cls !== 'Functional') {
    throw new ModelFormatError(`model class ${JSON.stringify(cls)} (expected a functional "Model" or "Functional")`);
  }
  const c = config.config;
  if (!Array.isArray(c.layers) || c.layers.length === 0) throw new ModelFormatError('model config has no layers');
  const seen = new Set<string>();
  const layers: NormalizedLayer[] = c.layers.map((l, i) => {
    if (typeof l !== 'object' || l === null || typeof l.class_name !== 'string' || typeof l.config !== 'object' || l.config === null) {
      throw new ModelFormatError(`layer ${i} is malformed`);
    }
    const name = l.name ?? l.config.name;
    if (typeof name !== 'string' || name === '') throw new ModelFormatError(`layer ${i} has no name`);
    if (seen.has(name)) throw new ModelFormatError(`two layers are named '${name}'`);
    seen.add(name);
    const { inbound, kwargs } = parseInbound(l, name);
    return { name, className: l.class_name, config: { ...l.config, name }, inbound, callKwargs: kwargs };
  });
  const ins = c.input_layers;
  const outs = c.output_layers;
  const refName = (r: unknown, what: string): string => {
    // [[name, 0, 0]] or (Keras 3 single) [name, 0, 0]
    const ref = Array.isArray(r) && r.length === 1 && Array.isArray(r[0]) ? r[0] : Array.isArray(r) && typeof r[0] === 'string' ? r : null;
    if (!isTensorRef(ref)) {
      if (Array.isArray(r) && r.length > 1 && Array.isArray(r[0])) throw new ModelFormatError(`model has ${r.length} ${what}s (only one is supported)`);
      throw new ModelFormatError(`model ${what}_layers is malformed: ${JSON.stringify(r)}`);
    }
    if (!seen.has(ref[0])) throw new ModelFormatError(`model ${what} '${ref[0]}' is not a layer`);
    return ref[0];
  };
  const input = refName(ins, 'input');
  const output = refName(outs, 'output');
  // A functional model used as a layer (e.g. a MobileNet base under a new head):
  // its layers are inlined, its InputLayer replaced by the outer inbound tensor.
  if (!layers.some((l) => l.className === 'Functional' || l.className === 'Model')) {
    return { layers, input, output, name: typeof c.name === 'string' ? c.name : 'model' };
  }
  const flat: NormalizedLayer[] = [];
  const redirect = new Map<string, string>();
  const all = new Set(seen);
  for (const l of layers) {
    if (l.className !== 'Functional' && l.className !== 'Model') {
      flat.push(l);
      continue;
    }
    if (l.inbound.length !== 1) throw new UnsupportedLayerError(l.name, l.className, `a nested model with ${l.inbound.length} inputs`);
    const inner = normalize({ class_name: l.className, config: l.config as unknown as KerasModelConfig['config'] });
    const source = l.inbound[0] as string;
    for (const il of inner.layers) {
      if (il.name === inner.input) continue;
      if (all.has(il.name)) throw new ModelFormatError(`layer '${il.name}' of nested model '${l.name}' has the name of another layer`);
      all.add(il.name);
      const config = l.config.trainable === false ? { ...il.config, trainable: false } : il.config;
      flat.push({ ...il, config, inbound: il.inbound.map((n) => (n === inner.input ? source : n)) });
    }
    redirect.set(l.name, inner.output);
  }
  for (const l of flat) l.inbound = l.inbound.map((n) => redirect.get(n) ?? n);
  if (redirect.has(input)) throw new ModelFormatError(`model input '${input}' is a nested model`);
  return { layers: flat, input, output: redirect.get(output) ?? output, name: typeof c.name === 'string' ? c.name : 'model' };
}

/** Orders layers so each comes after its inbound layers, keeping the config's order where it already is one. */
function topoSort(layers: NormalizedLayer[]): NormalizedLayer[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const l of layers) {
    for (const i of l.inbound) if (!byName.has(i)) throw new ModelFormatError(`layer '${l.name}' takes input from unknown layer '${i}'`);
  }
  const done = new Set<string>();
  const out: NormalizedLayer[] = [];
  // Repeated passes in config order: O(n) when already ordered.
  let remaining = layers;
  while (remaining.length > 0) {
    const next: NormalizedLayer[] = [];
    for (const l of remaining) {
      if (l.inbound.every((i) => done.has(i))) {
        out.push(l);
        done.add(l.name);
      } else next.push(l);
    }
    if (next.length === remaining.length) {
      throw new ModelFormatError(`the model graph has a cycle through layer '${(next[0] as NormalizedLayer).name}'`);
    }
    remaining = next;
  }
  return out;
}

/**
 * Analyzes a functional model config. `opts.inputShape` (per sample, e.g.
 * [160, 160, 3]) replaces the input layer's shape (needed when it has None
 * dimensions).
 *
 * @throws UnsupportedLayerError for a layer class or option that cannot run
 * @throws ModelFormatError for a malformed config
 * @throws RangeError for shapes that do not fit (input too small, ...)
 */
export function analyzeModel(config: KerasModelConfig, opts: { inputShape?: readonly number[] } = {}): ModelAnalysis {
  const override = opts.inputShape === undefined ? undefined : v.shape(opts.inputShape, 'inputShape', 3);
  const model = normalize(config);
  const ordered = topoSort(model.layers);
  const shapes = new Map<string, number[]>();
  const analyzed: AnalyzedLayer[] = [];
  let total = 0;
  let trainable = 0;
  let macs = 0;
  let inputCount = 0;
  for (const l of ordered) {
    let inf: LayerInference;
    if (l.className === 'InputLayer') {
      inputCount++;
      if (inputCount > 1) throw new ModelFormatError(`model has more than one InputLayer ('${l.name}')`);
      inf = override !== undefined ? { outputShape: [...override], weights: [], macs: 0 } : inferLayer(l.className, l.config, []);
    } else {
      if (l.inbound.length === 0) throw new ModelFormatError(`layer '${l.name}' has no inbound node`);
      inf = inferLayer(l.className, l.config, l.inbound.map((i) => shapes.get(i) as number[]), l.callKwargs);
    }
    shapes.set(l.name, inf.outputShape);
    const p = countParams(inf.weights);
    total += p.total;
    trainable += p.trainable;
    macs += inf.macs;
    analyzed.push({
      name: l.name,
      className: l.className,
      config: l.config,
      inbound: l.inbound,
      callKwargs: l.callKwargs,
      outputShape: inf.outputShape,
      weights: inf.weights,
      params: p.total,
      macs: inf.macs,
    });
  }
  const inputLayer = analyzed.find((l) => l.name === model.input);
  if (inputLayer === undefined || inputLayer.className !== 'InputLayer') {
    throw new ModelFormatError(`model input '${model.input}' is not an InputLayer`);
  }
  return {
    name: model.name,
    layers: analyzed,
    inputLayer: model.input,
    outputLayer: model.output,
    inputShape: [...inputLayer.outputShape],
    outputShape: [...(shapes.get(model.output) as number[])],
    totalParams: total,
    trainableParams: trainable,
    nonTrainableParams: total - trainable,
    macs,
  };
}
