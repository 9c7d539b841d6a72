/**
 * The serialized graph (lib/graph-format.ts) and its one C++ reader
 * (native/format.cc): valid graphs round-trip; malformed bytes given to the
 * raw binding are refused with a typed error (code ERR_GRAPH_FORMAT,
 * GraphFormatError through the library), never a crash or an out-of-bounds
 * read. A seeded fuzzer mutates real serialized graphs (byte flips, u32
 * fields overwritten with edge values, truncations) and counts outcomes.
 */
import { describe, expect, it } from 'vitest';
import { loadBinding } from '../lib/binding.js';
import { serializeGraph, GRAPH_FORMAT_VERSION } from '../lib/graph-format.js';
import { toNativeGraph } from '../lib/backends/native.js';
import { GraphFormatError, XnnpackError } from '../lib/errors.js';
import { Graph } from '../lib/graph.js';
import { mulberry32 } from '../lib/keras/random.js';
import { OP_EXAMPLES } from './helpers/op-examples.js';

const NGraph = (): new (b: Uint8Array) => { dispose(): void; compile(b: number, t: number): { runSync(i: Float32Array, o: Float32Array): void; inputSize: number; outputSize: number; dispose(): void } } =>
  loadBinding().Graph as never;

function formatError(bytes: Uint8Array): string {
  try {
    new (NGraph())(bytes).dispose();
  } catch (e) {
    expect((e as { code?: string }).code).toBe('ERR_GRAPH_FORMAT');
    return (e as Error).message;
  }
  throw new Error('expected the graph to be refused');
}

function u32(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint32(at, value, true);
  return copy;
}

function small(): Uint8Array {
  const g = new Graph();
  const x = g.input([4, 4, 2]);
  g.output(g.clamp(g.conv2d(x, { filter: new Float32Array(3 * 2).fill(0.5), kernel: 1, outputChannels: 3 }), 0, 6));
  return serializeGraph(g);
}

