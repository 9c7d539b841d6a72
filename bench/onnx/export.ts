/**
 * Graph IR → ONNX ModelProto (opset 14), for running the same network and
 * weights in onnxruntime (benchmarks) and other ONNX tools.
 *
 * Our IR is NHWC with OHWI filters (XNNPACK's layouts); ONNX convolutions are
 * NCHW with OIHW filters. By default the exporter keeps the graph input NHWC
 * (so callers feed exactly what `Runtime.run` takes) and transposes once,
 * lazily, where a spatial op first needs NCHW (`inputLayout: 'nchw'` takes
 * NCHW input instead); tensors whose spatial size is 1×1 switch layout
 * with a free Reshape instead of a Transpose. Every tensor is tracked in the
 * layout(s) it has been materialized in, so no conversion is emitted twice.
 *
 * Lowering:
 *  - conv2d → Conv (OIHW, pads [t, l, b, r], group) + Relu/Clip for fused bounds
 *  - depthwiseConv2d → Conv with group = C, weights [C·m, 1, kh, kw] + Relu/Clip
 *  - add / multiply → Add / Mul (+ Relu/Clip); constants converted to the layout
 *  - clamp → Relu (0, ∞) or Clip; hardswish → HardSwish; sigmoid → Sigmoid; leakyRelu → LeakyRelu
 *  - softmax → Softmax(axis = -1) on the NHWC tensor
 *  - globalAveragePool → GlobalAveragePool; averagePool2d → AveragePool; maxPool2d → MaxPool
 *  - fullyConnected → Gemm(transB) on rank-1 samples, MatMul + Add otherwise
 *  - pad → Pad (constant); reshape → Reshape with batch dimension 0 (copy)
 *
 * Quantized graphs (lib/quantize: qint8 activations, qcint8 weights, qcint32
 * biases) export in QDQ form, which onnxruntime fuses into its int8 kernels
 * (QLinearConv, QLinearAdd, …) at graph optimization:
 *  - convert qint8 → float32 → DequantizeLinear; float32 → qint8 → Mul by the
 *    float32 inverse scale + QuantizeLinear with scale 1 (XNNPACK's
 *    rounding of x · (1/scale); QuantizeLinear's x / scale can differ by
 *    one step near ties)
 *  - a qint8 tensor is an ONNX int8 tensor (uint8, value + 128, with
 *    `int8Storage: 'uint8'`); each int8 node becomes
 *    DequantizeLinear of its qint8 inputs → the float lowering above →
 *    QuantizeLinear to its output's scale and zero point. Fused bounds stay
 *    a Relu/Clip before the QuantizeLinear (onnxruntime drops them when the
 *    output range makes them redundant).
 *  - qcint8 weights: int8 initializers (in ONNX's layout) + per-axis
 *    DequantizeLinear (axis = output channel); qcint32 biases: int32
 *    initializers + per-axis DequantizeLinear (scale = input × weight scale)
 *  - reshape of a qint8 tensor: Reshape of the int8 tensor
 */
import os from 'node:os';
import onnxProto from 'onnx-proto';
import type { Graph, Node, Shape, TensorInfo } from '../../lib/graph.js';
import * as v from '../../lib/validate.js';

const { onnx } = onnxProto;
type IModelProto = onnxProto.onnx.IModelProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

export interface OnnxExportOptions {
  /** A fixed batch size, or 'dynamic' (symbolic dimension `N`, the default). */
  batch?: number | 'dynamic';
  /** Name of the graph input (default "input"): float32 NHWC [N, ...per-sample shape]. */
  inputName?: string;
  /**
   * 'nhwc' (default): the input is [N, H, W, C] as our runtimes take it and is
   * transposed inside the model. 'nchw': the input is [N, C, H, W], ONNX's
   * native layout (no Transpose node; the caller lays the image out).
   */
  inputLayout?: 'nhwc' | 'nchw';
  /** Name of the graph output (default "output"). */
  outputName?: string;
  /** Model/graph name (default "mobilenet"). */
  graphName?: string;
  /** producer_name (default "mobilenet-xnnpack"). */
  producerName?: string;
  /**
   * How int8 tensors (qint8 activations and constants, qcint8 weights, their
   * zero points) are stored: 'int8' (the default: ONNX int8, our values as
   * they are) or 'uint8' (every value and zero point + 128: the same real
   * values, so the same graph). onnxruntime runs 'int8' on its U8S8 kernels
   * on x86-64, whose 16-bit pairwise sums saturate on CPUs without VNNI
   * (AVX2, AVX-512 without VNNI; onnxruntime's documented saturation issue),
   * and 'uint8' on its U8U8 kernels, which do not saturate.
   */
  int8Storage?: 'int8' | 'uint8';
}

