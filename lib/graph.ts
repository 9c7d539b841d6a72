/**
 * The backend-neutral graph IR.
 *
 * A `Graph` records float32 NHWC tensors and nodes, validates every argument
 * and infers every shape. It knows nothing of MobileNet and nothing of
 * XNNPACK: `compile()` hands the recorded nodes to a backend (`native`:
 * XNNPACK through the addon, `reference`: plain TypeScript loops).
 *
 * Shapes: tensors made by `input()` and by nodes are *batched*: their shape
 * here is the per-sample shape (e.g. [H, W, C]) and the batch dimension N is
 * prepended when the graph is compiled with `{ batch: N }`. Tensors made by
 * `constant()` are *unbatched*: their shape is their whole shape.
 *
 * Layouts (as XNNPACK wants them):
 *  - conv2d filter: OHWI, [groups * groupOutputChannels, kh, kw, groupInputChannels]
 *  - depthwiseConv2d filter: [1, kh, kw, inputChannels * depthMultiplier]
 *    (Keras's depthwise [kh, kw, C, m] has the same memory order)
 *  - fullyConnected weights: [outputChannels, inputChannels]
 *  - padding: [top, right, bottom, left]
 */
import * as v from './validate.js';
import { DisposedError } from './errors.js';

export type Shape = readonly number[];
/** top, right, bottom, left */
export type Padding4 = readonly [number, number, number, number];

export interface TensorInfo {
  readonly id: number;
  /** Per-sample shape for batched tensors, whole shape for constants. */
  readonly shape: Shape;
  readonly batched: boolean;
  /** Constant data (constants only). */
  readonly data?: Float32Array;
  readonly name?: string;
}

/** A handle to a tensor of one graph. */
export interface Tensor {
  readonly id: number;
  readonly shape: Shape;
}

interface NodeBase {
  /** Optional label used in error messages (e.g. the Keras layer name). */
  readonly name?: string;
  readonly output: number;
}

export interface Conv2dNode extends NodeBase {
  readonly op: 'conv2d';
  readonly input: number;
  readonly filter: Float32Array;
  readonly bias: Float32Array | null;
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly padding: Padding4;
  readonly groups: number;
  readonly groupInputChannels: number;
  readonly groupOutputChannels: number;
  readonly outputMin: number;
  readonly outputMax: number;
}

export interface DepthwiseConv2dNode extends NodeBase {
  readonly op: 'depthwiseConv2d';
  readonly input: number;
  readonly filter: Float32Array;
  readonly bias: Float32Array | null;
  readonly kernel: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly padding: Padding4;
  readonly inputChannels: number;
  readonly depthMultiplier: number;
  readonly outputMin: number;
  readonly outputMax: number;
}

export interface BinaryNode extends NodeBase {
  readonly op: 'add' | 'multiply';
  readonly a: number;
  readonly b: number;
  readonly outputMin: number;
  readonly outputMax: number;
}

export interface ClampNode extends NodeBase {
  readonly op: 'clamp';
  readonly input: number;
  readonly min: number;
  readonly max: number;
}

export interface UnaryNode extends NodeBase {
  readonly op: 'hardswish' | 'sigmoid' | 'softmax';
  readonly input: number;
}

export interface GlobalAveragePoolNode extends NodeBase {
  readonly op: 'globalAveragePool';
  readonly input: number;
}

export interface AveragePool2dNode extends NodeBase {
  readonly op: 'averagePool2d';
  readonly input: number;
  readonly pool: readonly [number, number];
  readonly stride: readonly [number, number];
}

export interface MaxPool2dNode extends NodeBase {
  readonly op: 'maxPool2d';
  readonly input: number;
  readonly pool: readonly [number, number];
  readonly stride: readonly [number, number];
}

export interface FullyConnectedNode extends NodeBase {
  readonly op: 'fullyConnected';
  readonly input: number;
  readonly weights: Float32Array;
  readonly bias: Float32Array | null;
  readonly inputChannels: number;
  readonly outputChannels: number;
  readonly outputMin: number;
  readonly outputMax: number;
}

export interface PadNode extends NodeBase {
  readonly op: 'pad';
  readonly input: number;
  /** Per-sample dimensions (the batch dimension is never padded). */
  readonly prePadding: readonly number[];
  readonly postPadding: readonly number[];
  readonly value: number;
}

export interface ReshapeNode extends NodeBase {
  readonly op: 'reshape';
  readonly input: number;
  /** New per-sample shape. */
  readonly shape: Shape;
}

