/**
 * Reference kernels for the typed (int8) graph of `lib/quantize/qgraph.ts`
 * and a plain-TypeScript executor for it: float32 nodes run the kernels of
 * `reference.ts`, qint8 nodes the QS8 kernels below.
 *
 * The QS8 kernels emulate XNNPACK's arithmetic so that XNNPACK and this
 * reference agree to within one quantization step:
 *  - convolution / depthwise / dense (QS8 input, QC8 weights, QC32 bias):
 *    exact int32 accumulation `bias[c] + Σ (x - xZero) * w`, then XNNPACK's
 *    "fp32" requantization: `acc` to float32, times the float32 scale
 *    `xScale * wScale[c] / yScale` (computed in float32 as XNNPACK does),
 *    clamped to the quantized output bounds minus the zero point, rounded half
 *    to even (`lrintf`), plus the output zero point;
 *  - fused activation bounds are quantized as `xnn_qs8_quantize` does
 *    (`lrintf(clamp(v / scale + zero, -128, 127))`);
 *  - add / multiply / average pools are computed on the dequantized values
 *    (float32) and requantized with the same rounding (XNNPACK uses
 *    fixed-point multipliers there: the two can differ by one step);
 *  - hardswish / sigmoid: a 256-entry table (XNNPACK builds the same table);
 *  - convert: `lrintf(x * (1 / scale)) + zero` with saturation, and
 *    `(q - zero) * scale`.
 */
import {
  averagePool2d as f32AveragePool2d,
  binary as f32Binary,
  conv2d as f32Conv2d,
  depthwiseConv2d as f32Depthwise,
  fullyConnected as f32FullyConnected,
  globalAveragePool as f32Gap,
  hardswishValue,
  maxPool2d as f32MaxPool2d,
  pad as f32Pad,
  sigmoidValue,
  softmax as f32Softmax,
} from './reference.js';
import { fromGraph, type QGraph, type QNode, type QTensor } from '../quantize/qgraph.js';
import { ReferencePreparedGraph } from './reference.js';
import { DisposedError } from '../errors.js';
import type { Graph } from '../graph.js';
import type { Backend, BackendRuntime, PreparedGraph } from './types.js';

const f = Math.fround;

/** lrintf: round half to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** xnn_qs8_quantize: a real bound as an int8 value (saturating; ±Infinity allowed). */
export function quantizeBound(value: number, scale: number, zeroPoint: number): number {
  const v = f(f(value / scale) + zeroPoint);
  return roundHalfEven(Math.min(Math.max(v, -128), 127));
}

/** XNNPACK's fp32 requantization of an int32 accumulator. */
export function requantize(acc: number, scale: number, zeroPoint: number, qmin: number, qmax: number): number {
  let v = f(f(acc) * scale);
  const lo = qmin - zeroPoint;
  const hi = qmax - zeroPoint;
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return roundHalfEven(v) + zeroPoint;
}

/** float32 -> qint8 (XNNPACK f32-qs8-vcvt). */
export function quantizeValue(x: number, invScale: number, zeroPoint: number): number {
  let v = f(x * invScale);
  if (v < -128 - zeroPoint) v = -128 - zeroPoint;
  if (v > 127 - zeroPoint) v = 127 - zeroPoint;
  if (Number.isNaN(v)) v = 0;
  return roundHalfEven(v) + zeroPoint;
}

export interface Qs8ConvParams {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  kernel: readonly [number, number];
  stride: readonly [number, number];
  dilation: readonly [number, number];
  padding: readonly [number, number, number, number];
  /** conv2d only */
  groups: number;
  groupInputChannels: number;
  groupOutputChannels: number;
  /** depthwise only (0 for conv2d) */
  depthMultiplier: number;
  xZero: number;
  yZero: number;
  /** Per output channel: float32(float32(xScale * wScale[c]) / yScale). */
  requantScales: Float32Array;
  qmin: number;
  qmax: number;
}

function tapRange(base: number, kernel: number, dilation: number, size: number): [number, number] {
  let k0 = 0;
  if (base < 0) k0 = Math.ceil(-base / dilation);
  let k1 = kernel;
  const maxK = Math.floor((size - 1 - base) / dilation) + 1;
  if (maxK < k1) k1 = maxK;
  if (k1 < k0) k1 = k0;
  return [k0, k1];
}

