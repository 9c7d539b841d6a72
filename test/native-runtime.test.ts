/**
 * Behaviour of the native runtime: queueing, the event loop, dispose,
 * argument errors (asserted verbatim), garbage fed to the raw binding, and
 * XNNPACK's own rejections surfacing as XnnpackError.
 */
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../lib/graph.js';
import { loadBinding, xnnpackInfo, type NativeGraph } from '../lib/binding.js';
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
    const rt = await smallGraph().compile({ threads: 1, batch: 2 });
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
    const rt = await bigGraph().compile({ threads: 1 });
    const x = random(rt.inputSize, 7);
    rt.runSync(x); // warm-up
    let ticks = 0;
    let running = true;
    const spin = (): void => {
      ticks++;
      if (running) setImmediate(spin);
    };
    setImmediate(spin);
    const t0 = performance.now();
    await rt.run(x);
    const ms = performance.now() - t0;
    running = false;
    // On a blocked loop ticks would be ~1; a free loop turns many times per millisecond.
    expect(ms).toBeGreaterThan(5);
    expect(ticks).toBeGreaterThan(20);
    rt.dispose();
  });

  it('dispose: twice is fine, run after dispose rejects with DisposedError, [Symbol.dispose]', async () => {
    const g = smallGraph();
    const rt = await g.compile({ threads: 1 });
    const x = random(rt.inputSize, 9);
    const before = rt.runSync(x).slice();
    rt.dispose();
    rt.dispose();
    expect(rt.disposed).toBe(true);
    await expect(rt.run(x)).rejects.toBeInstanceOf(DisposedError);
    expect(() => rt.runSync(x)).toThrow(DisposedError);

    const rt2 = await g.compile({ threads: 1 });
    rt2[Symbol.dispose]();
    expect(rt2.disposed).toBe(true);
    await expect(rt2.run(x)).rejects.toThrow('Runtime has been disposed');

    // A runtime outlives its graph: disposing the graph keeps compiled runtimes working.
    const rt3 = await g.compile({ threads: 1 });
    g.dispose();
    g.dispose();
    expect(rt3.runSync(x)).toEqual(before);
    expect(() => g.input([1])).toThrow(DisposedError);
    await expect(g.compile()).rejects.toBeInstanceOf(DisposedError);
    rt3.dispose();
  });

  it('dispose while a run is in flight: the run completes, later runs reject', async () => {
    const rt = await bigGraph().compile({ threads: 1 });
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
    await expect(g.compile({ threads: -1 })).rejects.toThrow(new RangeError('Expected positive integer for threads but received -1'));
    await expect(g.compile({ batch: 0 })).rejects.toThrow(new RangeError('Expected positive integer for batch but received 0'));
    await expect(g.compile({ threads: '2' as unknown as number })).rejects.toThrow(new TypeError('Expected positive integer for threads but received "2"'));
    const rt = await g.compile({ threads: 1 });
    await expect(rt.run(new Float32Array(3))).rejects.toThrow(new RangeError('Expected Float32Array of length 256 for input but received Float32Array(3)'));
    await expect(rt.run([1, 2, 3] as unknown as Float32Array)).rejects.toThrow(new TypeError('Expected Float32Array for input but received [1, 2, 3]'));
    await expect(rt.run(new Float64Array(256) as unknown as Float32Array)).rejects.toThrow(TypeError);
    expect(() => rt.runSync(new Float32Array(256), new Float32Array(9))).toThrow(new RangeError('Expected Float32Array of length 10 for output but received Float32Array(9)'));
    rt.dispose();
  });

  it('the raw binding checks its arguments itself (never crashes)', () => {
    const { Graph: NGraph } = loadBinding();
    const B = loadBinding() as unknown as Record<string, new (...a: unknown[]) => unknown>;
    const anyG = (g: NativeGraph) => g as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => new (B.Runtime as new (...a: unknown[]) => unknown)()).toThrow(new TypeError('Runtime cannot be constructed directly: use Graph.compile()'));
    expect(() => new (B.Runtime as new (...a: unknown[]) => unknown)({})).toThrow(TypeError);
    expect(() => (NGraph as unknown as () => unknown)()).toThrow(TypeError);

    const g = new NGraph();
    const ga = anyG(g);
    // input
    expect(() => ga.input!('x')).toThrow(new TypeError('Expected array of at most 8 integers in [1, 16777216] for shape but received "x"'));
    expect(() => ga.input!([4, -1])).toThrow(RangeError);
    expect(() => ga.input!([Number.NaN])).toThrow(RangeError);
    expect(() => ga.input!([1e12])).toThrow(RangeError);
    expect(() => ga.input!([1, 2, 3, 4, 5, 6, 7, 8, 9])).toThrow(RangeError);
    expect(() => ga.input!([65536, 65536, 65536])).toThrow(RangeError); // 2^48 elements
    expect(() => ga.input!(['1'])).toThrow(TypeError);
    const x = g.input([4, 4, 2]);
    expect(() => g.input([4])).toThrow(new RangeError('Expected one input for graph but received a second input()'));
    // constants
    expect(() => ga.constant!(new Float64Array(2), [2])).toThrow(new TypeError('Expected Float32Array for data but received Float64Array(2)'));
    expect(() => ga.constant!(new Float32Array(3), [2])).toThrow(new RangeError('Expected Float32Array of length 2 for data but received Float32Array(3)'));
    // nodes
    expect(() => ga.addNode!(null)).toThrow(new TypeError('Expected object for node but received null'));
    expect(() => ga.addNode!([1])).toThrow(TypeError);
    expect(() => ga.addNode!({ op: 'nope', input: x })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 42 })).toThrow(TypeError);
    expect(() => ga.addNode!({ op: 'sigmoid', input: 99 })).toThrow(new RangeError('Expected tensor id of this graph for input but received 99'));
    expect(() => ga.addNode!({ op: 'sigmoid', input: -1 })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'sigmoid', input: 0.5 })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'sigmoid', input: Number.NaN })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'sigmoid', input: {} })).toThrow(TypeError);
    const conv = { op: 'conv2d', input: x, filter: new Float32Array(3 * 9 * 2), bias: null, kernel: [3, 3], stride: [1, 1], dilation: [1, 1], padding: [1, 1, 1, 1], groups: 1, groupInputChannels: 2, groupOutputChannels: 3, outputMin: 0, outputMax: 6 };
    expect(() => ga.addNode!({ ...conv, filter: new Float32Array(5) })).toThrow(new RangeError('Expected Float32Array of length 54 for filter but received Float32Array(5)'));
    expect(() => ga.addNode!({ ...conv, groupInputChannels: 3 })).toThrow(RangeError);
    expect(() => ga.addNode!({ ...conv, kernel: [3] })).toThrow(RangeError);
    expect(() => ga.addNode!({ ...conv, kernel: [9, 9] })).toThrow(RangeError); // larger than padded input
    expect(() => ga.addNode!({ ...conv, stride: [0, 1] })).toThrow(RangeError);
    expect(() => ga.addNode!({ ...conv, padding: [1, 1, 1, -1] })).toThrow(RangeError);
    expect(() => ga.addNode!({ ...conv, groups: 2 ** 40 })).toThrow(RangeError);
    expect(() => ga.addNode!({ ...conv, outputMin: Number.NaN })).toThrow(RangeError);
    expect(() => ga.addNode!({ ...conv, outputMin: 7 })).toThrow(new RangeError('Expected outputMin < outputMax for conv2d but received 7 and 6'));
    expect(() => ga.addNode!({ ...conv, bias: new Float32Array(2) })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'fullyConnected', input: x, weights: new Float32Array(6), bias: null, inputChannels: 3, outputChannels: 3 })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'reshape', input: x, shape: [5] })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'pad', input: x, prePadding: [1, 1], postPadding: [0, 0, 0] })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'clamp', input: x, min: 1, max: 1 })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'averagePool2d', input: x, pool: [5, 5], stride: [1, 1] })).toThrow(RangeError);
    const k = g.constant(new Float32Array(3), [3]);
    expect(() => ga.addNode!({ op: 'add', a: x, b: k, outputMin: -Infinity, outputMax: Infinity })).toThrow(new RangeError('Expected broadcastable shapes for add but received [4, 4, 2] and [3]'));
    expect(() => ga.addNode!({ op: 'add', a: k, b: k, outputMin: -Infinity, outputMax: Infinity })).toThrow(RangeError);
    expect(() => ga.addNode!({ op: 'sigmoid', input: k })).toThrow(RangeError); // constants are not activations
    // compile
    const y = g.addNode(conv as unknown as Parameters<NativeGraph["addNode"]>[0]);
    expect(g.shape(y)).toEqual([4, 4, 3]);
    expect(() => g.compile(1, 1)).toThrow(new RangeError('Expected an output() in graph but received none'));
    g.output(y);
    expect(() => ga.compile!(0, 1)).toThrow(new RangeError('Expected integer in [1, 65536] for batch but received 0'));
    expect(() => ga.compile!(1, Number.NaN)).toThrow(RangeError);
    expect(() => ga.compile!('1', 1)).toThrow(TypeError);
    expect(() => ga.compile!(1, 1e9)).toThrow(RangeError);
    const rt = g.compile(2, 1);
    expect(rt.inputShape).toEqual([2, 4, 4, 2]);
    expect(rt.outputShape).toEqual([2, 4, 4, 3]);
    const ra = rt as unknown as Record<string, (...a: unknown[]) => unknown>;
    expect(() => ra.runSync!(new Float32Array(64), new Float32Array(96))).not.toThrow();
    expect(() => ra.runSync!(new Float32Array(63), new Float32Array(96))).toThrow(new RangeError('Expected Float32Array of length 64 for input but received Float32Array(63)'));
    expect(() => ra.runSync!(undefined, undefined)).toThrow(new TypeError('Expected Float32Array for input but received undefined'));
    expect(() => ra.run!(new Float32Array(64), 'out')).toThrow(TypeError);
    // Busy: one inference at a time on the raw runtime.
    const p = rt.run(new Float32Array(64), new Float32Array(96));
    expect(rt.busy).toBe(true);
    expect(() => rt.runSync(new Float32Array(64), new Float32Array(96))).toThrow(/busy/);
    expect(() => rt.run(new Float32Array(64), new Float32Array(96))).toThrow(/busy/);
    return p.then(() => {
      expect(rt.busy).toBe(false);
      rt.dispose();
      rt.dispose();
      expect(() => rt.runSync(new Float32Array(64), new Float32Array(96))).toThrow('Runtime has been disposed');
      g.dispose();
      g.dispose();
      expect(() => g.input([1])).toThrow('Graph has been disposed');
      expect(() => g.compile(1, 1)).toThrow('Graph has been disposed');
    });
  });

  it('a graph XNNPACK itself rejects gives XnnpackError naming node and status', async () => {
    // lib/graph.ts allows any rank; XNNPACK allows at most 6 dimensions with the batch.
    const g = new Graph();
    const x = g.input([4, 4, 2]);
    const a = g.conv2d(x, { filter: random(4, 1), kernel: 1, outputChannels: 2, name: 'conv_ok' });
    g.output(g.reshape(a, [2, 2, 2, 2, 1, 2], 'reshape_6d'));
    const err = await g.compile({ threads: 1 }).catch((e: unknown) => e);
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
    const err = await g.compile({ threads: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XnnpackError);
    const xe = err as XnnpackError;
    expect(xe.status).toBe('xnn_status_invalid_parameter');
    expect(xe.node).toBe('conv_bad');
    expect(xe.message).toBe("XNNPACK rejected node #1 'conv_bad' (conv2d): xnn_define_convolution_2d failed (xnn_status_invalid_parameter)");
  });
});
