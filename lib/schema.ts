/**
 * The op schema: the one table that says, for every graph op, its inputs (a
 * list), its attributes (types and ranges) and its output-shape rule.
 *
 * Shape of an entry (`defineOp({...})`):
 *   code    stable number of the op in the serialized graph (never reused)
 *   inputs  ordered list of slots: { name, kind: 'activation' | 'constant' | 'any',
 *           dtypes: DType[] accepted, optional?: absent = -1, variadic?: last slot
 *           repeats (at least once) }
 *   attrs   ordered record name -> AttrSpec (the order is the serialized order):
 *           'u32' {min, max?} | 'u32[]' {count, min} (count 2 => [a, b], 4 => [t, r, b, l])
 *           | 'u32[*]' {min} (any length <= MAX_RANK) | 'f32' (±Infinity ok, NaN not)
 *           | 'f32finite'
 *   infer   (inputs, attrs) -> per-sample output shape; throws RangeError with the
 *           library template when the inputs and attributes do not fit together.
 *
 * What is driven by it:
 *   - TypeScript: `NodeOf<'conv2d'>['attrs']` etc. (lib/graph.ts), `Graph.node()` validation.
 *   - The serialized graph (lib/graph-format.ts, documented in native/README.md).
 *   - The C++ reader: `native/schema.gen.h` is generated from this table
 *     (`npx tsx scripts/gen-native-schema.ts`; test/schema.test.ts fails when it is stale),
 *     so the C++ parser checks input kinds/dtypes and attribute types/ranges from it.
 *   - Tests: test/schema-ops.test.ts runs every op here through the reference backend,
 *     the addon, the raw C++ runner and the ONNX exporter.
 *
 * Adding an op: an entry here (+ regenerate the header), its reference kernel
 * (lib/backends/reference.ts `KERNELS`), its XNNPACK define call and shape check
 * (native/ops.cc), its ONNX mapping (the exporter's `node()` switch in bench/onnx/export.ts),
 * and an example graph in test/helpers/op-examples.ts (test/schema-ops.test.ts runs it).
 * `leakyRelu` was added this way (git log -S leakyRelu). The TypeScript records keyed by op name do not compile
 * without the new entry, nor does the C++ table (static_assert on the op count).
 */
import * as v from './validate.js';

/** Element types of tensors. Quantized types carry scale(s) and a zero point. */
export const DTYPES = ['float32', 'qint8', 'qcint8', 'qint32', 'qcint32'] as const;
export type DType = (typeof DTYPES)[number];
/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { float32: 4, qint8: 1, qcint8: 1, qint32: 4, qcint32: 4 };

/** Largest per-sample rank accepted here (XNNPACK itself allows 6 dimensions with the batch and rejects more with a status). */
export const MAX_RANK = 6;

/** Largest dimension and element count of one tensor in the serialized graph (emitted as kMaxDim, kMaxElements into native/schema.gen.h). */
export const MAX_DIM = 2 ** 24;
export const MAX_ELEMENTS = 2 ** 31 - 1;

export type Shape = readonly number[];

/** Quantization of a tensor: real = scale * (q - zeroPoint); per channel along `axis` for qc types. */
export interface Quantization {
  readonly scale: number | Float32Array;
  readonly zeroPoint: number;
  /** Channel dimension of per-channel scales (qcint8 / qcint32). */
  readonly axis?: number;
}

export type TensorData = Float32Array | Int8Array | Int32Array;

export interface TensorInfo {
  readonly id: number;
  /** Per-sample shape for batched tensors, whole shape for constants. */
  readonly shape: Shape;
  readonly batched: boolean;
  readonly dtype: DType;
  /** Constant data (constants only). */
  readonly data?: TensorData;
  readonly quant?: Quantization;
  readonly name?: string;
}

export interface InputSpec {
  readonly name: string;
  readonly kind: 'activation' | 'constant' | 'any';
  readonly dtypes: readonly DType[];
  readonly optional?: boolean;
  readonly variadic?: boolean;
}