/** QS8 x QC8W grouped convolution, filter OHWI. Padding reads the input zero point (real 0). */
export function qs8Conv2d(x: Int8Array, w: Int8Array, bias: Int32Array | null, p: Qs8ConvParams, y: Int8Array): void {
  const { batch, inH, inW, inC, outH, outW, groups, groupInputChannels: gic, groupOutputChannels: goc, xZero } = p;
  const [kh, kw] = p.kernel;
  const [sy, sx] = p.stride;
  const [dy, dx] = p.dilation;
  const outC = groups * goc;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sy - p.padding[0];
      const [ky0, ky1] = tapRange(iy0, kh, dy, inH);
      for (let ox = 0; ox < outW; ox++) {
        const ix0 = ox * sx - p.padding[3];
        const [kx0, kx1] = tapRange(ix0, kw, dx, inW);
        const yBase = ((n * outH + oy) * outW + ox) * outC;
        for (let oc = 0; oc < outC; oc++) {
          const icBase = Math.floor(oc / goc) * gic;
          let acc = bias === null ? 0 : bias[oc]!;
          for (let ky = ky0; ky < ky1; ky++) {
            const rowBase = (n * inH + iy0 + ky * dy) * inW;
            for (let kx = kx0; kx < kx1; kx++) {
              const xo = (rowBase + ix0 + kx * dx) * inC + icBase;
              const fo = ((oc * kh + ky) * kw + kx) * gic;
              for (let ic = 0; ic < gic; ic++) acc += (x[xo + ic]! - xZero) * w[fo + ic]!;
            }
          }
          y[yBase + oc] = requantize(acc, p.requantScales[oc]!, p.yZero, p.qmin, p.qmax);
        }
      }
    }
  }
}

/** QS8 x QC8W depthwise convolution, filter [1, kh, kw, C * m]. */
export function qs8DepthwiseConv2d(x: Int8Array, w: Int8Array, bias: Int32Array | null, p: Qs8ConvParams, y: Int8Array): void {
  const { batch, inH, inW, inC, outH, outW, depthMultiplier: m, xZero } = p;
  const [kh, kw] = p.kernel;
  const [sy, sx] = p.stride;
  const [dy, dx] = p.dilation;
  const outC = inC * m;
  const acc = new Float64Array(outC);
  let yOff = 0;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sy - p.padding[0];
      const [ky0, ky1] = tapRange(iy0, kh, dy, inH);
      for (let ox = 0; ox < outW; ox++) {
        const ix0 = ox * sx - p.padding[3];
        const [kx0, kx1] = tapRange(ix0, kw, dx, inW);
        if (bias === null) acc.fill(0);
        else for (let oc = 0; oc < outC; oc++) acc[oc] = bias[oc]!;
        for (let ky = ky0; ky < ky1; ky++) {
          const rowBase = (n * inH + iy0 + ky * dy) * inW;
          for (let kx = kx0; kx < kx1; kx++) {
            const xo = (rowBase + ix0 + kx * dx) * inC;
            const fo = (ky * kw + kx) * outC;
            for (let c = 0; c < inC; c++) {
              const xv = x[xo + c]! - xZero;
              for (let j = 0; j < m; j++) acc[c * m + j]! += xv * w[fo + c * m + j]!;
            }
          }
        }
        for (let oc = 0; oc < outC; oc++) y[yOff++] = requantize(acc[oc]!, p.requantScales[oc]!, p.yZero, p.qmin, p.qmax);
      }
    }
  }
}

/** QS8 x QC8W dense layer: y[r, o] = requant(bias[o] + Σ (x[r, i] - xZero) * w[o, i]). */
export function qs8FullyConnected(
  x: Int8Array,
  w: Int8Array,
  bias: Int32Array | null,
  rows: number,
  inC: number,
  outC: number,
  xZero: number,
  requantScales: Float32Array,
  yZero: number,
  qmin: number,
  qmax: number,
  y: Int8Array,
): void {
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outC; o++) {
      let acc = bias === null ? 0 : bias[o]!;
      const wo = o * inC;
      const xo = r * inC;
      for (let i = 0; i < inC; i++) acc += (x[xo + i]! - xZero) * w[wo + i]!;
      y[r * outC + o] = requantize(acc, requantScales[o]!, yZero, qmin, qmax);
    }
  }
}

