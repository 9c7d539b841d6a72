/**
 * Post-training quantization of a lowered float graph (BatchNorm already
 * folded into the convolutions by `lib/keras/lower.ts`) into the typed int8
 * graph of `qgraph.ts`.
 *
 * - Weights of conv2d / depthwiseConv2d / fullyConnected: symmetric int8 per
 *   output channel (`qcint8`, scale = max|w_c| / 127, values in [-127, 127]).
 * - Bias: `qcint32` with scale = inputScale * weightScale[c].
 * - Activations: asymmetric int8 per tensor (`qint8`) from the calibration
 *   range [min, max] widened to contain 0: scale = (max - min) / 255,
 *   zeroPoint = round(-128 - min / scale). The range of an output with a
 *   fused ReLU6 / clamp is what calibration observes, which is inside the
 *   clamp (so ReLU6 outputs get at most [0, 6]); hard-swish outputs get their
 *   observed range (bounded below by -0.375 by construction).
 * - sigmoid outputs get scale 1/256 and zero point -128 (their range is
 *   (0, 1); XNNPACK's QS8 sigmoid requires these on Debian 12's build).
 * - pad, reshape, maxPool2d and clamp keep their input's scale and zero point
 *   (XNNPACK requires it; the values pass through unchanged).
 * - The classifier head stays float32 when it is a single classifier layer
 *   (V1, V2): everything from the last global pooling that reduces the
 *   feature map to 1×1 (the classifier's input) to the output, converted from
 *   int8 right before that pooling. That costs a few hundred thousand float
 *   MACs against hundreds of millions of int8 ones and keeps the logits (and
 *   softmax) at float precision. A head with a hidden layer (V3's 1×1
 *   convolution to 1024 / 1280 features before the classifier) is quantized
 *   by default (`defaultFloatHead`): at batch 1 its float32 weights (6.4 MB
 *   for V3-Small, 10 MB for V3-Large) are read once per image, which took a
 *   fifth of V3-Small's int8 time.
 * - `convert` nodes go between float32 and qint8 where the dtype changes:
 *   after the graph input and before the head (and at the output when there
 *   is no head).
 */
import { QuantizationError } from '../errors.js';
import { OP_NAMES, opSpec } from '../schema.js';
import { roundHalfEven } from '../backends/reference-qs8.js';
import { weightChannelDim, WEIGHTED_OPS, type QGraph, type QNode, type QOp, type QTensor } from './qgraph.js';

export interface Range {
  min: number;
  max: number;
}

export interface QuantizeGraphOptions {
  /** Keep the classifier head (from the last global pooling on) in float32. Default: `defaultFloatHead`. */
  floatHead?: boolean;
  /** Refuse a graph with no convolution before the head (nothing worth quantizing). Default true. */
  requireConvolution?: boolean;
  /**
   * Per-channel means of the activations (from calibration): when given, the
   * bias of each quantized conv / depthwise / dense is corrected for the mean
   * output shift its weight rounding causes, Σ (w_q·s - w) · E[x].
   */
  biasCorrection?: ReadonlyMap<number, Float64Array>;
  /**
   * Ops kept in float32 inside the int8 body (between a dequantize and a
   * quantize convert) because the target has no int8 kernel for them: on
   * Debian 12's XNNPACK, `hardswish` and `fullyConnected` (see
   * `nativeFloatOps`). `FLOAT_ONLY_OPS` (e.g. `averagePool2d`) are always
   * among them.
   */
  floatOps?: ReadonlySet<QOp>;
  /** Node names (the Keras layer names, e.g. 'conv1') kept in float32 the same way (accuracy-sensitive layers). */
  floatLayers?: ReadonlySet<string>;
}

/** The ops the XNNPACK build described by `int8` (XnnpackInfo.int8) runs in float32 within an int8 model. */
export function nativeFloatOps(int8: { hardswish: boolean; fullyConnected: boolean } | undefined): ReadonlySet<QOp> {
  const ops = new Set<QOp>(FLOAT_ONLY_OPS);
  if (int8?.hardswish !== true) ops.add('hardswish');
  if (int8?.fullyConnected !== true) ops.add('fullyConnected');
  return ops;
}

