/**
 * The typed graph of a quantized model: tensors carry a dtype and, for the
 * quantized dtypes, their quantization parameters, in the form XNNPACK's
 * subgraph API takes them:
 *
 * | dtype     | XNNPACK datatype        | values            | real value                 |
 * |-----------|-------------------------|-------------------|----------------------------|
 * | `float32` | `xnn_datatype_fp32`     | Float32Array      | x                          |
 * | `qint8`   | `xnn_datatype_qint8`    | Int8Array         | scale * (q - zeroPoint)    |
 * | `qcint8`  | `xnn_datatype_qcint8`   | Int8Array         | scales[c] * q (symmetric)  |
 * | `qcint32` | `xnn_datatype_qcint32`  | Int32Array        | scales[c] * q (symmetric)  |
 *
 * `c` is the index along `channelDim` (the output channel of a weight).
 * Activations are `float32` or `qint8` (per tensor, asymmetric); conv /
 * depthwise / dense weights are `qcint8` (per output channel, symmetric, as
 * XNNPACK's QC8 kernels want); their bias is `qcint32` with
 * `scales[c] = inputScale * weightScales[c]` (XNNPACK requires a per-channel
 * int32 bias beside a per-channel int8 filter).
 *
 * Nodes are the ops of `lib/graph.ts` with their tensors as an input list
 * (weights and bias are constant tensors here) plus `convert` (float32 ⇄
 * qint8, XNNPACK `xnn_define_convert`). Which kernel a node runs follows from
 * the dtypes of its tensors, as in XNNPACK: a `conv2d` whose input is `qint8`
 * is the QS8/QC8W convolution.
 *
 * A float `Graph` converts to an all-`float32` typed graph with
 * `fromFloatGraph` (used to observe activation ranges during calibration);
 * `lib/quantize/quantize.ts` rewrites it into the mixed int8 graph.
 *
 * Its ops are the schema's (lib/schema.ts); it is the quantizer's working
 * form of a schema `Graph` (plain records, tensor ids free to renumber):
 * `toGraph` turns it into the `Graph` that serializes (graph format v2) to
 * the addon, where native/ops.cc defines the QS8 nodes; `fromGraph` reads
 * any typed `Graph` back.
 */
import { Graph, type Node, type Tensor, type TensorType } from '../graph.js';
import { ModelFormatError } from '../errors.js';
import { OP_NAMES, WEIGHT_CHANNEL_AXIS, type AttrsOf, type OpName } from '../schema.js';

export type DType = 'float32' | 'qint8' | 'qcint8' | 'qcint32';
export const DTYPES: readonly DType[] = ['float32', 'qint8', 'qcint8', 'qcint32'];

export type TensorData = Float32Array | Int8Array | Int32Array;

export interface QTensor {
  readonly id: number;
  /** Per-sample shape for batched (activation) tensors, whole shape for constants. */
  readonly shape: readonly number[];
  readonly batched: boolean;
  readonly dtype: DType;
  /** qint8: real = scale * (q - zeroPoint). */
  readonly scale?: number;
  readonly zeroPoint?: number;
  /** qcint8 / qcint32: one scale per index of `channelDim`. */
  readonly scales?: Float32Array;
  readonly channelDim?: number;
  /** Constants only: Float32Array (float32), Int8Array (qcint8, qint8), Int32Array (qcint32). */
  readonly data?: TensorData;
  readonly name?: string;
}

/** The ops of a typed graph: those of the op schema (lib/schema.ts), `convert` included. */
export type QOp = OpName;
export const QOPS: readonly QOp[] = OP_NAMES;

/** Attribute values: numbers and arrays of numbers (Infinity allowed for open activation bounds). */
export type Attrs = Readonly<Record<string, number | readonly number[]>>;

export interface QNode {
  readonly op: QOp;
  readonly name?: string;
  /**
   * Tensor ids read: conv2d / depthwiseConv2d / fullyConnected `[x, filter, bias?]`,
   * add / multiply `[a, b]`, everything else `[x]`.
   */
  readonly inputs: readonly number[];
  readonly output: number;
  /** The op's attributes as in `lib/graph.ts` (kernel, stride, padding, outputMin, …). */
  readonly attrs: Attrs;
}

