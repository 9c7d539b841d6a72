/**
 * The Keras layer registry: one entry per layer class with
 * - `infer`: its output shape (per sample), the weights it expects (Keras
 *   order and shapes) and its multiply-adds, from its input shapes; it
 *   throws `UnsupportedLayerError` for every option the lowering cannot run,
 *   so that whatever analysis accepts also lowers;
 * - `lower`: its translation into lowered nodes (`./nodes.ts`), e.g. Conv2D
 *   HWIO → OHWI, BatchNormalization as a per-channel affine `y = x * s + t`,
 *   ReLU as a clamp, ZeroPadding2D as a pad.
 *
 * `analyzeModel` (`./layers.ts`) uses `infer`; `lowerModel` (`./lower.ts`)
 * uses `lower`. The README's list of supported layers is generated from here
 * (`supportedLayersMarkdown`, checked by test/keras-registry.test.ts).
 */
import { broadcastShapes } from '../graph.js';
import { MAX_DIM } from '../schema.js';
import * as v from '../validate.js';
import { SUPPORTED_ACTIVATIONS, activationOf, lowerActivation } from './activations.js';
import {
  checkDataFormat, convOutput, fail, isTensorRef, lastAxis, pairOf, paddingMode, positiveInt, samePadding, scalarOrPerChannel, show, spatial,
  zeroPadding, type Cfg,
} from './config.js';
import { UNBOUNDED, type LConv, type LNode, type NodeBuilder } from './nodes.js';
import type { AnalyzedLayer, WeightSpec } from './types.js';
import { ModelFormatError, UnsupportedLayerError } from '../errors.js';
import { CHUNK, float32ArraySteps, runSteps, type Steps } from '../cooperative.js';

/** What one layer does, given its input shapes. */
export interface LayerInference {
  outputShape: number[];
  weights: WeightSpec[];
  macs: number;
}

/** The arguments of `infer`. */
export interface InferArgs {
  name: string;
  cls: string;
  config: Cfg;
  /** Per-sample shapes of the inbound tensors. */
  inputs: readonly (readonly number[])[];
  /** Keyword arguments of the call (TFOpLambda `y`). */
  kwargs: Cfg;
  /** The model file, for messages (undefined: a config object or a built architecture). */
  file?: string | undefined;
}

export interface LayerEntry {
  infer(a: InferArgs): LayerInference;
  lower(layer: AnalyzedLayer, b: NodeBuilder): LNode;
  /** `lower` in steps (lib/cooperative.ts), for layers whose weights take long to transform. */
  lowerSteps?(layer: AnalyzedLayer, b: NodeBuilder): Steps<LNode>;
  /** README note after the class name (e.g. the options it supports). */
  note?: string;
}

/** TFOpLambda functions: elementwise with a scalar y, or with a broadcastable tensor y (only those in TENSOR_TFOPS). */
export const SUPPORTED_TFOPS: readonly string[] = [
  '__operators__.add', 'math.add', 'math.multiply', 'math.subtract', 'math.truediv', 'math.divide',
  '__operators__.sub', '__operators__.truediv',
];
const TENSOR_TFOPS: ReadonlySet<string> = new Set(['__operators__.add', 'math.add', 'math.multiply', 'math.subtract', '__operators__.sub']);

const none = (outputShape: readonly number[]): LayerInference => ({ outputShape: [...outputShape], weights: [], macs: 0 });

function one(a: InferArgs): readonly number[] {
  if (a.inputs.length !== 1) fail(a.name, a.cls, `expects 1 input, got ${a.inputs.length}`);
  return a.inputs[0] as readonly number[];
}

function spec(layer: string, name: string, shape: number[], trainable: boolean): WeightSpec {
  return { name, fullName: `${layer}/${name}`, shape, trainable };
}

const trainable = (a: InferArgs): boolean => a.config.trainable !== false;

// ---------------------------------------------------------------- convolutions

interface ConvGeometry {
  h: number;
  w: number;
  c: number;
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  padding: 'same' | 'valid';
  oh: number;
  ow: number;
}

/** `3x3`, a kernel's or an input's height x width. */
const hw = (h: number, w: number): string => `${h}x${w}`;

