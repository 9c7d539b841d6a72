/**
 * lib/graph.ts argument validation (TypeError for wrong types, RangeError for
 * out-of-range values, messages asserted verbatim with the one template
 * `Expected <what> for <name> but received <value>`), shape inference, and
 * DisposedError after dispose(). Compile-time checks use the reference
 * backend so that this file does not depend on the native addon.
 */
import { describe, expect, it } from 'vitest';
import { Graph, broadcastShapes, type Tensor } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';
import { DisposedError, MobileNetError } from '../lib/errors.js';

function expectThrow(fn: () => unknown, cls: new (...args: never[]) => Error, message: string): void {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${cls.name}: ${message}`).toBeInstanceOf(cls);
  expect((thrown as Error).message).toBe(message);
}

async function expectReject(p: Promise<unknown>, cls: new (...args: never[]) => Error, message: string): Promise<void> {
  let thrown: unknown;
  try {
    await p;
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${cls.name}: ${message}`).toBeInstanceOf(cls);
  expect((thrown as Error).message).toBe(message);
}

/** A graph with an [H, W, C] input. */
function withInput(shape: number[] = [4, 4, 2]): { g: Graph; x: Tensor } {
  const g = new Graph();
  return { g, x: g.input(shape) };
}

const ones = (n: number): Float32Array => new Float32Array(n).fill(1);

describe('Graph.input / constant / output', () => {
  it('input shape: wrong type -> TypeError, non-positive or fractional -> RangeError', () => {
    expectThrow(() => new Graph().input('abc' as never), TypeError, 'Expected array of positive integers for shape but received "abc"');
    expectThrow(() => new Graph().input(['a'] as never), TypeError, 'Expected array of positive integers for shape but received ["a"]');
    expectThrow(() => new Graph().input([0, 2]), RangeError, 'Expected array of positive integers for shape but received [0, 2]');
    expectThrow(() => new Graph().input([1.5]), RangeError, 'Expected array of positive integers for shape but received [1.5]');
    expectThrow(() => new Graph().input([-3, 2, 1]), RangeError, 'Expected array of positive integers for shape but received [-3, 2, 1]');
  });

  it('a second input() is refused', () => {
    const { g } = withInput();
    expectThrow(() => g.input([2]), RangeError, 'Expected one input for graph but received a second input()');
  });

  it('constant: data must be a Float32Array of the shape\'s size', () => {
    const { g } = withInput();
    expectThrow(() => g.constant([1, 2] as never, [2]), TypeError, 'Expected Float32Array for data but received [1, 2]');
    expectThrow(() => g.constant(new Float64Array(2) as never, [2]), TypeError, 'Expected Float32Array for data but received Float64Array(2)');
    expectThrow(() => g.constant(new Float32Array(5), [2, 3]), RangeError, 'Expected Float32Array of length 6 for data but received Float32Array(5)');
  });

  it('constant copies its data', () => {
    const { g } = withInput();
    const data = new Float32Array([1, 2, 3]);
    const c = g.constant(data, [3]);
    data[0] = 99;
    expect(Array.from(g.tensors[c.id]!.data!)).toEqual([1, 2, 3]);
    expect(g.tensors[c.id]!.batched).toBe(false);
  });

  it('output: not a tensor -> TypeError; a constant or a foreign id -> RangeError', () => {
    const { g } = withInput();
    expectThrow(() => g.output('x' as never), TypeError, 'Expected Tensor for output but received "x"');
    expectThrow(() => g.output(undefined as never), TypeError, 'Expected Tensor for output but received undefined');
    expectThrow(() => g.output(99 as never), RangeError, 'Expected Tensor of this graph for output but received 99');
    const c = g.constant(ones(2), [2]);
    expectThrow(() => g.output(c), RangeError, 'Expected activation tensor (not a constant) for output but received Object');
  });

  it('compile needs an input and an output', async () => {
    await expectReject(compileGraph(new Graph(), { backend: 'reference' }), RangeError, 'Expected an input() in graph but received none');
    const { g } = withInput();
    await expectReject(compileGraph(g, { backend: 'reference' }), RangeError, 'Expected an output() in graph but received none');
  });
});