/** The ONNX operator set the exporter targets (HardSwish needs 14). */
export const ONNX_OPSET = 14;

type Layout = 'nhwc' | 'nchw';

interface Forms {
  nhwc?: string;
  nchw?: string;
}

function attrInts(name: string, ints: readonly number[]): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: [...ints] };
}

function attrInt(name: string, i: number): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

function attrFloat(name: string, f: number): IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

function floatBytes(data: Float32Array): Uint8Array {
  if (os.endianness() === 'LE') return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  data.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return out;
}

function int32Bytes(data: Int32Array): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  data.forEach((x, i) => view.setInt32(i * 4, x, true));
  return out;
}

function int64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  values.forEach((x, i) => view.setBigInt64(i * 8, BigInt(x), true));
  return out;
}

/** OHWI [O, kh, kw, I] → OIHW [O, I, kh, kw]. */
export function ohwiToOihw(filter: Float32Array, o: number, kh: number, kw: number, i: number): Float32Array {
  const out = new Float32Array(filter.length);
  for (let a = 0; a < o; a++) {
    for (let y = 0; y < kh; y++) {
      for (let x = 0; x < kw; x++) {
        const src = ((a * kh + y) * kw + x) * i;
        for (let c = 0; c < i; c++) out[((a * i + c) * kh + y) * kw + x] = filter[src + c] as number;
      }
    }
  }
  return out;
}

/** Depthwise [1, kh, kw, Cm] → grouped-conv weights [Cm, 1, kh, kw]. */
export function depthwiseToOihw(filter: Float32Array, kh: number, kw: number, cm: number): Float32Array {
  const out = new Float32Array(filter.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const src = (y * kw + x) * cm;
      for (let o = 0; o < cm; o++) out[(o * kh + y) * kw + x] = filter[src + o] as number;
    }
  }
  return out;
}

/** [rows, cols] → [cols, rows]. */
function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c] as number;
  return out;
}

/** A constant broadcast against a rank-3 HWC tensor, as its CHW counterpart (rank 3). */
function constantToChw(data: Float32Array, shape: Shape): { data: Float32Array; shape: number[] } {
  const s = [...shape];
  while (s.length < 3) s.unshift(1);
  const [h, w, c] = s as [number, number, number];
  const out = new Float32Array(data.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let k = 0; k < c; k++) out[(k * h + y) * w + x] = data[(y * w + x) * c + k] as number;
  return { data: out, shape: [c, h, w] };
}

class Exporter {
  private readonly nodes: INodeProto[] = [];
  private readonly initializers: ITensorProto[] = [];
  private readonly forms = new Map<number, Forms>();
  private readonly usedNames = new Set<string>();
  private readonly tensors: readonly TensorInfo[];

  constructor(
    private readonly graph: Graph,
    private readonly int8Storage: 'int8' | 'uint8' = 'int8',
  ) {
    this.tensors = graph.tensors;
  }