export type Node =
  | Conv2dNode
  | DepthwiseConv2dNode
  | BinaryNode
  | ClampNode
  | UnaryNode
  | GlobalAveragePoolNode
  | AveragePool2dNode
  | MaxPool2dNode
  | FullyConnectedNode
  | PadNode
  | ReshapeNode;

export type NodeOp = Node['op'];

/** A node before its output tensor is allocated. */
export type NodeInit = Node extends infer N ? (N extends Node ? Omit<N, 'output'> : never) : never;

export interface ActivationBounds {
  /** Fused lower bound of the output (default -Infinity). */
  outputMin?: number;
  /** Fused upper bound of the output (default +Infinity). */
  outputMax?: number;
}

export interface Conv2dOptions extends ActivationBounds {
  /** OHWI: [groups * groupOutputChannels, kh, kw, groupInputChannels]. */
  filter: Float32Array;
  bias?: Float32Array | null;
  /** [kh, kw] or one number for both. */
  kernel: number | readonly [number, number];
  outputChannels: number;
  stride?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  /** [top, right, bottom, left]; default no padding. */
  padding?: Padding4;
  groups?: number;
  name?: string;
}

export interface DepthwiseConv2dOptions extends ActivationBounds {
  /** [1, kh, kw, inputChannels * depthMultiplier]. */
  filter: Float32Array;
  bias?: Float32Array | null;
  kernel: number | readonly [number, number];
  depthMultiplier?: number;
  stride?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  padding?: Padding4;
  name?: string;
}

export interface FullyConnectedOptions extends ActivationBounds {
  /** [outputChannels, inputChannels]. */
  weights: Float32Array;
  bias?: Float32Array | null;
  outputChannels: number;
  name?: string;
}

export interface AveragePool2dOptions {
  pool: number | readonly [number, number];
  /** Default: the pool size. */
  stride?: number | readonly [number, number];
  name?: string;
}

export type MaxPool2dOptions = AveragePool2dOptions;

export interface PadOptions {
  /** Per-sample dimensions. */
  prePadding: readonly number[];
  postPadding: readonly number[];
  value?: number;
  name?: string;
}

export type BackendName = 'native' | 'reference';

export interface CompileOptions {
  /** Worker threads of this runtime's pool (native only). Default: all cores. */
  threads?: number;
  /** Batch size N, fixed for the runtime. Default 1. */
  batch?: number;
  /** Default 'native'. */
  backend?: BackendName;
}

function convOutputSize(input: number, kernel: number, stride: number, dilation: number, padBefore: number, padAfter: number): number {
  const effective = dilation * (kernel - 1) + 1;
  const padded = input + padBefore + padAfter;
  if (padded < effective) return 0;
  return Math.floor((padded - effective) / stride) + 1;
}

function padding4(p: unknown, name: string): Padding4 {
  if (p === undefined) return [0, 0, 0, 0];
  if (!Array.isArray(p) || p.length !== 4) throw v.typeError('array of 4 non-negative integers', name, p);
  for (const x of p) {
    if (typeof x !== 'number') throw v.typeError('array of 4 non-negative integers', name, p);
    if (!Number.isInteger(x) || x < 0) throw v.rangeError('array of 4 non-negative integers', name, p);
  }
  return [p[0], p[1], p[2], p[3]];
}

function optionalBias(b: unknown, name: string, length: number): Float32Array | null {
  if (b === undefined || b === null) return null;
  return v.float32Array(b, name, length);
}

function bounds(o: ActivationBounds, prefix: string): { outputMin: number; outputMax: number } {
  const outputMin = o.outputMin === undefined ? -Infinity : v.bound(o.outputMin, `${prefix}.outputMin`);
  const outputMax = o.outputMax === undefined ? Infinity : v.bound(o.outputMax, `${prefix}.outputMax`);
  if (!(outputMin < outputMax)) {
    throw new RangeError(`Expected outputMin < outputMax for ${prefix} but received ${outputMin} and ${outputMax}`);
  }
  return { outputMin, outputMax };
}

/** NumPy-style broadcast of two shapes aligned on the right. */
export function broadcastShapes(a: Shape, b: Shape): number[] | null {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return null;
    out.push(Math.max(da, db));
  }
  return out;
}

export class Graph {
  private readonly tensorList: TensorInfo[] = [];
  private readonly nodeList: Node[] = [];
  private inputId = -1;
  private outputId = -1;
  private isDisposed = false;

  get tensors(): readonly TensorInfo[] {
    return this.tensorList;
  }

