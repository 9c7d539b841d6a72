/**
 * Lowering of an analyzed Keras model (config + named weights) to the graph IR.
 *
 * 1. Weights are matched by `<layer>/<weight>` against the specs of
 *    `analyzeModel`: every missing, extra or mis-shaped weight is listed in one
 *    `WeightMismatchError`. Weights holding NaN or ±Infinity are an error too
 *    (`WeightMismatchError` naming the weight and the first bad index): a
 *    non-finite weight always yields NaN outputs, so it is reported at load.
 * 2. Each layer becomes one or more *lowered nodes* (an internal list):
 *    Conv2D (HWIO → OHWI), DepthwiseConv2D ([kh,kw,C,m] = [1,kh,kw,C*m]),
 *    Dense ([in,out] → [out,in]), BatchNormalization / Rescaling / scalar
 *    TFOpLambda add-multiply as a per-channel *affine* `y = x * s + t`,
 *    ReLU / relu6 / clamps as *clamp*, ZeroPadding2D as *pad*, etc. Padding
 *    "same" is computed as TensorFlow does (total = max((ceil(in/s) - 1) * s +
 *    (k - 1) * d + 1 - in, 0), the odd pixel at the end).
 * 3. Unless `fuse: false`, rewrites until nothing changes:
 *    - pad feeding only a conv/depthwise → added to that conv's padding;
 *    - affine after a conv/depthwise/dense it alone consumes → folded into the
 *      weights and bias (BatchNormalization folding). When the producer already
 *      has a clamp [lo, hi] this is only done for one positive scale s and one
 *      shift t (then the clamp becomes [lo*s+t, hi*s+t]: exact in real
 *      arithmetic); this is how hard-sigmoid `relu6(x + 3) / 6` after a conv
 *      (squeeze-excite) becomes one conv with clamp [0, 1];
 *    - clamp after a conv/depthwise/dense/add/multiply/affine it alone consumes →
 *      fused as outputMin/outputMax;
 *    - `Multiply([x, relu6(x + 3) / 6])` (Keras 2 hard-swish) → hardswish(x);
 *    - reshape of a reshape → one reshape; a reshape to the same shape → nothing.
 * 4. The remaining nodes are emitted into a `Graph` (named after their Keras
 *    layers).
 */
import { Graph, type Padding4, type Tensor } from '../graph.js';
import { UnsupportedLayerError, WeightMismatchError } from '../errors.js';
import type { AnalyzedLayer, KerasLayerConfig, KerasModelConfig, ModelAnalysis, NamedWeights, WeightTensor } from './types.js';

export interface LowerOptions {
  /** Fold BatchNorm, fuse activations/padding, detect hard-swish. Default true. */
  fuse?: boolean;
  /** Accept NaN/Infinity in weights (default false: WeightMismatchError). */
  allowNonFinite?: boolean;
}

export interface LowerStats {
  /** Graph nodes emitted. */
  nodes: number;
  /** Affine nodes (BatchNorm, Rescaling, scalar ops) folded into conv/dense weights. */
  foldedAffine: number;
  /** Clamps fused into the producing node. */
  fusedClamps: number;
  /** ZeroPadding2D layers fused into the next convolution. */
  fusedPads: number;
  /** Hard-swish patterns turned into one hardswish node. */
  hardswish: number;
}

export interface LoweredModel {
  graph: Graph;
  /** Per-sample input shape [H, W, C]. */
  inputShape: number[];
  /** Per-sample output shape. */
  outputShape: number[];
  stats: LowerStats;
}

// ---------------------------------------------------------------------------
// Internal lowered nodes.
// ---------------------------------------------------------------------------

interface Bounds {
  min: number;
  max: number;
}

interface LBase {
  id: number;
  /** Keras layer name (for error messages and graph node names). */
  name: string;
  inputs: LNode[];
  /** Per-sample output shape. */
  shape: number[];
  dead?: boolean;
}

interface LInput extends LBase {
  kind: 'input';
}
interface LConv extends LBase, Bounds {
  kind: 'conv' | 'dw' | 'fc';
  /** Graph layout: conv OHWI, dw [1,kh,kw,C*m], fc [out,in]. */
  filter: Float32Array;
  bias: Float32Array | null;
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  padding: [number, number, number, number];
  groups: number;
  depthMultiplier: number;
}
interface LPad extends LBase {
  kind: 'pad';
  /** top, bottom, left, right */
  pads: [number, number, number, number];
}
interface LAffine extends LBase, Bounds {
  kind: 'affine';
  /** Length 1 (scalar) or C; null = 1. */
  scale: Float32Array | null;
  /** Length 1 or C; null = 0. */
  shift: Float32Array | null;
}
interface LBinary extends LBase, Bounds {
  kind: 'add' | 'multiply';
}
interface LClamp extends LBase, Bounds {
  kind: 'clamp';
}
interface LUnary extends LBase {
  kind: 'hardswish' | 'sigmoid' | 'softmax';
}
interface LGap extends LBase {
  kind: 'gap';
}
interface LAvgPool extends LBase {
  kind: 'avgpool';
  pool: [number, number];
  stride: [number, number];
}
interface LMaxPool extends LBase {
  kind: 'maxpool';
  pool: [number, number];
  stride: [number, number];
}
interface LReshape extends LBase {
  kind: 'reshape';
}

type LNode = LInput | LConv | LPad | LAffine | LBinary | LClamp | LUnary | LGap | LAvgPool | LMaxPool | LReshape;

// ---------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------

const fmt = (s: readonly number[]): string => `[${s.join(',')}]`;

function pairOf(v: unknown, layer: AnalyzedLayer, key: string, dflt: number): [number, number] {
  if (v === undefined || v === null) return [dflt, dflt];
  if (typeof v === 'number' && Number.isInteger(v) && v > 0) return [v, v];
  if (Array.isArray(v) && v.length === 1 && Number.isInteger(v[0]) && v[0] > 0) return [v[0], v[0]];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => Number.isInteger(x) && x > 0)) return [v[0], v[1]];
  throw new UnsupportedLayerError(layer.name, layer.className, `${key} ${JSON.stringify(v)} is not a positive integer or pair`);
}

