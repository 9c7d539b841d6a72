/**
 * The backend-neutral graph IR: data only.
 *
 * A `Graph` records tensors (with a dtype: float32 now, quantized types for
 * int8) and nodes whose inputs, attributes and output-shape rule come from
 * the op schema (`lib/schema.ts`). It validates every argument and infers
 * every shape; it knows nothing of MobileNet, XNNPACK or runtimes:
 * `compileGraph(graph, options)` (lib/runtime.ts) is the one path that
 * builds a Runtime, and the native backend hands the addon the serialized
 * graph (`lib/graph-format.ts`).
 *
 * Shapes: tensors made by `input()` and by nodes are *batched*: their shape
 * here is the per-sample shape (e.g. [H, W, C]) and the batch dimension N is
 * prepended when the graph is compiled with `{ batch: N }`. Tensors made by
 * `constant()` are *unbatched*: their shape is their whole shape. Weights
 * (filters, biases) are constant tensors, inputs of their node.
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
import {
  DTYPES, MAX_DIM, MAX_ELEMENTS, MAX_RANK, OPS, broadcastShapes, checkAttrs, checkNodeDtypes, opSpec,
  type AttrsOf, type DType, type Node, type NodeOf, type OpName, type Quantization, type Shape, type TensorData, type TensorInfo,
} from './schema.js';

export { broadcastShapes };
export type { DType, Node, NodeOf, OpName, Quantization, Shape, TensorData, TensorInfo };
/** top, right, bottom, left */
export type Padding4 = readonly [number, number, number, number];

/** A handle to a tensor of one graph. */
export interface Tensor {
  readonly id: number;
  readonly shape: Shape;
}

/** dtype and quantization of a tensor (default float32). */
export interface TensorType {
  dtype?: DType;
  quant?: Quantization;
}

export type NodeOp = OpName;

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

const ARRAY_OF: Readonly<Record<DType, string>> = { float32: 'Float32Array', qint8: 'Int8Array', qcint8: 'Int8Array', qint32: 'Int32Array', qcint32: 'Int32Array' };

function checkData(data: unknown, dtype: DType, length: number): TensorData {
  const ok = dtype === 'float32' ? data instanceof Float32Array : dtype === 'qint8' || dtype === 'qcint8' ? data instanceof Int8Array : data instanceof Int32Array;
  if (!ok) throw v.typeError(ARRAY_OF[dtype], 'data', data);
  const d = data as TensorData;
  if (d.length !== length) throw v.rangeError(`${ARRAY_OF[dtype]} of length ${length}`, 'data', d);
  return d;
}

/** Validates dtype + quantization for a tensor of `shape`. */
function tensorType(t: TensorType | undefined, shape: Shape): { dtype: DType; quant?: Quantization } {
  if (t === undefined) return { dtype: 'float32' };
  if (typeof t !== 'object' || t === null) throw v.typeError('object', 'type', t);
  const dtype = t.dtype === undefined ? 'float32' : v.oneOf(t.dtype, 'dtype', DTYPES);
  if (dtype === 'float32') {
    if (t.quant !== undefined) throw v.rangeError('no quantization for a float32 tensor', 'quant', t.quant);
    return { dtype };
  }
  const q = t.quant;
  if (typeof q !== 'object' || q === null) throw v.typeError(`quantization ({ scale, zeroPoint }) for a ${dtype} tensor`, 'quant', q);
  const perChannel = dtype === 'qcint8' || dtype === 'qcint32';
  const zeroPoint = q.zeroPoint ?? 0;
  if (!Number.isInteger(zeroPoint) || (dtype === 'qint8' ? zeroPoint < -128 || zeroPoint > 127 : zeroPoint !== 0)) {
    throw v.rangeError(dtype === 'qint8' ? 'integer in [-128, 127]' : '0', 'quant.zeroPoint', q.zeroPoint);
  }
  if (!perChannel) {
    if (typeof q.scale !== 'number' || !(q.scale > 0) || !Number.isFinite(q.scale)) throw v.rangeError('positive finite number', 'quant.scale', q.scale);
    return { dtype, quant: { scale: q.scale, zeroPoint } };
  }
  const axis = q.axis ?? 0;
  if (!Number.isInteger(axis) || axis < 0 || axis >= shape.length) throw v.rangeError(`integer in [0, ${shape.length - 1}]`, 'quant.axis', q.axis);
  const scales = v.float32Array(q.scale, 'quant.scale', shape[axis]);
  for (const x of scales) if (!(x > 0) || !Number.isFinite(x)) throw v.rangeError('positive finite scales', 'quant.scale', q.scale);
  return { dtype, quant: { scale: new Float32Array(scales), zeroPoint, axis } };
}