export interface QGraph {
  readonly tensors: readonly QTensor[];
  readonly nodes: readonly QNode[];
  readonly input: number;
  readonly output: number;
}

/** Ops whose input list starts with the activation and continues with weight/bias constants. */
export const WEIGHTED_OPS: ReadonlySet<QOp> = new Set(['conv2d', 'depthwiseConv2d', 'fullyConnected']);

/** The dimension of a weight tensor that indexes output channels (XNNPACK's `channel_dim`). */
export function weightChannelDim(op: QOp): number {
  // conv2d OHWI: O first; fullyConnected [out, in]: out first; depthwise [1, kh, kw, C*m]: last.
  return WEIGHT_CHANNEL_AXIS[op] ?? 0;
}

function tensorType(t: QTensor): TensorType {
  if (t.dtype === 'float32') return {};
  if (t.dtype === 'qint8') return { dtype: 'qint8', quant: { scale: t.scale!, zeroPoint: t.zeroPoint! } };
  return { dtype: t.dtype, quant: { scale: t.scales!, zeroPoint: 0, axis: t.channelDim ?? 0 } };
}

/**
 * The schema `Graph` of a typed graph (validated node by node: attributes,
 * shapes, the dtype rule of `checkNodeDtypes`). This is what the native
 * backend serializes (graph format v2, quantized tensors included).
 */
export function toGraph(q: QGraph): Graph {
  return toGraphWithOutputs(q, []).graph;
}

/**
 * `toGraph`, with the activations `extra` (ids of `q`) also returned as
 * extra outputs (`Graph.addOutput`); `order`: those ids in the order a
 * runtime writes them after the output.
 */
export function toGraphWithOutputs(q: QGraph, extra: readonly number[]): { graph: Graph; order: number[] } {
  const g = new Graph();
  const map = new Map<number, Tensor>();
  const inT = q.tensors[q.input]!;
  map.set(q.input, g.input(inT.shape, inT.name, tensorType(inT)));
  const get = (id: number): Tensor => {
    const have = map.get(id);
    if (have !== undefined) return have;
    const t = q.tensors[id];
    if (t === undefined || t.batched || t.data === undefined) throw new RangeError(`Expected a computed tensor or a constant for tensor ${id} but received none`);
    const c = g.constant(t.data, t.shape, t.name, tensorType(t));
    map.set(id, c);
    return c;
  };
  q.nodes.forEach((n, i) => {
    const inputs: (Tensor | null)[] = n.inputs.map(get);
    if (WEIGHTED_OPS.has(n.op) && inputs.length === 2) inputs.push(null);
    const out = q.tensors[n.output]!;
    try {
      const y = g.node(n.op, inputs, n.attrs as unknown as AttrsOf<typeof n.op>, { ...(n.name === undefined ? {} : { name: n.name }), output: tensorType(out) });
      if (y.shape.length !== out.shape.length || y.shape.some((d, k) => d !== out.shape[k])) {
        throw new RangeError(`computes shape [${y.shape.join(', ')}] but its output tensor has [${out.shape.join(', ')}]`);
      }
      map.set(n.output, y);
    } catch (e) {
      const m = (e as Error).message;
      throw new RangeError(`node ${i} (${n.name ?? n.op})${m.startsWith('computes') ? ' ' : ': '}${m}`, { cause: e });
    }
  });
  g.output(map.get(q.output)!);
  const byId = new Map<number, number>();
  for (const id of extra) {
    const t = map.get(id);
    if (t === undefined) throw new RangeError(`Expected an activation of the graph for extra output but received tensor ${id}`);
    g.addOutput(t);
    byId.set(t.id, id);
  }
  return { graph: g, order: g.extraOutputs.map((id) => byId.get(id)!) };
}