  get nodes(): readonly Node[] {
    return this.nodeList;
  }

  /** The id of the graph input, or -1 before `input()`. */
  get inputTensor(): number {
    return this.inputId;
  }

  /** The id of the graph output, or -1 before `output()`. */
  get outputTensor(): number {
    return this.outputId;
  }

  get disposed(): boolean {
    return this.isDisposed;
  }

  /** Releases the weights this graph holds; later use throws DisposedError. Safe to call twice. */
  dispose(): void {
    this.isDisposed = true;
    this.tensorList.length = 0;
    this.nodeList.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private live(): void {
    if (this.isDisposed) throw new DisposedError('Graph');
  }

  private newTensor(shape: Shape, batched: boolean, extra: { data?: Float32Array; name?: string } = {}): Tensor {
    const info: TensorInfo = { id: this.tensorList.length, shape: Object.freeze([...shape]), batched, ...extra };
    this.tensorList.push(info);
    return { id: info.id, shape: info.shape };
  }

  /** The tensor with this id, validated to be a batched activation of this graph. */
  private activation(t: unknown, name: string): TensorInfo {
    this.live();
    const id = typeof t === 'number' ? t : (t as Tensor | null | undefined)?.id;
    if (typeof id !== 'number') throw v.typeError('Tensor', name, t);
    const info = this.tensorList[id];
    if (!Number.isInteger(id) || info === undefined) throw v.rangeError('Tensor of this graph', name, t);
    if (!info.batched) throw v.rangeError('activation tensor (not a constant)', name, t);
    return info;
  }

  private anyTensor(t: unknown, name: string): TensorInfo {
    this.live();
    const id = typeof t === 'number' ? t : (t as Tensor | null | undefined)?.id;
    if (typeof id !== 'number') throw v.typeError('Tensor', name, t);
    const info = this.tensorList[id];
    if (!Number.isInteger(id) || info === undefined) throw v.rangeError('Tensor of this graph', name, t);
    return info;
  }

  /** The single external input: per-sample shape, e.g. [224, 224, 3]. */
  input(shape: Shape, name?: string): Tensor {
    this.live();
    if (this.inputId !== -1) throw new RangeError('Expected one input for graph but received a second input()');
    const s = v.shape(shape, 'shape');
    const t = this.newTensor(s, true, name === undefined ? {} : { name });
    this.inputId = t.id;
    return t;
  }

  /** A static tensor (copied). Its shape is its whole shape (no batch dimension). */
  constant(data: Float32Array, shape: Shape, name?: string): Tensor {
    this.live();
    const s = v.shape(shape, 'shape');
    v.float32Array(data, 'data', v.product(s));
    return this.newTensor(s, false, { data: new Float32Array(data), ...(name === undefined ? {} : { name }) });
  }

  /** Marks the single external output. */
  output(t: Tensor): void {
    const info = this.activation(t, 'output');
    this.outputId = info.id;
  }

  private push(node: NodeInit, outShape: Shape, name?: string): Tensor {
    const out = this.newTensor(outShape, true);
    this.nodeList.push({ ...(node as object), output: out.id, ...(name === undefined ? {} : { name }) } as Node);
    return out;
  }

  conv2d(x: Tensor, o: Conv2dOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    if (input.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', input.shape);
    const [h, w, c] = input.shape as [number, number, number];
    const kernel = v.pair(o.kernel, 'kernel');
    const stride = v.pair(o.stride ?? 1, 'stride');
    const dilation = v.pair(o.dilation ?? 1, 'dilation');
    const padding = padding4(o.padding, 'padding');
    const groups = v.positiveInteger(o.groups ?? 1, 'groups');
    const outputChannels = v.positiveInteger(o.outputChannels, 'outputChannels');
    if (c % groups !== 0) throw v.rangeError(`groups dividing the ${c} input channels`, 'groups', groups);
    if (outputChannels % groups !== 0) throw v.rangeError(`groups dividing the ${outputChannels} output channels`, 'groups', groups);
    const groupInputChannels = c / groups;
    const filter = v.float32Array(o.filter, 'filter', outputChannels * kernel[0] * kernel[1] * groupInputChannels);
    const bias = optionalBias(o.bias, 'bias', outputChannels);
    const oh = convOutputSize(h, kernel[0], stride[0], dilation[0], padding[0], padding[2]);
    const ow = convOutputSize(w, kernel[1], stride[1], dilation[1], padding[3], padding[1]);
    if (oh <= 0 || ow <= 0) throw v.rangeError(`kernel no larger than the padded input ${h}x${w}`, 'kernel', kernel);
    return this.push(
      {
        op: 'conv2d', input: input.id, filter: new Float32Array(filter), bias: bias && new Float32Array(bias),
        kernel, stride, dilation, padding, groups, groupInputChannels,
        groupOutputChannels: outputChannels / groups, ...bounds(o, 'conv2d'),
      },
      [oh, ow, outputChannels],
      o.name,
    );
  }

  depthwiseConv2d(x: Tensor, o: DepthwiseConv2dOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    if (input.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', input.shape);
    const [h, w, c] = input.shape as [number, number, number];
    const kernel = v.pair(o.kernel, 'kernel');
    const stride = v.pair(o.stride ?? 1, 'stride');
    const dilation = v.pair(o.dilation ?? 1, 'dilation');
    const padding = padding4(o.padding, 'padding');
    const depthMultiplier = v.positiveInteger(o.depthMultiplier ?? 1, 'depthMultiplier');
    const outC = c * depthMultiplier;
    const filter = v.float32Array(o.filter, 'filter', kernel[0] * kernel[1] * outC);
    const bias = optionalBias(o.bias, 'bias', outC);
    const oh = convOutputSize(h, kernel[0], stride[0], dilation[0], padding[0], padding[2]);
    const ow = convOutputSize(w, kernel[1], stride[1], dilation[1], padding[3], padding[1]);
    if (oh <= 0 || ow <= 0) throw v.rangeError(`kernel no larger than the padded input ${h}x${w}`, 'kernel', kernel);
    return this.push(
      {
        op: 'depthwiseConv2d', input: input.id, filter: new Float32Array(filter), bias: bias && new Float32Array(bias),
        kernel, stride, dilation, padding, inputChannels: c, depthMultiplier, ...bounds(o, 'depthwiseConv2d'),
      },
      [oh, ow, outC],
      o.name,
    );
  }

  private binary(op: 'add' | 'multiply', a: Tensor, b: Tensor, o: ActivationBounds & { name?: string }): Tensor {
    const ta = this.anyTensor(a, 'a');
    const tb = this.anyTensor(b, 'b');
    if (!ta.batched && !tb.batched) throw v.rangeError('at least one activation tensor', 'a', a);
    const shape = broadcastShapes(ta.shape, tb.shape);
    if (shape === null) throw new RangeError(`Expected broadcastable shapes for ${op} but received [${ta.shape.join(', ')}] and [${tb.shape.join(', ')}]`);
    // A constant must not add dimensions beyond the per-sample rank.
    const batchedRank = Math.max(ta.batched ? ta.shape.length : 0, tb.batched ? tb.shape.length : 0);
    if (shape.length > batchedRank) {
      throw new RangeError(`Expected a constant of rank at most ${batchedRank} for ${op} but received rank ${shape.length}`);
    }
    return this.push({ op, a: ta.id, b: tb.id, ...bounds(o ?? {}, op) }, shape, o?.name);
  }

  /** Elementwise a + b with NumPy broadcasting over the per-sample dimensions. */
  add(a: Tensor, b: Tensor, o: ActivationBounds & { name?: string } = {}): Tensor {
    return this.binary('add', a, b, o);
  }

  /** Elementwise a * b with NumPy broadcasting (e.g. [H,W,C] * [1,1,C] for squeeze-excite). */
  multiply(a: Tensor, b: Tensor, o: ActivationBounds & { name?: string } = {}): Tensor {
    return this.binary('multiply', a, b, o);
  }

  clamp(x: Tensor, min: number, max: number, name?: string): Tensor {
    const input = this.activation(x, 'input');
    const lo = v.bound(min, 'min');
    const hi = v.bound(max, 'max');
    if (!(lo < hi)) throw new RangeError(`Expected min < max for clamp but received ${lo} and ${hi}`);
    return this.push({ op: 'clamp', input: input.id, min: lo, max: hi }, input.shape, name);
  }

  hardswish(x: Tensor, name?: string): Tensor {
    const input = this.activation(x, 'input');
    if (input.shape.length === 0) throw v.rangeError('input of rank at least 1', 'input', input.shape);
    return this.push({ op: 'hardswish', input: input.id }, input.shape, name);
  }

  sigmoid(x: Tensor, name?: string): Tensor {
    const input = this.activation(x, 'input');
    if (input.shape.length === 0) throw v.rangeError('input of rank at least 1', 'input', input.shape);
    return this.push({ op: 'sigmoid', input: input.id }, input.shape, name);
  }

  /** Softmax over the last dimension. */
  softmax(x: Tensor, name?: string): Tensor {
    const input = this.activation(x, 'input');
    if (input.shape.length === 0) throw v.rangeError('input of rank at least 1', 'input', input.shape);
    return this.push({ op: 'softmax', input: input.id }, input.shape, name);
  }

  /** [H, W, C] -> [1, 1, C]. */
  globalAveragePool(x: Tensor, name?: string): Tensor {
    const input = this.activation(x, 'input');
    if (input.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', input.shape);
    return this.push({ op: 'globalAveragePool', input: input.id }, [1, 1, input.shape[2] as number], name);
  }

  private pool2d(op: 'averagePool2d' | 'maxPool2d', x: Tensor, o: AveragePool2dOptions | MaxPool2dOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    if (input.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', input.shape);
    const pool = v.pair(o.pool, 'pool');
    const stride = v.pair(o.stride ?? pool, 'stride');
    const [h, w, c] = input.shape as [number, number, number];
    const oh = convOutputSize(h, pool[0], stride[0], 1, 0, 0);
    const ow = convOutputSize(w, pool[1], stride[1], 1, 0, 0);
    if (oh <= 0 || ow <= 0) throw v.rangeError(`pool no larger than the input ${h}x${w}`, 'pool', pool);
    return this.push({ op, input: input.id, pool, stride }, [oh, ow, c], o.name);
  }

  /** Average pooling with 'valid' padding. */
  averagePool2d(x: Tensor, o: AveragePool2dOptions): Tensor {
    return this.pool2d('averagePool2d', x, o);
  }

  /** Max pooling with 'valid' padding. */
  maxPool2d(x: Tensor, o: MaxPool2dOptions): Tensor {
    return this.pool2d('maxPool2d', x, o);
  }

  /** [..., inputChannels] -> [..., outputChannels]; weights are [out, in]. */
  fullyConnected(x: Tensor, o: FullyConnectedOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    if (input.shape.length === 0) throw v.rangeError('input of rank at least 1', 'input', input.shape);
    const inC = input.shape[input.shape.length - 1] as number;
    const outputChannels = v.positiveInteger(o.outputChannels, 'outputChannels');
    const weights = v.float32Array(o.weights, 'weights', outputChannels * inC);
    const bias = optionalBias(o.bias, 'bias', outputChannels);
    return this.push(
      {
        op: 'fullyConnected', input: input.id, weights: new Float32Array(weights), bias: bias && new Float32Array(bias),
        inputChannels: inC, outputChannels, ...bounds(o, 'fullyConnected'),
      },
      [...input.shape.slice(0, -1), outputChannels],
      o.name,
    );
  }

  pad(x: Tensor, o: PadOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    const rank = input.shape.length;
    const check = (p: unknown, name: string): number[] => {
      if (!Array.isArray(p) || p.length !== rank) throw v.typeError(`array of ${rank} non-negative integers`, name, p);
      for (const d of p) v.nonNegativeInteger(d, name);
      return [...p] as number[];
    };
    const pre = check(o.prePadding, 'prePadding');
    const post = check(o.postPadding, 'postPadding');
    const value = v.finiteNumber(o.value ?? 0, 'value');
    const shape = input.shape.map((d, i) => d + (pre[i] as number) + (post[i] as number));
    return this.push({ op: 'pad', input: input.id, prePadding: pre, postPadding: post, value }, shape, o.name);
  }

  /** New per-sample shape with the same number of elements. */
  reshape(x: Tensor, shape: Shape, name?: string): Tensor {
    const input = this.activation(x, 'input');
    const s = v.shape(shape, 'shape');
    if (v.product(s) !== v.product(input.shape)) {
      throw v.rangeError(`shape with ${v.product(input.shape)} elements`, 'shape', s);
    }
    return this.push({ op: 'reshape', input: input.id, shape: s }, s, name);
  }

  /** Checks the graph is complete: one input, one output reachable. */
  validateComplete(): void {
    this.live();
    if (this.inputId === -1) throw new RangeError('Expected an input() in graph but received none');
    if (this.outputId === -1) throw new RangeError('Expected an output() in graph but received none');
  }

  /** Compiles for a backend; see `lib/runtime.ts`. */
  async compile(options: CompileOptions = {}): Promise<import('./runtime.js').Runtime> {
    const { compileGraph } = await import('./runtime.js');
    return compileGraph(this, options);
  }
}