/** `a 3x3`, `an 8x8`, `an 11x11`: the article as the height is spoken (eight, eleven, eighteen, eighty, eleven thousand, ...). */
const aHw = (h: number, w: number): string => `${/^(8|1[18](\d{3})*$)/.test(String(h)) ? 'an' : 'a'} ${hw(h, w)}`;

/** What a too-small input can do about it (the same words as the InputLayer's missing shape). */
const LARGER_INPUT = 'pass a larger input shape (inputShape; --input-size on the command line)';

function convGeometry(cfg: Cfg, input: readonly number[], name: string, cls: string, file: string | undefined): ConvGeometry {
  const [h, w, c] = spatial(input, name, cls);
  checkDataFormat(cfg, name, cls);
  const kernel = pairOf(cfg.kernel_size, name, cls, 'kernel_size');
  const stride = pairOf(cfg.strides, name, cls, 'strides', [1, 1]);
  const dilation = pairOf(cfg.dilation_rate, name, cls, 'dilation_rate', [1, 1]);
  const padding = paddingMode(cfg, name, cls);
  activationOf(cfg, name, cls);
  const oh = convOutput(h, kernel[0], stride[0], dilation[0], padding);
  const ow = convOutput(w, kernel[1], stride[1], dilation[1], padding);
  if (oh <= 0 || ow <= 0) {
    // Only 'valid' padding gets here: the (dilated) kernel is larger than the input in one dimension.
    const dilated = dilation[0] * dilation[1] === 1 ? '' : ` with dilation ${hw(...dilation)} (${hw(dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)})`;
    throw new ModelFormatError(`${cls} layer '${name}' has ${aHw(...kernel)} kernel${dilated} larger than its ${hw(h, w)} input: ${LARGER_INPUT}`, file);
  }
  return { h, w, c, kernel, stride, dilation, padding, oh, ow };
}

/** [top, right, bottom, left] (the graph's order) of a conv's 'same'/'valid' padding. */
function graphPadding(g: ConvGeometry): [number, number, number, number] {
  if (g.padding === 'valid') return [0, 0, 0, 0];
  const [t, b] = samePadding(g.h, g.kernel[0], g.stride[0], g.dilation[0]);
  const [l, r] = samePadding(g.w, g.kernel[1], g.stride[1], g.dilation[1]);
  return [t, r, b, l];
}

const conv2d: LayerEntry = {
  infer(a) {
    const g = convGeometry(a.config, one(a), a.name, a.cls, a.file);
    const filters = positiveInt(a.config.filters, a.name, a.cls, 'filters');
    const groups = a.config.groups === undefined ? 1 : positiveInt(a.config.groups, a.name, a.cls, 'groups');
    if (g.c % groups !== 0 || filters % groups !== 0) fail(a.name, a.cls, `groups ${groups} must divide ${g.c} input and ${filters} output channels`);
    const weights = [spec(a.name, 'kernel', [...g.kernel, g.c / groups, filters], trainable(a))];
    if (a.config.use_bias !== false) weights.push(spec(a.name, 'bias', [filters], trainable(a)));
    return { outputShape: [g.oh, g.ow, filters], weights, macs: g.oh * g.ow * filters * g.kernel[0] * g.kernel[1] * (g.c / groups) };
  },
  lower(layer, b) {
    return runSteps(conv2dSteps(layer, b));
  },
  lowerSteps: (layer, b) => conv2dSteps(layer, b),
};

function* conv2dSteps(layer: AnalyzedLayer, b: NodeBuilder): Steps<LNode> {
  const x = b.input(layer);
  const g = convGeometry(layer.config, x.shape, layer.name, layer.className, b.file);
  const kernelT = b.weight(layer, 'kernel');
  const [kh, kw, gin, cout] = kernelT.shape as [number, number, number, number];
  // HWIO → OHWI: a [kh*kw*gin, cout] → [cout, kh*kw*gin] transpose when read as 2-D.
  const filter = yield* transposeSteps(kernelT.data, kh * kw * gin, cout);
  const bias = b.optionalWeight(layer, 'bias');
  const shape = [...layer.outputShape];
  const node = b.add<LConv>({
    kind: 'conv', name: layer.name, inputs: [x], shape, filter, bias: bias && new Float32Array(bias.data), outChannels: cout, kernel: [kh, kw],
    stride: g.stride, dilation: g.dilation, padding: graphPadding(g), groups: g.c / gin, depthMultiplier: 1, ...UNBOUNDED,
  });
  return lowerActivation(b, activationOf(layer.config, layer.name, layer.className), layer.name, node, shape);
}