describe('Graph.conv2d validation', () => {
  const good = { filter: ones(3 * 9 * 2), kernel: 3, outputChannels: 3, padding: [1, 1, 1, 1] as const };

  it('accepts a valid call', () => {
    const { g, x } = withInput();
    expect(g.conv2d(x, good).shape).toEqual([4, 4, 3]);
  });

  it('outputChannels', () => {
    const { g, x } = withInput();
    expectThrow(() => g.conv2d(x, { ...good, outputChannels: -1 }), RangeError, 'Expected positive integer for outputChannels but received -1');
    expectThrow(() => g.conv2d(x, { ...good, outputChannels: 0 }), RangeError, 'Expected positive integer for outputChannels but received 0');
    expectThrow(() => g.conv2d(x, { ...good, outputChannels: 2.5 }), RangeError, 'Expected positive integer for outputChannels but received 2.5');
    expectThrow(() => g.conv2d(x, { ...good, outputChannels: '3' as never }), TypeError, 'Expected positive integer for outputChannels but received "3"');
    expectThrow(() => g.conv2d(x, { ...good, outputChannels: undefined as never }), TypeError, 'Expected positive integer for outputChannels but received undefined');
  });

  it('kernel, stride, dilation', () => {
    const { g, x } = withInput();
    const what = 'positive integer or pair of positive integers';
    expectThrow(() => g.conv2d(x, { ...good, kernel: 0 }), RangeError, `Expected ${what} for kernel but received 0`);
    expectThrow(() => g.conv2d(x, { ...good, kernel: [3] as never }), TypeError, `Expected ${what} for kernel but received [3]`);
    expectThrow(() => g.conv2d(x, { ...good, kernel: [3, '3'] as never }), TypeError, `Expected ${what} for kernel but received [3, "3"]`);
    expectThrow(() => g.conv2d(x, { ...good, kernel: undefined as never }), TypeError, `Expected ${what} for kernel but received undefined`);
    expectThrow(() => g.conv2d(x, { ...good, stride: [2, 0] }), RangeError, `Expected ${what} for stride but received [2, 0]`);
    expectThrow(() => g.conv2d(x, { ...good, stride: 'x' as never }), TypeError, `Expected ${what} for stride but received "x"`);
    expectThrow(() => g.conv2d(x, { ...good, dilation: 1.5 }), RangeError, `Expected ${what} for dilation but received 1.5`);
  });

  it('padding', () => {
    const { g, x } = withInput();
    const what = 'array of 4 non-negative integers';
    expectThrow(() => g.conv2d(x, { ...good, padding: [1, 1, 1] as never }), TypeError, `Expected ${what} for padding but received [1, 1, 1]`);
    expectThrow(() => g.conv2d(x, { ...good, padding: 1 as never }), TypeError, `Expected ${what} for padding but received 1`);
    expectThrow(() => g.conv2d(x, { ...good, padding: [1, -1, 1, 1] }), RangeError, `Expected ${what} for padding but received [1, -1, 1, 1]`);
    expectThrow(() => g.conv2d(x, { ...good, padding: [1, 1, 0.5, 1] }), RangeError, `Expected ${what} for padding but received [1, 1, 0.5, 1]`);
  });

  it('groups must divide input and output channels', () => {
    const { g, x } = withInput([4, 4, 4]);
    const base = { filter: ones(6 * 2), kernel: 1, outputChannels: 6 };
    expectThrow(() => g.conv2d(x, { ...base, groups: 3 }), RangeError, 'Expected groups dividing the 4 input channels for groups but received 3');
    expectThrow(() => g.conv2d(x, { ...base, filter: ones(6), groups: 4 }), RangeError, 'Expected groups dividing the 6 output channels for groups but received 4');
    expectThrow(() => g.conv2d(x, { ...base, groups: 0 }), RangeError, 'Expected positive integer for groups but received 0');
    // groups 2: filter [6, 1, 1, 2]
    expect(g.conv2d(x, { ...base, groups: 2 }).shape).toEqual([4, 4, 6]);
  });

  it('filter and bias sizes and types', () => {
    const { g, x } = withInput();
    expectThrow(() => g.conv2d(x, { ...good, filter: ones(53) }), RangeError, 'Expected Float32Array of length 54 for filter but received Float32Array(53)');
    expectThrow(() => g.conv2d(x, { ...good, filter: new Float64Array(54) as never }), TypeError, 'Expected Float32Array for filter but received Float64Array(54)');
    expectThrow(() => g.conv2d(x, { ...good, bias: ones(2) }), RangeError, 'Expected Float32Array of length 3 for bias but received Float32Array(2)');
    expectThrow(() => g.conv2d(x, { ...good, bias: [0, 0, 0] as never }), TypeError, 'Expected Float32Array for bias but received [0, 0, 0]');
    expect(g.conv2d(x, { ...good, bias: null }).shape).toEqual([4, 4, 3]);
  });

  it('kernel larger than the padded input', () => {
    const { g, x } = withInput([2, 2, 1]);
    expectThrow(
      () => g.conv2d(x, { filter: ones(9), kernel: 3, outputChannels: 1 }),
      RangeError,
      'Expected kernel no larger than the padded input 2x2 for kernel but received [3, 3]',
    );
    expectThrow(
      () => g.conv2d(x, { filter: ones(4), kernel: 2, dilation: 2, outputChannels: 1, padding: [0, 0, 0, 0] }),
      RangeError,
      'Expected kernel no larger than the padded input 2x2 for kernel but received [2, 2]',
    );
  });

  it('fused output bounds', () => {
    const { g, x } = withInput();
    expectThrow(() => g.conv2d(x, { ...good, outputMin: 6, outputMax: 0 }), RangeError, 'Expected outputMin < outputMax for conv2d but received 6 and 0');
    expectThrow(() => g.conv2d(x, { ...good, outputMin: 1, outputMax: 1 }), RangeError, 'Expected outputMin < outputMax for conv2d but received 1 and 1');
    expectThrow(() => g.conv2d(x, { ...good, outputMin: NaN }), RangeError, 'Expected number for conv2d.outputMin but received NaN');
    expectThrow(() => g.conv2d(x, { ...good, outputMax: '6' as never }), TypeError, 'Expected number for conv2d.outputMax but received "6"');
    const n = g.nodes.length;
    g.conv2d(x, { ...good, outputMin: 0, outputMax: 6 });
    const node = g.nodes[n]!;
    expect(node.op).toBe('conv2d');
    expect(node.op === 'conv2d' && [node.attrs.outputMin, node.attrs.outputMax]).toEqual([0, 6]);
    g.conv2d(x, good);
    const node2 = g.nodes[n + 1]!;
    expect(node2.op === 'conv2d' && [node2.attrs.outputMin, node2.attrs.outputMax]).toEqual([-Infinity, Infinity]);
  });

  it('input and options', () => {
    const { g, x } = withInput();
    expectThrow(() => g.conv2d('foo' as never, good), TypeError, 'Expected Tensor for input but received "foo"');
    expectThrow(() => g.conv2d({ id: 42, shape: [] }, good), RangeError, 'Expected Tensor of this graph for input but received Object');
    expectThrow(() => g.conv2d(x, null as never), TypeError, 'Expected object for options but received null');
    const flat = g.reshape(x, [32]);
    expectThrow(() => g.conv2d(flat, good), RangeError, 'Expected input of rank 3 (H, W, C) for input but received [32]');
    const c = g.constant(ones(32), [4, 4, 2]);
    expectThrow(() => g.conv2d(c, good), RangeError, 'Expected activation tensor (not a constant) for input but received Object');
  });
});

