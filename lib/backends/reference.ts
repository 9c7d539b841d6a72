/**
 * The pure-TypeScript reference backend: plain loops over NHWC float32
 * tensors with the batch dimension prepended. It is the test oracle of the
 * native backend and the "JS" side of the native-vs-JS benchmark, so it aims
 * to be obviously correct first (every sum accumulated in float64, every
 * activation stored as float32 as XNNPACK does) and reasonably fast second
 * (contiguous inner loops, padding handled by clipping loop bounds).
 *
 * It trusts `lib/graph.ts` for argument validation and shape inference.
 */
import type { Graph, NodeOf, OpName, TensorInfo } from '../graph.js';
import type { Backend, BackendRuntime, PreparedGraph } from './types.js';
import { DisposedError } from '../errors.js';

/** A tensor of the compiled graph: its full shape (batch first for activations) and its storage. */
interface Buffer {
  readonly shape: readonly number[];
  /** Whether dimension 0 is the batch dimension. */
  readonly batched: boolean;
  data: Float32Array;
}

function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

function clampValue(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

// ---------------------------------------------------------------------------
// Kernels. Each takes flat NHWC arrays and sizes; exported for direct use.
// ---------------------------------------------------------------------------

/** Valid kernel taps [first, last) so that `base + k * dilation` lies in [0, size). */
function tapRange(base: number, kernel: number, dilation: number, size: number): [number, number] {
  let k0 = 0;
  if (base < 0) k0 = Math.ceil(-base / dilation);
  let k1 = kernel;
  // base + (k1 - 1) * dilation <= size - 1
  const maxK = Math.floor((size - 1 - base) / dilation) + 1;
  if (maxK < k1) k1 = maxK;
  if (k1 < k0) k1 = k0;
  return [k0, k1];
}

export interface Conv2dParams {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  kernel: readonly [number, number];
  stride: readonly [number, number];
  dilation: readonly [number, number];
  /** top, right, bottom, left */
  padding: readonly [number, number, number, number];
  groups: number;
  groupInputChannels: number;
  groupOutputChannels: number;
  outputMin: number;
  outputMax: number;
}

/** Grouped 2D convolution, filter OHWI [groups * goc, kh, kw, gic]. */
export function conv2d(x: Float32Array, filter: Float32Array, bias: Float32Array | null, p: Conv2dParams, y: Float32Array): void {
  const { batch, inH, inW, inC, outH, outW, groups, groupInputChannels: gic, groupOutputChannels: goc, outputMin: lo, outputMax: hi } = p;
  const [kh, kw] = p.kernel;
  const [sy, sx] = p.stride;
  const [dy, dx] = p.dilation;
  const padTop = p.padding[0];
  const padLeft = p.padding[3];
  const outC = groups * goc;
  const fStride = kh * kw * gic; // filter values per output channel
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sy - padTop;
      const [ky0, ky1] = tapRange(iy0, kh, dy, inH);
      for (let ox = 0; ox < outW; ox++) {
        const ix0 = ox * sx - padLeft;
        const [kx0, kx1] = tapRange(ix0, kw, dx, inW);
        const yBase = ((n * outH + oy) * outW + ox) * outC;
        for (let g = 0; g < groups; g++) {
          const icBase = g * gic;
          const ocEnd = (g + 1) * goc;
          let oc = g * goc;
          // Four output channels at a time share each input load.
          for (; oc + 4 <= ocEnd; oc += 4) {
            let a0 = 0;
            let a1 = 0;
            let a2 = 0;
            let a3 = 0;
            if (bias !== null) {
              a0 = bias[oc]!;
              a1 = bias[oc + 1]!;
              a2 = bias[oc + 2]!;
              a3 = bias[oc + 3]!;
            }
            for (let ky = ky0; ky < ky1; ky++) {
              const rowBase = (n * inH + iy0 + ky * dy) * inW;
              for (let kx = kx0; kx < kx1; kx++) {
                const xo = (rowBase + ix0 + kx * dx) * inC + icBase;
                const f0 = ((oc * kh + ky) * kw + kx) * gic;
                const f1 = f0 + fStride;
                const f2 = f1 + fStride;
                const f3 = f2 + fStride;
                for (let ic = 0; ic < gic; ic++) {
                  const xv = x[xo + ic]!;
                  a0 += xv * filter[f0 + ic]!;
                  a1 += xv * filter[f1 + ic]!;
                  a2 += xv * filter[f2 + ic]!;
                  a3 += xv * filter[f3 + ic]!;
                }
              }
            }
            y[yBase + oc] = clampValue(a0, lo, hi);
            y[yBase + oc + 1] = clampValue(a1, lo, hi);
            y[yBase + oc + 2] = clampValue(a2, lo, hi);
            y[yBase + oc + 3] = clampValue(a3, lo, hi);
          }
          for (; oc < ocEnd; oc++) {
            let acc = bias === null ? 0 : bias[oc]!;
            for (let ky = ky0; ky < ky1; ky++) {
              const rowBase = (n * inH + iy0 + ky * dy) * inW;
              for (let kx = kx0; kx < kx1; kx++) {
                const xo = (rowBase + ix0 + kx * dx) * inC + icBase;
                const fo = ((oc * kh + ky) * kw + kx) * gic;
                for (let ic = 0; ic < gic; ic++) acc += x[xo + ic]! * filter[fo + ic]!;
              }
            }
            y[yBase + oc] = clampValue(acc, lo, hi);
          }
        }
      }
    }
  }
}