/** [rows, cols] → [cols, rows], in cache-sized blocks; yields every `CHUNK` values or so. */
function* transposeSteps(src: Float32Array, rows: number, cols: number): Steps<Float32Array> {
  const out = yield* float32ArraySteps(src.length);
  const B = 32;
  let since = 0;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(r0 + B, rows);
    for (let o0 = 0; o0 < cols; o0 += B) {
      const o1 = Math.min(o0 + B, cols);
      for (let o = o0; o < o1; o++) {
        const ob = o * rows;
        for (let r = r0; r < r1; r++) out[ob + r] = src[r * cols + o] as number;
      }
    }
    since += (r1 - r0) * cols;
    if (since >= CHUNK) {
      since = 0;
      yield;
    }
  }
  return out;
}

const depthwiseConv2d: LayerEntry = {
  infer(a) {
    const g = convGeometry(a.config, one(a), a.name, a.cls, a.file);
    const m = a.config.depth_multiplier === undefined ? 1 : positiveInt(a.config.depth_multiplier, a.name, a.cls, 'depth_multiplier');
    const weights = [spec(a.name, 'depthwise_kernel', [...g.kernel, g.c, m], trainable(a))];
    if (a.config.use_bias !== false) weights.push(spec(a.name, 'bias', [g.c * m], trainable(a)));
    return { outputShape: [g.oh, g.ow, g.c * m], weights, macs: g.oh * g.ow * g.c * m * g.kernel[0] * g.kernel[1] };
  },
  lower(layer, b) {
    const x = b.input(layer);
    const g = convGeometry(layer.config, x.shape, layer.name, layer.className, b.file);
    const kernelT = b.weight(layer, 'depthwise_kernel');
    const m = kernelT.shape[3] as number;
    const bias = b.optionalWeight(layer, 'bias');
    const shape = [...layer.outputShape];
    const node = b.add<LConv>({
      kind: 'dw', name: layer.name, inputs: [x], shape, filter: new Float32Array(kernelT.data), bias: bias && new Float32Array(bias.data),
      outChannels: g.c * m, kernel: g.kernel, stride: g.stride, dilation: g.dilation, padding: graphPadding(g), groups: 1, depthMultiplier: m, ...UNBOUNDED,
    });
    return lowerActivation(b, activationOf(layer.config, layer.name, layer.className), layer.name, node, shape);
  },
};

const dense: LayerEntry = {
  infer(a) {
    const s = one(a);
    if (s.length === 0) fail(a.name, a.cls, 'scalar input');
    const units = positiveInt(a.config.units, a.name, a.cls, 'units');
    activationOf(a.config, a.name, a.cls);
    const inC = s[s.length - 1] as number;
    const weights = [spec(a.name, 'kernel', [inC, units], trainable(a))];
    if (a.config.use_bias !== false) weights.push(spec(a.name, 'bias', [units], trainable(a)));
    return { outputShape: [...s.slice(0, -1), units], weights, macs: (v.product(s) / inC) * inC * units };
  },
  lower(layer, b) {
    return runSteps(denseSteps(layer, b));
  },
  lowerSteps: (layer, b) => denseSteps(layer, b),
};

function* denseSteps(layer: AnalyzedLayer, b: NodeBuilder): Steps<LNode> {
  const x = b.input(layer);
  const k = b.weight(layer, 'kernel');
  const [nin, nout] = k.shape as [number, number];
  const filter = yield* transposeSteps(k.data, nin, nout);
  const bias = b.optionalWeight(layer, 'bias');
  const shape = [...layer.outputShape];
  const node = b.add<LConv>({
    kind: 'fc', name: layer.name, inputs: [x], shape, filter, bias: bias && new Float32Array(bias.data), outChannels: nout, kernel: [1, 1],
    stride: [1, 1], dilation: [1, 1], padding: [0, 0, 0, 0], groups: 1, depthMultiplier: 1, ...UNBOUNDED,
  });
  return lowerActivation(b, activationOf(layer.config, layer.name, layer.className), layer.name, node, shape);
}