describe('Graph: other ops validation', () => {
  it('depthwiseConv2d', () => {
    const { g, x } = withInput();
    const good = { filter: ones(9 * 2), kernel: 3, padding: [1, 1, 1, 1] as const };
    expect(g.depthwiseConv2d(x, good).shape).toEqual([4, 4, 2]);
    expectThrow(() => g.depthwiseConv2d(x, { ...good, depthMultiplier: 0 }), RangeError, 'Expected positive integer for depthMultiplier but received 0');
    expectThrow(() => g.depthwiseConv2d(x, { ...good, depthMultiplier: '2' as never }), TypeError, 'Expected positive integer for depthMultiplier but received "2"');
    expectThrow(() => g.depthwiseConv2d(x, { ...good, depthMultiplier: 2 }), RangeError, 'Expected Float32Array of length 36 for filter but received Float32Array(18)');
    expectThrow(() => g.depthwiseConv2d(x, { ...good, bias: ones(3) }), RangeError, 'Expected Float32Array of length 2 for bias but received Float32Array(3)');
    expectThrow(() => g.depthwiseConv2d(x, { ...good, outputMin: 3, outputMax: -3 }), RangeError, 'Expected outputMin < outputMax for depthwiseConv2d but received 3 and -3');
    expectThrow(() => g.depthwiseConv2d(x, { ...good, filter: ones(25 * 2), kernel: 5, padding: undefined }), RangeError, 'Expected kernel no larger than the padded input 4x4 for kernel but received [5, 5]');
    expectThrow(() => g.depthwiseConv2d(x, undefined as never), TypeError, 'Expected object for options but received undefined');
  });

  it('add / multiply broadcasting', () => {
    const { g, x } = withInput([2, 3, 4]);
    expectThrow(() => g.add(x, g.constant(ones(3), [3])), RangeError, 'Expected broadcastable shapes for add but received [2, 3, 4] and [3]');
    expectThrow(() => g.multiply(x, g.constant(ones(6), [2, 1, 3])), RangeError, 'Expected broadcastable shapes for multiply but received [2, 3, 4] and [2, 1, 3]');
    const c1 = g.constant(ones(1), [1]);
    const c2 = g.constant(ones(1), [1]);
    expectThrow(() => g.add(c1, c2), RangeError, 'Expected at least one activation tensor for a but received Object');
    expectThrow(() => g.add(x, g.constant(ones(4), [1, 1, 1, 4])), RangeError, 'Expected a constant of rank at most 3 for add but received rank 4');
    expectThrow(() => g.add(x, 'b' as never), TypeError, 'Expected Tensor for b but received "b"');
    expectThrow(() => g.add(x, x, { outputMin: 1, outputMax: 0 }), RangeError, 'Expected outputMin < outputMax for add but received 1 and 0');
    expect(g.add(x, g.constant(ones(4), [4])).shape).toEqual([2, 3, 4]);
    expect(g.multiply(g.constant(ones(3), [3, 1]), x).shape).toEqual([2, 3, 4]);
    expect(g.multiply(x, g.globalAveragePool(x)).shape).toEqual([2, 3, 4]);
  });

  it('broadcastShapes follows NumPy', () => {
    expect(broadcastShapes([4, 1, 3], [2, 1])).toEqual([4, 2, 3]);
    expect(broadcastShapes([3], [5, 3])).toEqual([5, 3]);
    expect(broadcastShapes([1], [1])).toEqual([1]);
    expect(broadcastShapes([2, 3], [3, 2])).toBeNull();
  });

  it('clamp', () => {
    const { g, x } = withInput();
    expectThrow(() => g.clamp(x, 2, 1), RangeError, 'Expected min < max for clamp but received 2 and 1');
    expectThrow(() => g.clamp(x, 'a' as never, 1), TypeError, 'Expected number for min but received "a"');
    expectThrow(() => g.clamp(x, 0, NaN), RangeError, 'Expected number for max but received NaN');
    expect(g.clamp(x, -Infinity, 0).shape).toEqual([4, 4, 2]);
  });

  it('globalAveragePool and averagePool2d', () => {
    const { g, x } = withInput([7, 5, 3]);
    expect(g.globalAveragePool(x).shape).toEqual([1, 1, 3]);
    expectThrow(() => g.globalAveragePool(g.reshape(x, [105])), RangeError, 'Expected input of rank 3 (H, W, C) for input but received [105]');
    expect(g.averagePool2d(x, { pool: 2 }).shape).toEqual([3, 2, 3]);
    expect(g.averagePool2d(x, { pool: [3, 2], stride: 1 }).shape).toEqual([5, 4, 3]);
    expectThrow(() => g.averagePool2d(x, { pool: 6 }), RangeError, 'Expected pool no larger than the input 7x5 for pool but received [6, 6]');
    expectThrow(() => g.averagePool2d(x, { pool: 0 }), RangeError, 'Expected positive integer or pair of positive integers for pool but received 0');
    expectThrow(() => g.averagePool2d(x, { pool: 2, stride: [1, -1] }), RangeError, 'Expected positive integer or pair of positive integers for stride but received [1, -1]');
    expectThrow(() => g.averagePool2d(x, null as never), TypeError, 'Expected object for options but received null');
  });

  it('maxPool2d', () => {
    const { g, x } = withInput([7, 5, 3]);
    expect(g.maxPool2d(x, { pool: 2 }).shape).toEqual([3, 2, 3]);
    expect(g.maxPool2d(x, { pool: [3, 2], stride: 1 }).shape).toEqual([5, 4, 3]);
    expect(g.maxPool2d(x, { pool: [7, 5] }).shape).toEqual([1, 1, 3]);
    expect(g.maxPool2d(x, { pool: 3, stride: 2, name: 'mp' }).shape).toEqual([3, 2, 3]);
    expect(g.nodes.at(-1)).toMatchObject({ op: 'maxPool2d', name: 'mp', attrs: { pool: [3, 3], stride: [2, 2] } });
    expectThrow(() => g.maxPool2d(x, { pool: 6 }), RangeError, 'Expected pool no larger than the input 7x5 for pool but received [6, 6]');
    expectThrow(() => g.maxPool2d(x, { pool: [8, 1] }), RangeError, 'Expected pool no larger than the input 7x5 for pool but received [8, 1]');
    expectThrow(() => g.maxPool2d(x, { pool: 0 }), RangeError, 'Expected positive integer or pair of positive integers for pool but received 0');
    expectThrow(() => g.maxPool2d(x, { pool: 2.5 }), RangeError, 'Expected positive integer or pair of positive integers for pool but received 2.5');
    expectThrow(() => g.maxPool2d(x, { pool: 2, stride: [1, -1] }), RangeError, 'Expected positive integer or pair of positive integers for stride but received [1, -1]');
    expectThrow(() => g.maxPool2d(x, null as never), TypeError, 'Expected object for options but received null');
    expectThrow(() => g.maxPool2d(g.reshape(x, [105]), { pool: 2 }), RangeError, 'Expected input of rank 3 (H, W, C) for input but received [105]');
  });

  it('fullyConnected', () => {
    const { g, x } = withInput([1, 1, 3]);
    expect(g.fullyConnected(x, { weights: ones(6), outputChannels: 2 }).shape).toEqual([1, 1, 2]);
    expectThrow(() => g.fullyConnected(x, { weights: ones(5), outputChannels: 2 }), RangeError, 'Expected Float32Array of length 6 for weights but received Float32Array(5)');
    expectThrow(() => g.fullyConnected(x, { weights: ones(6), outputChannels: -2 }), RangeError, 'Expected positive integer for outputChannels but received -2');
    expectThrow(() => g.fullyConnected(x, { weights: ones(6), bias: ones(3), outputChannels: 2 }), RangeError, 'Expected Float32Array of length 2 for bias but received Float32Array(3)');
    expectThrow(() => g.fullyConnected(x, { weights: ones(6), outputChannels: 2, outputMin: 0, outputMax: -1 }), RangeError, 'Expected outputMin < outputMax for fullyConnected but received 0 and -1');
    expectThrow(() => g.fullyConnected(x, 3 as never), TypeError, 'Expected object for options but received 3');
  });

  it('pad', () => {
    const { g, x } = withInput([2, 3, 4]);
    expect(g.pad(x, { prePadding: [1, 0, 2], postPadding: [0, 3, 1] }).shape).toEqual([3, 6, 7]);
    expectThrow(() => g.pad(x, { prePadding: [1, 1], postPadding: [0, 0, 0] }), TypeError, 'Expected array of 3 non-negative integers for prePadding but received [1, 1]');
    expectThrow(() => g.pad(x, { prePadding: [0, 0, 0], postPadding: [0, -1, 0] }), RangeError, 'Expected non-negative integer for postPadding but received -1');
    expectThrow(() => g.pad(x, { prePadding: [0, '1', 0] as never, postPadding: [0, 0, 0] }), TypeError, 'Expected non-negative integer for prePadding but received "1"');
    expectThrow(() => g.pad(x, { prePadding: [0, 0, 0], postPadding: [0, 0, 0], value: NaN }), RangeError, 'Expected finite number for value but received NaN');
    expectThrow(() => g.pad(x, undefined as never), TypeError, 'Expected object for options but received undefined');
  });

  it('reshape', () => {
    const { g, x } = withInput([2, 3, 4]);
    expect(g.reshape(x, [6, 4]).shape).toEqual([6, 4]);
    expectThrow(() => g.reshape(x, [5]), RangeError, 'Expected shape with 24 elements for shape but received [5]');
    expectThrow(() => g.reshape(x, [24, 0]), RangeError, 'Expected array of positive integers for shape but received [24, 0]');
    expectThrow(() => g.reshape(x, 24 as never), TypeError, 'Expected array of positive integers for shape but received 24');
  });

  it('ops that need a last dimension reject a per-sample scalar', () => {
    const g = new Graph();
    const x = g.input([]);
    for (const op of ['hardswish', 'sigmoid', 'softmax'] as const) {
      expectThrow(() => g[op](x), RangeError, 'Expected input of rank at least 1 for input but received []');
    }
    expectThrow(() => g.fullyConnected(x, { weights: ones(1), outputChannels: 1 }), RangeError, 'Expected input of rank at least 1 for input but received []');
    expect(g.clamp(x, 0, 1).shape).toEqual([]);
  });

  it('unary ops reject constants', () => {
    const { g } = withInput();
    const c = g.constant(ones(2), [2]);
    for (const op of ['hardswish', 'sigmoid', 'softmax'] as const) {
      expectThrow(() => g[op](c), RangeError, 'Expected activation tensor (not a constant) for input but received Object');
    }
  });
});