export interface DepthwiseConv2dParams {
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
  depthMultiplier: number;
  outputMin: number;
  outputMax: number;
}

/** Depthwise 2D convolution, filter [1, kh, kw, C * m]; output channel c*m + j reads input channel c. */
export function depthwiseConv2d(
  x: Float32Array,
  filter: Float32Array,
  bias: Float32Array | null,
  p: DepthwiseConv2dParams,
  y: Float32Array,
): void {
  const { batch, inH, inW, inC, outH, outW, depthMultiplier: m, outputMin: lo, outputMax: hi } = p;
  const [kh, kw] = p.kernel;
  const [sy, sx] = p.stride;
  const [dy, dx] = p.dilation;
  const padTop = p.padding[0];
  const padLeft = p.padding[3];
  const outC = inC * m;
  const acc = new Float64Array(outC);
  let yOff = 0;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < outH; oy++) {
      const iy0 = oy * sy - padTop;
      const [ky0, ky1] = tapRange(iy0, kh, dy, inH);
      for (let ox = 0; ox < outW; ox++) {
        const ix0 = ox * sx - padLeft;
        const [kx0, kx1] = tapRange(ix0, kw, dx, inW);
        if (bias === null) acc.fill(0);
        else for (let oc = 0; oc < outC; oc++) acc[oc] = bias[oc]!;
        for (let ky = ky0; ky < ky1; ky++) {
          const rowBase = (n * inH + iy0 + ky * dy) * inW;
          for (let kx = kx0; kx < kx1; kx++) {
            const xo = (rowBase + ix0 + kx * dx) * inC;
            const fo = (ky * kw + kx) * outC;
            if (m === 1) {
              for (let c = 0; c < inC; c++) acc[c]! += x[xo + c]! * filter[fo + c]!;
            } else {
              for (let c = 0; c < inC; c++) {
                const xv = x[xo + c]!;
                const ocBase = c * m;
                for (let j = 0; j < m; j++) acc[ocBase + j]! += xv * filter[fo + ocBase + j]!;
              }
            }
          }
        }
        for (let oc = 0; oc < outC; oc++) y[yOff++] = clampValue(acc[oc]!, lo, hi);
      }
    }
  }
}