// ---------------------------------------------------------------- normalization, activations

const batchNormalization: LayerEntry = {
  infer(a) {
    const s = one(a);
    if (s.length === 0) fail(a.name, a.cls, 'scalar input');
    if (!lastAxis(a.config.axis, s.length)) fail(a.name, a.cls, `axis ${show(a.config.axis)} (only the last axis)`);
    bnEpsilon(a.config, a.name, a.cls);
    const c = s[s.length - 1] as number;
    const weights: WeightSpec[] = [];
    if (a.config.scale !== false) weights.push(spec(a.name, 'gamma', [c], trainable(a)));
    if (a.config.center !== false) weights.push(spec(a.name, 'beta', [c], trainable(a)));
    weights.push(spec(a.name, 'moving_mean', [c], false), spec(a.name, 'moving_variance', [c], false));
    return { outputShape: [...s], weights, macs: 0 };
  },
  lower(layer, b) {
    const x = b.input(layer);
    const eps = bnEpsilon(layer.config, layer.name, layer.className);
    const mean = b.weight(layer, 'moving_mean').data;
    const variance = b.weight(layer, 'moving_variance').data;
    const gamma = b.optionalWeight(layer, 'gamma')?.data ?? null;
    const beta = b.optionalWeight(layer, 'beta')?.data ?? null;
    const n = mean.length;
    const scale = new Float32Array(n);
    const shift = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      // A negative variance (a corrupt file) would make every output NaN.
      const v = (variance[i] as number) + eps;
      if (!(v > 0)) {
        throw b.mismatch(`Weight ${layer.name}/moving_variance holds ${variance[i]} at index ${i}: variance + epsilon (${eps}) must be > 0`);
      }
      // Computed in double, as one multiply-add per element at run time.
      const s = (gamma ? (gamma[i] as number) : 1) / Math.sqrt(v);
      scale[i] = s;
      shift[i] = (beta ? (beta[i] as number) : 0) - (mean[i] as number) * s;
      if (!Number.isFinite(scale[i] as number) || !Number.isFinite(shift[i] as number)) {
        throw b.mismatch(
          `Weights of ${layer.name} at index ${i} (gamma ${gamma?.[i] ?? 1}, beta ${beta?.[i] ?? 0}, moving_mean ${mean[i]}, moving_variance ${variance[i]}) ` +
            `normalize to scale ${scale[i]}, shift ${shift[i]}: not finite in float32`,
        );
      }
    }
    return b.affine(layer.name, x, [...layer.outputShape], scale, shift);
  },
};

/** BatchNormalization's epsilon (Keras default 1e-3): a finite number >= 0. */
function bnEpsilon(cfg: Cfg, name: string, cls: string): number {
  const eps = cfg.epsilon ?? 1e-3;
  if (!(typeof eps === 'number' && Number.isFinite(eps) && eps >= 0)) fail(name, cls, `epsilon ${typeof eps === 'number' ? String(eps) : show(eps)} (must be a finite number >= 0)`);
  return eps;
}

function reluMax(cfg: Cfg, name: string, cls: string): number {
  const slope = cfg.negative_slope ?? 0;
  const threshold = cfg.threshold ?? 0;
  if (slope !== 0) fail(name, cls, `negative_slope ${show(slope)} (only 0)`);
  if (threshold !== 0) fail(name, cls, `threshold ${show(threshold)} (only 0)`);
  const max = cfg.max_value;
  if (max === undefined || max === null) return Infinity;
  if (!(typeof max === 'number' && max > 0)) fail(name, cls, `max_value ${show(max)}`);
  return max;
}

const relu: LayerEntry = {
  infer(a) {
    reluMax(a.config, a.name, a.cls);
    return none(one(a));
  },
  lower(layer, b) {
    const max = reluMax(layer.config, layer.name, layer.className);
    return b.add({ kind: 'clamp', name: layer.name, inputs: [b.input(layer)], shape: [...layer.outputShape], min: 0, max });
  },
};