describe('Graph shape inference', () => {
  const conv = (shape: number[], o: { kernel: number | [number, number]; stride?: number | [number, number]; dilation?: number | [number, number]; padding?: [number, number, number, number]; outputChannels?: number; groups?: number }): readonly number[] => {
    const { g, x } = withInput(shape);
    const k = typeof o.kernel === 'number' ? [o.kernel, o.kernel] : o.kernel;
    const oc = o.outputChannels ?? 2;
    const groups = o.groups ?? 1;
    return g.conv2d(x, { ...o, outputChannels: oc, filter: ones(oc * k[0]! * k[1]! * (shape[2]! / groups)) }).shape;
  };

  it('stride 2 with TF "same" padding on an even input (pad 0 before, 1 after)', () => {
    expect(conv([224, 224, 3], { kernel: 3, stride: 2, padding: [0, 1, 1, 0], outputChannels: 32 })).toEqual([112, 112, 32]);
  });
  it('"same" at stride 1', () => {
    expect(conv([7, 9, 3], { kernel: 3, padding: [1, 1, 1, 1] })).toEqual([7, 9, 2]);
    expect(conv([7, 9, 3], { kernel: 5, padding: [2, 2, 2, 2] })).toEqual([7, 9, 2]);
  });
  it('valid, with odd and even inputs at stride 2', () => {
    expect(conv([7, 7, 3], { kernel: 3, stride: 2 })).toEqual([3, 3, 2]);
    expect(conv([8, 8, 3], { kernel: 3, stride: 2 })).toEqual([3, 3, 2]);
    expect(conv([9, 8, 3], { kernel: 3, stride: [2, 3] })).toEqual([4, 2, 2]);
  });
  it('dilation enlarges the effective kernel', () => {
    // effective 2*(3-1)+1 = 5: 7 -> 3; with padding 2 each side: 7
    expect(conv([7, 7, 3], { kernel: 3, dilation: 2 })).toEqual([3, 3, 2]);
    expect(conv([7, 7, 3], { kernel: 3, dilation: 2, padding: [2, 2, 2, 2] })).toEqual([7, 7, 2]);
    // [1, 3]: width effective 7 on a width of 9 -> 3
    expect(conv([5, 9, 3], { kernel: 3, dilation: [1, 3] })).toEqual([3, 3, 2]);
  });
  it('asymmetric padding [top, right, bottom, left]', () => {
    // h: 5 + 1 + 0 - 3 + 1 = 4 ; w: 5 + 0 + 3 - 3 + 1 = 6
    expect(conv([5, 5, 3], { kernel: 3, padding: [1, 0, 0, 3] })).toEqual([4, 6, 2]);
    // right padding only: w = 5 + 2 - 3 + 1 = 5, h = 5 - 3 + 1 = 3
    expect(conv([5, 5, 3], { kernel: 3, padding: [0, 2, 0, 0] })).toEqual([3, 5, 2]);
  });
  it('groups keep the output channel count', () => {
    expect(conv([4, 4, 6], { kernel: 1, groups: 3, outputChannels: 9 })).toEqual([4, 4, 9]);
  });
  it('depthwise with multiplier and stride', () => {
    const { g, x } = withInput([9, 6, 3]);
    expect(g.depthwiseConv2d(x, { filter: ones(9 * 6), kernel: 3, depthMultiplier: 2, stride: 2, padding: [1, 1, 1, 1] }).shape).toEqual([5, 3, 6]);
  });
  it('a chain: GAP -> FC -> reshape -> softmax', () => {
    const { g, x } = withInput([7, 7, 8]);
    const gap = g.globalAveragePool(x);
    const fc = g.fullyConnected(gap, { weights: ones(8 * 5), outputChannels: 5 });
    expect(fc.shape).toEqual([1, 1, 5]);
    const r = g.reshape(fc, [5]);
    expect(g.softmax(r).shape).toEqual([5]);
  });

  it('compile prepends the batch dimension to input and output shapes', async () => {
    const { g, x } = withInput([6, 6, 3]);
    g.output(g.conv2d(x, { filter: ones(4 * 27), kernel: 3, stride: 2, padding: [0, 1, 1, 0], outputChannels: 4 }));
    const rt = await compileGraph(g, { backend: 'reference', batch: 3 });
    expect(rt.inputShape).toEqual([3, 6, 6, 3]);
    expect(rt.outputShape).toEqual([3, 3, 3, 4]);
    expect(rt.inputSize).toBe(324);
    expect(rt.outputSize).toBe(108);
    expect(rt.batch).toBe(3);
    rt.dispose();
  });
});