export type AttrSpec =
  | { readonly type: 'u32'; readonly min: number; readonly max?: number }
  | { readonly type: 'u32[]'; readonly count: number; readonly min: number }
  | { readonly type: 'u32[*]'; readonly min: number }
  | { readonly type: 'f32' }
  | { readonly type: 'f32finite' };

/** Largest integer attribute value (also in native/schema.gen.h). */
export const MAX_U32_ATTR = 2 ** 24;

type Tuple<N extends number, T extends unknown[] = []> = T['length'] extends N ? T : Tuple<N, [...T, number]>;

export type AttrValue<S extends AttrSpec> = S extends { type: 'u32' | 'f32' | 'f32finite' }
  ? number
  : S extends { type: 'u32[]'; count: infer N extends number }
    ? number extends N
      ? readonly number[]
      : Readonly<Tuple<N>>
    : readonly number[];

export type AttrValues<A extends Record<string, AttrSpec>> = { readonly [K in keyof A]: AttrValue<A[K]> };

/** What an op's shape rule sees: its input tensors (undefined for absent optional ones) and attributes. */
export interface InferContext<A> {
  readonly op: string;
  readonly inputs: readonly (TensorInfo | undefined)[];
  readonly attrs: A;
}

export interface OpSpec<A extends Record<string, AttrSpec> = Record<string, AttrSpec>> {
  readonly code: number;
  readonly inputs: readonly InputSpec[];
  /** Output dtypes accepted (default float32 only). */
  readonly outputDtypes?: readonly DType[];
  readonly attrs: A;
  /** Per-sample output shape; throws RangeError when inputs and attributes do not fit. */
  readonly infer: (c: InferContext<AttrValues<A>>) => Shape;
  /** One line for docs and the generated header. */
  readonly doc: string;
}

function defineOp<const A extends Record<string, AttrSpec>>(spec: OpSpec<A>): OpSpec<A> {
  return spec;
}

// ---------------------------------------------------------------------------
// Shape rules (shared by several ops).
// ---------------------------------------------------------------------------