const activation: LayerEntry = {
  infer(a) {
    activationOf(a.config, a.name, a.cls);
    return none(one(a));
  },
  lower(layer, b) {
    return lowerActivation(b, activationOf(layer.config, layer.name, layer.className), layer.name, b.input(layer), [...layer.outputShape]);
  },
  note: 'activations listed below',
};

const softmax: LayerEntry = {
  infer(a) {
    const s = one(a);
    if (!lastAxis(a.config.axis, s.length)) fail(a.name, a.cls, `axis ${show(a.config.axis)} (only the last axis)`);
    return none(s);
  },
  lower(layer, b) {
    return b.add({ kind: 'softmax', name: layer.name, inputs: [b.input(layer)], shape: [...layer.outputShape] });
  },
  note: 'last axis',
};

function rescaleParams(cfg: Cfg, shape: readonly number[], name: string, cls: string): { scale: Float32Array; offset: Float32Array } {
  const c = shape.length === 0 ? 1 : (shape[shape.length - 1] as number);
  return {
    scale: scalarOrPerChannel(cfg.scale ?? 1, c, name, cls, 'scale'),
    offset: scalarOrPerChannel(cfg.offset ?? 0, c, name, cls, 'offset'),
  };
}

const rescaling: LayerEntry = {
  infer(a) {
    const s = one(a);
    rescaleParams(a.config, s, a.name, a.cls);
    return none(s);
  },
  lower(layer, b) {
    const x = b.input(layer);
    const { scale, offset } = rescaleParams(layer.config, x.shape, layer.name, layer.className);
    const shape = [...layer.outputShape];
    // Keras computes x * scale + offset as two float32 operations: keep them separate (no FMA folding).
    const m = scale.length === 1 && scale[0] === 1 ? x : b.affine(layer.name, x, shape, scale, null);
    return offset.length === 1 && offset[0] === 0 ? m : b.affine(layer.name, m, shape, null, offset);
  },
  note: 'scale and offset scalar or per channel',
};

const identity: LayerEntry = {
  infer: (a) => none(one(a)),
  lower: (layer, b) => b.input(layer),
  note: 'identity at inference',
};

// ---------------------------------------------------------------- merges

function mergeShape(a: InferArgs): number[] {
  if (a.inputs.length < 2) fail(a.name, a.cls, `expects at least 2 inputs, got ${a.inputs.length}`);
  let out: number[] | null = [...(a.inputs[0] as number[])];
  for (const s of a.inputs.slice(1)) {
    out = out && broadcastShapes(out, s);
    if (out === null) fail(a.name, a.cls, `incompatible input shapes ${a.inputs.map((x) => `[${x.join(', ')}]`).join(' and ')}`);
  }
  return out as number[];
}

/** Folds the inputs left to right with `step(acc, next, shape)`. */
function fold(layer: AnalyzedLayer, b: NodeBuilder, step: (acc: LNode, next: LNode, shape: number[]) => LNode): LNode {
  let acc = b.input(layer, 0);
  for (let i = 1; i < layer.inbound.length; i++) {
    const next = b.input(layer, i);
    const shape = i === layer.inbound.length - 1 ? [...layer.outputShape] : (broadcastShapes(acc.shape, next.shape) as number[]);
    acc = step(acc, next, shape);
  }
  return acc;
}

const merge = (kind: 'add' | 'multiply'): LayerEntry => ({
  infer: (a) => none(mergeShape(a)),
  lower: (layer, b) => fold(layer, b, (acc, next, shape) => b.binary(kind, layer.name, acc, next, shape)),
});

const negate = (b: NodeBuilder, name: string, x: LNode): LNode => b.affine(name, x, [...x.shape], Float32Array.of(-1), null);

const subtract: LayerEntry = {
  infer(a) {
    if (a.inputs.length !== 2) fail(a.name, a.cls, 'expects exactly 2 inputs');
    return none(mergeShape(a));
  },
  lower(layer, b) {
    const neg = negate(b, layer.name, b.input(layer, 1));
    return b.binary('add', layer.name, b.input(layer, 0), neg, [...layer.outputShape]);
  },
};

const average: LayerEntry = {
  infer: (a) => none(mergeShape(a)),
  lower(layer, b) {
    const sum = fold(layer, b, (acc, next, shape) => b.binary('add', layer.name, acc, next, shape));
    return b.affine(layer.name, sum, [...layer.outputShape], Float32Array.of(1 / layer.inbound.length), null);
  },
};