/** Requantizes a real value (float64) into int8 with rounding half to even and saturation. */
function requantReal(real: number, yScale: number, yZero: number, qmin: number, qmax: number): number {
  let v = real / yScale;
  if (v < qmin - yZero) v = qmin - yZero;
  if (v > qmax - yZero) v = qmax - yZero;
  return roundHalfEven(v) + yZero;
}

/** A 256-entry table of an elementwise function on qint8 (index q + 128). */
export function qs8Table(fn: (v: number) => number, x: QTensor, y: QTensor): Int8Array {
  const t = new Int8Array(256);
  for (let q = -128; q < 128; q++) {
    const real = fn(f(x.scale! * (q - x.zeroPoint!)));
    t[q + 128] = requantReal(real, y.scale!, y.zeroPoint!, -128, 127);
  }
  return t;
}

// ---------------------------------------------------------------------------
// The executor.
// ---------------------------------------------------------------------------

type Buf = Float32Array | Int8Array;
type Step = () => void;

function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

const num = (n: QNode, k: string): number => n.attrs[k] as number;
const pair = (n: QNode, k: string): [number, number] => {
  const a = n.attrs[k] as readonly number[];
  return [a[0]!, a[1]!];
};
const quad = (n: QNode, k: string): [number, number, number, number] => {
  const a = n.attrs[k] as readonly number[];
  return [a[0]!, a[1]!, a[2]!, a[3]!];
};

/** Broadcast strides as in reference.ts, over full shapes of equal rank. */
function alignedShape(t: QTensor, batch: number, rank: number): number[] {
  const own = [...t.shape];
  const padded = new Array<number>(rank - own.length).fill(1).concat(own);
  return [t.batched ? batch : 1, ...padded];
}

export type Observer = (tensor: QTensor, values: Float32Array) => void;

/**
 * Runs a typed graph at a fixed batch size in plain TypeScript. `observe`,
 * when given, sees every float32 activation after it is computed (the
 * calibration pass uses it to record ranges).
 */
export class QReferenceRuntime {
  readonly batch: number;
  readonly inputSize: number;
  readonly outputSize: number;
  private readonly steps: Step[] = [];
  private readonly buffers = new Map<number, Buf>();
  private readonly inBuf: Float32Array;
  private readonly outBuf: Float32Array;
  private observer: Observer | null = null;

  constructor(
    readonly graph: QGraph,
    batch = 1,
  ) {
    this.batch = batch;
    const g = graph;
    const buf = (id: number): Buf => {
      const existing = this.buffers.get(id);
      if (existing !== undefined) return existing;
      const t = g.tensors[id]!;
      let b: Buf;
      if (!t.batched) {
        if (t.dtype === 'float32') b = (t.data as Float32Array | undefined) ?? new Float32Array(product(t.shape));
        else b = t.data as Int8Array;
      } else {
        const size = batch * product(t.shape);
        b = t.dtype === 'float32' ? new Float32Array(size) : new Int8Array(size);
      }
      this.buffers.set(id, b);
      return b;
    };
    this.inBuf = buf(g.input) as Float32Array;
    this.inputSize = this.inBuf.length;
    for (const node of g.nodes) {
      if (node.op === 'reshape') {
        // Same storage.
        this.buffers.set(node.output, buf(node.inputs[0]!));
      }
      const step = this.lower(node, buf);
      const out = g.tensors[node.output]!;
      if (out.dtype === 'float32') {
        const y = buf(node.output) as Float32Array;
        this.steps.push(() => {
          step();
          this.observer?.(out, y);
        });
      } else {
        this.steps.push(step);
      }
    }
    this.outBuf = buf(g.output) as Float32Array;
    this.outputSize = this.outBuf.length;
  }

  /** Runs `batch` samples; `input` and `output` have the runtime's sizes. */
  run(input: Float32Array, output: Float32Array, observe?: Observer): void {
    if (input.length !== this.inputSize) throw new RangeError(`Expected Float32Array(${this.inputSize}) for input but received Float32Array(${input.length})`);
    if (output.length !== this.outputSize) throw new RangeError(`Expected Float32Array(${this.outputSize}) for output but received Float32Array(${output.length})`);
    this.inBuf.set(input);
    this.observer = observe ?? null;
    try {
      if (observe) observe(this.graph.tensors[this.graph.input]!, this.inBuf);
      for (const s of this.steps) s();
    } finally {
      this.observer = null;
    }
    output.set(this.outBuf);
  }