describe('compile options and runtime arguments', () => {
  const small = (): Graph => {
    const { g, x } = withInput([2, 2, 1]);
    g.output(g.clamp(x, 0, 1));
    return g;
  };

  it('compile option errors', async () => {
    await expectReject(compileGraph(small(), { threads: -1 }), RangeError, 'Expected positive integer for threads but received -1');
    await expectReject(compileGraph(small(), { threads: 1.5, backend: 'reference' }), RangeError, 'Expected positive integer for threads but received 1.5');
    await expectReject(compileGraph(small(), { batch: 0, backend: 'reference' }), RangeError, 'Expected positive integer for batch but received 0');
    await expectReject(compileGraph(small(), { batch: '2' as never, backend: 'reference' }), TypeError, 'Expected positive integer for batch but received "2"');
    await expectReject(compileGraph(small(), { backend: 'gpu' as never }), RangeError, 'Expected one of "native", "reference" for backend but received "gpu"');
    await expectReject(compileGraph(small(), { backend: 5 as never }), TypeError, 'Expected one of "native", "reference" for backend but received 5');
    await expectReject(compileGraph(small(), null as never), TypeError, 'Expected object for options but received null');
  });

  it('run / runSync argument errors', async () => {
    const rt = await compileGraph(small(), { backend: 'reference', batch: 2 });
    await expectReject(rt.run(new Float32Array(5)), RangeError, 'Expected Float32Array of length 8 for input but received Float32Array(5)');
    await expectReject(rt.run([1, 2] as never), TypeError, 'Expected Float32Array for input but received [1, 2]');
    await expectReject(rt.run(new Float32Array(8), new Float32Array(7)), RangeError, 'Expected Float32Array of length 8 for output but received Float32Array(7)');
    expectThrow(() => rt.runSync(new Uint8Array(8) as never), TypeError, 'Expected Float32Array for input but received Uint8Array(8)');
    // A good call still works after the bad ones.
    expect(Array.from(await rt.run(new Float32Array([-1, 0.5, 2, 1, 0, 0, 3, -3])))).toEqual([0, 0.5, 1, 1, 0, 0, 1, 0]);
    rt.dispose();
  });

  it('runSync while run() calls are pending is refused with a MobileNetError', async () => {
    const rt = await compileGraph(small(), { backend: 'reference' });
    const p = rt.run(new Float32Array(4));
    expect(rt.pendingRuns).toBe(1);
    expect(() => rt.runSync(new Float32Array(4))).toThrow(MobileNetError);
    await p;
    expect(rt.pendingRuns).toBe(0);
    rt.dispose();
  });
});