/**
 * Maximum and Minimum, from the ops every XNNPACK has: max(a, b) = a + relu(b - a),
 * min(a, b) = a - relu(a - b) (exact but for one float32 rounding of the difference).
 */
const extremum = (kind: 'max' | 'min'): LayerEntry => ({
  infer: (a) => none(mergeShape(a)),
  lower: (layer, b) =>
    fold(layer, b, (acc, next, shape) => {
      const name = layer.name;
      if (kind === 'max') {
        const d = b.binary('add', name, next, negate(b, name, acc), shape, { min: 0, max: Infinity });
        return b.binary('add', name, acc, d, shape);
      }
      const d = b.binary('add', name, acc, negate(b, name, next), shape, { min: 0, max: Infinity });
      return b.binary('add', name, acc, negate(b, name, d), shape);
    }),
  note: kind === 'max' ? 'computed as a + relu(b - a)' : 'computed as a - relu(a - b)',
});

// ---------------------------------------------------------------- TFOpLambda

function tfop(a: InferArgs): { fn: string; y: number | null } {
  const fn = a.config.function;
  if (typeof fn !== 'string' || !SUPPORTED_TFOPS.includes(fn)) fail(a.name, a.cls, `function ${show(fn)}`);
  const y = a.kwargs.y;
  if (typeof y === 'number') {
    one(a);
    return { fn, y };
  }
  if (isTensorRef(y)) {
    if (!TENSOR_TFOPS.has(fn)) fail(a.name, a.cls, `function ${show(fn)} with a tensor y (only with a number)`);
    if (a.inputs.length !== 2) fail(a.name, a.cls, 'expects 2 inputs');
    return { fn, y: null };
  }
  return fail(a.name, a.cls, `operand y ${show(y)} (only a number or a tensor)`);
}

const tfOpLambda: LayerEntry = {
  infer(a) {
    tfop(a);
    if (a.inputs.length === 1) return none(one(a));
    const out = broadcastShapes(a.inputs[0] as number[], a.inputs[1] as number[]);
    if (out === null) fail(a.name, a.cls, 'incompatible input shapes');
    return none(out);
  },
  lower(layer, b) {
    const { fn, y } = tfop({ name: layer.name, cls: layer.className, config: layer.config, inputs: layer.inbound.map((i) => b.byLayer.get(i)?.shape ?? []), kwargs: layer.callKwargs });
    const x = b.input(layer);
    const shape = [...layer.outputShape];
    const name = layer.name;
    const add = fn === '__operators__.add' || fn === 'math.add';
    const sub = fn === 'math.subtract' || fn === '__operators__.sub';
    if (y === null) {
      const other = b.input(layer, 1);
      if (fn === 'math.multiply') return b.binary('multiply', name, x, other, shape);
      return b.binary('add', name, x, add ? other : negate(b, name, other), shape);
    }
    if (add) return b.affine(name, x, shape, null, Float32Array.of(y));
    if (sub) return b.affine(name, x, shape, null, Float32Array.of(-y));
    if (fn === 'math.multiply') return b.affine(name, x, shape, Float32Array.of(y), null);
    return b.affine(name, x, shape, Float32Array.of(1 / y), null); // truediv / divide
  },
  note: 'add, subtract, multiply with a number or a tensor; divide by a number',
};

// ---------------------------------------------------------------- padding, pooling, reshaping

const zeroPadding2d: LayerEntry = {
  infer(a) {
    const [h, w, c] = spatial(one(a), a.name, a.cls);
    checkDataFormat(a.config, a.name, a.cls);
    const [t, bo, l, r] = zeroPadding(a.config, a.name, a.cls);
    return none([h + t + bo, w + l + r, c]);
  },
  lower(layer, b) {
    const pads = zeroPadding(layer.config, layer.name, layer.className);
    return b.add({ kind: 'pad', name: layer.name, inputs: [b.input(layer)], shape: [...layer.outputShape], pads });
  },
};