/** The typed graph of any schema `Graph` (float32 or quantized tensors). */
export function fromGraph(graph: Graph): QGraph {
  graph.validateComplete();
  const tensors: QTensor[] = graph.tensors.map((t) => {
    const base = { id: t.id, shape: [...t.shape], batched: t.batched, dtype: t.dtype as DType, ...(t.data === undefined ? {} : { data: t.data }), ...(t.name === undefined ? {} : { name: t.name }) };
    if (t.dtype === 'qint32') throw new RangeError(`Expected float32, qint8, qcint8 or qcint32 tensors but received tensor ${t.id} of dtype qint32`);
    if (t.quant === undefined) return base;
    if (typeof t.quant.scale === 'number') return { ...base, scale: t.quant.scale, zeroPoint: t.quant.zeroPoint };
    return { ...base, scales: t.quant.scale, channelDim: t.quant.axis ?? 0 };
  });
  const nodes: QNode[] = graph.nodes.map((node: Node) => {
    const attrs: Record<string, number | readonly number[]> = {};
    for (const [k, val] of Object.entries(node.attrs as Record<string, number | readonly number[]>)) {
      attrs[k] = typeof val === 'number' ? val : [...val];
    }
    // Absent optional inputs (-1) are left out: a weighted op's list is [input, weights, bias?].
    const inputs = node.inputs.filter((id) => id >= 0);
    return { op: node.op, ...(node.name === undefined ? {} : { name: node.name }), inputs, output: node.output, attrs };
  });
  return { tensors, nodes, input: graph.inputTensor, output: graph.outputTensor };
}

/** A float `Graph` as an all-float32 typed graph (its weights are already constant tensors, node inputs a list). */
export function fromFloatGraph(graph: Graph): QGraph {
  graph.validateComplete();
  for (const t of graph.tensors) {
    if (t.dtype !== 'float32') throw new RangeError(`Expected a float32 graph for quantization but received tensor ${t.id} of dtype ${t.dtype}`);
  }
  return fromGraph(graph);
}

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}

/** XNNPACK's valid zero point and scale for qint8. */
export function checkQint8(scale: number, zeroPoint: number): boolean {
  return Number.isFinite(scale) && scale > 0 && Number.isInteger(zeroPoint) && zeroPoint >= -128 && zeroPoint <= 127;
}

/**
 * Checks a typed graph read from a file: tensor ids, dtypes, quantization
 * parameters, constant sizes, that every node reads tensors produced before
 * it, and that each node's dtypes are a combination the int8 kernels (and
 * XNNPACK) have. Shapes are checked by replaying the graph into `lib/graph.ts`
 * (see `format.ts`), the one place of shape inference.
 */
export function checkQGraph(g: QGraph, file?: string): void {
  const bad = (msg: string): never => {
    throw new ModelFormatError(msg, file);
  };
  g.tensors.forEach((t, i) => {
    if (t.id !== i) bad(`tensor ${i} has id ${t.id}`);
    if (!DTYPES.includes(t.dtype)) bad(`tensor ${i} has unknown dtype ${JSON.stringify(t.dtype)}`);
    if (t.dtype === 'qint8' && !checkQint8(t.scale ?? NaN, t.zeroPoint ?? NaN)) {
      bad(`tensor ${i} (qint8) needs a positive finite scale and an integer zero point in [-128, 127], got ${t.scale} and ${t.zeroPoint}`);
    }
    if (t.dtype === 'qcint8' || t.dtype === 'qcint32') {
      const cd = t.channelDim ?? -1;
      if (!Number.isInteger(cd) || cd < 0 || cd >= t.shape.length) bad(`tensor ${i} has channel dimension ${cd} outside its shape ${fmt(t.shape)}`);
      if (!(t.scales instanceof Float32Array) || t.scales.length !== t.shape[cd]) bad(`tensor ${i} needs ${t.shape[cd]} channel scales`);
      for (const s of t.scales!) if (!(Number.isFinite(s) && s > 0)) bad(`tensor ${i} has a channel scale ${s} (must be positive and finite)`);
    }
    if (t.batched) {
      if (t.data !== undefined) bad(`activation tensor ${i} must not have data`);
      if (t.dtype !== 'float32' && t.dtype !== 'qint8') bad(`activation tensor ${i} has dtype ${t.dtype} (float32 or qint8 expected)`);
    } else {
      const want = t.dtype === 'float32' ? Float32Array : t.dtype === 'qcint32' ? Int32Array : Int8Array;
      if (!(t.data instanceof want) || t.data.length !== product(t.shape)) bad(`constant tensor ${i} needs ${product(t.shape)} ${t.dtype} values`);
    }
  });
  const produced = new Set<number>([g.input]);
  const tensor = (id: number, what: string): QTensor => {
    const t = g.tensors[id];
    if (!Number.isInteger(id) || t === undefined) return bad(`${what} refers to tensor ${id}, which does not exist`);
    return t;
  };
  if (tensor(g.input, 'the input').dtype !== 'float32' || !g.tensors[g.input]!.batched) bad('the graph input must be a float32 activation');
  g.nodes.forEach((n, i) => {
    const where = `node ${i} (${n.name ?? n.op})`;
    if (!QOPS.includes(n.op)) bad(`${where} has unknown op ${JSON.stringify(n.op)}`);
    const arity = WEIGHTED_OPS.has(n.op) ? [2, 3] : n.op === 'add' || n.op === 'multiply' ? [2, 2] : [1, 1];
    if (!Array.isArray(n.inputs) || n.inputs.length < arity[0]! || n.inputs.length > arity[1]!) bad(`${where} has ${n.inputs?.length} inputs`);
    const ins = n.inputs.map((id) => tensor(id, where));
    for (const t of ins) if (t.batched && !produced.has(t.id)) bad(`${where} reads tensor ${t.id} before it is computed`);
    const out = tensor(n.output, where);
    if (!out.batched || produced.has(out.id)) bad(`${where} writes tensor ${out.id}, which is not a new activation`);
    produced.add(out.id);
    checkDtypes(n, ins, out, where, bad);
  });
  if (!produced.has(g.output)) bad(`the output tensor ${g.output} is never computed`);
  if (tensor(g.output, 'the output').dtype !== 'float32') bad('the graph output must be float32');
}