/**
 * Bias correction: the expected output shift per output channel caused by
 * replacing `w` by its dequantized int8 version, given the mean of each
 * input channel (padding ignored).
 */
export function weightRoundingShift(
  op: QOp,
  w: Float32Array,
  shape: readonly number[],
  q: { data: Int8Array; scales: Float32Array },
  inputMean: Float64Array,
  attrs: { groups?: number; depthMultiplier?: number },
): Float64Array {
  if (op === 'depthwiseConv2d') {
    const outC = shape[3]!;
    const m = attrs.depthMultiplier ?? 1;
    const shift = new Float64Array(outC);
    for (let i = 0; i < w.length; i++) {
      const c = i % outC;
      shift[c]! += (q.data[i]! * q.scales[c]! - w[i]!) * inputMean[Math.floor(c / m)]!;
    }
    return shift;
  }
  // conv2d OHWI [O, kh, kw, gic] / fullyConnected [O, I]: input channel = group base + innermost index.
  const outC = shape[0]!;
  const gic = shape[shape.length - 1]!;
  const perOut = w.length / outC;
  const goc = outC / (attrs.groups ?? 1);
  const shift = new Float64Array(outC);
  for (let o = 0; o < outC; o++) {
    const icBase = Math.floor(o / goc) * gic;
    let s = 0;
    for (let k = 0; k < perOut; k++) {
      const i = o * perOut + k;
      s += (q.data[i]! * q.scales[o]! - w[i]!) * inputMean[icBase + (k % gic)]!;
    }
    shift[o] = s;
  }
  return shift;
}

/**
 * Ops the op schema (lib/schema.ts) lets produce qint8, `convert` aside: the
 * ones an int8 graph can hold in int8 (derived, so that the quantizer cannot
 * write a graph the schema refuses to load).
 */
export const QUANTIZABLE_OPS: ReadonlySet<QOp> = new Set(
  OP_NAMES.filter((op) => op !== 'convert' && (opSpec(op).outputDtypes ?? []).includes('qint8')),
);

/**
 * The schema's float32-only ops (no backend has them in int8: `averagePool2d`,
 * as no XNNPACK build has a QS8 average pooling), softmax aside (it ends the
 * int8 body): inside an int8 body they always run in float32 between a
 * dequantize and a quantize convert, whatever the backend.
 */
export const FLOAT_ONLY_OPS: ReadonlySet<QOp> = new Set(OP_NAMES.filter((op) => op !== 'convert' && op !== 'softmax' && !QUANTIZABLE_OPS.has(op)));

/** Ops whose quantized output must keep the input's scale and zero point. */
const PASS_THROUGH: ReadonlySet<QOp> = new Set(['pad', 'reshape', 'maxPool2d', 'clamp']);

const f = Math.fround;

/** qint8 parameters of every sigmoid output: [0, 255/256] in steps of 1/256 (what XNNPACK's QS8 sigmoid takes). */
export const SIGMOID_OUTPUT = { scale: 1 / 256, zeroPoint: -128 } as const;

/** qint8 parameters of a real range (widened to contain 0). */
export function qint8Params(range: Range): { scale: number; zeroPoint: number } {
  const lo = Math.min(range.min, 0);
  let hi = Math.max(range.max, 0);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) throw new QuantizationError(`cannot quantize the range [${range.min}, ${range.max}]`);
  if (hi - lo < 1e-6) hi = lo + 1e-6;
  const scale = f((hi - lo) / 255);
  let zeroPoint = roundHalfEven(-128 - lo / scale);
  zeroPoint = Math.min(127, Math.max(-128, zeroPoint));
  return { scale, zeroPoint };
}