export function convOutputSize(input: number, kernel: number, stride: number, dilation: number, padBefore: number, padAfter: number): number {
  const effective = dilation * (kernel - 1) + 1;
  const padded = input + padBefore + padAfter;
  if (padded < effective) return 0;
  return Math.floor((padded - effective) / stride) + 1;
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

function shapeText(s: Shape): string {
  return `[${s.join(', ')}]`;
}

function req(c: InferContext<unknown>, i: number): TensorInfo {
  const t = c.inputs[i];
  if (t === undefined) throw new RangeError(`Expected input ${i} for ${c.op} but received none`);
  return t;
}

function rank3(c: InferContext<unknown>): [number, number, number] {
  const x = req(c, 0);
  if (x.shape.length !== 3) throw v.rangeError('input of rank 3 (H, W, C)', 'input', x.shape);
  return x.shape as unknown as [number, number, number];
}

function atLeastRank1(c: InferContext<unknown>): Shape {
  const x = req(c, 0);
  if (x.shape.length === 0) throw v.rangeError('input of rank at least 1', 'input', x.shape);
  return x.shape;
}

function checkBounds(c: InferContext<{ outputMin: number; outputMax: number }>): void {
  const { outputMin, outputMax } = c.attrs;
  if (!(outputMin < outputMax)) throw new RangeError(`Expected outputMin < outputMax for ${c.op} but received ${outputMin} and ${outputMax}`);
}

function checkShape(t: TensorInfo | undefined, expected: Shape, name: string): void {
  if (t === undefined) return;
  if (t.shape.length !== expected.length || t.shape.some((d, i) => d !== expected[i])) {
    throw v.rangeError(`shape ${shapeText(expected)}`, name, t.shape);
  }
}

interface WindowAttrs {
  kernel: readonly [number, number];
  stride: readonly [number, number];
  dilation: readonly [number, number];
  padding: readonly [number, number, number, number];
}

function windowOutput(h: number, w: number, a: WindowAttrs, what: string): [number, number] {
  const oh = convOutputSize(h, a.kernel[0], a.stride[0], a.dilation[0], a.padding[0], a.padding[2]);
  const ow = convOutputSize(w, a.kernel[1], a.stride[1], a.dilation[1], a.padding[3], a.padding[1]);
  if (oh <= 0 || ow <= 0) throw v.rangeError(`${what} ${h}x${w}`, what.startsWith('pool') ? 'pool' : 'kernel', a.kernel);
  return [oh, ow];
}

const F32: readonly DType[] = ['float32'];
/** Activations of ops with a QS8 kernel: float32, or qint8 (XNNPACK's QS8 operators). */
const F32_Q8: readonly DType[] = ['float32', 'qint8'];
const activation = (name: string, dtypes: readonly DType[] = F32): InputSpec => ({ name, kind: 'activation', dtypes });
const q8 = (name: string): InputSpec => activation(name, F32_Q8);
/** Weights: float32 or per-output-channel qcint8; bias: float32 or qcint32 (XNNPACK's QC8 convolutions). */
const weight = (name: string): InputSpec => ({ name, kind: 'constant', dtypes: ['float32', 'qcint8'] });
const bias = (name: string): InputSpec => ({ name, kind: 'constant', dtypes: ['float32', 'qcint32'], optional: true });
const pair = { type: 'u32[]', count: 2, min: 1 } as const;
const bounds = { outputMin: { type: 'f32' }, outputMax: { type: 'f32' } } as const;

function pool2d(c: InferContext<{ pool: readonly [number, number]; stride: readonly [number, number] }>): Shape {
  const [h, w, ch] = rank3(c);
  const [oh, ow] = windowOutput(h, w, { kernel: c.attrs.pool, stride: c.attrs.stride, dilation: [1, 1], padding: [0, 0, 0, 0] }, 'pool no larger than the input');
  return [oh, ow, ch];
}

function binary(c: InferContext<{ outputMin: number; outputMax: number }>): Shape {
  const a = req(c, 0);
  const b = req(c, 1);
  if (!a.batched && !b.batched) throw v.rangeError('at least one activation tensor', 'a', a);
  const shape = broadcastShapes(a.shape, b.shape);
  if (shape === null) throw new RangeError(`Expected broadcastable shapes for ${c.op} but received ${shapeText(a.shape)} and ${shapeText(b.shape)}`);
  // A constant must not add dimensions beyond the per-sample rank.
  const batchedRank = Math.max(a.batched ? a.shape.length : 0, b.batched ? b.shape.length : 0);
  if (shape.length > batchedRank) throw new RangeError(`Expected a constant of rank at most ${batchedRank} for ${c.op} but received rank ${shape.length}`);
  checkBounds(c);
  return shape;
}

// ---------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------

export const OPS = {
  conv2d: defineOp({
    code: 0,
    doc: 'grouped 2D convolution, filter OHWI [groups * groupOutputChannels, kh, kw, groupInputChannels], fused output bounds',
    inputs: [q8('input'), weight('filter'), bias('bias')],
    outputDtypes: F32_Q8,
    attrs: {
      kernel: pair, stride: pair, dilation: pair,
      padding: { type: 'u32[]', count: 4, min: 0 },
      groups: { type: 'u32', min: 1 },
      groupInputChannels: { type: 'u32', min: 1 },
      groupOutputChannels: { type: 'u32', min: 1 },
      ...bounds,
    },
    infer(c) {
      const [h, w, ch] = rank3(c);
      const { groups, groupInputChannels: gic, groupOutputChannels: goc, kernel } = c.attrs;
      if (groups * gic !== ch) throw v.rangeError(`groups * groupInputChannels equal to the input's ${ch} channels`, 'groupInputChannels', gic);
      checkShape(c.inputs[1], [groups * goc, kernel[0], kernel[1], gic], 'filter');
      checkShape(c.inputs[2], [groups * goc], 'bias');
      checkBounds(c);
      const [oh, ow] = windowOutput(h, w, c.attrs, 'kernel no larger than the padded input');
      return [oh, ow, groups * goc];
    },
  }),
  depthwiseConv2d: defineOp({
    code: 1,
    doc: 'depthwise 2D convolution, filter [1, kh, kw, inputChannels * depthMultiplier], fused output bounds',
    inputs: [q8('input'), weight('filter'), bias('bias')],
    outputDtypes: F32_Q8,
    attrs: {
      kernel: pair, stride: pair, dilation: pair,
      padding: { type: 'u32[]', count: 4, min: 0 },
      inputChannels: { type: 'u32', min: 1 },
      depthMultiplier: { type: 'u32', min: 1 },
      ...bounds,
    },
    infer(c) {
      const [h, w, ch] = rank3(c);
      const { inputChannels, depthMultiplier, kernel } = c.attrs;
      if (inputChannels !== ch) throw v.rangeError(`inputChannels equal to the input's ${ch}`, 'inputChannels', inputChannels);
      const outC = ch * depthMultiplier;
      checkShape(c.inputs[1], [1, kernel[0], kernel[1], outC], 'filter');
      checkShape(c.inputs[2], [outC], 'bias');
      checkBounds(c);
      const [oh, ow] = windowOutput(h, w, c.attrs, 'kernel no larger than the padded input');
      return [oh, ow, outC];
    },
  }),
  add: defineOp({
    code: 2,
    doc: 'elementwise a + b, NumPy broadcasting over the per-sample dimensions, fused output bounds',
    inputs: [{ name: 'a', kind: 'any', dtypes: F32_Q8 }, { name: 'b', kind: 'any', dtypes: F32_Q8 }],
    outputDtypes: F32_Q8,
    attrs: { ...bounds },
    infer: binary,
  }),
  multiply: defineOp({
    code: 3,
    doc: 'elementwise a * b, NumPy broadcasting over the per-sample dimensions, fused output bounds',
    inputs: [{ name: 'a', kind: 'any', dtypes: F32_Q8 }, { name: 'b', kind: 'any', dtypes: F32_Q8 }],
    outputDtypes: F32_Q8,
    attrs: { ...bounds },
    infer: binary,
  }),
  clamp: defineOp({
    code: 4,
    doc: 'min(max(x, min), max)',
    inputs: [q8('input')],
    outputDtypes: F32_Q8,
    attrs: { min: { type: 'f32' }, max: { type: 'f32' } },
    infer(c) {
      if (!(c.attrs.min < c.attrs.max)) throw new RangeError(`Expected min < max for clamp but received ${c.attrs.min} and ${c.attrs.max}`);
      return req(c, 0).shape;
    },
  }),
  hardswish: defineOp({ code: 5, doc: 'x * relu6(x + 3) / 6', inputs: [q8('input')], outputDtypes: F32_Q8, attrs: {}, infer: atLeastRank1 }),
  sigmoid: defineOp({ code: 6, doc: '1 / (1 + exp(-x))', inputs: [q8('input')], outputDtypes: F32_Q8, attrs: {}, infer: atLeastRank1 }),
  softmax: defineOp({ code: 7, doc: 'softmax over the last dimension', inputs: [activation('input')], attrs: {}, infer: atLeastRank1 }),
  globalAveragePool: defineOp({
    code: 8,
    doc: '[H, W, C] -> [1, 1, C] mean',
    inputs: [q8('input')],
    outputDtypes: F32_Q8,
    attrs: {},
    infer(c) {
      return [1, 1, rank3(c)[2]];
    },
  }),
  averagePool2d: defineOp({
    code: 9,
    doc: "average pooling, 'valid' padding",
    inputs: [activation('input')],
    attrs: { pool: pair, stride: pair },
    infer: pool2d,
  }),
  maxPool2d: defineOp({
    code: 10,
    doc: "max pooling, 'valid' padding",
    inputs: [q8('input')],
    outputDtypes: F32_Q8,
    attrs: { pool: pair, stride: pair },
    infer: pool2d,
  }),
  fullyConnected: defineOp({
    code: 11,
    doc: '[..., inputChannels] -> [..., outputChannels], weights [outputChannels, inputChannels], fused output bounds',
    inputs: [q8('input'), weight('weights'), bias('bias')],
    outputDtypes: F32_Q8,
    attrs: { inputChannels: { type: 'u32', min: 1 }, outputChannels: { type: 'u32', min: 1 }, ...bounds },
    infer(c) {
      const x = atLeastRank1(c);
      const { inputChannels, outputChannels } = c.attrs;
      const last = x[x.length - 1] as number;
      if (inputChannels !== last) throw v.rangeError(`inputChannels equal to the input's last dimension ${last}`, 'inputChannels', inputChannels);
      checkShape(c.inputs[1], [outputChannels, inputChannels], 'weights');
      checkShape(c.inputs[2], [outputChannels], 'bias');
      checkBounds(c);
      return [...x.slice(0, -1), outputChannels];
    },
  }),
  pad: defineOp({
    code: 12,
    doc: 'constant padding of the per-sample dimensions (the batch is never padded)',
    inputs: [q8('input')],
    outputDtypes: F32_Q8,
    attrs: { prePadding: { type: 'u32[*]', min: 0 }, postPadding: { type: 'u32[*]', min: 0 }, value: { type: 'f32finite' } },
    infer(c) {
      const x = req(c, 0).shape;
      const { prePadding: pre, postPadding: post } = c.attrs;
      if (pre.length !== x.length) throw v.rangeError(`array of ${x.length} non-negative integers`, 'prePadding', pre);
      if (post.length !== x.length) throw v.rangeError(`array of ${x.length} non-negative integers`, 'postPadding', post);
      return x.map((d, i) => d + (pre[i] as number) + (post[i] as number));
    },
  }),
  reshape: defineOp({
    code: 13,
    doc: 'new per-sample shape with the same number of elements',
    inputs: [q8('input')],
    outputDtypes: F32_Q8,
    attrs: { shape: { type: 'u32[*]', min: 1 } },
    infer(c) {
      const x = req(c, 0).shape;
      if (c.attrs.shape.length === 0 || v.product(c.attrs.shape) !== v.product(x)) {
        throw v.rangeError(`shape with ${v.product(x)} elements`, 'shape', c.attrs.shape);
      }
      return c.attrs.shape;
    },
  }),
  convert: defineOp({
    code: 14,
    doc: 'float32 -> qint8 (quantize) or qint8 -> float32 (dequantize), XNNPACK convert',
    inputs: [q8('input')],
    outputDtypes: F32_Q8,
    attrs: {},
    infer: atLeastRank1,
  }),
  leakyRelu: defineOp({
    code: 15,
    doc: 'x if x >= 0 else alpha * x (Keras LeakyReLU negative_slope)',
    inputs: [activation('input')],
    attrs: { alpha: { type: 'f32finite' } },
    infer: atLeastRank1,
  }),
} as const;

export type OpName = keyof typeof OPS;
export const OP_NAMES = Object.keys(OPS) as OpName[];

export type AttrsOf<K extends OpName> = (typeof OPS)[K] extends OpSpec<infer A> ? AttrValues<A> : never;

/** A recorded node: op, input tensor ids (-1: absent optional input), attributes, output tensor id. */
export interface NodeOf<K extends OpName> {
  readonly op: K;
  readonly inputs: readonly number[];
  readonly attrs: AttrsOf<K>;
  readonly output: number;
  /** Optional label used in error messages (e.g. the Keras layer name). */
  readonly name?: string;
}

export type Node = { [K in OpName]: NodeOf<K> }[OpName];

export function opSpec(op: OpName): OpSpec {
  return OPS[op] as unknown as OpSpec;
}

/** Checks and normalizes attribute values against the schema (template errors named `<op>.<attr>`). */
export function checkAttrs(op: OpName, attrs: unknown): Record<string, number | readonly number[]> {
  const spec = opSpec(op);
  if (typeof attrs !== 'object' || attrs === null) throw v.typeError('object', `${op} attributes`, attrs);
  const out: Record<string, number | readonly number[]> = {};
  const given = attrs as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!(key in spec.attrs)) throw v.rangeError(`one of ${Object.keys(spec.attrs).join(', ') || '(none)'}`, `${op} attribute name`, key);
  }
  for (const [name, s] of Object.entries(spec.attrs)) {
    const value = given[name];
    const label = `${op}.${name}`;
    switch (s.type) {
      case 'u32': {
        const what = `integer in [${s.min}, ${s.max ?? MAX_U32_ATTR}]`;
        if (typeof value !== 'number') throw v.typeError(what, label, value);
        if (!Number.isInteger(value) || value < s.min || value > (s.max ?? MAX_U32_ATTR)) throw v.rangeError(what, label, value);
        out[name] = value;
        break;
      }
      case 'u32[]':
      case 'u32[*]': {
        const count = s.type === 'u32[]' ? s.count : undefined;
        const what = `array of ${count ?? `at most ${MAX_RANK}`} integers in [${s.min}, ${MAX_U32_ATTR}]`;
        if (!Array.isArray(value)) throw v.typeError(what, label, value);
        if (count !== undefined ? value.length !== count : value.length > MAX_RANK) throw v.rangeError(what, label, value);
        for (const d of value) {
          if (typeof d !== 'number') throw v.typeError(what, label, value);
          if (!Number.isInteger(d) || d < s.min || d > MAX_U32_ATTR) throw v.rangeError(what, label, value);
        }
        out[name] = Object.freeze([...(value as number[])]);
        break;
      }
      case 'f32':
        out[name] = v.bound(value, label);
        break;
      case 'f32finite':
        out[name] = v.finiteNumber(value, label);
        break;
    }
  }
  return out;
}