/** The dtype combinations with a kernel, per op (those the QS8 path of XNNPACK has too). */
function checkDtypes(n: QNode, ins: QTensor[], out: QTensor, where: string, bad: (m: string) => never): void {
  const x = ins[0]!;
  const d = (t: QTensor | undefined): string => t?.dtype ?? 'none';
  if (n.op === 'convert') {
    if (!((x.dtype === 'float32' && out.dtype === 'qint8') || (x.dtype === 'qint8' && out.dtype === 'float32'))) {
      bad(`${where}: convert goes float32 -> qint8 or qint8 -> float32, not ${x.dtype} -> ${out.dtype}`);
    }
    return;
  }
  if (WEIGHTED_OPS.has(n.op)) {
    const [, w, b] = ins;
    if (x.dtype === 'float32') {
      if (d(w) !== 'float32' || (b !== undefined && d(b) !== 'float32') || out.dtype !== 'float32') bad(`${where}: a float32 ${n.op} needs float32 weights, bias and output`);
      return;
    }
    if (x.dtype !== 'qint8' || d(w) !== 'qcint8' || (b !== undefined && d(b) !== 'qcint32') || out.dtype !== 'qint8') {
      bad(`${where}: a quantized ${n.op} needs qint8 input and output, qcint8 weights and a qcint32 bias, got ${d(x)}, ${d(w)}, ${d(b)} -> ${d(out)}`);
    }
    if (w!.channelDim !== weightChannelDim(n.op)) bad(`${where}: weights must be quantized along dimension ${weightChannelDim(n.op)}`);
    if (b !== undefined) {
      for (let c = 0; c < b.scales!.length; c++) {
        const want = Math.fround(x.scale! * w!.scales![c]!);
        if (Math.abs(b.scales![c]! - want) > 1e-6 * want) bad(`${where}: bias scale ${c} must be input scale * weight scale (${want})`);
      }
    }
    return;
  }
  const all = [...ins, out];
  if (n.op === 'softmax' && out.dtype !== 'float32') bad(`${where}: softmax runs in float32 only`);
  const dts = new Set(all.map((t) => t.dtype));
  if (dts.size !== 1) bad(`${where}: inputs and output must all be float32 or all qint8, got ${all.map((t) => t.dtype).join(', ')}`);
  if (out.dtype === 'qint8' && (n.op === 'pad' || n.op === 'reshape' || n.op === 'maxPool2d' || n.op === 'clamp')) {
    if (x.scale !== out.scale || x.zeroPoint !== out.zeroPoint) bad(`${where}: a quantized ${n.op} keeps its input's scale and zero point`);
  }
  for (const t of ins) if (!t.batched && t.dtype === 'qint8' && t.data === undefined) bad(`${where}: constant without data`);
}
