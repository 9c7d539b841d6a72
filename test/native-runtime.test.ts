/**
 * Behaviour of the native runtime: queueing, the event loop, dispose,
 * argument errors (asserted verbatim), garbage fed to the raw binding, and
 * XNNPACK's own rejections surfacing as XnnpackError.
 */
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { loadBinding, xnnpackInfo, type NativeGraph } from '../lib/binding.js';
import { serializeGraph } from '../lib/graph-format.js';
import { DisposedError, XnnpackError } from '../lib/errors.js';

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

/** conv 3x3 -> depthwise -> GAP -> FC -> softmax on [8, 8, 4]. */
function smallGraph(): Graph {
  const g = new Graph();
  const x = g.input([8, 8, 4]);
  const c = g.conv2d(x, { filter: random(8 * 9 * 4, 1), bias: random(8, 2), kernel: 3, outputChannels: 8, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 });
  const d = g.depthwiseConv2d(c, { filter: random(9 * 8, 3), kernel: 3, stride: 2, padding: [0, 1, 1, 0], outputMin: 0, outputMax: 6 });
  const p = g.reshape(g.globalAveragePool(d), [8]);
  g.output(g.softmax(g.fullyConnected(p, { weights: random(10 * 8, 4), bias: random(10, 5), outputChannels: 10 })));
  return g;
}

/** Several 3x3 convolutions on 96x96x48: tens of milliseconds per run. */
function bigGraph(): Graph {
  const g = new Graph();
  let t: Tensor = g.input([96, 96, 48]);
  for (let i = 0; i < 3; i++) {
    t = g.conv2d(t, { filter: random(48 * 9 * 48, 10 + i), kernel: 3, outputChannels: 48, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 });
  }
  g.output(t);
  return g;
}