  /** The storage of a tensor (batch × per-sample values) as of the last run; for tests and debugging. */
  values(id: number): Float32Array | Int8Array {
    const b = this.buffers.get(id);
    if (b === undefined) throw new RangeError(`Expected a tensor of this graph for id but received ${id}`);
    return b;
  }

  private lower(node: QNode, buf: (id: number) => Buf): Step {
    const g = this.graph;
    const T = (id: number): QTensor => g.tensors[id]!;
    const xT = T(node.inputs[0]!);
    const yT = T(node.output);
    const batch = this.batch;
    const quantized = yT.dtype === 'qint8';
    const x = buf(xT.id);
    const y = buf(yT.id);
    const full = (t: QTensor): number[] => (t.batched ? [batch, ...t.shape] : [...t.shape]);
    const qBounds = (): [number, number] => [
      quantizeBound(node.attrs.outputMin === undefined ? -Infinity : num(node, 'outputMin'), yT.scale!, yT.zeroPoint!),
      quantizeBound(node.attrs.outputMax === undefined ? Infinity : num(node, 'outputMax'), yT.scale!, yT.zeroPoint!),
    ];
    switch (node.op) {
      case 'convert': {
        if (xT.dtype === 'float32') {
          const inv = f(1 / yT.scale!);
          const zp = yT.zeroPoint!;
          const xs = x as Float32Array;
          const ys = y as Int8Array;
          return () => {
            for (let i = 0; i < ys.length; i++) ys[i] = quantizeValue(xs[i]!, inv, zp);
          };
        }
        const s = xT.scale!;
        const zp = xT.zeroPoint!;
        const xs = x as Int8Array;
        const ys = y as Float32Array;
        return () => {
          for (let i = 0; i < ys.length; i++) ys[i] = (xs[i]! - zp) * s;
        };
      }
      case 'conv2d':
      case 'depthwiseConv2d': {
        const wT = T(node.inputs[1]!);
        const bT = node.inputs[2] === undefined ? undefined : T(node.inputs[2]);
        const [, inH, inW, inC] = full(xT) as [number, number, number, number];
        const [, outH, outW] = full(yT) as [number, number, number, number];
        const common = {
          batch, inH, inW, inC, outH, outW,
          kernel: pair(node, 'kernel'), stride: pair(node, 'stride'), dilation: pair(node, 'dilation'), padding: quad(node, 'padding'),
        };
        if (!quantized) {
          const w = wT.data as Float32Array;
          const b = (bT?.data as Float32Array | undefined) ?? null;
          if (node.op === 'conv2d') {
            const p = { ...common, groups: num(node, 'groups'), groupInputChannels: num(node, 'groupInputChannels'), groupOutputChannels: num(node, 'groupOutputChannels'), outputMin: num(node, 'outputMin'), outputMax: num(node, 'outputMax') };
            return () => f32Conv2d(x as Float32Array, w, b, p, y as Float32Array);
          }
          const p = { ...common, depthMultiplier: num(node, 'depthMultiplier'), outputMin: num(node, 'outputMin'), outputMax: num(node, 'outputMax') };
          return () => f32Depthwise(x as Float32Array, w, b, p, y as Float32Array);
        }
        const [qmin, qmax] = qBounds();
        const requantScales = wT.scales!.map((ws) => f(f(xT.scale! * ws) / yT.scale!));
        const p: Qs8ConvParams = {
          ...common,
          groups: node.op === 'conv2d' ? num(node, 'groups') : 1,
          groupInputChannels: node.op === 'conv2d' ? num(node, 'groupInputChannels') : 1,
          groupOutputChannels: node.op === 'conv2d' ? num(node, 'groupOutputChannels') : 1,
          depthMultiplier: node.op === 'depthwiseConv2d' ? num(node, 'depthMultiplier') : 0,
          xZero: xT.zeroPoint!, yZero: yT.zeroPoint!, requantScales, qmin, qmax,
        };
        const w = wT.data as Int8Array;
        const b = (bT?.data as Int32Array | undefined) ?? null;
        if (node.op === 'conv2d') return () => qs8Conv2d(x as Int8Array, w, b, p, y as Int8Array);
        return () => qs8DepthwiseConv2d(x as Int8Array, w, b, p, y as Int8Array);
      }
      case 'fullyConnected': {
        const wT = T(node.inputs[1]!);
        const bT = node.inputs[2] === undefined ? undefined : T(node.inputs[2]);
        const inC = num(node, 'inputChannels');
        const outC = num(node, 'outputChannels');
        const rows = x.length / inC;
        if (!quantized) {
          const w = wT.data as Float32Array;
          const b = (bT?.data as Float32Array | undefined) ?? null;
          const lo = num(node, 'outputMin');
          const hi = num(node, 'outputMax');
          return () => f32FullyConnected(x as Float32Array, w, b, rows, inC, outC, lo, hi, y as Float32Array);
        }
        const [qmin, qmax] = qBounds();
        const rs = wT.scales!.map((ws) => f(f(xT.scale! * ws) / yT.scale!));
        const w = wT.data as Int8Array;
        const b = (bT?.data as Int32Array | undefined) ?? null;
        return () => qs8FullyConnected(x as Int8Array, w, b, rows, inC, outC, xT.zeroPoint!, rs, yT.zeroPoint!, qmin, qmax, y as Int8Array);
      }
      case 'add':
      case 'multiply': {
        const aT = xT;
        const bT = T(node.inputs[1]!);
        const rank = yT.shape.length;
        const aShape = alignedShape(aT, batch, rank);
        const bShape = alignedShape(bT, batch, rank);
        const yShape = full(yT);
        const a = buf(aT.id);
        const b = buf(bT.id);
        if (!quantized) {
          const lo = num(node, 'outputMin');
          const hi = num(node, 'outputMax');
          return () => f32Binary(node.op as 'add' | 'multiply', a as Float32Array, aShape, b as Float32Array, bShape, yShape, lo, hi, y as Float32Array);
        }
        // Dequantize into float64 scratch, combine with the float kernel's broadcasting, requantize.
        const da = new Float32Array(a.length);
        const db = new Float32Array(b.length);
        const dy = new Float32Array(y.length);
        const [qmin, qmax] = qBounds();
        const isAdd = node.op === 'add';
        // Exact products/sums of dequantized values are formed by the float kernel in float64,
        // then rounded to float32 on store: within 2^-24 relative, far below one output step.
        return () => {
          for (let i = 0; i < a.length; i++) da[i] = (a[i]! - aT.zeroPoint!) * aT.scale!;
          for (let i = 0; i < b.length; i++) db[i] = (b[i]! - bT.zeroPoint!) * bT.scale!;
          f32Binary(isAdd ? 'add' : 'multiply', da, aShape, db, bShape, yShape, -Infinity, Infinity, dy);
          const ys = y as Int8Array;
          for (let i = 0; i < ys.length; i++) ys[i] = requantReal(dy[i]!, yT.scale!, yT.zeroPoint!, qmin, qmax);
        };
      }
      case 'clamp': {
        const lo = num(node, 'min');
        const hi = num(node, 'max');
        if (!quantized) {
          return () => {
            const xs = x as Float32Array;
            const ys = y as Float32Array;
            for (let i = 0; i < ys.length; i++) ys[i] = Math.min(Math.max(xs[i]!, lo), hi);
          };
        }
        const qlo = quantizeBound(lo, yT.scale!, yT.zeroPoint!);
        const qhi = quantizeBound(hi, yT.scale!, yT.zeroPoint!);
        return () => {
          for (let i = 0; i < y.length; i++) y[i] = Math.min(Math.max(x[i]!, qlo), qhi);
        };
      }
      case 'hardswish':
      case 'sigmoid': {
        const fn = node.op === 'hardswish' ? hardswishValue : sigmoidValue;
        if (!quantized) {
          return () => {
            for (let i = 0; i < y.length; i++) y[i] = fn(x[i]!);
          };
        }
        const table = qs8Table(fn, xT, yT);
        return () => {
          for (let i = 0; i < y.length; i++) y[i] = table[x[i]! + 128]!;
        };
      }
      case 'softmax': {
        const inner = yT.shape.length > 0 ? yT.shape[yT.shape.length - 1]! : 1;
        return () => f32Softmax(x as Float32Array, y.length / inner, inner, y as Float32Array);
      }
      case 'globalAveragePool':
      case 'averagePool2d':
      case 'maxPool2d': {
        const [n, h, w, c] = full(xT) as [number, number, number, number];
        const [, outH, outW] = full(yT) as [number, number, number, number];
        const pool: [number, number] = node.op === 'globalAveragePool' ? [h, w] : pair(node, 'pool');
        const stride: [number, number] = node.op === 'globalAveragePool' ? [1, 1] : pair(node, 'stride');
        if (!quantized) {
          if (node.op === 'globalAveragePool') return () => f32Gap(x as Float32Array, n, h, w, c, y as Float32Array);
          if (node.op === 'averagePool2d') return () => f32AveragePool2d(x as Float32Array, n, h, w, c, pool, stride, outH, outW, y as Float32Array);
          return () => f32MaxPool2d(x as Float32Array, n, h, w, c, pool, stride, outH, outW, y as Float32Array);
        }
        if (node.op === 'maxPool2d') {
          // Same scale and zero point: the max of the integers.
          const xf = new Float32Array(x.length);
          const yf = new Float32Array(y.length);
          return () => {
            xf.set(x);
            f32MaxPool2d(xf, n, h, w, c, pool, stride, outH, outW, yf);
            y.set(yf);
          };
        }
        // Average of (q - zero) in float64, rescaled: (mean * xScale) / yScale.
        const xf = new Float32Array(x.length);
        const yf = new Float32Array(y.length);
        return () => {
          for (let i = 0; i < x.length; i++) xf[i] = x[i]! - xT.zeroPoint!;
          if (node.op === 'globalAveragePool') f32Gap(xf, n, h, w, c, yf);
          else f32AveragePool2d(xf, n, h, w, c, pool, stride, outH, outW, yf);
          for (let i = 0; i < y.length; i++) y[i] = requantReal(yf[i]! * xT.scale!, yT.scale!, yT.zeroPoint!, -128, 127);
        };
      }
      case 'pad': {
        const pre = [0, ...(node.attrs.prePadding as number[])];
        const post = [0, ...(node.attrs.postPadding as number[])];
        const value = num(node, 'value');
        const shape = full(xT);
        if (!quantized) return () => f32Pad(x as Float32Array, shape, pre, post, value, y as Float32Array);
        const qv = quantizeBound(value, yT.scale!, yT.zeroPoint!);
        const xf = new Float32Array(x.length);
        const yf = new Float32Array(y.length);
        return () => {
          xf.set(x);
          f32Pad(xf, shape, pre, post, qv, yf);
          y.set(yf);
        };
      }
      case 'reshape':
        return () => undefined;
      default:
        throw new RangeError(`Expected a known op for node but received ${JSON.stringify(node.op)}`);
    }
  }
}