const globalPool = (kind: 'avg' | 'max'): LayerEntry => ({
  infer(a) {
    const [, , c] = spatial(one(a), a.name, a.cls);
    checkDataFormat(a.config, a.name, a.cls);
    return none(a.config.keepdims === true ? [1, 1, c] : [c]);
  },
  lower(layer, b) {
    const x = b.input(layer);
    const [h, w, c] = x.shape as [number, number, number];
    const name = layer.name;
    const shape = [...layer.outputShape];
    let p: LNode;
    if (kind === 'avg') p = b.add({ kind: 'gap', name, inputs: [x], shape: [1, 1, c] });
    // A 1x1 map is its own max (and Debian 12's XNNPACK rejects 1x1 pooling).
    else p = h * w === 1 ? x : b.add({ kind: 'maxpool', name, inputs: [x], shape: [1, 1, c], pool: [h, w], stride: [1, 1] });
    return shape.length === 3 && p.shape.length === 3 ? p : b.add({ kind: 'reshape', name, inputs: [p], shape });
  },
});

/** Pool size, strides and output of a 2-D pooling layer; 'same' only where it pads nothing (XNNPACK pools do not exclude padding as Keras does). */
function poolGeometry(cfg: Cfg, input: readonly number[], name: string, cls: string, file: string | undefined): { pool: [number, number]; stride: [number, number]; out: number[] } {
  const [h, w, c] = spatial(input, name, cls);
  checkDataFormat(cfg, name, cls);
  const pool = pairOf(cfg.pool_size, name, cls, 'pool_size', [2, 2]);
  const stride = pairOf(cfg.strides, name, cls, 'strides', pool);
  const pad = paddingMode(cfg, name, cls);
  if (pad === 'same') {
    const [t, bo] = samePadding(h, pool[0], stride[0]);
    const [l, r] = samePadding(w, pool[1], stride[1]);
    if (t + bo + l + r !== 0) fail(name, cls, 'padding "same" that pads (only "valid", or "same" where it pads nothing)');
  }
  const oh = convOutput(h, pool[0], stride[0], 1, pad);
  const ow = convOutput(w, pool[1], stride[1], 1, pad);
  if (oh <= 0 || ow <= 0) throw new ModelFormatError(`${cls} layer '${name}' has ${aHw(...pool)} pool larger than its ${hw(h, w)} input: ${LARGER_INPUT}`, file);
  return { pool, stride, out: [oh, ow, c] };
}

const pool2d = (kind: 'avgpool' | 'maxpool'): LayerEntry => ({
  infer: (a) => none(poolGeometry(a.config, one(a), a.name, a.cls, a.file).out),
  lower(layer, b) {
    const x = b.input(layer);
    const { pool, stride } = poolGeometry(layer.config, x.shape, layer.name, layer.className, b.file);
    if (pool[0] * pool[1] * stride[0] * stride[1] === 1) return x; // 1x1 pool, stride 1: identity
    return b.add({ kind, name: layer.name, inputs: [x], shape: [...layer.outputShape], pool, stride });
  },
  note: '"valid" padding, or "same" where it pads nothing',
});

function reshapeTarget(a: InferArgs): number[] {
  const s = one(a);
  const target = a.config.target_shape;
  if (!Array.isArray(target) || target.length === 0) fail(a.name, a.cls, `target_shape ${show(target)}`);
  const total = v.product(s);
  const unknown = target.filter((d) => d === -1 || d === null).length;
  if (unknown > 1 || !target.every((d) => d === -1 || d === null || (Number.isInteger(d) && d > 0))) fail(a.name, a.cls, `target_shape ${show(target)}`);
  const known = v.product(target.filter((d) => d !== -1 && d !== null) as number[]);
  const out = target.map((d) => (d === -1 || d === null ? total / known : d)) as number[];
  if (!out.every((d) => Number.isInteger(d)) || v.product(out) !== total) {
    throw new ModelFormatError(`Reshape layer '${a.name}' has target_shape ${show(target)}, which does not hold the ${total} elements of its input [${s.join(',')}]`, a.file);
  }
  return out;
}

function lowerReshape(layer: AnalyzedLayer, b: NodeBuilder): LNode {
  const x = b.input(layer);
  const shape = [...layer.outputShape];
  if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
  return b.add({ kind: 'reshape', name: layer.name, inputs: [x], shape });
}

// ---------------------------------------------------------------- input

