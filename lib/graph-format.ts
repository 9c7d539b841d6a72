/**
 * The serialized graph: the only interface from TypeScript to the native
 * core (the addon's `new Graph(bytes)` and the raw C++ runner's `--graph`
 * file). Versioned, little-endian; the layout is documented in
 * native/README.md and read by native/format.cc. Node records are written
 * from the op schema (lib/schema.ts): op code, output, inputs, then the
 * attributes in the schema's order, each as a count and float64 values.
 *
 * Every tensor's shape is written as this side inferred it; the C++ reader
 * checks each node's output shape against its own rule for the op and
 * refuses the graph on any difference (see native/README.md for why).
 */
import os from 'node:os';
import type { Graph } from './graph.js';
import { DTYPES, DTYPE_BYTES, OPS, opSpec, type TensorInfo } from './schema.js';
import { runSteps, type Steps } from './cooperative.js';

export const GRAPH_FORMAT_VERSION = 2;
export const GRAPH_MAGIC = 'MNXG';
/** Absent optional input. */
export const NO_TENSOR = 0xffffffff;
const HEADER_BYTES = 40;
const ALIGN = 64;

const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;
const encoder = new TextEncoder();

function scales(t: TensorInfo): Float32Array {
  if (t.quant === undefined) return new Float32Array(0);
  return typeof t.quant.scale === 'number' ? new Float32Array([t.quant.scale]) : t.quant.scale;
}

/** Serializes a complete graph. */
export function serializeGraph(graph: Graph): Uint8Array {
  return runSteps(serializeGraphSteps(graph));
}

/** Where `serializeGraphSteps` writes the bytes when not into one Uint8Array (the addon's `new Graph(size)`). */
export interface GraphSink {
  write(offset: number, bytes: Uint8Array): void;
}

/** Constant data is copied in pieces of at most this many bytes, with a step between them. */
const PIECE = 1 << 20;

/**
 * `serializeGraph` in steps (lib/cooperative.ts): yields after every piece
 * of constant data. With `sink`, called once with the total size, the
 * weights go straight to the sink (no serialized copy in JavaScript memory)
 * and the records last; the records alone are returned.
 */
export function* serializeGraphSteps(graph: Graph, sink?: (totalBytes: number) => GraphSink): Steps<Uint8Array> {
  graph.validateComplete();
  const names = new Map<object, Uint8Array>();
  const nameOf = (o: { name?: string }): Uint8Array => {
    let b = names.get(o);
    if (b === undefined) {
      b = encoder.encode(o.name ?? '');
      names.set(o, b);
    }
    return b;
  };
  // Sizes first.
  let size = HEADER_BYTES;
  let data = 0;
  const offsets: number[] = [];
  for (const t of graph.tensors) {
    size += 4 + 4 * t.shape.length + 12 + 4 * scales(t).length + 16 + 4 + nameOf(t).length;
    if (t.data !== undefined) {
      offsets.push(data);
      data = align(data + t.data.byteLength);
    } else {
      offsets.push(0);
    }
  }
  for (const n of graph.nodes) {
    const spec = opSpec(n.op);
    size += 12 + 4 * n.inputs.length + 4;
    for (const name of Object.keys(spec.attrs)) {
      const value = (n.attrs as Record<string, number | readonly number[]>)[name];
      size += 4 + 8 * (typeof value === 'number' ? 1 : (value as readonly number[]).length);
    }
    size += 4 + nameOf(n).length;
  }
  const dataOffset = align(size);
  const out = sink === undefined ? null : sink(dataOffset + data);
  const bytes = new Uint8Array(out === null ? dataOffset + data : dataOffset);
  const view = new DataView(bytes.buffer);
  function* put(target: number, src: Uint8Array): Steps<void> {
    for (let s = 0; s < src.byteLength; s += PIECE) {
      const piece = src.subarray(s, Math.min(src.byteLength, s + PIECE));
      if (out === null) bytes.set(piece, target + s);
      else out.write(target + s, piece);
      yield;
    }
  }
  let at = 0;
  const u8 = (x: number): void => {
    view.setUint8(at, x);
    at += 1;
  };
  const u16 = (x: number): void => {
    view.setUint16(at, x, true);
    at += 2;
  };
  const u32 = (x: number): void => {
    view.setUint32(at, x, true);
    at += 4;
  };
  const i32 = (x: number): void => {
    view.setInt32(at, x, true);
    at += 4;
  };
  const u64 = (x: number): void => {
    view.setBigUint64(at, BigInt(x), true);
    at += 8;
  };
  const f32 = (x: number): void => {
    view.setFloat32(at, x, true);
    at += 4;
  };
  const f64 = (x: number): void => {
    view.setFloat64(at, x, true);
    at += 8;
  };
  const str = (b: Uint8Array): void => {
    u32(b.length);
    bytes.set(b, at);
    at += b.length;
  };
  for (const c of GRAPH_MAGIC) u8(c.charCodeAt(0));
  u32(GRAPH_FORMAT_VERSION);
  u32(graph.tensors.length);
  u32(graph.nodes.length);
  u32(graph.inputTensor);
  u32(graph.outputTensor);
  u64(dataOffset);
  u64(data);
  const le = os.endianness() === 'LE';
  const extra = new Set(graph.extraOutputs);
  for (const [i, t] of graph.tensors.entries()) {
    u8(DTYPES.indexOf(t.dtype));
    u8((t.batched ? 1 : 0) | (t.data !== undefined ? 2 : 0) | (extra.has(i) ? 4 : 0));
    u16(t.shape.length);
    for (const d of t.shape) u32(d);
    i32(t.quant?.zeroPoint ?? 0);
    u32(t.quant?.axis ?? 0);
    const s = scales(t);
    u32(s.length);
    for (const x of s) f32(x);
    if (t.data !== undefined) {
      const off = offsets[i] as number;
      u64(off);
      u64(t.data.byteLength);
      const target = dataOffset + off;
      let src = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      if (!le) {
        src = new Uint8Array(t.data.byteLength);
        const dv = new DataView(src.buffer);
        const width = DTYPE_BYTES[t.dtype];
        for (let k = 0; k < t.data.length; k++) {
          const x = t.data[k] as number;
          if (t.dtype === 'float32') dv.setFloat32(4 * k, x, true);
          else if (width === 1) dv.setInt8(k, x);
          else dv.setInt32(4 * k, x, true);
        }
      }
      yield* put(target, src);
    } else {
      u64(0);
      u64(0);
    }
    str(nameOf(t));
  }
  for (const n of graph.nodes) {
    const spec = opSpec(n.op);
    u32(OPS[n.op].code);
    u32(n.output);
    u32(n.inputs.length);
    for (const id of n.inputs) u32(id < 0 ? NO_TENSOR : id);
    const attrNames = Object.keys(spec.attrs);
    u32(attrNames.length);
    for (const name of attrNames) {
      const value = (n.attrs as Record<string, number | readonly number[]>)[name] as number | readonly number[];
      const list = typeof value === 'number' ? [value] : value;
      u32(list.length);
      for (const x of list) f64(x);
    }
    str(nameOf(n));
  }
  if (at > dataOffset) throw new Error(`serializeGraph: wrote ${at} bytes of records into ${dataOffset}`);
  out?.write(0, bytes);
  return bytes;
}