/** A typed graph on the int8 reference: the reference backend's runtime for graphs with quantized tensors. */
class QReferencePreparedGraph implements PreparedGraph {
  readonly weightBytes: number;
  private graph: QGraph | null;
  private readonly extraOutputs: readonly number[];

  constructor(graph: Graph) {
    this.graph = fromGraph(graph);
    this.weightBytes = graph.weightBytes;
    this.extraOutputs = [...graph.extraOutputs];
  }

  compileSync(batch: number, _threads: number): BackendRuntime {
    if (this.graph === null) throw new DisposedError('Graph');
    const rt = new QReferenceRuntime(this.graph, batch);
    const extras = this.extraOutputs;
    // The output, then the extra outputs (Graph.addOutput).
    const runInto = (input: Float32Array, output: Float32Array): void => {
      rt.run(input, output.subarray(0, rt.outputSize));
      let at = rt.outputSize;
      for (const id of extras) {
        const values = rt.values(id);
        output.set(values, at);
        at += values.length;
      }
    };
    return {
      runSync: runInto,
      run: async (input, output) => {
        const copy = input.slice();
        await new Promise<void>((resolve) => setImmediate(resolve));
        runInto(copy, output);
      },
      dispose: () => undefined,
      weightBytes: this.weightBytes,
    };
  }

  async compile(batch: number, threads: number): Promise<BackendRuntime> {
    return this.compileSync(batch, threads);
  }

  dispose(): void {
    this.graph = null;
  }
}

/**
 * The reference backend: float graphs on `reference.ts`, graphs with
 * quantized tensors (int8 models) on the QS8 reference kernels here.
 */
export const mixedReferenceBackend: Backend = {
  name: 'reference',
  prepare(graph: Graph): PreparedGraph {
    return graph.tensors.some((t) => t.dtype !== 'float32') ? new QReferencePreparedGraph(graph) : new ReferencePreparedGraph(graph);
  },
  prepareAsync(graph: Graph): Promise<PreparedGraph> {
    return Promise.resolve(mixedReferenceBackend.prepare(graph));
  },
};