/** Pool size and strides of a 2-D pooling layer whose padding pads nothing ('valid', or 'same' that adds no pixels). */
function validPool(
  layer: AnalyzedLayer,
  c: Record<string, unknown>,
  inputShape: readonly number[],
  samePadsDetail: string,
): { pool: [number, number]; stride: [number, number] } {
  const pool = pairOf(c.pool_size, layer, 'pool_size', 2);
  const stride = c.strides === undefined || c.strides === null ? pool : pairOf(c.strides, layer, 'strides', 1);
  const [h, w] = inputShape as [number, number];
  if (c.padding === 'same') {
    const [a, b] = samePadding(h, pool[0], stride[0], 1);
    const [l, r] = samePadding(w, pool[1], stride[1], 1);
    if (a + b + l + r !== 0) throw new UnsupportedLayerError(layer.name, layer.className, samePadsDetail);
  } else if (c.padding !== undefined && c.padding !== 'valid') {
    throw new UnsupportedLayerError(layer.name, layer.className, `padding ${JSON.stringify(c.padding)}`);
  }
  return { pool, stride };
}

/** TensorFlow "same" padding: [before, after] for one spatial dimension. */
export function samePadding(input: number, kernel: number, stride: number, dilation: number): [number, number] {
  const out = Math.ceil(input / stride);
  const effective = (kernel - 1) * dilation + 1;
  const total = Math.max((out - 1) * stride + effective - input, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function checkChannelsLast(layer: AnalyzedLayer): void {
  const df = layer.config.data_format;
  if (df !== undefined && df !== null && df !== 'channels_last') {
    throw new UnsupportedLayerError(layer.name, layer.className, `data_format ${JSON.stringify(df)} (only channels_last)`);
  }
}

function isFiniteBounds(b: Bounds): boolean {
  return b.min === -Infinity && b.max === Infinity;
}

/**
 * Matches the weights against the analysis: every missing, extra or mis-shaped
 * weight is listed. Returns the weights by full name.
 */
export function matchWeights(analysis: ModelAnalysis, weights: NamedWeights, options: LowerOptions = {}): Map<string, WeightTensor> {
  const expected = new Map<string, number[]>();
  for (const layer of analysis.layers) for (const w of layer.weights) expected.set(w.fullName, w.shape);
  const missing: string[] = [];
  const misShaped: string[] = [];
  const extra: string[] = [];
  for (const [name, shape] of expected) {
    const w = weights.get(name);
    if (w === undefined) missing.push(`${name} ${fmt(shape)}`);
    else if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i]) || w.data.length !== shape.reduce((a, b) => a * b, 1)) {
      misShaped.push(`${name}: expected ${fmt(shape)} but the file has ${fmt(w.shape)}`);
    }
  }
  for (const [name, w] of weights) if (!expected.has(name)) extra.push(`${name} ${fmt(w.shape)}`);
  if (missing.length + misShaped.length + extra.length > 0) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing ${missing.length} weight(s): ${missing.join(', ')}`);
    if (misShaped.length) parts.push(`${misShaped.length} weight(s) of the wrong shape: ${misShaped.join('; ')}`);
    if (extra.length) parts.push(`${extra.length} extra weight(s) no layer of '${analysis.name}' uses: ${extra.join(', ')}`);
    throw new WeightMismatchError(`Weights do not match model '${analysis.name}': ${parts.join('. ')}`);
  }
  if (!options.allowNonFinite) {
    for (const name of expected.keys()) {
      const data = (weights.get(name) as WeightTensor).data;
      // x * 0 is NaN exactly for NaN and ±Infinity: one branch-free pass, then find the index.
      let acc = 0;
      for (let i = 0; i < data.length; i++) acc += (data[i] as number) * 0;
      if (acc !== 0) {
        const i = data.findIndex((x) => !Number.isFinite(x));
        throw new WeightMismatchError(`Weight ${name} holds a non-finite value (${data[i]}) at index ${i}`);
      }
    }
  }
  return weights;
}

// ---------------------------------------------------------------------------
// Builder: layers → lowered nodes.
// ---------------------------------------------------------------------------

class Lowering {
  readonly nodes: LNode[] = [];
  readonly byLayer = new Map<string, LNode>();
  output: LNode | null = null;
  readonly stats: LowerStats = { nodes: 0, foldedAffine: 0, fusedClamps: 0, fusedPads: 0, hardswish: 0 };

  constructor(
    private readonly analysis: ModelAnalysis,
    private readonly weights: NamedWeights,
  ) {}

  private add<T extends LNode>(n: Omit<T, 'id'>): T {
    const node = { ...n, id: this.nodes.length } as T;
    this.nodes.push(node);
    return node;
  }

  private w(layer: AnalyzedLayer, short: string): WeightTensor {
    const t = this.weights.get(`${layer.name}/${short}`);
    if (t === undefined) throw new WeightMismatchError(`Missing weight ${layer.name}/${short}`);
    return t;
  }

  private has(layer: AnalyzedLayer, short: string): boolean {
    return layer.weights.some((w) => w.name === short);
  }

  private inputOf(layer: AnalyzedLayer, i = 0): LNode {
    const src = layer.inbound[i];
    const n = src === undefined ? undefined : this.byLayer.get(src);
    if (n === undefined) throw new UnsupportedLayerError(layer.name, layer.className, `input ${i} (${src ?? 'none'}) is not available`);
    return n;
  }

  /** Appends the activation named in a Conv/Dense/Activation config. */
  private activation(layer: AnalyzedLayer, x: LNode, act: unknown, shape: number[]): LNode {
    const name = layer.name;
    const a = act === undefined || act === null ? 'linear' : act;
    if (typeof a !== 'string') throw new UnsupportedLayerError(name, layer.className, `activation ${JSON.stringify(a)}`);
    switch (a) {
      case 'linear':
        return x;
      case 'relu':
        return this.add<LClamp>({ kind: 'clamp', name, inputs: [x], shape, min: 0, max: Infinity });
      case 'relu6':
        return this.add<LClamp>({ kind: 'clamp', name, inputs: [x], shape, min: 0, max: 6 });
      case 'sigmoid':
        return this.add<LUnary>({ kind: 'sigmoid', name, inputs: [x], shape });
      case 'softmax':
        return this.add<LUnary>({ kind: 'softmax', name, inputs: [x], shape });
      case 'hard_swish':
      case 'hard_silu':
        return this.add<LUnary>({ kind: 'hardswish', name, inputs: [x], shape });
      case 'hard_sigmoid':
        // Keras 2 / TensorFlow.js definition (the configs here are in Keras 2 form): clip(0.2 x + 0.5, 0, 1).
        // (MobileNetV3's relu6(x + 3) / 6 is written as TFOpLambda + ReLU layers, handled by the fusion rules.)
        return this.add<LAffine>({ kind: 'affine', name, inputs: [x], shape, scale: Float32Array.of(0.2), shift: Float32Array.of(0.5), min: 0, max: 1 });
      case 'tanh': {
        // tanh(x) = 2 sigmoid(2x) - 1 (within float32 rounding).
        const x2 = this.add<LAffine>({ kind: 'affine', name, inputs: [x], shape, scale: Float32Array.of(2), shift: null, min: -Infinity, max: Infinity });
        const sg = this.add<LUnary>({ kind: 'sigmoid', name, inputs: [x2], shape });
        return this.add<LAffine>({ kind: 'affine', name, inputs: [sg], shape, scale: Float32Array.of(2), shift: Float32Array.of(-1), min: -Infinity, max: Infinity });
      }
      case 'swish':
      case 'silu': {
        const s = this.add<LUnary>({ kind: 'sigmoid', name, inputs: [x], shape });
        return this.add<LBinary>({ kind: 'multiply', name, inputs: [x, s], shape, min: -Infinity, max: Infinity });
      }
      default:
        throw new UnsupportedLayerError(name, layer.className, `activation ${JSON.stringify(a)}`);
    }
  }

  private conv(layer: AnalyzedLayer, kind: 'conv' | 'dw'): LNode {
    const c = layer.config;
    checkChannelsLast(layer);
    const x = this.inputOf(layer);
    const [h, w, cin] = x.shape as [number, number, number];
    if (x.shape.length !== 3) throw new UnsupportedLayerError(layer.name, layer.className, `input of rank ${x.shape.length + 1} (expected 4)`);
    const stride = pairOf(c.strides, layer, 'strides', 1);
    const dilation = pairOf(c.dilation_rate, layer, 'dilation_rate', 1);
    const kernelT = this.w(layer, kind === 'conv' ? 'kernel' : 'depthwise_kernel');
    const [kh, kw] = kernelT.shape as [number, number];
    const padMode = c.padding ?? 'valid';
    let padding: [number, number, number, number];
    if (padMode === 'valid') padding = [0, 0, 0, 0];
    else if (padMode === 'same') {
      const [t, b] = samePadding(h, kh, stride[0], dilation[0]);
      const [l, r] = samePadding(w, kw, stride[1], dilation[1]);
      padding = [t, r, b, l];
    } else throw new UnsupportedLayerError(layer.name, layer.className, `padding ${JSON.stringify(padMode)}`);
    const bias = c.use_bias === false || !this.has(layer, 'bias') ? null : new Float32Array(this.w(layer, 'bias').data);
    const shape = [...layer.outputShape];
    let node: LConv;
    if (kind === 'conv') {
      const [, , gin, cout] = kernelT.shape as [number, number, number, number];
      const groups = typeof c.groups === 'number' ? c.groups : 1;
      if (!Number.isInteger(groups) || groups < 1 || gin * groups !== cin) {
        throw new UnsupportedLayerError(layer.name, layer.className, `kernel ${fmt(kernelT.shape)} does not fit ${cin} input channels with groups ${groups}`);
      }
      // HWIO → OHWI: a [kh*kw*gin, cout] → [cout, kh*kw*gin] transpose when read as 2-D, done in cache-sized blocks.
      const src = kernelT.data;
      const filter = new Float32Array(src.length);
      const rows = kh * kw * gin;
      const B = 32;
      for (let r0 = 0; r0 < rows; r0 += B) {
        const r1 = Math.min(r0 + B, rows);
        for (let o0 = 0; o0 < cout; o0 += B) {
          const o1 = Math.min(o0 + B, cout);
          for (let o = o0; o < o1; o++) {
            const ob = o * rows;
            for (let r = r0; r < r1; r++) filter[ob + r] = src[r * cout + o] as number;
          }
        }
      }
      node = this.add<LConv>({
        kind: 'conv', name: layer.name, inputs: [x], shape, filter, bias, outChannels: cout, kernel: [kh, kw], stride, dilation,
        padding, groups, depthMultiplier: 1, min: -Infinity, max: Infinity,
      });
    } else {
      const [, , ck, m] = kernelT.shape as [number, number, number, number];
      if (ck !== cin) throw new UnsupportedLayerError(layer.name, layer.className, `depthwise kernel ${fmt(kernelT.shape)} does not fit ${cin} input channels`);
      node = this.add<LConv>({
        kind: 'dw', name: layer.name, inputs: [x], shape, filter: new Float32Array(kernelT.data), bias, outChannels: cin * m, kernel: [kh, kw], stride,
        dilation, padding, groups: 1, depthMultiplier: m, min: -Infinity, max: Infinity,
      });
    }
    return this.activation(layer, node, c.activation, shape);
  }

  private dense(layer: AnalyzedLayer): LNode {
    const x = this.inputOf(layer);
    const k = this.w(layer, 'kernel');
    const [nin, nout] = k.shape as [number, number];
    if (k.shape.length !== 2 || x.shape[x.shape.length - 1] !== nin) {
      throw new UnsupportedLayerError(layer.name, layer.className, `kernel ${fmt(k.shape)} does not fit input ${fmt(x.shape)}`);
    }
    const filter = new Float32Array(nin * nout);
    for (let i = 0; i < nin; i++) for (let o = 0; o < nout; o++) filter[o * nin + i] = k.data[i * nout + o] as number;
    const bias = layer.config.use_bias === false || !this.has(layer, 'bias') ? null : new Float32Array(this.w(layer, 'bias').data);
    const shape = [...layer.outputShape];
    const node = this.add<LConv>({
      kind: 'fc', name: layer.name, inputs: [x], shape, filter, bias, outChannels: nout, kernel: [1, 1], stride: [1, 1], dilation: [1, 1],
      padding: [0, 0, 0, 0], groups: 1, depthMultiplier: 1, min: -Infinity, max: Infinity,
    });
    return this.activation(layer, node, layer.config.activation, shape);
  }

  private batchNorm(layer: AnalyzedLayer): LNode {
    const x = this.inputOf(layer);
    const c = layer.config;
    const rank = x.shape.length + 1;
    const axis = Array.isArray(c.axis) && c.axis.length === 1 ? c.axis[0] : (c.axis ?? -1);
    if (axis !== -1 && axis !== rank - 1) throw new UnsupportedLayerError(layer.name, layer.className, `axis ${JSON.stringify(c.axis)} (only the channel axis -1)`);
    const eps = typeof c.epsilon === 'number' ? c.epsilon : 1e-3;
    const mean = this.w(layer, 'moving_mean').data;
    const variance = this.w(layer, 'moving_variance').data;
    const n = mean.length;
    const gamma = c.scale === false || !this.has(layer, 'gamma') ? null : this.w(layer, 'gamma').data;
    const beta = c.center === false || !this.has(layer, 'beta') ? null : this.w(layer, 'beta').data;
    const scale = new Float32Array(n);
    const shift = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      // Computed in double, as one multiply-add per element at run time.
      const s = (gamma ? (gamma[i] as number) : 1) / Math.sqrt((variance[i] as number) + eps);
      scale[i] = s;
      shift[i] = (beta ? (beta[i] as number) : 0) - (mean[i] as number) * s;
    }
    return this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [x], shape: [...layer.outputShape], scale, shift, min: -Infinity, max: Infinity });
  }

  private relu(layer: AnalyzedLayer): LNode {
    const c = layer.config;
    const x = this.inputOf(layer);
    const slope = c.negative_slope ?? 0;
    const threshold = c.threshold ?? 0;
    if (slope !== 0) throw new UnsupportedLayerError(layer.name, layer.className, `negative_slope ${JSON.stringify(slope)} (only 0)`);
    if (threshold !== 0) throw new UnsupportedLayerError(layer.name, layer.className, `threshold ${JSON.stringify(threshold)} (only 0)`);
    const max = c.max_value === undefined || c.max_value === null ? Infinity : c.max_value;
    if (typeof max !== 'number' || !(max > 0)) throw new UnsupportedLayerError(layer.name, layer.className, `max_value ${JSON.stringify(c.max_value)}`);
    return this.add<LClamp>({ kind: 'clamp', name: layer.name, inputs: [x], shape: [...layer.outputShape], min: 0, max });
  }

  private scalarOrVector(v: unknown, layer: AnalyzedLayer, key: string): Float32Array | null {
    if (typeof v === 'number') return Float32Array.of(v);
    if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number')) return Float32Array.from(v as number[]);
    if (v === undefined || v === null) return null;
    throw new UnsupportedLayerError(layer.name, layer.className, `${key} ${JSON.stringify(v)}`);
  }

  private rescaling(layer: AnalyzedLayer): LNode {
    const x = this.inputOf(layer);
    const scale = this.scalarOrVector(layer.config.scale ?? 1, layer, 'scale');
    const offset = this.scalarOrVector(layer.config.offset ?? 0, layer, 'offset');
    const shape = [...layer.outputShape];
    // Keras computes x * scale + offset as two float32 operations: keep them separate (no FMA folding).
    const m = scale && !(scale.length === 1 && scale[0] === 1)
      ? this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [x], shape, scale, shift: null, min: -Infinity, max: Infinity })
      : x;
    if (offset && !(offset.length === 1 && offset[0] === 0)) {
      return this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [m], shape, scale: null, shift: offset, min: -Infinity, max: Infinity });
    }
    return m;
  }

  private tfOpLambda(layer: AnalyzedLayer): LNode {
    const fn = layer.config.function;
    const x = this.inputOf(layer);
    const y = layer.callKwargs?.y;
    const shape = [...layer.outputShape];
    if (layer.inbound.length === 2 && (fn === '__operators__.add' || fn === 'math.add' || fn === 'math.multiply')) {
      const kind = fn === 'math.multiply' ? 'multiply' : 'add';
      return this.add<LBinary>({ kind, name: layer.name, inputs: [x, this.inputOf(layer, 1)], shape, min: -Infinity, max: Infinity });
    }
    if (layer.inbound.length !== 1 || typeof y !== 'number') {
      throw new UnsupportedLayerError(layer.name, layer.className, `function ${JSON.stringify(fn)} is only supported with one tensor and a scalar y`);
    }
    switch (fn) {
      case '__operators__.add':
      case 'math.add':
        return this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [x], shape, scale: null, shift: Float32Array.of(y), min: -Infinity, max: Infinity });
      case 'math.subtract':
      case '__operators__.sub':
        return this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [x], shape, scale: null, shift: Float32Array.of(-y), min: -Infinity, max: Infinity });
      case 'math.multiply':
        return this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [x], shape, scale: Float32Array.of(y), shift: null, min: -Infinity, max: Infinity });
      case 'math.truediv':
      case 'math.divide':
      case '__operators__.truediv':
        return this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [x], shape, scale: Float32Array.of(1 / y), shift: null, min: -Infinity, max: Infinity });
      default:
        throw new UnsupportedLayerError(layer.name, layer.className, `function ${JSON.stringify(fn)}`);
    }
  }

  private zeroPad(layer: AnalyzedLayer): LNode {
    checkChannelsLast(layer);
    const x = this.inputOf(layer);
    const p = layer.config.padding ?? 1;
    const nn = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
    let pads: [number, number, number, number];
    if (nn(p)) pads = [p, p, p, p];
    else if (Array.isArray(p) && p.length === 2 && nn(p[0]) && nn(p[1])) pads = [p[0], p[0], p[1], p[1]];
    else if (Array.isArray(p) && p.length === 2 && p.every((q) => Array.isArray(q) && q.length === 2 && nn(q[0]) && nn(q[1]))) {
      pads = [p[0][0], p[0][1], p[1][0], p[1][1]];
    } else throw new UnsupportedLayerError(layer.name, layer.className, `padding ${JSON.stringify(p)}`);
    return this.add<LPad>({ kind: 'pad', name: layer.name, inputs: [x], shape: [...layer.outputShape], pads });
  }

  private binary(layer: AnalyzedLayer, kind: 'add' | 'multiply'): LNode {
    if (layer.inbound.length < 2) throw new UnsupportedLayerError(layer.name, layer.className, 'needs at least two inputs');
    let acc = this.inputOf(layer, 0);
    for (let i = 1; i < layer.inbound.length; i++) {
      const shape = i === layer.inbound.length - 1 ? [...layer.outputShape] : [...acc.shape];
      acc = this.add<LBinary>({ kind, name: layer.name, inputs: [acc, this.inputOf(layer, i)], shape, min: -Infinity, max: Infinity });
    }
    return acc;
  }

  lowerLayer(layer: AnalyzedLayer): LNode {
    const c = layer.config;
    const shape = [...layer.outputShape];
    switch (layer.className) {
      case 'InputLayer':
        return this.add<LInput>({ kind: 'input', name: layer.name, inputs: [], shape });
      case 'Conv2D':
      case 'Convolution2D':
        return this.conv(layer, 'conv');
      case 'DepthwiseConv2D':
        return this.conv(layer, 'dw');
      case 'Dense':
        return this.dense(layer);
      case 'BatchNormalization':
        return this.batchNorm(layer);
      case 'ReLU':
        return this.relu(layer);
      case 'Activation':
        return this.activation(layer, this.inputOf(layer), c.activation, shape);
      case 'Softmax': {
        const axis = c.axis ?? -1;
        const rank = this.inputOf(layer).shape.length;
        if (axis !== -1 && axis !== rank && !(Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === rank))) {
          throw new UnsupportedLayerError(layer.name, layer.className, `axis ${JSON.stringify(axis)} (only the last axis)`);
        }
        return this.add<LUnary>({ kind: 'softmax', name: layer.name, inputs: [this.inputOf(layer)], shape });
      }
      case 'Add':
        return this.binary(layer, 'add');
      case 'Multiply':
        return this.binary(layer, 'multiply');
      case 'Subtract': {
        if (layer.inbound.length !== 2) throw new UnsupportedLayerError(layer.name, layer.className, 'needs exactly two inputs');
        const b = this.inputOf(layer, 1);
        const neg = this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [b], shape: [...b.shape], scale: Float32Array.of(-1), shift: null, min: -Infinity, max: Infinity });
        return this.add<LBinary>({ kind: 'add', name: layer.name, inputs: [this.inputOf(layer, 0), neg], shape, min: -Infinity, max: Infinity });
      }
      case 'Average': {
        const sum = this.binary(layer, 'add');
        return this.add<LAffine>({ kind: 'affine', name: layer.name, inputs: [sum], shape, scale: Float32Array.of(1 / layer.inbound.length), shift: null, min: -Infinity, max: Infinity });
      }
      case 'ZeroPadding2D':
        return this.zeroPad(layer);
      case 'Rescaling':
        return this.rescaling(layer);
      case 'TFOpLambda':
        return this.tfOpLambda(layer);
      case 'Dropout':
      case 'SpatialDropout2D':
      case 'GaussianDropout':
      case 'GaussianNoise':
      case 'AlphaDropout':
        return this.inputOf(layer);
      case 'GlobalAveragePooling2D': {
        checkChannelsLast(layer);
        const x = this.inputOf(layer);
        const g = this.add<LGap>({ kind: 'gap', name: layer.name, inputs: [x], shape: [1, 1, x.shape[2] as number] });
        if (shape.length === 3) return g;
        return this.add<LReshape>({ kind: 'reshape', name: layer.name, inputs: [g], shape });
      }
      case 'AveragePooling2D': {
        checkChannelsLast(layer);
        const x = this.inputOf(layer);
        const { pool, stride } = validPool(layer, c, x.shape, 'padding "same" that pads (only "valid")');
        return this.add<LAvgPool>({ kind: 'avgpool', name: layer.name, inputs: [x], shape, pool, stride });
      }
      case 'GlobalMaxPooling2D': {
        checkChannelsLast(layer);
        const x = this.inputOf(layer);
        const [h, w, ch] = x.shape as [number, number, number];
        // A 1x1 map is its own max (and Debian 12's XNNPACK rejects 1x1 pooling).
        const m = h * w === 1 ? x : this.add<LMaxPool>({ kind: 'maxpool', name: layer.name, inputs: [x], shape: [1, 1, ch], pool: [h, w], stride: [1, 1] });
        if (shape.length === 3) return m;
        return this.add<LReshape>({ kind: 'reshape', name: layer.name, inputs: [m], shape });
      }
      case 'MaxPooling2D': {
        checkChannelsLast(layer);
        const x = this.inputOf(layer);
        const { pool, stride } = validPool(layer, c, x.shape, 'padding "same" that pads (only "valid", or "same" where it pads nothing)');
        if (pool[0] * pool[1] * stride[0] * stride[1] === 1) return x; // 1x1 pool, stride 1: identity
        return this.add<LMaxPool>({ kind: 'maxpool', name: layer.name, inputs: [x], shape, pool, stride });
      }
      case 'Reshape':
      case 'Flatten': {
        const x = this.inputOf(layer);
        if (shape.length === x.shape.length && shape.every((d, i) => d === x.shape[i])) return x;
        return this.add<LReshape>({ kind: 'reshape', name: layer.name, inputs: [x], shape });
      }
      default:
        throw new UnsupportedLayerError(layer.name, layer.className);
    }
  }

  build(): void {
    for (const layer of this.analysis.layers) {
      const node = this.lowerLayer(layer);
      this.byLayer.set(layer.name, node);
    }
    const out = this.byLayer.get(this.analysis.outputLayer);
    if (out === undefined) throw new UnsupportedLayerError(this.analysis.outputLayer, 'unknown', 'the output layer was not lowered');
    this.output = out;
  }

  // -------------------------------------------------------------------------
  // Fusion.
  // -------------------------------------------------------------------------

  private consumers(n: LNode): LNode[] {
    const out: LNode[] = [];
    for (const m of this.nodes) if (!m.dead && m.inputs.includes(n)) out.push(m);
    return out;
  }

  /** `n` has exactly one consumer (and is not the graph output). */
  private soleConsumer(n: LNode): LNode | null {
    if (n === this.output) return null;
    const c = this.consumers(n);
    if (c.length !== 1) return null;
    const only = c[0] as LNode;
    // Used once only (not e.g. multiply(x, x)).
    return only.inputs.filter((i) => i === n).length === 1 ? only : null;
  }

  /** Removes `gone` (whose single input is `keep`): its consumers read `keep`. */
  private bypass(gone: LNode, keep: LNode): void {
    gone.dead = true;
    for (const m of this.nodes) {
      if (m.dead) continue;
      m.inputs = m.inputs.map((i) => (i === gone ? keep : i));
    }
    if (this.output === gone) this.output = keep;
    keep.shape = gone.shape;
  }

  private foldAffineInto(conv: LConv, a: LAffine): boolean {
    const C = conv.outChannels;
    const scale = a.scale;
    const shift = a.shift;
    if ((scale && scale.length !== 1 && scale.length !== C) || (shift && shift.length !== 1 && shift.length !== C)) return false;
    if (!isFiniteBounds(a)) return false;
    const s = (o: number): number => (scale === null ? 1 : (scale[scale.length === 1 ? 0 : o] as number));
    const t = (o: number): number => (shift === null ? 0 : (shift[shift.length === 1 ? 0 : o] as number));
    let min = conv.min;
    let max = conv.max;
    if (!isFiniteBounds(conv)) {
      // clamp(y, lo, hi) * s + t = clamp(y * s + t, lo * s + t, hi * s + t) only for one s > 0 and one t.
      if ((scale && scale.length !== 1) || (shift && shift.length !== 1) || !(s(0) > 0)) return false;
      min = min * s(0) + t(0);
      max = max * s(0) + t(0);
      if (!(min < max)) return false;
    }
    const f = conv.filter;
    if (scale !== null) {
      if (conv.kind === 'dw') {
        for (let i = 0; i < f.length; i++) f[i] = (f[i] as number) * s(i % C);
      } else {
        const per = f.length / C; // conv OHWI and fc [out,in]: output channel first
        for (let o = 0; o < C; o++) {
          const so = s(o);
          for (let j = 0; j < per; j++) f[o * per + j] = (f[o * per + j] as number) * so;
        }
      }
    }
    const bias = new Float32Array(C);
    for (let o = 0; o < C; o++) bias[o] = (conv.bias ? (conv.bias[o] as number) : 0) * s(o) + t(o);
    conv.bias = bias;
    conv.min = min;
    conv.max = max;
    return true;
  }

  /** Keras 2 hard-swish: multiply(x, affine(1/6)(clamp[0,6](affine(+3)(x)))). */
  private matchHardSwish(m: LBinary): LNode | null {
    if (m.kind !== 'multiply' || !isFiniteBounds(m)) return null;
    for (const [xi, hi] of [[0, 1], [1, 0]] as const) {
      const x = m.inputs[xi] as LNode;
      const h = m.inputs[hi] as LNode;
      if (h.kind !== 'affine' || !isFiniteBounds(h) || h.shift !== null || h.scale?.length !== 1) continue;
      if (Math.abs((h.scale[0] as number) - 1 / 6) > 1e-7) continue;
      const r = h.inputs[0] as LNode;
      if (r.kind !== 'clamp' || r.min !== 0 || r.max !== 6) continue;
      const p = r.inputs[0] as LNode;
      if (p.kind !== 'affine' || !isFiniteBounds(p) || p.scale !== null || p.shift?.length !== 1 || p.shift[0] !== 3) continue;
      if (p.inputs[0] !== x) continue;
      if (this.soleConsumer(h) !== m || this.soleConsumer(r) !== h || this.soleConsumer(p) !== r) continue;
      return x;
    }
    return null;
  }

  fuse(): void {
    // Hard-swish first: the later rewrites would otherwise merge its chain.
    for (const n of this.nodes) {
      if (n.dead || n.kind !== 'multiply') continue;
      const hx = this.matchHardSwish(n);
      if (hx === null) continue;
      const h = n.inputs.find((i) => i !== hx) as LAffine;
      const r = h.inputs[0] as LClamp;
      const p = r.inputs[0] as LAffine;
      h.dead = r.dead = p.dead = true;
      // The multiply node becomes the hardswish node.
      const hs = n as unknown as { kind: string; inputs: LNode[] };
      hs.kind = 'hardswish';
      hs.inputs = [hx];
      this.stats.hardswish++;
    }
    let changed = true;
    while (changed) {
      changed = false;
      for (const n of this.nodes) {
        if (n.dead) continue;
        const x = n.inputs[0];
        if (x === undefined) continue;
        if (n.kind === 'affine' && (x.kind === 'conv' || x.kind === 'dw' || x.kind === 'fc') && this.soleConsumer(x) === n) {
          if (this.foldAffineInto(x, n)) {
            this.bypass(n, x);
            this.stats.foldedAffine++;
            changed = true;
            continue;
          }
        }
        if (n.kind === 'clamp' && (x.kind === 'conv' || x.kind === 'dw' || x.kind === 'fc' || x.kind === 'add' || x.kind === 'multiply' || x.kind === 'affine' || x.kind === 'clamp') && this.soleConsumer(x) === n) {
          const min = Math.max(x.min, n.min);
          const max = Math.min(x.max, n.max);
          if (min < max) {
            x.min = min;
            x.max = max;
            this.bypass(n, x);
            this.stats.fusedClamps++;
            changed = true;
            continue;
          }
        }
        if (n.kind === 'reshape' && x.kind === 'reshape' && this.soleConsumer(x) === n) {
          // reshape(reshape(y)) = reshape(y)
          n.inputs = [x.inputs[0] as LNode];
          x.dead = true;
          changed = true;
          continue;
        }
        if (n.kind === 'reshape' && x.kind !== 'input' && n.shape.length === x.shape.length && n.shape.every((d, i) => d === x.shape[i])) {
          this.bypass(n, x);
          changed = true;
          continue;
        }
        if (n.kind === 'pad' && x !== undefined) {
          const c = this.soleConsumer(n);
          if (c !== null && (c.kind === 'conv' || c.kind === 'dw')) {
            const [t, b, l, r] = n.pads;
            c.padding = [c.padding[0] + t, c.padding[1] + r, c.padding[2] + b, c.padding[3] + l];
            n.dead = true;
            c.inputs = c.inputs.map((i) => (i === n ? x : i));
            this.stats.fusedPads++;
            changed = true;
            continue;
          }
        }
      }
    }
  }

  // -------------------------------------------------------------------------
  // Emission.
  // -------------------------------------------------------------------------

  emit(): Graph {
    const g = new Graph();
    const t = new Map<LNode, Tensor>();
    const get = (n: LNode): Tensor => t.get(n) as Tensor;
    const bnd = (b: Bounds): { outputMin: number; outputMax: number } => ({ outputMin: b.min, outputMax: b.max });
    for (const n of this.nodes) {
      if (n.dead) continue;
      let out: Tensor;
      switch (n.kind) {
        case 'input':
          out = g.input(n.shape, n.name);
          break;
        case 'conv':
          out = g.conv2d(get(n.inputs[0] as LNode), {
            filter: n.filter, bias: n.bias, kernel: n.kernel, outputChannels: n.outChannels, stride: n.stride, dilation: n.dilation,
            padding: n.padding as Padding4, groups: n.groups, name: n.name, ...bnd(n),
          });
          break;
        case 'dw':
          out = g.depthwiseConv2d(get(n.inputs[0] as LNode), {
            filter: n.filter, bias: n.bias, kernel: n.kernel, depthMultiplier: n.depthMultiplier, stride: n.stride, dilation: n.dilation,
            padding: n.padding as Padding4, name: n.name, ...bnd(n),
          });
          break;
        case 'fc':
          out = g.fullyConnected(get(n.inputs[0] as LNode), { weights: n.filter, bias: n.bias, outputChannels: n.outChannels, name: n.name, ...bnd(n) });
          break;
        case 'pad': {
          const [tp, b, l, r] = n.pads;
          const rank = (n.inputs[0] as LNode).shape.length;
          const pre = new Array<number>(rank).fill(0);
          const post = new Array<number>(rank).fill(0);
          pre[0] = tp; post[0] = b; pre[1] = l; post[1] = r;
          out = g.pad(get(n.inputs[0] as LNode), { prePadding: pre, postPadding: post, name: n.name });
          break;
        }
        case 'affine': {
          let x = get(n.inputs[0] as LNode);
          const hasShift = n.shift !== null;
          if (n.scale !== null) {
            const k = g.constant(n.scale, [n.scale.length], `${n.name}/scale`);
            x = g.multiply(x, k, hasShift ? { name: n.name } : { name: n.name, ...bnd(n) });
          }
          if (n.shift !== null) {
            const k = g.constant(n.shift, [n.shift.length], `${n.name}/shift`);
            x = g.add(x, k, { name: n.name, ...bnd(n) });
          }
          if (n.scale === null && n.shift === null) x = g.clamp(x, n.min, n.max, n.name);
          out = x;
          break;
        }
        case 'add':
          out = g.add(get(n.inputs[0] as LNode), get(n.inputs[1] as LNode), { name: n.name, ...bnd(n) });
          break;
        case 'multiply':
          out = g.multiply(get(n.inputs[0] as LNode), get(n.inputs[1] as LNode), { name: n.name, ...bnd(n) });
          break;
        case 'clamp':
          out = g.clamp(get(n.inputs[0] as LNode), n.min, n.max, n.name);
          break;
        case 'hardswish':
          out = g.hardswish(get(n.inputs[0] as LNode), n.name);
          break;
        case 'sigmoid':
          out = g.sigmoid(get(n.inputs[0] as LNode), n.name);
          break;
        case 'softmax':
          out = g.softmax(get(n.inputs[0] as LNode), n.name);
          break;
        case 'gap':
          out = g.globalAveragePool(get(n.inputs[0] as LNode), n.name);
          break;
        case 'avgpool':
          out = g.averagePool2d(get(n.inputs[0] as LNode), { pool: n.pool, stride: n.stride, name: n.name });
          break;
        case 'maxpool':
          out = g.maxPool2d(get(n.inputs[0] as LNode), { pool: n.pool, stride: n.stride, name: n.name });
          break;
        case 'reshape':
          out = g.reshape(get(n.inputs[0] as LNode), n.shape, n.name);
          break;
      }
      t.set(n, out);
    }
    const o = this.output as LNode;
    if (o.kind === 'input') {
      // Identity model: make the output a distinct tensor.
      g.output(g.reshape(get(o), o.shape, o.name));
    } else g.output(get(o));
    this.stats.nodes = g.nodes.length;
    return g;
  }
}

/** Lowers an analyzed Keras model and its weights to a graph. */
export function lowerModel(analysis: ModelAnalysis, weights: NamedWeights, options: LowerOptions = {}): LoweredModel {
  matchWeights(analysis, weights, options);
  const l = new Lowering(analysis, weights);
  l.build();
  if (options.fuse !== false) l.fuse();
  const graph = l.emit();
  const out = graph.tensors[graph.outputTensor];
  return {
    graph,
    inputShape: [...analysis.inputShape],
    outputShape: out ? [...out.shape] : [...analysis.outputShape],
    stats: l.stats,
  };
}

// ---------------------------------------------------------------------------
// Nested models (transfer learning: `x = base_model(inputs)` inside a model).
// ---------------------------------------------------------------------------

const NESTED_CLASSES = new Set(['Model', 'Functional', 'Sequential']);

export interface FlattenedConfig {
  config: KerasModelConfig;
  /** Names of the nested models that were inlined (outermost first). */
  nested: string[];
}

/**
 * Inlines nested models (a `Model`/`Functional`/`Sequential` used as a layer,
 * as Keras transfer learning does) into one flat functional config: the
 * nested model's InputLayer is replaced by the tensor that fed it, and
 * references to the nested model become references to its output layer.
 * Layer names stay as they are (their weights are `<inner layer>/<weight>`,
 * as TensorFlow.js names them). Configs without nested models are returned
 * unchanged.
 */
export function flattenNestedModels(config: KerasModelConfig, toFunctional: (c: unknown) => KerasModelConfig = (c) => c as KerasModelConfig): FlattenedConfig {
  const layers = config?.config?.layers;
  if (!Array.isArray(layers) || !layers.some((l) => l && NESTED_CLASSES.has(l.class_name))) return { config, nested: [] };
  const nested: string[] = [];
  const out: KerasLayerConfig[] = [];
  /** Outer name of a nested model → its inner output layer. */
  const alias = new Map<string, string>();
  const names = new Set(layers.map((l) => l?.config?.name ?? l?.name));
  const rename = (ref: unknown): unknown => {
    if (Array.isArray(ref) && typeof ref[0] === 'string' && alias.has(ref[0])) return [alias.get(ref[0]), 0, ref[2] ?? 0, ...ref.slice(3)];
    return ref;
  };
  const renameNode = (node: unknown): unknown => (Array.isArray(node) ? node.map(rename) : node);
  // First pass: inline each nested model's own nested models and learn its output layer.
  const inners = new Map<string, KerasModelConfig>();
  for (const l of layers) {
    if (!NESTED_CLASSES.has(l.class_name)) continue;
    const name = (l.config?.name ?? l.name) as string;
    const inner = flattenNestedModels(toFunctional({ class_name: l.class_name, config: l.config }), toFunctional);
    nested.push(name, ...inner.nested);
    const c = inner.config.config;
    const innerIn = c.input_layers?.[0]?.[0];
    const innerOut = c.output_layers?.[0]?.[0];
    if (typeof innerIn !== 'string' || typeof innerOut !== 'string' || c.input_layers.length !== 1 || c.output_layers.length !== 1) {
      throw new UnsupportedLayerError(name, l.class_name, 'a nested model must have one input and one output');
    }
    inners.set(name, inner.config);
    alias.set(name, innerOut);
  }
  for (const l of layers) {
    const name = (l.config?.name ?? l.name) as string;
    const inbound = (l.inbound_nodes ?? []).map((n) => renameNode(n)) as KerasLayerConfig['inbound_nodes'];
    const inner = inners.get(name);
    if (inner === undefined) {
      out.push({ ...l, inbound_nodes: inbound });
      continue;
    }
    const c = inner.config;
    if (inbound.length !== 1 || !Array.isArray(inbound[0]) || inbound[0].length !== 1) {
      throw new UnsupportedLayerError(name, l.class_name, 'a nested model must be called exactly once on one tensor');
    }
    const src = inbound[0][0] as [string, number, number, Record<string, unknown>?];
    const innerIn = c.input_layers[0]![0];
    const innerOut = c.output_layers[0]![0];
    if (innerOut === innerIn) alias.set(name, src[0]);
    for (const il of c.layers) {
      const iname = (il.config?.name ?? il.name) as string;
      if (iname === innerIn) continue;
      if (names.has(iname)) throw new UnsupportedLayerError(name, l.class_name, `its layer '${iname}' has the name of a layer of the outer model`);
      names.add(iname);
      const nodes = (il.inbound_nodes ?? []).map((n) =>
        Array.isArray(n) ? n.map((ref) => (Array.isArray(ref) && ref[0] === innerIn ? [src[0], src[1], src[2], ...(ref.length > 3 ? [ref[3]] : [])] : ref)) : n,
      ) as KerasLayerConfig['inbound_nodes'];
      out.push({ ...il, inbound_nodes: nodes });
    }
  }
  const outputs = config.config.output_layers.map((r) => rename(r)) as Array<[string, number, number]>;
  return { config: { class_name: config.class_name, config: { ...config.config, layers: out, output_layers: outputs } }, nested };
}