/** Symmetric per-channel int8 weights along `channelDim` (the outermost or innermost dimension). */
export function quantizeWeights(w: Float32Array, shape: readonly number[], channelDim: number): { data: Int8Array; scales: Float32Array } {
  const channels = shape[channelDim]!;
  const inner = channelDim === 0 ? w.length / channels : 1;
  const stride = channelDim === 0 ? 1 : channels;
  const index = (c: number, k: number): number => (channelDim === 0 ? c * inner + k : k * stride + c);
  const count = w.length / channels;
  const scales = new Float32Array(channels);
  const data = new Int8Array(w.length);
  for (let c = 0; c < channels; c++) {
    let maxAbs = 0;
    for (let k = 0; k < count; k++) maxAbs = Math.max(maxAbs, Math.abs(w[index(c, k)]!));
    // XNNPACK requires a normal positive scale; an all-zero channel quantizes to zeros with scale 1.
    let s = f(maxAbs / 127);
    if (!(s >= 1.1754943508222875e-38)) s = 1;
    scales[c] = s;
    for (let k = 0; k < count; k++) {
      const i = index(c, k);
      data[i] = Math.max(-127, Math.min(127, roundHalfEven(w[i]! / s)));
    }
  }
  return { data, scales };
}

/** int32 bias with per-channel scales inputScale * weightScales[c]. */
export function quantizeBias(b: Float32Array, inputScale: number, weightScales: Float32Array): { data: Int32Array; scales: Float32Array } {
  const scales = new Float32Array(b.length);
  const data = new Int32Array(b.length);
  for (let c = 0; c < b.length; c++) {
    const s = f(inputScale * weightScales[c]!);
    scales[c] = s;
    data[c] = Math.max(-2147483648, Math.min(2147483647, roundHalfEven(b[c]! / s)));
  }
  return { data, scales };
}

const spatial = (t: QTensor): number => (t.batched && t.shape.length === 3 ? t.shape[0]! * t.shape[1]! : 1);

/**
 * Index of the first node of the float classifier head: the last pooling to
 * 1×1 after which no node has a feature map larger than 1×1. `nodes.length`
 * when there is none.
 */
export function headStart(g: QGraph): number {
  let start = g.nodes.length;
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i]!;
    const out = g.tensors[n.output]!;
    if (spatial(out) > 1) break;
    const isPool = n.op === 'globalAveragePool' || n.op === 'averagePool2d' || n.op === 'maxPool2d';
    if (isPool && spatial(g.tensors[n.inputs[0]!]!) > 1) start = i;
  }
  return start;
}

/**
 * Whether the classifier head stays float32 by default: when it has at most
 * one weighted layer (V1's `conv_preds`, V2's `Logits`). A head with a hidden
 * layer (V3: `Conv_2` 576→1024 or 960→1280 + hard-swish, then `Logits`) is
 * quantized: its weights dominate the memory read per image at batch 1.
 */
export function defaultFloatHead(g: QGraph): boolean {
  return g.nodes.slice(headStart(g)).filter((n) => WEIGHTED_OPS.has(n.op)).length <= 1;
}

/**
 * Checks that the graph can be quantized and returns the end of its int8 part
 * (the index of the first node that stays float32). QuantizationError when
 * a node before the head has no int8 kernel or there is no convolution.
 */
export function quantizableBody(fg: QGraph, options: QuantizeGraphOptions = {}): number {
  for (const t of fg.tensors) if (t.dtype !== 'float32') throw new QuantizationError('the graph is already quantized');
  const floatHead = options.floatHead ?? defaultFloatHead(fg);
  let bodyEnd = floatHead ? headStart(fg) : fg.nodes.length;
  const firstSoftmax = fg.nodes.findIndex((n) => n.op === 'softmax');
  if (firstSoftmax !== -1 && firstSoftmax < bodyEnd) {
    // A softmax (no int8 kernel) ends the int8 part only if nothing after it needs a feature map.
    const later = fg.nodes.slice(firstSoftmax).some((n) => spatial(fg.tensors[n.output]!) > 1);
    if (later) throw new QuantizationError(`node '${fg.nodes[firstSoftmax]!.name ?? 'softmax'}' (softmax) inside the network has no int8 kernel`);
    bodyEnd = firstSoftmax;
  }
  const body = fg.nodes.slice(0, bodyEnd);
  if ((options.requireConvolution ?? true) && !body.some((n) => n.op === 'conv2d' || n.op === 'depthwiseConv2d')) {
    throw new QuantizationError('the model has no convolution before its classifier head: there is nothing to quantize');
  }
  for (const n of body) {
    if (!QUANTIZABLE_OPS.has(n.op) && !FLOAT_ONLY_OPS.has(n.op) && !(options.floatOps?.has(n.op) ?? false)) throw new QuantizationError(`node '${n.name ?? n.op}' (${n.op}) has no int8 kernel`);
  }

  return bodyEnd;
}

