/**
 * One small example graph per op of the schema (lib/schema.ts), keyed by op
 * name: the record does not compile when an op is added without an example,
 * so test/schema-ops.test.ts runs every op through the reference backend,
 * the addon, the raw C++ runner and the ONNX exporter.
 *
 * Each example feeds the op from a 3x3 convolution (so the op sees
 * non-trivial values) and uses odd sizes, asymmetric padding and strides where
 * the op has them.
 */
import { Graph, type Tensor } from '../../lib/graph.js';
import type { OpName } from '../../lib/schema.js';
import { mulberry32 } from '../../lib/keras/random.js';

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** input [7, 6, 3] -> conv 3x3 (pad 1) -> [7, 6, 4], then `f`. */
function withStem(f: (g: Graph, x: Tensor) => Tensor): () => Graph {
  return () => {
    const g = new Graph();
    const x = g.input([7, 6, 3], 'x');
    const s = g.conv2d(x, { filter: randomArray(4 * 9 * 3, 1, 0.5), bias: randomArray(4, 2, 0.1), kernel: 3, outputChannels: 4, padding: [1, 1, 1, 1], name: 'stem' });
    g.output(f(g, s));
    return g;
  };
}

export const OP_EXAMPLES: { readonly [K in OpName]: () => Graph } = {
  conv2d: withStem((g, x) =>
    g.conv2d(x, { filter: randomArray(6 * 6 * 2, 3, 0.5), bias: randomArray(6, 4), kernel: [3, 2], stride: [2, 1], dilation: [1, 2], padding: [0, 1, 2, 1], groups: 2, outputChannels: 6, outputMin: -0.5, outputMax: 1.5 })),
  depthwiseConv2d: withStem((g, x) =>
    g.depthwiseConv2d(x, { filter: randomArray(9 * 8, 5, 0.5), bias: randomArray(8, 6), kernel: 3, depthMultiplier: 2, stride: 2, padding: [1, 0, 1, 1], outputMin: 0, outputMax: 6 })),
  add: withStem((g, x) => g.add(g.add(x, g.constant(randomArray(4, 7), [4])), g.globalAveragePool(x), { outputMin: -1 })),
  multiply: withStem((g, x) => g.multiply(g.multiply(x, g.constant(randomArray(7 * 4, 8), [7, 1, 4])), g.sigmoid(g.globalAveragePool(x)), { outputMax: 2 })),
  clamp: withStem((g, x) => g.clamp(x, -0.25, 0.5)),
  hardswish: withStem((g, x) => g.hardswish(g.multiply(x, g.constant(new Float32Array([4]), [1])))),
  sigmoid: withStem((g, x) => g.sigmoid(g.multiply(x, g.constant(new Float32Array([3]), [1])))),
  softmax: withStem((g, x) => g.softmax(x)),
  globalAveragePool: withStem((g, x) => g.globalAveragePool(x)),
  averagePool2d: withStem((g, x) => g.averagePool2d(x, { pool: [3, 2], stride: [2, 2] })),
  maxPool2d: withStem((g, x) => g.maxPool2d(x, { pool: [2, 3], stride: [2, 1] })),
  fullyConnected: withStem((g, x) =>
    g.fullyConnected(g.reshape(x, [42, 4]), { weights: randomArray(5 * 4, 9), bias: randomArray(5, 10), outputChannels: 5, outputMin: -1 })),
  pad: withStem((g, x) => g.pad(x, { prePadding: [1, 0, 2], postPadding: [0, 2, 1], value: 0.5 })),
  reshape: withStem((g, x) => g.reshape(x, [21, 8])),
  // float32 -> qint8 -> float32 (quantize, dequantize); the stem's outputs span about [-3, 3].
  convert: withStem((g, x) => {
    const q = g.node('convert', [x], {}, { output: { dtype: 'qint8', quant: { scale: 0.02, zeroPoint: 3 } } });
    return g.node('convert', [q], {});
  }),  leakyRelu: withStem((g, x) => g.node('leakyRelu', [x], { alpha: 0.3 })),
};