  unique(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_./:-]/g, '_') || 't';
    let name = clean;
    for (let i = 1; this.usedNames.has(name); i++) name = `${clean}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  info(id: number): TensorInfo {
    const t = this.tensors[id];
    if (t === undefined) throw new RangeError(`Expected a tensor of the graph for node input but received id ${id}`);
    return t;
  }

  /** The values of a constant tensor (weights): float32, or the integers of a qcint8 tensor (exact in float32). */
  weight(id: number): Float32Array {
    const t = this.info(id);
    if (t.data instanceof Float32Array) return t.data;
    if (t.dtype === 'qcint8' && t.data instanceof Int8Array) return Float32Array.from(t.data);
    throw new RangeError(`Expected a float32 or qcint8 constant for the ONNX exporter but received tensor ${id} (${t.dtype})`);
  }

  /**
   * A weight or bias input: a float32 initializer, or for a quantized constant
   * an int8 (qcint8) / int32 (qcint32) initializer and a per-axis
   * DequantizeLinear along `axis` of `dims`. `values` is the float32 or
   * qcint8 data already in ONNX's layout; a qcint32 bias is taken as stored.
   */
  constInput(id: number, base: string, values: Float32Array, dims: readonly number[], axis: number): string {
    const t = this.info(id);
    if (t.dtype === 'float32') return this.initializer(base, values, dims);
    const q = t.quant!;
    const scales = q.scale as Float32Array;
    const channels = dims[axis]!;
    if (scales.length !== channels) throw new RangeError(`Expected ${channels} channel scales for tensor ${id} but received ${scales.length}`);
    const name = this.unique(`${base}_quantized`);
    let zp: string;
    if (t.dtype === 'qcint8') {
      this.int8Initializer(name, dims, values);
      zp = this.unique(`${base}/zero_point`);
      this.int8Initializer(zp, [channels], new Int8Array(channels));
    } else if (t.dtype === 'qcint32') {
      const data = t.data as Int32Array;
      this.initializers.push({ name, dataType: onnx.TensorProto.DataType.INT32, dims: [...dims], rawData: int32Bytes(data) });
      zp = this.unique(`${base}/zero_point`);
      this.initializers.push({ name: zp, dataType: onnx.TensorProto.DataType.INT32, dims: [channels], rawData: new Uint8Array(channels * 4) });
    } else {
      throw new RangeError(`Expected a float32, qcint8 or qcint32 constant for the ONNX exporter but received tensor ${id} (${t.dtype})`);
    }
    const scale = this.unique(`${base}/scale`);
    this.initializers.push({ name: scale, dataType: onnx.TensorProto.DataType.FLOAT, dims: [channels], rawData: floatBytes(scales) });
    return this.emit('DequantizeLinear', [name, scale, zp], base, [attrInt('axis', axis)]);
  }

  /** An int8 initializer (values in [-128, 127]) as stored: int8, or uint8 shifted by 128 (`int8Storage`). */
  int8Initializer(name: string, dims: readonly number[], values: ArrayLike<number>): void {
    if (this.int8Storage === 'uint8') {
      this.initializers.push({ name, dataType: onnx.TensorProto.DataType.UINT8, dims: [...dims], rawData: Uint8Array.from(values, (x) => x + 128) });
    } else {
      this.initializers.push({ name, dataType: onnx.TensorProto.DataType.INT8, dims: [...dims], rawData: new Uint8Array(Int8Array.from(values).buffer) });
    }
  }

  /** A bias: float32, or qcint32 through a per-axis DequantizeLinear. */
  biasInput(id: number, base: string, channels: number): string {
    const t = this.info(id);
    if (t.dtype === 'qcint32') return this.constInput(id, base, new Float32Array(0), [channels], 0);
    return this.constInput(id, base, this.weight(id), [channels], 0);
  }

  /** A per-tensor scale (float scalar) and int8 zero point (scalar, stored as `int8Storage`) as initializers. */
  qparams(base: string, scale: number, zeroPoint: number): [string, string] {
    const zp = this.unique(`${base}/zero_point`);
    this.int8Initializer(zp, [], [zeroPoint]);
    return [this.scalar(`${base}/scale`, scale), zp];
  }

  initializer(base: string, data: Float32Array, dims: readonly number[]): string {
    const name = this.unique(base);
    this.initializers.push({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims: [...dims], rawData: floatBytes(data) });
    return name;
  }

  int64Initializer(base: string, values: readonly number[]): string {
    const name = this.unique(base);
    this.initializers.push({ name, dataType: onnx.TensorProto.DataType.INT64, dims: [values.length], rawData: int64Bytes(values) });
    return name;
  }

  scalar(base: string, x: number): string {
    const name = this.unique(base);
    this.initializers.push({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims: [], rawData: floatBytes(new Float32Array([x])) });
    return name;
  }

  emit(opType: string, inputs: string[], base: string, attribute: IAttributeProto[] = []): string {
    const output = this.unique(base);
    this.nodes.push({ opType, input: inputs, output: [output], name: this.unique(`${base}/${opType}`), attribute });
    return output;
  }

  setForm(id: number, layout: Layout, name: string): void {
    const f = this.forms.get(id) ?? {};
    f[layout] = name;
    this.forms.set(id, f);
  }

  hasForm(id: number, layout: Layout): boolean {
    return this.forms.get(id)?.[layout] !== undefined;
  }

  /**
   * While an int8 node is lowered (`quantNode`), its qint8 inputs are read
   * through a DequantizeLinear (one per tensor and layout).
   */
  private quantNode = false;
  private readonly dequantized = new Map<string, string>();

  private dq(id: number, layout: Layout, name: string): string {
    const t = this.info(id);
    if (!this.quantNode || t.dtype !== 'qint8') return name;
    const key = `${id}:${layout}`;
    const have = this.dequantized.get(key);
    if (have !== undefined) return have;
    const base = `t${id}_${layout}_float`;
    const [scale, zp] = this.qparams(base, t.quant!.scale as number, t.quant!.zeroPoint);
    const y = this.emit('DequantizeLinear', [name, scale, zp], base);
    this.dequantized.set(key, y);
    return y;
  }

  /** The tensor in its IR layout (per-sample shape as recorded, batch first); float while an int8 node is lowered. */
  nhwc(id: number): string {
    return this.dq(id, 'nhwc', this.rawNhwc(id));
  }

  /** A rank-3 (per-sample) tensor as NCHW; float while an int8 node is lowered. */
  nchw(id: number): string {
    return this.dq(id, 'nchw', this.rawNchw(id));
  }

  /** The layout the tensor is already in (NCHW preferred for rank 3); float while an int8 node is lowered. */
  current(id: number): { layout: Layout; name: string } {
    const c = this.rawCurrent(id);
    return { layout: c.layout, name: this.dq(id, c.layout, c.name) };
  }

  /** The tensor as stored (int8 for qint8) in its IR layout. */
  private rawNhwc(id: number): string {
    const f = this.forms.get(id);
    if (f?.nhwc !== undefined) return f.nhwc;
    if (f?.nchw === undefined) throw new RangeError(`Expected tensor ${id} to be computed before use`);
    const [h, w, c] = this.info(id).shape as [number, number, number];
    const base = `t${id}_nhwc`;
    const name = h === 1 && w === 1
      ? this.emit('Reshape', [f.nchw, this.int64Initializer(`${base}_shape`, [0, 1, 1, c])], base)
      : this.emit('Transpose', [f.nchw], base, [attrInts('perm', [0, 2, 3, 1])]);
    this.setForm(id, 'nhwc', name);
    return name;
  }

  /** A rank-3 (per-sample) tensor as stored, NCHW. */
  private rawNchw(id: number): string {
    const f = this.forms.get(id);
    if (f?.nchw !== undefined) return f.nchw;
    const shape = this.info(id).shape;
    if (shape.length !== 3) throw new RangeError(`Expected a rank-3 tensor for NCHW layout but received [${shape.join(', ')}]`);
    const [h, w, c] = shape as [number, number, number];
    const src = this.rawNhwc(id);
    const base = `t${id}_nchw`;
    const name = h === 1 && w === 1
      ? this.emit('Reshape', [src, this.int64Initializer(`${base}_shape`, [0, c, 1, 1])], base)
      : this.emit('Transpose', [src], base, [attrInts('perm', [0, 3, 1, 2])]);
    this.setForm(id, 'nchw', name);
    return name;
  }

  private rawCurrent(id: number): { layout: Layout; name: string } {
    const f = this.forms.get(id);
    if (f?.nchw !== undefined) return { layout: 'nchw', name: f.nchw };
    return { layout: 'nhwc', name: this.rawNhwc(id) };
  }

  /** Appends Relu/Clip for fused output bounds. */
  bounds(name: string, min: number, max: number, base: string): string {
    if (min === -Infinity && max === Infinity) return name;
    if (min === 0 && max === Infinity) return this.emit('Relu', [name], `${base}_relu`);
    const inputs = [name, min === -Infinity ? '' : this.scalar(`${base}_min`, min)];
    if (max !== Infinity) inputs.push(this.scalar(`${base}_max`, max));
    return this.emit('Clip', inputs, `${base}_clip`);
  }

  node(n: Node, index: number): void {
    const base = n.name ?? `${n.op}_${index}`;
    const out = this.info(n.output);
    if (n.op === 'convert' || out.dtype === 'float32' || n.op === 'reshape') {
      // float nodes, converts, and reshapes (of float or int8 tensors alike)
      this.lower(n, base);
      return;
    }
    if (out.dtype !== 'qint8') throw new RangeError(`Expected float32 or qint8 node outputs for the ONNX exporter but received a ${out.dtype} ${n.op} (${base})`);
    // An int8 node: DequantizeLinear inputs → the float lowering → QuantizeLinear.
    this.quantNode = true;
    try {
      this.lower(n, base);
    } finally {
      this.quantNode = false;
    }
    const f = this.forms.get(n.output)!;
    const [scale, zp] = this.qparams(`${base}/output`, out.quant!.scale as number, out.quant!.zeroPoint);
    for (const layout of ['nhwc', 'nchw'] as const) {
      const y = f[layout];
      if (y !== undefined) f[layout] = this.emit('QuantizeLinear', [y, scale, zp], `${base}_quantized`);
    }
  }

  private lower(n: Node, base: string): void {
    switch (n.op) {
      case 'convert': {
        // float32 -> qint8: QuantizeLinear; qint8 -> float32: DequantizeLinear (per-tensor scale, int8 zero point).
        const x = this.current(n.inputs[0]!);
        const toInt8 = this.info(n.output).dtype === 'qint8';
        const q = toInt8 ? this.info(n.output) : this.info(n.inputs[0]!);
        if (!toInt8) {
          const [scale, zp] = this.qparams(base, q.quant!.scale as number, q.quant!.zeroPoint);
          this.setForm(n.output, x.layout, this.emit('DequantizeLinear', [x.name, scale, zp], base));
          return;
        }
        // XNNPACK quantizes as round(x * fround(1 / scale)), ONNX's QuantizeLinear as round(x / scale): the two
        // differ by one step near ties. The exact XNNPACK form: Mul by the float32 inverse, QuantizeLinear with scale 1.
        const scaled = this.emit('Mul', [x.name, this.scalar(`${base}/inverse_scale`, Math.fround(1 / (q.quant!.scale as number)))], `${base}_scaled`);
        const [one, zp] = this.qparams(`${base}/unit`, 1, q.quant!.zeroPoint);
        this.setForm(n.output, x.layout, this.emit('QuantizeLinear', [scaled, one, zp], base));
        return;
      }
      case 'conv2d':
      case 'depthwiseConv2d': {
        const x = this.nchw(n.inputs[0]!);
        const a = n.attrs;
        const [kh, kw] = a.kernel;
        const filter = this.weight(n.inputs[1]!);
        const biasId = (n.inputs[2] ?? -1) >= 0 ? n.inputs[2]! : -1;
        let weights: Float32Array;
        let dims: number[];
        let group: number;
        if (n.op === 'conv2d') {
          const c = n.attrs;
          const o = c.groups * c.groupOutputChannels;
          weights = ohwiToOihw(filter, o, kh, kw, c.groupInputChannels);
          dims = [o, c.groupInputChannels, kh, kw];
          group = c.groups;
        } else {
          const d = n.attrs;
          const cm = d.inputChannels * d.depthMultiplier;
          weights = depthwiseToOihw(filter, kh, kw, cm);
          dims = [cm, 1, kh, kw];
          group = d.inputChannels;
        }
        const inputs = [x, this.constInput(n.inputs[1]!, `${base}/W`, weights, dims, 0)];
        if (biasId >= 0) inputs.push(this.biasInput(biasId, `${base}/B`, dims[0]!));
        const [top, right, bottom, left] = a.padding;
        let y = this.emit('Conv', inputs, base, [
          attrInts('kernel_shape', [kh, kw]),
          attrInts('strides', a.stride),
          attrInts('dilations', a.dilation),
          attrInts('pads', [top, left, bottom, right]),
          attrInt('group', group),
        ]);
        y = this.bounds(y, a.outputMin, a.outputMax, base);
        this.setForm(n.output, 'nchw', y);
        return;
      }
      case 'add':
      case 'multiply': {
        const outShape = this.info(n.output).shape;
        const operands = [this.info(n.inputs[0]!), this.info(n.inputs[1]!)];
        const activations = operands.filter((t) => t.batched);
        const useNchw = outShape.length === 3
          && activations.every((t) => t.shape.length === 3)
          && activations.some((t) => this.hasForm(t.id, 'nchw'));
        const inputs = operands.map((t, k) => {
          if (t.batched) return useNchw ? this.nchw(t.id) : this.nhwc(t.id);
          if (t.dtype === 'qint8' && t.data instanceof Int8Array) {
            // A quantized constant operand: int8 initializer (in the layout) + DequantizeLinear.
            const values = Float32Array.from(t.data);
            const laid = useNchw ? constantToChw(values, t.shape) : { data: values, shape: [...t.shape] };
            const name = this.unique(`${base}/const${k}_quantized`);
            this.int8Initializer(name, laid.shape, laid.data);
            const [scale, zp] = this.qparams(`${base}/const${k}`, t.quant!.scale as number, t.quant!.zeroPoint);
            return this.emit('DequantizeLinear', [name, scale, zp], `${base}/const${k}`);
          }
          if (!(t.data instanceof Float32Array)) throw new RangeError(`Expected a float32 or qint8 constant operand for ${n.op} (${base}) but received tensor ${t.id} (${t.dtype})`);
          const data = t.data;
          if (!useNchw) return this.initializer(`${base}/const${k}`, data, t.shape);
          const chw = constantToChw(data, t.shape);
          return this.initializer(`${base}/const${k}`, chw.data, chw.shape);
        });
        let y = this.emit(n.op === 'add' ? 'Add' : 'Mul', inputs, base);
        y = this.bounds(y, n.attrs.outputMin, n.attrs.outputMax, base);
        this.setForm(n.output, useNchw ? 'nchw' : 'nhwc', y);
        return;
      }
      case 'clamp': {
        const x = this.current(n.inputs[0]!);
        this.setForm(n.output, x.layout, this.bounds(x.name, n.attrs.min, n.attrs.max, base));
        return;
      }
      case 'hardswish':
      case 'sigmoid': {
        const x = this.current(n.inputs[0]!);
        this.setForm(n.output, x.layout, this.emit(n.op === 'hardswish' ? 'HardSwish' : 'Sigmoid', [x.name], base));
        return;
      }
      case 'leakyRelu': {
        const x = this.current(n.inputs[0]!);
        this.setForm(n.output, x.layout, this.emit('LeakyRelu', [x.name], base, [attrFloat('alpha', n.attrs.alpha)]));
        return;
      }
      case 'softmax': {
        this.setForm(n.output, 'nhwc', this.emit('Softmax', [this.nhwc(n.inputs[0]!)], base, [attrInt('axis', -1)]));
        return;
      }
      case 'globalAveragePool': {
        this.setForm(n.output, 'nchw', this.emit('GlobalAveragePool', [this.nchw(n.inputs[0]!)], base));
        return;
      }
      case 'averagePool2d':
      case 'maxPool2d': {
        const y = this.emit(n.op === 'averagePool2d' ? 'AveragePool' : 'MaxPool', [this.nchw(n.inputs[0]!)], base, [
          attrInts('kernel_shape', n.attrs.pool),
          attrInts('strides', n.attrs.stride),
        ]);
        this.setForm(n.output, 'nchw', y);
        return;
      }
      case 'fullyConnected': {
        const x = this.nhwc(n.inputs[0]!);
        const rank = this.info(n.inputs[0]!).shape.length;
        const { inputChannels, outputChannels, outputMin, outputMax } = n.attrs;
        const w = this.weight(n.inputs[1]!);
        const biasId = (n.inputs[2] ?? -1) >= 0 ? n.inputs[2]! : -1;
        let y: string;
        if (rank === 1) {
          const inputs = [x, this.constInput(n.inputs[1]!, `${base}/W`, w, [outputChannels, inputChannels], 0)];
          if (biasId >= 0) inputs.push(this.biasInput(biasId, `${base}/B`, outputChannels));
          y = this.emit('Gemm', inputs, base, [attrInt('transB', 1)]);
        } else {
          const wt = transpose2d(w, outputChannels, inputChannels);
          y = this.emit('MatMul', [x, this.constInput(n.inputs[1]!, `${base}/W`, wt, [inputChannels, outputChannels], 1)], base);
          if (biasId >= 0) y = this.emit('Add', [y, this.biasInput(biasId, `${base}/B`, outputChannels)], `${base}_bias`);
        }
        this.setForm(n.output, 'nhwc', this.bounds(y, outputMin, outputMax, base));
        return;
      }
      case 'pad': {
        const x = this.current(n.inputs[0]!);
        const { prePadding, postPadding } = n.attrs;
        const rank = prePadding.length;
        let pre = [0, ...prePadding];
        let post = [0, ...postPadding];
        if (x.layout === 'nchw' && rank === 3) {
          const [ph, pw, pc] = prePadding as [number, number, number];
          const [qh, qw, qc] = postPadding as [number, number, number];
          pre = [0, pc, ph, pw];
          post = [0, qc, qh, qw];
        }
        const y = this.emit('Pad', [x.name, this.int64Initializer(`${base}/pads`, [...pre, ...post]), this.scalar(`${base}/value`, n.attrs.value)], base, [
          { name: 'mode', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('constant') },
        ]);
        this.setForm(n.output, x.layout, y);
        return;
      }
      case 'reshape': {
        // As stored: a qint8 tensor is reshaped as int8 (same scale and zero point).
        const y = this.emit('Reshape', [this.rawNhwc(n.inputs[0]!), this.int64Initializer(`${base}/shape`, [0, ...n.attrs.shape])], base);
        this.setForm(n.output, 'nhwc', y);
        return;
      }
      default: {
        const unknown: never = n; // every op of the schema has a case: a new op does not compile without one
        const op = (unknown as { op: string }).op;
        throw new RangeError(`Expected a graph op the ONNX exporter knows for node ${base} but received ${JSON.stringify(op)}`);
      }
    }
  }

  build(o: Required<Omit<OnnxExportOptions, 'batch' | 'int8Storage'>> & { batch: number | 'dynamic' }): IModelProto {
    const g = this.graph;
    const inputInfo = this.info(g.inputTensor);
    const outputInfo = this.info(g.outputTensor);
    this.usedNames.add(o.inputName);
    this.usedNames.add(o.outputName);
    const nchwInput = o.inputLayout === 'nchw';
    if (nchwInput && inputInfo.shape.length !== 3) {
      throw new RangeError(`Expected a rank-3 (H, W, C) graph input for inputLayout 'nchw' but received [${inputInfo.shape.join(', ')}]`);
    }
    this.setForm(inputInfo.id, nchwInput ? 'nchw' : 'nhwc', o.inputName);
    g.nodes.forEach((n, i) => this.node(n, i));
    this.nodes.push({ opType: 'Identity', input: [this.nhwc(outputInfo.id)], output: [o.outputName], name: this.unique('output/Identity') });
    const batchDim = o.batch === 'dynamic' ? { dimParam: 'N' } : { dimValue: o.batch };
    const valueInfo = (name: string, shape: Shape): IValueInfoProto => ({
      name,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: { dim: [batchDim, ...shape.map((d) => ({ dimValue: d }))] },
        },
      },
    });
    return {
      irVersion: 8,
      producerName: o.producerName,
      producerVersion: '0.1.0',
      opsetImport: [{ domain: '', version: ONNX_OPSET }],
      graph: {
        name: o.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: [valueInfo(o.inputName, nchwInput ? [inputInfo.shape[2] as number, inputInfo.shape[0] as number, inputInfo.shape[1] as number] : inputInfo.shape)],
        output: [valueInfo(o.outputName, outputInfo.shape)],
      },
    };
  }
}

/** The ONNX ModelProto of a complete graph, as a plain protobufjs message object. */
export function graphToOnnxModel(graph: Graph, options: OnnxExportOptions = {}): IModelProto {
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  graph.validateComplete();
  const batch = options.batch === undefined || options.batch === 'dynamic' ? 'dynamic' : v.positiveInteger(options.batch, 'batch');
  const name = (x: unknown, label: string, def: string): string => {
    if (x === undefined) return def;
    if (typeof x !== 'string' || x.length === 0) throw v.typeError('non-empty string', label, x);
    return x;
  };
  const inputName = name(options.inputName, 'inputName', 'input');
  const outputName = name(options.outputName, 'outputName', 'output');
  if (inputName === outputName) throw v.rangeError('an output name different from the input name', 'outputName', outputName);
  const inputLayout = options.inputLayout === undefined ? 'nhwc' : v.oneOf(options.inputLayout, 'inputLayout', ['nhwc', 'nchw'] as const);
  const int8Storage = options.int8Storage === undefined ? 'int8' : v.oneOf(options.int8Storage, 'int8Storage', ['int8', 'uint8'] as const);
  return new Exporter(graph, int8Storage).build({
    batch,
    inputLayout,
    inputName,
    outputName,
    graphName: name(options.graphName, 'graphName', 'mobilenet'),
    producerName: name(options.producerName, 'producerName', 'mobilenet-xnnpack'),
  });
}

/** Serialized ONNX model bytes (load with onnxruntime `InferenceSession.create(bytes)`). */
export function exportOnnx(graph: Graph, options: OnnxExportOptions = {}): Uint8Array {
  const model = graphToOnnxModel(graph, options);
  return onnx.ModelProto.encode(model).finish();
}