/** y[r, o] = sum_i x[r, i] * w[o, i] + b[o], for `rows` rows. */
export function fullyConnected(
  x: Float32Array,
  weights: Float32Array,
  bias: Float32Array | null,
  rows: number,
  inC: number,
  outC: number,
  lo: number,
  hi: number,
  y: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const xo = r * inC;
    for (let o = 0; o < outC; o++) {
      const wo = o * inC;
      let acc = bias === null ? 0 : bias[o]!;
      for (let i = 0; i < inC; i++) acc += x[xo + i]! * weights[wo + i]!;
      y[r * outC + o] = clampValue(acc, lo, hi);
    }
  }
}

/** [N, H, W, C] -> [N, 1, 1, C] mean over H and W. */
export function globalAveragePool(x: Float32Array, batch: number, h: number, w: number, c: number, y: Float32Array): void {
  const acc = new Float64Array(c);
  const hw = h * w;
  for (let n = 0; n < batch; n++) {
    acc.fill(0);
    const base = n * hw * c;
    for (let p = 0; p < hw; p++) {
      const o = base + p * c;
      for (let ch = 0; ch < c; ch++) acc[ch]! += x[o + ch]!;
    }
    for (let ch = 0; ch < c; ch++) y[n * c + ch] = acc[ch]! / hw;
  }
}

/** Average pooling with 'valid' padding. */
export function averagePool2d(
  x: Float32Array,
  batch: number,
  h: number,
  w: number,
  c: number,
  pool: readonly [number, number],
  stride: readonly [number, number],
  outH: number,
  outW: number,
  y: Float32Array,
): void {
  const [ph, pw] = pool;
  const [sy, sx] = stride;
  const acc = new Float64Array(c);
  const area = ph * pw;
  let yOff = 0;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        acc.fill(0);
        for (let ky = 0; ky < ph; ky++) {
          for (let kx = 0; kx < pw; kx++) {
            const xo = ((n * h + oy * sy + ky) * w + ox * sx + kx) * c;
            for (let ch = 0; ch < c; ch++) acc[ch]! += x[xo + ch]!;
          }
        }
        for (let ch = 0; ch < c; ch++) y[yOff++] = acc[ch]! / area;
      }
    }
  }
}

/** Max pooling with 'valid' padding. */
export function maxPool2d(
  x: Float32Array,
  batch: number,
  h: number,
  w: number,
  c: number,
  pool: readonly [number, number],
  stride: readonly [number, number],
  outH: number,
  outW: number,
  y: Float32Array,
): void {
  const [ph, pw] = pool;
  const [sy, sx] = stride;
  let yOff = 0;
  for (let n = 0; n < batch; n++) {
    for (let oy = 0; oy < outH; oy++) {
      for (let ox = 0; ox < outW; ox++) {
        for (let ch = 0; ch < c; ch++) y[yOff + ch] = -Infinity;
        for (let ky = 0; ky < ph; ky++) {
          for (let kx = 0; kx < pw; kx++) {
            const xo = ((n * h + oy * sy + ky) * w + ox * sx + kx) * c;
            for (let ch = 0; ch < c; ch++) {
              const value = x[xo + ch]!;
              if (value > y[yOff + ch]! || Number.isNaN(value)) y[yOff + ch] = value;
            }
          }
        }
        yOff += c;
      }
    }
  }
}

/** Softmax over the last dimension (size `inner`), numerically stable. */
export function softmax(x: Float32Array, rows: number, inner: number, y: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * inner;
    let max = -Infinity;
    for (let i = 0; i < inner; i++) if (x[o + i]! > max) max = x[o + i]!;
    let sum = 0;
    for (let i = 0; i < inner; i++) sum += Math.exp(x[o + i]! - max);
    for (let i = 0; i < inner; i++) y[o + i] = Math.exp(x[o + i]! - max) / sum;
  }
}

export function hardswishValue(v: number): number {
  return (v * Math.min(Math.max(v + 3, 0), 6)) / 6;
}

export function sigmoidValue(v: number): number {
  // Stable for large |v|: never exp of a large positive number.
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

/** Strides of `shape` (row-major), with 0 where the dimension is broadcast to `outShape`. */
function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const rank = outShape.length;
  const padded = new Array<number>(rank - shape.length).fill(1).concat(shape);
  const strides = new Array<number>(rank).fill(0);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = padded[i] === 1 && outShape[i] !== 1 ? 0 : s;
    s *= padded[i]!;
  }
  return strides;
}