/** Ops whose weights (input 1) are quantized per output channel, and that channel's dimension. */
export const WEIGHT_CHANNEL_AXIS: Readonly<Partial<Record<OpName, number>>> = { conv2d: 0, depthwiseConv2d: 3, fullyConnected: 0 };
/** Ops whose qint8 output keeps its input's scale and zero point (XNNPACK requires it: the values pass through). */
export const QUANT_PASS_THROUGH: ReadonlySet<OpName> = new Set(['pad', 'reshape', 'maxPool2d', 'clamp']);

/**
 * The dtype rule of every op (native/ops.cc `CheckDtypes` applies the same):
 * `convert` changes float32 <-> qint8; every other op reads and writes one
 * activation dtype (float32, or qint8 for XNNPACK's QS8 kernel), constants
 * of add/multiply have that dtype too, and a qint8 conv2d / depthwiseConv2d
 * / fullyConnected takes qcint8 weights (per output channel) and a qcint32
 * bias (float32 ones with a float32 input).
 */
export function checkNodeDtypes(op: OpName, inputs: readonly (TensorInfo | undefined)[], output: { dtype: DType; quant?: Quantization }): void {
  const x = inputs[0];
  if (x === undefined) return;
  if (op === 'convert') {
    if (x.dtype === output.dtype) throw new RangeError(`Expected convert between float32 and qint8 but received ${x.dtype} -> ${output.dtype}`);
    return;
  }
  const want = output.dtype;
  const axis = WEIGHT_CHANNEL_AXIS[op];
  inputs.forEach((t, i) => {
    if (t === undefined) return;
    let expected: DType = want;
    if (axis !== undefined && i === 1) expected = want === 'qint8' ? 'qcint8' : 'float32';
    if (axis !== undefined && i === 2) expected = want === 'qint8' ? 'qcint32' : 'float32';
    if (t.dtype !== expected) {
      throw new RangeError(`Expected ${expected} for input ${opSpec(op).inputs[Math.min(i, opSpec(op).inputs.length - 1)]!.name} of a ${want} ${op} but received ${t.dtype}`);
    }
    if (axis !== undefined && i >= 1 && want === 'qint8') {
      const a = i === 1 ? axis : 0;
      if ((t.quant?.axis ?? 0) !== a) throw new RangeError(`Expected quantization axis ${a} for input ${i} of ${op} but received ${t.quant?.axis ?? 0}`);
    }
  });
  if (want === 'qint8' && QUANT_PASS_THROUGH.has(op)) {
    const a = x.quant;
    const b = output.quant;
    if (a === undefined || b === undefined || a.scale !== b.scale || a.zeroPoint !== b.zeroPoint) {
      throw new RangeError(`Expected the output of a qint8 ${op} to keep its input's scale and zero point`);
    }
  }
}