/**
 * Rewrites an all-float32 typed graph into the mixed int8 graph, given the
 * calibrated range of every activation tensor (and of the graph input).
 */
export function quantizeGraph(fg: QGraph, ranges: ReadonlyMap<number, Range>, options: QuantizeGraphOptions = {}): QGraph {
  const bodyEnd = quantizableBody(fg, options);
  const body = fg.nodes.slice(0, bodyEnd);

  const tensors: QTensor[] = [];
  const nodes: QNode[] = [];
  const add = (t: Omit<QTensor, 'id'>): number => {
    const id = tensors.length;
    tensors.push({ ...t, id } as QTensor);
    return id;
  };
  // Activations keep their ids; constants are re-created as needed.
  for (const t of fg.tensors) tensors.push(t);
  const floatIds = new Map<number, number>(); // qint8 id -> float32 copy
  const quantIds = new Map<number, number>(); // float32 id -> qint8 copy

  const rangeOf = (id: number, what: string): Range => {
    const r = ranges.get(id);
    if (r === undefined) throw new QuantizationError(`no calibration range for ${what}`);
    return r;
  };
  const asQuant = (id: number): number => {
    const t = tensors[id]!;
    if (t.dtype === 'qint8') return id;
    const have = quantIds.get(id);
    if (have !== undefined) return have;
    let q: number;
    if (!t.batched) {
      // A float constant read by an int8 op (e.g. a scalar added): per-tensor int8.
      const data = t.data as Float32Array;
      let min = Infinity;
      let max = -Infinity;
      for (const x of data) {
        min = Math.min(min, x);
        max = Math.max(max, x);
      }
      const p = qint8Params({ min, max });
      const inv = f(1 / p.scale);
      const qd = new Int8Array(data.length);
      for (let i = 0; i < data.length; i++) qd[i] = Math.max(-128, Math.min(127, roundHalfEven(f(data[i]! * inv)) + p.zeroPoint));
      q = add({ shape: t.shape, batched: false, dtype: 'qint8', ...p, data: qd, name: `${t.name ?? `t${id}`}/qint8` });
    } else {
      const p = qint8Params(rangeOf(id, `tensor ${t.name ?? id}`));
      q = add({ shape: t.shape, batched: true, dtype: 'qint8', ...p, name: `${t.name ?? `t${id}`}/qint8` });
      nodes.push({ op: 'convert', name: `${t.name ?? `t${id}`}/quantize`, inputs: [id], output: q, attrs: {} });
    }
    quantIds.set(id, q);
    return q;
  };
  const asFloat = (id: number): number => {
    const t = tensors[id]!;
    if (t.dtype === 'float32') return id;
    const have = floatIds.get(id);
    if (have !== undefined) return have;
    const y = add({ shape: t.shape, batched: true, dtype: 'float32', name: `${t.name ?? `t${id}`}/dequantize` });
    nodes.push({ op: 'convert', name: `${t.name ?? `t${id}`}/dequantize`, inputs: [id], output: y, attrs: {} });
    floatIds.set(id, y);
    return y;
  };

  const floatOps = new Set<QOp>([...FLOAT_ONLY_OPS, ...(options.floatOps ?? [])]);
  body.forEach((n) => {
    const label = n.name ?? n.op;
    if (floatOps.has(n.op) || (n.name !== undefined && (options.floatLayers?.has(n.name) ?? false))) {
      // No int8 kernel on the target: dequantize its activations, run it in float32 (its output is quantized by the next int8 node).
      nodes.push({ ...n, inputs: n.inputs.map((id) => (tensors[id]!.batched ? asFloat(id) : id)) });
      return;
    }
    const x = asQuant(n.inputs[0]!);
    const xT = tensors[x]!;
    const inputs: number[] = [x];
    if (WEIGHTED_OPS.has(n.op)) {
      const wF = fg.tensors[n.inputs[1]!]!;
      const cd = weightChannelDim(n.op);
      const w = quantizeWeights(wF.data as Float32Array, wF.shape, cd);
      inputs.push(add({ shape: wF.shape, batched: false, dtype: 'qcint8', scales: w.scales, channelDim: cd, data: w.data, name: wF.name }));
      const outC = w.scales.length;
      let bias: Float32Array | null = n.inputs[2] === undefined ? null : (fg.tensors[n.inputs[2]]!.data as Float32Array);
      const mean = options.biasCorrection?.get(n.inputs[0]!);
      if (mean !== undefined) {
        const shift = weightRoundingShift(n.op, wF.data as Float32Array, wF.shape, w, mean, n.attrs as { groups?: number; depthMultiplier?: number });
        bias = Float32Array.from({ length: outC }, (_, c) => (bias?.[c] ?? 0) - shift[c]!);
      }
      if (bias !== null) {
        const b = quantizeBias(bias, xT.scale!, w.scales);
        inputs.push(add({ shape: [outC], batched: false, dtype: 'qcint32', scales: b.scales, channelDim: 0, data: b.data, name: `${label}/bias` }));
      }
    } else if (n.op === 'add' || n.op === 'multiply') {
      inputs.push(asQuant(n.inputs[1]!));
    }
    const outF = fg.tensors[n.output]!;
    // A sigmoid's output is in (0, 1): XNNPACK's QS8 sigmoid (Debian 12's requires it) takes scale 1/256, zero point -128.
    const p = PASS_THROUGH.has(n.op)
      ? { scale: xT.scale!, zeroPoint: xT.zeroPoint! }
      : n.op === 'sigmoid'
        ? SIGMOID_OUTPUT
        : qint8Params(rangeOf(n.output, `the output of '${label}'`));
    tensors[n.output] = { ...outF, dtype: 'qint8', ...p };
    if (WEIGHTED_OPS.has(n.op)) {
      const ws = tensors[inputs[1]!]!.scales!;
      for (let c = 0; c < ws.length; c++) {
        const r = f(f(xT.scale! * ws[c]!) / p.scale);
        if (!(r < 256)) {
          throw new QuantizationError(`node '${label}': requantization scale ${r} of channel ${c} is not below 256 (XNNPACK's limit); the output range is too narrow for its input`);
        }
      }
    }
    nodes.push({ ...n, inputs });
  });
  for (const n of fg.nodes.slice(bodyEnd)) {
    nodes.push({ ...n, inputs: n.inputs.map((id) => (tensors[id]!.batched ? asFloat(id) : id)) });
  }
  const output = asFloat(fg.output);
  // Drop float constants no node reads any more (the float weights of quantized nodes).
  const used = new Set<number>([fg.input, output]);
  for (const n of nodes) {
    for (const id of n.inputs) used.add(id);
    used.add(n.output);
  }
  const remap = new Map<number, number>();
  const kept: QTensor[] = [];
  tensors.forEach((t) => {
    if (!used.has(t.id)) return;
    remap.set(t.id, kept.length);
    kept.push({ ...t, id: kept.length });
  });
  const m = (id: number): number => remap.get(id)!;
  return {
    tensors: kept,
    nodes: nodes.map((n) => ({ ...n, inputs: n.inputs.map(m), output: m(n.output) })),
    input: m(fg.input),
    output: m(output),
  };
}