/**
 * Elementwise a (op) b with NumPy broadcasting over full shapes of equal rank
 * (the caller aligns batch and per-sample dimensions), then clamps.
 */
export function binary(
  op: 'add' | 'multiply',
  a: Float32Array,
  aShape: readonly number[],
  b: Float32Array,
  bShape: readonly number[],
  outShape: readonly number[],
  lo: number,
  hi: number,
  y: Float32Array,
): void {
  const rank = outShape.length;
  const total = product(outShape);
  if (total === 0) return;
  const sa = broadcastStrides(aShape, outShape);
  const sb = broadcastStrides(bShape, outShape);
  const inner = rank === 0 ? 1 : outShape[rank - 1]!;
  const ia = rank === 0 ? 0 : sa[rank - 1]!;
  const ib = rank === 0 ? 0 : sb[rank - 1]!;
  const idx = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  let oa = 0;
  let ob = 0;
  const isAdd = op === 'add';
  for (let yo = 0; yo < total; yo += inner) {
    if (isAdd) {
      for (let i = 0; i < inner; i++) y[yo + i] = clampValue(a[oa + i * ia]! + b[ob + i * ib]!, lo, hi);
    } else {
      for (let i = 0; i < inner; i++) y[yo + i] = clampValue(a[oa + i * ia]! * b[ob + i * ib]!, lo, hi);
    }
    // Advance the odometer over the outer dimensions.
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      oa += sa[d]!;
      ob += sb[d]!;
      if (idx[d]! < outShape[d]!) break;
      oa -= sa[d]! * outShape[d]!;
      ob -= sb[d]! * outShape[d]!;
      idx[d] = 0;
    }
  }
}