describe('serialized graph', () => {
  it('header: magic, version, counts, data section', () => {
    const b = small();
    expect(String.fromCharCode(...b.subarray(0, 4))).toBe('MNXG');
    expect(new DataView(b.buffer).getUint32(4, true)).toBe(GRAPH_FORMAT_VERSION);
    expect(formatError(b.subarray(0, 39))).toMatch(/^Invalid serialized graph at byte 0: truncated header/);
    expect(formatError(u32(b, 0, 0x47584e4e))).toMatch(/magic is not MNXG/);
    expect(formatError(u32(b, 4, 1))).toMatch(/unsupported version 1 \(this build reads 2\)/);
    expect(formatError(u32(b, 8, 0))).toMatch(/tensor count 0 out of range/);
    expect(formatError(u32(b, 8, 1 << 24))).toMatch(/tensor and node counts larger than the records section/);
    expect(formatError(u32(b, 12, 1 << 20))).toMatch(/larger than the records section/);
    expect(formatError(u32(b, 16, 99))).toMatch(/input id is not an activation tensor/);
    // A data section claiming gigabytes it does not carry is refused before any allocation.
    expect(formatError(u32(u32(b, 32, 0), 36, 4))).toMatch(/data section .* does not end the/);
    expect(formatError(b.subarray(0, b.length - 1))).toMatch(/does not end the/);
  });

  it('records: dtype, flags, ids, attributes, shapes are checked against the schema', () => {
    const b = small();
    // tensor 0 starts at byte 40: dtype, flags, rank (u16), dims...
    const t0 = 40;
    const withByte = (at: number, v: number): Uint8Array => {
      const c = b.slice();
      c[at] = v;
      return c;
    };
    expect(formatError(withByte(t0, 9))).toMatch(/tensor 0: unknown dtype 9/);
    expect(formatError(withByte(t0 + 1, 3))).toMatch(/tensor 0: an activation has no data, a constant has data/);
    expect(formatError(withByte(t0 + 2, 9))).toMatch(/tensor 0: rank 9 out of range/);
    expect(formatError(u32(b, t0 + 4, 0))).toMatch(/tensor 0: dimension 0 out of range/);
    expect(formatError(withByte(t0, 1))).toMatch(/tensor 0: 0 scales for a qint8 tensor \(expected 1\)/);
    // Tensors: 0 input, 1 filter, 2 conv output, 3 clamp output. The first node record:
    // op 0 (conv2d), output 2, 3 inputs: 0, 1, none.
    const dv = new DataView(b.buffer);
    let n0 = -1;
    for (let at = 40; at + 24 < b.length; at += 1) {
      if ([0, 2, 3, 0, 1, 0xffffffff].every((x, k) => dv.getUint32(at + 4 * k, true) === x)) {
        n0 = at;
        break;
      }
    }
    expect(n0).toBeGreaterThan(40);
    expect(formatError(u32(b, n0, 99))).toMatch(/node 0: unknown op code 99/);
    expect(formatError(u32(b, n0, 4))).toMatch(/node 0 \(clamp\): 3 inputs \(schema: 1\)/);
    expect(formatError(u32(b, n0 + 4, 0))).toMatch(/node 0 \(conv2d\): output tensor 0 is already produced/);
    expect(formatError(u32(b, n0 + 12, 7))).toMatch(/node 0 \(conv2d\): input input refers to tensor 7 of 4/);
    expect(formatError(u32(b, n0 + 16, 0))).toMatch(/node 0 \(conv2d\): input filter must be a constant/);
    expect(formatError(u32(b, n0 + 12, 3))).toMatch(/node 0 \(conv2d\): input input \(tensor 3\) is read before it is produced/);
    expect(formatError(u32(b, n0 + 20, 0))).toMatch(/node 0 \(conv2d\): input bias must be a constant/);
    // attributes: count, then kernel = 2 x f64
    const a0 = n0 + 24;
    expect(dv.getUint32(a0, true)).toBe(9);
    expect(formatError(u32(b, a0, 8))).toMatch(/node 0 \(conv2d\): 8 attributes \(schema: 9\)/);
    expect(formatError(u32(b, a0 + 4, 3))).toMatch(/attribute kernel has 3 values/);
    const withF64 = (at: number, v: number): Uint8Array => {
      const c = b.slice();
      new DataView(c.buffer).setFloat64(at, v, true);
      return c;
    };
    expect(formatError(withF64(a0 + 8, 0.5))).toMatch(/attribute kernel: expected integers in \[1, 16777216\]/);
    expect(formatError(withF64(a0 + 8, Number.NaN))).toMatch(/attribute kernel: expected integers/);
    // kernel 2x1: the serialized filter shape [3, 1, 1, 2] no longer fits the rule.
    expect(formatError(withF64(a0 + 8, 2))).toMatch(/node 0 \(conv2d\): expected filter of shape \[3, 2, 1, 2\] but received \[3, 1, 1, 2\]/);
    // stride 2 on [4, 4, 2]: the rule says [2, 2, 3], the record [4, 4, 3].
    const s0 = a0 + 4 + 4 + 8 * 2 + 4; // attribute count, kernel (count + 2 values), stride count
    expect(formatError(withF64(s0, 2))).toMatch(/node 0 \(conv2d\): output shape \[4, 4, 3\] differs from the op's rule \[2, 4, 3\]/);
    // Through the library: GraphFormatError.
    const g = new Graph();
    g.output(g.sigmoid(g.input([3])));
    expect(() => toNativeGraph(g)).not.toThrow();
  });

  it('fuzz: 3000 mutations of real serialized graphs never crash; each is accepted or refused with a typed error', () => {
    const r = mulberry32(2026);
    const sources = [small(), serializeGraph(OP_EXAMPLES.multiply()), serializeGraph(OP_EXAMPLES.depthwiseConv2d()), serializeGraph(OP_EXAMPLES.pad())];
    const edges = [0, 1, 2, 3, 4, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe, 1 << 24, (1 << 24) + 1, 64, 63];
    const counts = { refused: 0, accepted: 0, compiled: 0, xnnpackRefused: 0 };
    for (let i = 0; i < 3000; i++) {
      const src = sources[i % sources.length]!;
      let bytes: Uint8Array = src.slice();
      const kind = i % 3;
      if (kind === 0) {
        for (let k = 0; k < 1 + Math.floor(r() * 3); k++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
      } else if (kind === 1) {
        const at = Math.floor(r() * (bytes.length - 4));
        bytes = u32(bytes, at, edges[Math.floor(r() * edges.length)]!);
      } else {
        bytes = bytes.subarray(0, Math.floor(r() * bytes.length));
      }
      let graph;
      try {
        graph = new (NGraph())(bytes);
      } catch (e) {
        expect((e as { code?: string }).code, (e as Error).message).toBe('ERR_GRAPH_FORMAT');
        expect((e as Error).message).toMatch(/^Invalid serialized graph at byte \d+: /);
        counts.refused++;
        continue;
      }
      counts.accepted++;
      try {
        const rt = graph.compile(1, 1);
        rt.runSync(new Float32Array(rt.inputSize), new Float32Array(rt.outputSize));
        rt.dispose();
        counts.compiled++;
      } catch (e) {
        // Accepted by the reader but refused by XNNPACK (e.g. a changed float bound): a status, not a crash.
        expect((e as { status?: string }).status, (e as Error).message).toMatch(/^xnn_status_/);
        counts.xnnpackRefused++;
      } finally {
        graph.dispose();
      }
    }
    expect(counts.refused + counts.accepted).toBe(3000);
    // Most mutations hit a checked field.
    expect(counts.refused).toBeGreaterThan(1500);
    console.log(`graph-format fuzz: ${JSON.stringify(counts)}`);
  });

  it("shapes beyond the format's limits (dimension 2^24, 2^31 - 1 elements) are refused by the Graph builder with the parameter template, never reach the native reader (found by fuzzing)", () => {
    expect(() => new Graph().input([224, 2 ** 31 - 1, 3])).toThrow(
      new RangeError('Expected shape with dimensions at most 16777216 and at most 2147483647 elements for shape but received [224, 2147483647, 3]'),
    );
    expect(() => new Graph().input([2 ** 16, 2 ** 16])).toThrow(/^Expected shape with dimensions at most 16777216 and at most 2147483647 elements for shape but received \[65536, 65536\]$/);
    // An op whose inferred output exceeds them: padding 2^24 on a dimension of 2.
    const g = new Graph();
    const x = g.input([2, 2, 1]);
    expect(() => g.pad(x, { prePadding: [2 ** 24, 0, 0], postPadding: [0, 0, 0] })).toThrow(/^Expected shape with dimensions at most 16777216 .* for pad output but received \[16777218, 2, 1\]$/);
    // At the limits: accepted by both sides.
    const ok = new Graph();
    ok.output(ok.sigmoid(ok.input([2 ** 24, 1])));
    new (NGraph())(serializeGraph(ok)).dispose();
  });

  it('GraphFormatError and XnnpackError through the library', () => {
    expect(GraphFormatError.name).toBe('GraphFormatError');
    expect(XnnpackError.name).toBe('XnnpackError');
  });
});