describe('dispose', () => {
  it('graph.dispose() is safe twice and every later use throws DisposedError', async () => {
    const { g, x } = withInput();
    const y = g.clamp(x, 0, 1);
    g.output(y);
    g.dispose();
    g.dispose();
    expect(g.disposed).toBe(true);
    const msg = 'Graph has been disposed';
    expectThrow(() => g.input([2]), DisposedError, msg);
    expectThrow(() => g.constant(ones(2), [2]), DisposedError, msg);
    expectThrow(() => g.conv2d(x, { filter: ones(9 * 2), kernel: 3, outputChannels: 1 }), DisposedError, msg);
    expectThrow(() => g.depthwiseConv2d(x, { filter: ones(9 * 2), kernel: 3 }), DisposedError, msg);
    expectThrow(() => g.add(x, y), DisposedError, msg);
    expectThrow(() => g.hardswish(x), DisposedError, msg);
    expectThrow(() => g.reshape(x, [32]), DisposedError, msg);
    expectThrow(() => g.output(y), DisposedError, msg);
    expectThrow(() => g.validateComplete(), DisposedError, msg);
    await expectReject(compileGraph(g, { backend: 'reference' }), DisposedError, msg);
  });

  it('Symbol.dispose disposes graph and runtime', async () => {
    let graph: Graph;
    {
      using g = new Graph();
      graph = g;
      g.output(g.sigmoid(g.input([1])));
    }
    expect(graph.disposed).toBe(true);
    const g2 = new Graph();
    g2.output(g2.sigmoid(g2.input([1])));
    const rt = await compileGraph(g2, { backend: 'reference' });
    rt[Symbol.dispose]();
    expect(rt.disposed).toBe(true);
    await expectReject(rt.run(new Float32Array(1)), DisposedError, 'Runtime has been disposed');
    rt.dispose();
  });
});