describe('native runtime', () => {
  it('64 concurrent run() calls on one runtime equal sequential runSync() results', async () => {
    const rt = await compileGraph(smallGraph(), { threads: 1, batch: 2 });
    const inputs = Array.from({ length: 64 }, (_, i) => random(rt.inputSize, 100 + i));
    const sequential = inputs.map((x) => rt.runSync(x).slice());
    const concurrent = await Promise.all(inputs.map((x) => rt.run(x)));
    expect(rt.pendingRuns).toBe(0);
    for (let i = 0; i < 64; i++) expect(concurrent[i]).toEqual(sequential[i]);
    // Distinct inputs gave distinct outputs (the comparison is not vacuous).
    expect(sequential[0]).not.toEqual(sequential[1]);
    rt.dispose();
  });

  it('keeps the event loop turning while a large graph runs', async () => {
    const rt = await compileGraph(bigGraph(), { threads: 1 });
    const x = random(rt.inputSize, 7);
    rt.runSync(x); // warm-up
    let ticks = 0;
    let running = true;
    const spin = (): void => {
      ticks++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    await rt.run(x);
    running = false;
    // On a blocked loop ticks would be ~1 (the run would end before the first setImmediate); a free loop turns many times.
    expect(ticks).toBeGreaterThan(20);
    rt.dispose();
  });

  it('dispose: twice is fine, run after dispose rejects with DisposedError, [Symbol.dispose]', async () => {
    const g = smallGraph();
    const rt = await compileGraph(g, { threads: 1 });
    const x = random(rt.inputSize, 9);
    const before = rt.runSync(x).slice();
    rt.dispose();
    rt.dispose();
    expect(rt.disposed).toBe(true);
    await expect(rt.run(x)).rejects.toBeInstanceOf(DisposedError);
    expect(() => rt.runSync(x)).toThrow(DisposedError);

    const rt2 = await compileGraph(g, { threads: 1 });
    rt2[Symbol.dispose]();
    expect(rt2.disposed).toBe(true);
    await expect(rt2.run(x)).rejects.toThrow('Runtime has been disposed');

    // A runtime outlives its graph: disposing the graph keeps compiled runtimes working.
    const rt3 = await compileGraph(g, { threads: 1 });
    g.dispose();
    g.dispose();
    expect(rt3.runSync(x)).toEqual(before);
    expect(() => g.input([1])).toThrow(DisposedError);
    await expect(compileGraph(g)).rejects.toBeInstanceOf(DisposedError);
    rt3.dispose();
  });

  it('dispose while a run is in flight: the run completes, later runs reject', async () => {
    const rt = await compileGraph(bigGraph(), { threads: 1 });
    const x = random(rt.inputSize, 11);
    const p = rt.run(x);
    rt.dispose();
    const out = await p;
    expect(out.length).toBe(rt.outputSize);
    expect(out.some((v) => v !== 0)).toBe(true);
    await expect(rt.run(x)).rejects.toBeInstanceOf(DisposedError);
  });

  it('bad arguments: clear typed errors, verbatim', async () => {
    const g = smallGraph();
    await expect(compileGraph(g, { threads: -1 })).rejects.toThrow(new RangeError('Expected positive integer for threads but received -1'));
    await expect(compileGraph(g, { batch: 0 })).rejects.toThrow(new RangeError('Expected positive integer for batch but received 0'));
    await expect(compileGraph(g, { threads: '2' as unknown as number })).rejects.toThrow(new TypeError('Expected positive integer for threads but received "2"'));
    const rt = await compileGraph(g, { threads: 1 });
    await expect(rt.run(new Float32Array(3))).rejects.toThrow(new RangeError('Expected Float32Array of length 256 for input but received Float32Array(3)'));
    await expect(rt.run([1, 2, 3] as unknown as Float32Array)).rejects.toThrow(new TypeError('Expected Float32Array for input but received [1, 2, 3]'));
    await expect(rt.run(new Float64Array(256) as unknown as Float32Array)).rejects.toThrow(TypeError);
    expect(() => rt.runSync(new Float32Array(256), new Float32Array(9))).toThrow(new RangeError('Expected Float32Array of length 10 for output but received Float32Array(9)'));
    rt.dispose();
  });

  it('the raw binding checks its arguments itself (never crashes)', async () => {
    const { Graph: NGraph } = loadBinding();
    const B = loadBinding() as unknown as Record<string, new (...a: unknown[]) => unknown>;
    expect(() => new (B.Runtime as new (...a: unknown[]) => unknown)()).toThrow(new TypeError('Runtime cannot be constructed directly: use Graph.compile()'));
    expect(() => new (B.Runtime as new (...a: unknown[]) => unknown)({})).toThrow(TypeError);
    expect(() => (NGraph as unknown as () => unknown)()).toThrow(TypeError);
    const NG = NGraph as unknown as new (...a: unknown[]) => NativeGraph;
    expect(() => new NG()).toThrow(new TypeError('Expected Uint8Array (a serialized graph) for bytes but received undefined'));
    expect(() => new NG(new Float32Array(4))).toThrow(TypeError);
    expect(() => new NG(new Uint8Array(3))).toThrow(/^Invalid serialized graph at byte 0: truncated header/);

    const src = new Graph();
    const x = src.input([4, 4, 2]);
    src.output(src.conv2d(x, { filter: random(3 * 9 * 2, 1), kernel: 3, outputChannels: 3, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 }));
    const g = new NGraph(serializeGraph(src));
    expect([g.tensorCount, g.nodeCount, g.weightBytes]).toEqual([3, 1, 54 * 4]);
    expect([g.inputShape, g.outputShape]).toEqual([[4, 4, 2], [4, 4, 3]]);
    const ga = g as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => ga.compile!(0, 1)).toThrow(new RangeError('Expected integer in [1, 65536] for batch but received 0'));
    expect(() => ga.compile!(1, Number.NaN)).toThrow(RangeError);
    expect(() => ga.compile!('1', 1)).toThrow(TypeError);
    expect(() => ga.compile!(1, 1e9)).toThrow(RangeError);
    expect(() => ga.compileAsync!(0, 1)).toThrow(RangeError);
    const rt = g.compile(2, 1);
    expect(rt.inputShape).toEqual([2, 4, 4, 2]);
    expect(rt.outputShape).toEqual([2, 4, 4, 3]);
    const rt2 = await g.compileAsync(2, 1);
    const ra = rt as unknown as Record<string, (...a: unknown[]) => unknown>;
    const inp = random(64, 3);
    expect(() => ra.runSync!(inp, new Float32Array(96))).not.toThrow();
    const out2 = new Float32Array(96);
    rt2.runSync(inp, out2);
    const out1 = new Float32Array(96);
    rt.runSync(inp, out1);
    expect(out2).toEqual(out1);
    expect(() => ra.runSync!(new Float32Array(63), new Float32Array(96))).toThrow(new RangeError('Expected Float32Array of length 64 for input but received Float32Array(63)'));
    expect(() => ra.runSync!(undefined, undefined)).toThrow(new TypeError('Expected Float32Array for input but received undefined'));
    expect(() => ra.run!(new Float32Array(64), 'out')).toThrow(TypeError);
    // Busy: one inference at a time on the raw runtime.
    const p = rt.run(new Float32Array(64), new Float32Array(96));
    expect(rt.busy).toBe(true);
    expect(() => rt.runSync(new Float32Array(64), new Float32Array(96))).toThrow(/busy/);
    expect(() => rt.run(new Float32Array(64), new Float32Array(96))).toThrow(/busy/);
    await p;
    expect(rt.busy).toBe(false);
    rt.dispose();
    rt.dispose();
    rt2.dispose();
    expect(() => rt.runSync(new Float32Array(64), new Float32Array(96))).toThrow('Runtime has been disposed');
    g.dispose();
    g.dispose();
    expect(g.disposed).toBe(true);
    expect(() => g.compile(1, 1)).toThrow('Graph has been disposed');
  });

  it('a graph XNNPACK itself rejects gives XnnpackError naming node and status', async () => {
    // lib/graph.ts allows any rank; XNNPACK allows at most 6 dimensions with the batch.
    const g = new Graph();
    const x = g.input([4, 4, 2]);
    const a = g.conv2d(x, { filter: random(4, 1), kernel: 1, outputChannels: 2, name: 'conv_ok' });
    g.output(g.reshape(a, [2, 2, 2, 2, 1, 2], 'reshape_6d'));
    const err = await compileGraph(g, { threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XnnpackError);
    const xe = err as XnnpackError;
    expect(xe.status).toMatch(/^xnn_status_(invalid|unsupported)_parameter$/);
    expect(xe.node).toBe('reshape_6d');
    expect(xe.message).toBe(`XNNPACK rejected node #1 'reshape_6d' (reshape): xnn_define_tensor_value failed (${xe.status})`);
  });

  it.skipIf(xnnpackInfo().source !== 'system')('2022 XNNPACK: bounds equal as float32 are rejected', async () => {
    // Passes lib/graph.ts (0 < 1e-50), but as float32 both bounds are 0 and XNNPACK refuses.
    const g = new Graph();
    const x = g.input([4, 4, 2]);
    const a = g.conv2d(x, { filter: random(4, 1), kernel: 1, outputChannels: 2, name: 'conv_ok' });
    g.output(g.conv2d(a, { filter: random(4, 2), kernel: 1, outputChannels: 2, outputMin: 0, outputMax: 1e-50, name: 'conv_bad' }));
    const err = await compileGraph(g, { threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XnnpackError);
    const xe = err as XnnpackError;
    expect(xe.status).toBe('xnn_status_invalid_parameter');
    expect(xe.node).toBe('conv_bad');
    expect(xe.message).toBe("XNNPACK rejected node #1 'conv_bad' (conv2d): xnn_define_convolution_2d failed (xnn_status_invalid_parameter)");
  });

  it('a graph written in pieces (new Graph(size), write, finish) runs like new Graph(bytes); misuse is a typed error', async () => {
    const { Graph: NativeGraphClass } = loadBinding();
    const bytes = serializeGraph(smallGraph());
    const whole = new NativeGraphClass(bytes);
    const pieces = new NativeGraphClass(bytes.byteLength);
    // Not finished yet: nothing compiles.
    expect(() => pieces.compile(1, 1)).toThrow(/still being written/);
    // Written back to front in uneven pieces.
    const cuts = [0, 7, 40, 41, Math.floor(bytes.byteLength / 2), bytes.byteLength];
    for (let k = cuts.length - 2; k >= 0; k--) pieces.write(cuts[k]!, bytes.subarray(cuts[k]!, cuts[k + 1]!));
    expect(() => pieces.write(bytes.byteLength, new Uint8Array(1))).toThrow(RangeError);
    expect(() => pieces.write(-1, new Uint8Array(1))).toThrow(RangeError);
    expect(() => pieces.write(0, new Float32Array(1) as unknown as Uint8Array)).toThrow(TypeError);
    pieces.finish();
    expect(() => pieces.finish()).toThrow(/only for a graph made with new Graph\(size\)/);
    expect(pieces.weightBytes).toBe(whole.weightBytes);
    const input = random(8 * 8 * 4, 9);
    const a = new Float32Array(10);
    const b = new Float32Array(10);
    whole.compile(1, 1).runSync(input, a);
    pieces.compile(1, 1).runSync(input, b);
    expect(Array.from(b)).toEqual(Array.from(a));
    whole.dispose();
    pieces.dispose();
    // Garbage written in pieces is refused like garbage bytes.
    const bad = new NativeGraphClass(bytes.byteLength);
    bad.write(0, bytes.subarray(0, 8));
    bad.write(8, new Uint8Array(bytes.byteLength - 8).fill(0xff));
    let err: unknown;
    try {
      bad.finish();
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string }).code).toBe('ERR_GRAPH_FORMAT');
    expect(bad.disposed).toBe(true);
    expect(() => new NativeGraphClass(0)).toThrow(RangeError);
    expect(() => new NativeGraphClass(1.5)).toThrow(RangeError);
  });
});