/** Pads every dimension of `shape` (full shape); `pre`/`post` have the same rank. */
export function pad(
  x: Float32Array,
  shape: readonly number[],
  pre: readonly number[],
  post: readonly number[],
  value: number,
  y: Float32Array,
): void {
  const rank = shape.length;
  const outShape = shape.map((d, i) => d + pre[i]! + post[i]!);
  y.fill(value);
  const outStrides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) outStrides[i] = outStrides[i + 1]! * outShape[i + 1]!;
  const total = product(shape);
  if (total === 0) return;
  const inner = shape[rank - 1]!;
  const idx = new Array<number>(rank).fill(0);
  for (let xo = 0; xo < total; xo += inner) {
    let yo = pre[rank - 1]!;
    for (let d = 0; d < rank - 1; d++) yo += (idx[d]! + pre[d]!) * outStrides[d]!;
    y.set(x.subarray(xo, xo + inner), yo);
    for (let d = rank - 2; d >= 0; d--) {
      idx[d]!++;
      if (idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
}

// ---------------------------------------------------------------------------
// The backend.
// ---------------------------------------------------------------------------

type Step = () => void;

/** Largest Float32Array the reference allocates for one activation (2^32 - 1, V8's limit on 64-bit). */
const MAX_VALUES = 2 ** 32 - 1;

class ReferenceRuntime implements BackendRuntime {
  readonly weightBytes: number;
  private steps: Step[] | null;
  private inputBuffer: Buffer;
  private outputBuffer: Buffer;
  private extraBuffers: Buffer[];

  constructor(graph: Graph, batch: number) {
    const buffers = new Map<number, Buffer>();
    const tensorInfo = (id: number): TensorInfo => {
      const info = graph.tensors[id];
      if (info === undefined) throw new RangeError(`Expected a tensor of this graph for node input but received ${id}`);
      return info;
    };

    // Storage plan. A reshape output shares its input's storage ("root");
    // a root's storage is recycled once the last node reading it has run
    // (the graph output's never is), so peak memory is a few activations,
    // not all of them.
    const rootOf = new Map<number, number>();
    const root = (id: number): number => rootOf.get(id) ?? id;
    const lastUse = new Map<number, number>();
    graph.nodes.forEach((node, i) => {
      for (const id of node.inputs) if (id >= 0 && tensorInfo(id).batched) lastUse.set(root(id), i);
      if (node.op === 'reshape') rootOf.set(node.output, root(node.inputs[0]!));
    });
    lastUse.set(root(graph.outputTensor), Infinity);
    for (const id of graph.extraOutputs) lastUse.set(root(id), Infinity);

    const storage = new Map<number, Float32Array>(); // root -> its whole storage
    const free: Float32Array[] = [];
    const allocate = (id: number): Buffer => {
      const info = tensorInfo(id);
      const shape = [batch, ...info.shape];
      const size = product(shape);
      if (size > MAX_VALUES) {
        throw new RangeError(`Expected at most ${MAX_VALUES} values for tensor ${id} [${shape.join(', ')}] but received ${size}`);
      }
      let best = -1;
      for (let k = 0; k < free.length; k++) {
        const len = free[k]!.length;
        if (len >= size && (best === -1 || len < free[best]!.length)) best = k;
      }
      const arena = best === -1 ? new Float32Array(size) : free.splice(best, 1)[0]!;
      storage.set(id, arena);
      const b: Buffer = { shape, batched: true, data: arena.length === size ? arena : arena.subarray(0, size) };
      buffers.set(id, b);
      return b;
    };
    const full = (id: number): Buffer => {
      const b = buffers.get(id);
      if (b !== undefined) return b;
      const info = tensorInfo(id);
      if (info.batched) throw new RangeError(`Expected a tensor computed before use for node input but received ${id}`);
      if (info.dtype !== 'float32' || !(info.data instanceof Float32Array)) {
        throw new RangeError(`Expected float32 constants for the reference backend but received ${info.dtype} tensor ${id}`);
      }
      const c: Buffer = { shape: [...info.shape], batched: false, data: info.data };
      buffers.set(id, c);
      return c;
    };

    const weightBytes = graph.weightBytes;
    this.inputBuffer = allocate(graph.inputTensor);
    const steps: Step[] = [];
    graph.nodes.forEach((node, i) => {
      if (node.op === 'reshape') {
        const x = full(node.inputs[0]!);
        buffers.set(node.output, { shape: [batch, ...node.attrs.shape], batched: true, data: x.data });
      } else {
        allocate(node.output);
      }
      const kernel = KERNELS[node.op] as Kernel<OpName>;
      steps.push(kernel(node, { batch, full, weight: (slot) => weightOf(node, slot, full) }));
      // Recycle the storage of roots read for the last time here (and of dead outputs).
      const done = new Set<number>();
      for (const id of [...node.inputs.filter((x) => x >= 0), node.output]) {
        const r = root(id);
        const arena = storage.get(r);
        if (arena !== undefined && (lastUse.get(r) ?? -1) <= i && !done.has(r)) {
          done.add(r);
          storage.delete(r);
          free.push(arena);
        }
      }
    });
    this.outputBuffer = full(graph.outputTensor);
    this.extraBuffers = graph.extraOutputs.map(full);
    this.steps = steps;
    this.weightBytes = weightBytes;
  }

  private live(): Step[] {
    if (this.steps === null) throw new DisposedError('Reference runtime');
    return this.steps;
  }

  runSync(input: Float32Array, output: Float32Array): void {
    const steps = this.live();
    this.inputBuffer.data.set(input);
    for (const s of steps) s();
    this.writeOutputs(output);
  }

  /** The output, then the extra outputs (Graph.addOutput). */
  private writeOutputs(output: Float32Array): void {
    output.set(this.outputBuffer.data);
    let at = this.outputBuffer.data.length;
    for (const b of this.extraBuffers) {
      output.set(b.data, at);
      at += b.data.length;
    }
  }

  /** Runs node by node, yielding to the event loop between nodes. */
  async run(input: Float32Array, output: Float32Array): Promise<void> {
    const steps = this.live();
    this.inputBuffer.data.set(input);
    for (const s of steps) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.steps === null) throw new DisposedError('Reference runtime');
      s();
    }
    this.writeOutputs(output);
  }

  dispose(): void {
    this.steps = null;
  }
}