const adopted = new WeakSet<object>();

/**
 * Hands an array over to the next `Graph` that takes it as a constant: that
 * graph keeps it instead of copying it. For arrays nothing else holds or
 * changes (lib/keras/emit.ts: the lowering's own transposed and folded
 * weights), which saves a copy of every weight when a model loads.
 */
export function adoptArray<T extends TensorData>(data: T): T {
  adopted.add(data);
  return data;
}

export class Graph {
  private readonly tensorList: TensorInfo[] = [];
  private readonly nodeList: Node[] = [];
  private inputId = -1;
  private outputId = -1;
  private readonly extraIds: number[] = [];
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

  /** Bytes of constant data (weights) this graph holds. */
  get weightBytes(): number {
    let n = 0;
    for (const t of this.tensorList) if (t.data !== undefined) n += t.data.byteLength;
    return n;
  }

  /** Releases the weights this graph holds; later use throws DisposedError. Safe to call twice. */
  dispose(): void {
    this.isDisposed = true;
    this.tensorList.length = 0;
    this.nodeList.length = 0;
    this.extraIds.length = 0;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private live(): void {
    if (this.isDisposed) throw new DisposedError('Graph');
  }

  /** `what`: the shape's name in the error (`shape`, `<op> output`). */
  private newTensor(shape: Shape, batched: boolean, extra: Omit<TensorInfo, 'id' | 'shape' | 'batched' | 'dtype'> & { dtype?: DType } = {}, what = 'shape'): Tensor {
    // The serialized graph's limits (native/README.md): checked here, so that the native reader never sees them exceeded.
    if (shape.some((d) => d > MAX_DIM) || shape.reduce((a, b) => a * b, 1) > MAX_ELEMENTS) {
      throw v.rangeError(`shape with dimensions at most ${MAX_DIM} and at most ${MAX_ELEMENTS} elements`, what, shape);
    }
    const info: TensorInfo = { id: this.tensorList.length, shape: Object.freeze([...shape]), batched, dtype: 'float32', ...extra };
    this.tensorList.push(Object.freeze(info));
    return { id: info.id, shape: info.shape };
  }

  private tensorOf(t: unknown, name: string): TensorInfo {
    this.live();
    const id = typeof t === 'number' ? t : (t as Tensor | null | undefined)?.id;
    if (typeof id !== 'number') throw v.typeError('Tensor', name, t);
    const info = this.tensorList[id];
    if (!Number.isInteger(id) || info === undefined) throw v.rangeError('Tensor of this graph', name, t);
    return info;
  }

  /** The tensor with this id, validated to be a batched activation of this graph. */
  private activation(t: unknown, name: string): TensorInfo {
    const info = this.tensorOf(t, name);
    if (!info.batched) throw v.rangeError('activation tensor (not a constant)', name, t);
    return info;
  }

  /** The single external input: per-sample shape, e.g. [224, 224, 3]. */
  input(shape: Shape, name?: string, type?: TensorType): Tensor {
    this.live();
    if (this.inputId !== -1) throw new RangeError('Expected one input for graph but received a second input()');
    const s = v.shape(shape, 'shape');
    if (s.length > MAX_RANK) throw v.rangeError(`array of at most ${MAX_RANK} positive integers`, 'shape', shape);
    const t = this.newTensor(s, true, { ...tensorType(type, s), ...(name === undefined ? {} : { name }) });
    this.inputId = t.id;
    return t;
  }

  /**
   * A static tensor (copied). Its shape is its whole shape (no batch dimension).
   * `data` is a Float32Array for float32, Int8Array for qint8/qcint8, Int32Array for qint32/qcint32.
   */
  constant(data: TensorData, shape: Shape, name?: string, type?: TensorType): Tensor {
    this.live();
    const s = v.shape(shape, 'shape');
    if (s.length > MAX_RANK + 1) throw v.rangeError(`array of at most ${MAX_RANK + 1} positive integers`, 'shape', shape);
    const tt = tensorType(type, s);
    const d = checkData(data, tt.dtype, v.product(s));
    // Arrays handed over with `adoptArray` (fresh arrays of the Keras lowering) are kept, not copied.
    return this.newTensor(s, false, { ...tt, data: adopted.delete(d) ? d : d.slice(), ...(name === undefined ? {} : { name }) });
  }

  /** Marks the single external output. */
  output(t: Tensor): void {
    const info = this.activation(t, 'output');
    if (this.extraIds.includes(info.id)) throw v.rangeError('a tensor that is not already an extra output', 'output', t);
    this.outputId = info.id;
  }

  /**
   * Also returns the values of `t` (a float32 activation computed by a node,
   * not the input or the output): a runtime compiled from this graph writes
   * the output, then every extra output in tensor id order, each
   * [batch, ...shape], into one output array (calibration reads every
   * activation of one run this way). Adding one twice is a no-op.
   */
  addOutput(t: Tensor): void {
    const info = this.activation(t, 'output');
    if (info.dtype !== 'float32' || info.id === this.inputId || info.id === this.outputId || !this.nodeList.some((n) => n.output === info.id)) {
      throw v.rangeError('float32 activation computed by a node, not the input or the output', 'output', t);
    }
    if (this.extraIds.includes(info.id)) return;
    this.extraIds.push(info.id);
    this.extraIds.sort((a, b) => a - b);
  }

  /** The extra outputs (`addOutput`), in tensor id order. */
  get extraOutputs(): readonly number[] {
    return this.extraIds;
  }

  /** Values per sample of the output and the extra outputs together (what a runtime's output holds per sample). */
  get outputSizePerSample(): number {
    let n = this.outputId === -1 ? 0 : v.product(this.tensorList[this.outputId]!.shape);
    for (const id of this.extraIds) n += v.product(this.tensorList[id]!.shape);
    return n;
  }

  /**
   * Adds a node of any op of the schema (lib/schema.ts): `inputs` in the
   * schema's order (null for an absent optional input), attributes as the
   * schema types them. Returns the output tensor (float32 unless `output` says).
   */
  node<K extends OpName>(op: K, inputs: readonly (Tensor | null)[], attrs: AttrsOf<K>, options: { name?: string; output?: TensorType } = {}): Tensor {
    this.live();
    if (typeof op !== 'string' || !Object.hasOwn(OPS, op)) throw v.rangeError(`one of ${Object.keys(OPS).join(', ')}`, 'op', op);
    const spec = opSpec(op);
    if (!Array.isArray(inputs)) throw v.typeError('array of Tensor', 'inputs', inputs);
    const last = spec.inputs[spec.inputs.length - 1];
    const variadic = last?.variadic === true;
    const minCount = spec.inputs.filter((i) => !i.optional).length;
    if (variadic ? inputs.length < minCount : inputs.length < minCount || inputs.length > spec.inputs.length) {
      throw v.rangeError(`${variadic ? 'at least ' : ''}${minCount === spec.inputs.length || variadic ? minCount : `${minCount} to ${spec.inputs.length}`} inputs`, `${op} inputs`, inputs);
    }
    const infos: (TensorInfo | undefined)[] = [];
    const ids: number[] = [];
    inputs.forEach((t, i) => {
      const slot = spec.inputs[Math.min(i, spec.inputs.length - 1)]!;
      const name = spec.inputs.length === 1 && !variadic ? 'input' : slot.name;
      if (t === null || t === undefined) {
        if (!slot.optional) throw v.typeError('Tensor', name, t);
        infos.push(undefined);
        ids.push(-1);
        return;
      }
      const info = this.tensorOf(t, name);
      if (slot.kind === 'activation' && !info.batched) throw v.rangeError('activation tensor (not a constant)', name, t);
      if (slot.kind === 'constant' && info.batched) throw v.rangeError('constant tensor', name, t);
      if (!slot.dtypes.includes(info.dtype)) throw v.rangeError(`tensor of dtype ${slot.dtypes.join(' or ')}`, name, info.dtype);
      infos.push(info);
      ids.push(info.id);
    });
    while (ids.length < spec.inputs.length && !variadic) ids.push(-1);
    const checked = checkAttrs(op, attrs) as AttrsOf<K>;
    const shape = spec.infer({ op, inputs: infos, attrs: checked as never });
    const outType = tensorType(options.output, shape);
    if (!(spec.outputDtypes ?? ['float32']).includes(outType.dtype)) throw v.rangeError(`output dtype ${(spec.outputDtypes ?? ['float32']).join(' or ')}`, `${op} output`, outType.dtype);
    checkNodeDtypes(op, infos, outType);
    if (shape.length > MAX_RANK) throw v.rangeError(`output of rank at most ${MAX_RANK}`, op, shape);
    const out = this.newTensor(shape, true, outType, `${op} output`);
    const name = options.name;
    if (name !== undefined && typeof name !== 'string') throw v.typeError('string', 'name', name);
    const node = { op, inputs: Object.freeze(ids), attrs: Object.freeze(checked), output: out.id, ...(name === undefined ? {} : { name }) } as NodeOf<K>;
    this.nodeList.push(Object.freeze(node) as Node);
    return out;
  }

  private weight(data: Float32Array | null, shape: Shape, name: string | undefined, suffix: string): Tensor | null {
    if (data === null) return null;
    return this.constant(data, shape, name === undefined ? undefined : `${name}/${suffix}`);
  }

  conv2d(x: Tensor, o: Conv2dOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    if (input.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', input.shape);
    const c = input.shape[2] as number;
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
    const b = bounds(o, 'conv2d');
    const attrs = { kernel, stride, dilation, padding, groups, groupInputChannels, groupOutputChannels: outputChannels / groups, ...b };
    // Shape errors before the weights are copied.
    OPS.conv2d.infer({ op: 'conv2d', inputs: [input], attrs });
    const f = this.weight(filter, [outputChannels, kernel[0], kernel[1], groupInputChannels], o.name, 'filter');
    return this.node('conv2d', [x, f, this.weight(bias, [outputChannels], o.name, 'bias')], attrs, { name: o.name });
  }

  depthwiseConv2d(x: Tensor, o: DepthwiseConv2dOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    if (input.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', input.shape);
    const c = input.shape[2] as number;
    const kernel = v.pair(o.kernel, 'kernel');
    const stride = v.pair(o.stride ?? 1, 'stride');
    const dilation = v.pair(o.dilation ?? 1, 'dilation');
    const padding = padding4(o.padding, 'padding');
    const depthMultiplier = v.positiveInteger(o.depthMultiplier ?? 1, 'depthMultiplier');
    const outC = c * depthMultiplier;
    const filter = v.float32Array(o.filter, 'filter', kernel[0] * kernel[1] * outC);
    const bias = optionalBias(o.bias, 'bias', outC);
    const b = bounds(o, 'depthwiseConv2d');
    const attrs = { kernel, stride, dilation, padding, inputChannels: c, depthMultiplier, ...b };
    OPS.depthwiseConv2d.infer({ op: 'depthwiseConv2d', inputs: [input], attrs });
    const f = this.weight(filter, [1, kernel[0], kernel[1], outC], o.name, 'filter');
    return this.node('depthwiseConv2d', [x, f, this.weight(bias, [outC], o.name, 'bias')], attrs, { name: o.name });
  }

  private binary(op: 'add' | 'multiply', a: Tensor, b: Tensor, o: ActivationBounds & { name?: string }): Tensor {
    this.tensorOf(a, 'a');
    this.tensorOf(b, 'b');
    return this.node(op, [a, b], bounds(o ?? {}, op), { name: o?.name });
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
    this.activation(x, 'input');
    const lo = v.bound(min, 'min');
    const hi = v.bound(max, 'max');
    return this.node('clamp', [x], { min: lo, max: hi }, { name });
  }

  hardswish(x: Tensor, name?: string): Tensor {
    return this.node('hardswish', [x], {}, { name });
  }

  sigmoid(x: Tensor, name?: string): Tensor {
    return this.node('sigmoid', [x], {}, { name });
  }

  /** Softmax over the last dimension. */
  softmax(x: Tensor, name?: string): Tensor {
    return this.node('softmax', [x], {}, { name });
  }

  /** [H, W, C] -> [1, 1, C]. */
  globalAveragePool(x: Tensor, name?: string): Tensor {
    return this.node('globalAveragePool', [x], {}, { name });
  }

  private pool2d(op: 'averagePool2d' | 'maxPool2d', x: Tensor, o: AveragePool2dOptions | MaxPool2dOptions): Tensor {
    const input = this.activation(x, 'input');
    if (typeof o !== 'object' || o === null) throw v.typeError('object', 'options', o);
    if (input.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', input.shape);
    const pool = v.pair(o.pool, 'pool');
    const stride = v.pair(o.stride ?? pool, 'stride');
    return this.node(op, [x], { pool, stride }, { name: o.name });
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
    const b = bounds(o, 'fullyConnected');
    const w = this.weight(weights, [outputChannels, inC], o.name, 'weights');
    return this.node('fullyConnected', [x, w, this.weight(bias, [outputChannels], o.name, 'bias')], { inputChannels: inC, outputChannels, ...b }, { name: o.name });
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
    return this.node('pad', [x], { prePadding: pre, postPadding: post, value }, { name: o.name });
  }

  /** New per-sample shape with the same number of elements. */
  reshape(x: Tensor, shape: Shape, name?: string): Tensor {
    const input = this.activation(x, 'input');
    const s = v.shape(shape, 'shape');
    if (v.product(s) !== v.product(input.shape)) {
      throw v.rangeError(`shape with ${v.product(input.shape)} elements`, 'shape', s);
    }
    return this.node('reshape', [x], { shape: s }, { name });
  }

  /** Checks the graph is complete: one input, one output reachable. */
  validateComplete(): void {
    this.live();
    if (this.inputId === -1) throw new RangeError('Expected an input() in graph but received none');
    if (this.outputId === -1) throw new RangeError('Expected an output() in graph but received none');
  }
}