const inputLayer: LayerEntry = {
  infer(a) {
    const raw = (a.config.batch_input_shape ?? a.config.batch_shape) as unknown;
    if (!Array.isArray(raw) || raw.length < 2) fail(a.name, a.cls, 'missing batch_input_shape');
    const s = raw.slice(1);
    if (!s.every((d) => Number.isInteger(d) && d > 0)) {
      throw new ModelFormatError(
        `input layer '${a.name}' has no static shape ([${s.map((d) => (d === null ? 'None' : String(d))).join(', ')}]): pass inputShape ([height, width, channels]; --input-size on the command line)`,
        a.file,
      );
    }
    if (s.some((d) => d > MAX_DIM)) fail(a.name, a.cls, `input shape [${s.join(', ')}] has a dimension over ${MAX_DIM}, the largest a graph holds`);
    return none(s as number[]);
  },
  lower: (layer, b) => b.add({ kind: 'input', name: layer.name, inputs: [], shape: [...layer.outputShape] }),
};

// ---------------------------------------------------------------- the registry

/** Every supported Keras layer class. */
export const LAYERS: ReadonlyMap<string, LayerEntry> = new Map<string, LayerEntry>([
  ['InputLayer', inputLayer],
  ['Conv2D', conv2d],
  ['Convolution2D', conv2d],
  ['DepthwiseConv2D', depthwiseConv2d],
  ['Dense', dense],
  ['BatchNormalization', batchNormalization],
  ['ReLU', relu],
  ['Activation', activation],
  ['Softmax', softmax],
  ['Rescaling', rescaling],
  ['Dropout', identity],
  ['SpatialDropout2D', identity],
  ['GaussianNoise', identity],
  ['GaussianDropout', identity],
  ['AlphaDropout', identity],
  ['Add', merge('add')],
  ['Multiply', merge('multiply')],
  ['Subtract', subtract],
  ['Average', average],
  ['Maximum', extremum('max')],
  ['Minimum', extremum('min')],
  ['TFOpLambda', tfOpLambda],
  ['ZeroPadding2D', zeroPadding2d],
  ['GlobalAveragePooling2D', globalPool('avg')],
  ['GlobalMaxPooling2D', globalPool('max')],
  ['AveragePooling2D', pool2d('avgpool')],
  ['MaxPooling2D', pool2d('maxpool')],
  ['Flatten', { infer: (a) => none([v.product(one(a))]), lower: lowerReshape }],
  ['Reshape', { infer: (a) => none(reshapeTarget(a)), lower: lowerReshape }],
]);

/** The registry entry of a class, or UnsupportedLayerError. */
export function layerEntry(name: string, className: string): LayerEntry {
  const e = LAYERS.get(className);
  if (e === undefined) throw new UnsupportedLayerError(name, className, 'no implementation for this layer class');
  return e;
}

/**
 * Shape, weights and MACs of one layer. `inputs` are the per-sample shapes of
 * its inbound tensors; `file` (the model file) is named by its errors.
 *
 * @throws UnsupportedLayerError for a layer class or option that cannot run (naming `file`)
 * @throws ModelFormatError for shapes that do not fit (a kernel or pool larger than the input, ...)
 */
export function inferLayer(className: string, config: Cfg, inputs: readonly (readonly number[])[], callKwargs: Cfg = {}, file?: string): LayerInference {
  const name = String(config.name);
  try {
    return layerEntry(name, className).infer({ name, cls: className, config, inputs, kwargs: callKwargs, file });
  } catch (e) {
    throw e instanceof UnsupportedLayerError ? e.inFile(file) : e;
  }
}

/** The README's "Supported Keras layers" list, generated from the registry. */
export function supportedLayersMarkdown(): string {
  const layers = [...LAYERS].map(([cls, e]) => `- \`${cls}\`${e.note === undefined ? '' : ` (${e.note})`}`);
  return [
    ...layers,
    '- nested models (`Functional`, `Model`, `Sequential` used as a layer) are inlined',
    '',
    `Activations: ${SUPPORTED_ACTIVATIONS.map((a) => `\`${a}\``).join(', ')}.`,
    '',
    `TFOpLambda functions: ${SUPPORTED_TFOPS.map((f) => `\`${f}\``).join(', ')}.`,
  ].join('\n');
}