/** What a kernel gets to lower its node. */
interface KernelContext {
  batch: number;
  /** The buffer of a tensor (activations: [batch, ...shape]). */
  full: (id: number) => Buffer;
  /** The data of weight input `slot` (null when an optional input is absent). */
  weight: (slot: number) => Float32Array | null;
}

type Kernel<K extends OpName> = (node: NodeOf<K>, c: KernelContext) => Step;

function weightOf(node: { inputs: readonly number[] }, slot: number, full: (id: number) => Buffer): Float32Array | null {
  const id = node.inputs[slot] ?? -1;
  return id < 0 ? null : full(id).data;
}

function lowerConv2d(node: NodeOf<'conv2d'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  const [, inH, inW, inC] = x.shape as [number, number, number, number];
  const [, outH, outW] = y.shape as [number, number, number, number];
  const a = node.attrs;
  const p: Conv2dParams = {
    batch: c.batch, inH, inW, inC, outH, outW,
    kernel: a.kernel, stride: a.stride, dilation: a.dilation, padding: a.padding,
    groups: a.groups, groupInputChannels: a.groupInputChannels, groupOutputChannels: a.groupOutputChannels,
    outputMin: a.outputMin, outputMax: a.outputMax,
  };
  const filter = c.weight(1)!;
  const bias = c.weight(2);
  return () => conv2d(x.data, filter, bias, p, y.data);
}

function lowerDepthwise(node: NodeOf<'depthwiseConv2d'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  const [, inH, inW, inC] = x.shape as [number, number, number, number];
  const [, outH, outW] = y.shape as [number, number, number, number];
  const a = node.attrs;
  const p: DepthwiseConv2dParams = {
    batch: c.batch, inH, inW, inC, outH, outW,
    kernel: a.kernel, stride: a.stride, dilation: a.dilation, padding: a.padding,
    depthMultiplier: a.depthMultiplier, outputMin: a.outputMin, outputMax: a.outputMax,
  };
  const filter = c.weight(1)!;
  const bias = c.weight(2);
  return () => depthwiseConv2d(x.data, filter, bias, p, y.data);
}

/**
 * Aligns an operand to the output's full rank: per-sample dimensions are
 * right-aligned (NumPy), the batch dimension stays first (size 1 for constants).
 */
function alignedShape(b: Buffer, perSampleRank: number): number[] {
  const own = b.batched ? b.shape.slice(1) : [...b.shape];
  const padded = new Array<number>(perSampleRank - own.length).fill(1).concat(own);
  return [b.batched ? b.shape[0]! : 1, ...padded];
}

function lowerBinary(node: NodeOf<'add'> | NodeOf<'multiply'>, c: KernelContext): Step {
  const a = c.full(node.inputs[0]!);
  const b = c.full(node.inputs[1]!);
  const y = c.full(node.output);
  const rank = y.shape.length - 1;
  const aShape = alignedShape(a, rank);
  const bShape = alignedShape(b, rank);
  const { op } = node;
  const { outputMin, outputMax } = node.attrs;
  return () => binary(op, a.data, aShape, b.data, bShape, y.shape, outputMin, outputMax, y.data);
}

function lowerClamp(node: NodeOf<'clamp'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  const { min, max } = node.attrs;
  return () => {
    const xd = x.data;
    const yd = y.data;
    for (let i = 0; i < yd.length; i++) yd[i] = clampValue(xd[i]!, min, max);
  };
}

function lowerElementwise(f: (v: number) => number): Kernel<OpName> {
  return (node, c) => {
    const x = c.full(node.inputs[0]!);
    const y = c.full(node.output);
    return () => {
      const xd = x.data;
      const yd = y.data;
      for (let i = 0; i < yd.length; i++) yd[i] = f(xd[i]!);
    };
  };
}