describe('extra outputs (Graph.addOutput)', () => {
  /** conv → depthwise → pooling → FC → softmax on [8, 8, 4]; `pick` chooses the output and extra outputs. */
  function build(pick: (t: { c: Tensor; d: Tensor; y: Tensor }, g: Graph) => void): Graph {
    const g = new Graph();
    const x = g.input([8, 8, 4]);
    const c = g.conv2d(x, { filter: random(8 * 9 * 4, 11), bias: random(8, 12), kernel: 3, outputChannels: 8, padding: [1, 1, 1, 1], outputMin: 0, outputMax: 6 });
    const d = g.depthwiseConv2d(c, { filter: random(9 * 8, 13), kernel: 3, stride: 2, padding: [0, 1, 1, 0] });
    const y = g.softmax(g.fullyConnected(g.reshape(g.globalAveragePool(d), [8]), { weights: random(10 * 8, 14), bias: random(10, 15), outputChannels: 10 }));
    pick({ c, d, y }, g);
    return g;
  }

  it('a runtime returns the output, then each extra output in tensor id order, on both backends', async () => {
    const input = random(2 * 8 * 8 * 4, 16).map((v) => 4 * v);
    for (const backend of ['native', 'reference'] as const) {
      const g = build(({ c, d, y }, g) => {
        g.output(y);
        g.addOutput(d);
        g.addOutput(c);
        g.addOutput(c);
      });
      expect(g.extraOutputs).toEqual([...g.extraOutputs].sort((a, b) => a - b));
      expect(g.extraOutputs.length).toBe(2);
      const rt = await compileGraph(g, { backend, batch: 2, threads: 1 });
      expect(rt.outputShape).toEqual([2, 10]);
      expect(rt.outputSize).toBe(2 * (10 + 8 * 8 * 8 + 4 * 4 * 8));
      const got = await rt.run(input);
      rt.dispose();
      // Each part against a graph with that tensor as its only output.
      let at = 0;
      for (const which of ['y', 'c', 'd'] as const) {
        const alone = await compileGraph(build((t, g) => g.output(t[which])), { backend, batch: 2, threads: 1 });
        const want = await alone.run(input);
        alone.dispose();
        const part = got.subarray(at, at + want.length);
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(part[i]! - want[i]!));
        expect(worst, `${backend} ${which}`).toBeLessThanOrEqual(1e-6);
        expect(Math.max(...want.map(Math.abs)), `${backend} ${which}`).toBeGreaterThan(0);
        at += want.length;
      }
      expect(at).toBe(got.length);
    }
  });

  it('only float32 activations computed by a node, not the input or the output; the native reader refuses the flag elsewhere', () => {
    build(({ y }, g) => {
      g.output(y);
      expect(() => g.addOutput(g.tensors[g.inputTensor]!)).toThrow(RangeError);
      expect(() => g.addOutput(y)).toThrow(RangeError);
      expect(() => g.addOutput(g.constant(random(4, 1), [4]))).toThrow(RangeError);
    });
    build(({ c }, g) => {
      g.addOutput(c);
      expect(() => g.output(c)).toThrow(RangeError);
    });
    // Tensor 0 (the input) at byte 40: dtype, then flags; bit 2 (4) marks an extra output.
    const bytes = serializeGraph(build(({ y }, g) => g.output(y)));
    expect(bytes[41]).toBe(1);
    const flagged = bytes.slice();
    flagged[41] = 1 | 4;
    expect(() => new (loadBinding().Graph)(flagged)).toThrow(/extra output tensor 0 is the input/);
  });
});
