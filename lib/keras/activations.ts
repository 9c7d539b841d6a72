/**
 * Keras activation functions (`Activation` layers and the `activation` of
 * Conv2D / DepthwiseConv2D / Dense): one table of name → lowering. Analysis
 * accepts exactly the names of this table.
 */
import { fail, show, type Cfg } from './config.js';
import { UNBOUNDED, type LNode, type NodeBuilder } from './nodes.js';

type LowerActivation = (b: NodeBuilder, name: string, x: LNode, shape: number[]) => LNode;

const ACTIVATIONS: ReadonlyMap<string, LowerActivation> = new Map<string, LowerActivation>([
  ['linear', (_b, _n, x) => x],
  ['relu', (b, name, x, shape) => b.add({ kind: 'clamp', name, inputs: [x], shape, min: 0, max: Infinity })],
  ['relu6', (b, name, x, shape) => b.add({ kind: 'clamp', name, inputs: [x], shape, min: 0, max: 6 })],
  ['sigmoid', (b, name, x, shape) => b.add({ kind: 'sigmoid', name, inputs: [x], shape })],
  ['softmax', (b, name, x, shape) => b.add({ kind: 'softmax', name, inputs: [x], shape })],
  ['hard_swish', (b, name, x, shape) => b.add({ kind: 'hardswish', name, inputs: [x], shape })],
  ['hard_silu', (b, name, x, shape) => b.add({ kind: 'hardswish', name, inputs: [x], shape })],
  // Keras 2 / TensorFlow.js definition (the configs here are in Keras 2 form): clip(0.2 x + 0.5, 0, 1).
  // (MobileNetV3's relu6(x + 3) / 6 is written as TFOpLambda + ReLU layers, handled by the fusion rules.)
  ['hard_sigmoid', (b, name, x, shape) => b.add({ kind: 'affine', name, inputs: [x], shape, scale: Float32Array.of(0.2), shift: Float32Array.of(0.5), min: 0, max: 1 })],
  [
    'tanh',
    (b, name, x, shape) => {
      // tanh(x) = 2 sigmoid(2x) - 1 (within float32 rounding).
      const x2 = b.affine(name, x, shape, Float32Array.of(2), null);
      const sg = b.add({ kind: 'sigmoid', name, inputs: [x2], shape });
      return b.affine(name, sg, shape, Float32Array.of(2), Float32Array.of(-1));
    },
  ],
  ['swish', swish],
  ['silu', swish],
]);

function swish(b: NodeBuilder, name: string, x: LNode, shape: number[]): LNode {
  const s = b.add({ kind: 'sigmoid', name, inputs: [x], shape });
  return b.binary('multiply', name, x, s, shape, UNBOUNDED);
}

/** Activation names a layer (`Activation`, or a conv/dense `activation`) may carry. */
export const SUPPORTED_ACTIVATIONS: readonly string[] = [...ACTIVATIONS.keys()];

/** The activation named in a layer config (`'relu'`, or Keras 3's `{class_name, config: {name}}`); 'linear' when absent. */
export function activationOf(cfg: Cfg, layer: string, cls: string): string {
  const a = cfg.activation;
  if (a === undefined || a === null) return 'linear';
  const name = typeof a === 'string' ? a : typeof a === 'object' ? ((a as Cfg).config as Cfg | undefined)?.name ?? (a as Cfg).class_name : a;
  if (typeof name !== 'string' || !ACTIVATIONS.has(name)) fail(layer, cls, `activation ${show(a)}`);
  return name;
}

/** Appends the activation `act` (a name `activationOf` returned) after `x`. */
export function lowerActivation(b: NodeBuilder, act: string, name: string, x: LNode, shape: number[]): LNode {
  return (ACTIVATIONS.get(act) as LowerActivation)(b, name, x, shape);
}