function lowerLeakyRelu(node: NodeOf<'leakyRelu'>, c: KernelContext): Step {
  const { alpha } = node.attrs;
  return lowerElementwise((v) => (v >= 0 ? v : v * alpha))(node, c);
}

function lowerSoftmax(node: NodeOf<'softmax'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  // Last per-sample dimension (a per-sample scalar is its own row).
  const inner = y.shape.length > 1 ? y.shape[y.shape.length - 1]! : 1;
  const rows = y.data.length / inner;
  return () => softmax(x.data, rows, inner, y.data);
}

function lowerGap(node: NodeOf<'globalAveragePool'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  const [n, h, w, ch] = x.shape as [number, number, number, number];
  return () => globalAveragePool(x.data, n, h, w, ch, y.data);
}

function lowerPool(node: NodeOf<'averagePool2d'> | NodeOf<'maxPool2d'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  const [n, h, w, ch] = x.shape as [number, number, number, number];
  const [, outH, outW] = y.shape as [number, number, number, number];
  const { pool, stride } = node.attrs;
  const f = node.op === 'averagePool2d' ? averagePool2d : maxPool2d;
  return () => f(x.data, n, h, w, ch, pool, stride, outH, outW, y.data);
}

function lowerFc(node: NodeOf<'fullyConnected'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  const { inputChannels, outputChannels, outputMin, outputMax } = node.attrs;
  const weights = c.weight(1)!;
  const bias = c.weight(2);
  const rows = x.data.length / inputChannels;
  return () => fullyConnected(x.data, weights, bias, rows, inputChannels, outputChannels, outputMin, outputMax, y.data);
}

function lowerPad(node: NodeOf<'pad'>, c: KernelContext): Step {
  const x = c.full(node.inputs[0]!);
  const y = c.full(node.output);
  const pre = [0, ...node.attrs.prePadding];
  const post = [0, ...node.attrs.postPadding];
  const { value } = node.attrs;
  return () => pad(x.data, x.shape, pre, post, value, y.data);
}

/** The reference kernel of every op of the schema (lib/schema.ts): the record does not compile without a new op. */
const KERNELS: { readonly [K in OpName]: Kernel<K> } = {
  conv2d: lowerConv2d,
  depthwiseConv2d: lowerDepthwise,
  add: lowerBinary,
  multiply: lowerBinary,
  clamp: lowerClamp,
  hardswish: lowerElementwise(hardswishValue),
  sigmoid: lowerElementwise(sigmoidValue),
  softmax: lowerSoftmax,
  globalAveragePool: lowerGap,
  averagePool2d: lowerPool,
  maxPool2d: lowerPool,
  fullyConnected: lowerFc,
  pad: lowerPad,
  reshape: () => () => undefined, // storage shared with the input (planned in the constructor)
  // A graph with a convert has qint8 tensors: the runtime selects reference-qs8.ts for it (see there).
  convert: () => {
    throw new RangeError('Expected a graph with quantized tensors to run on the int8 reference (lib/backends/reference-qs8.ts) but received convert in a float graph');
  },
  leakyRelu: lowerLeakyRelu,
};

export class ReferencePreparedGraph implements PreparedGraph {
  readonly weightBytes: number;
  private graph: Graph | null;

  constructor(graph: Graph) {
    this.graph = graph;
    this.weightBytes = graph.weightBytes;
  }

  private live(): Graph {
    if (this.graph === null || this.graph.disposed) throw new DisposedError('Graph');
    return this.graph;
  }

  compileSync(batch: number, _threads: number): BackendRuntime {
    return new ReferenceRuntime(this.live(), batch);
  }

  async compile(batch: number, threads: number): Promise<BackendRuntime> {
    return this.compileSync(batch, threads);
  }

  dispose(): void {
    this.graph = null;
  }
}

export const referenceBackend: Backend = {
  name: 'reference',
  prepare(graph: Graph): PreparedGraph {
    return new ReferencePreparedGraph(graph);
  },
  prepareAsync(graph: Graph): Promise<PreparedGraph> {
    return Promise.resolve(new ReferencePreparedGraph(graph));
  },
};
