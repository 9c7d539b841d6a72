/**
 * The lowered nodes: the internal form between Keras layers and the graph IR.
 * Layers are translated into them (`./registry.ts`, through `NodeBuilder`),
 * fused (`./fuse.ts`) and emitted as graph ops (`./emit.ts`).
 */
import { UnsupportedLayerError, WeightMismatchError } from '../errors.js';
import type { AnalyzedLayer, NamedWeights, WeightTensor } from './types.js';

export interface Bounds {
  min: number;
  max: number;
}

export interface LBase {
  id: number;
  /** Keras layer name (for error messages and graph node names). */
  name: string;
  inputs: LNode[];
  /** Per-sample output shape. */
  shape: number[];
  dead?: boolean;
}

export interface LInput extends LBase {
  kind: 'input';
}
export interface LConv extends LBase, Bounds {
  kind: 'conv' | 'dw' | 'fc';
  /** Graph layout: conv OHWI, dw [1,kh,kw,C*m], fc [out,in]. */
  filter: Float32Array;
  bias: Float32Array | null;
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  dilation: [number, number];
  /** top, right, bottom, left (the graph's order). */
  padding: [number, number, number, number];
  groups: number;
  depthMultiplier: number;
}
export interface LPad extends LBase {
  kind: 'pad';
  /** top, bottom, left, right */
  pads: [number, number, number, number];
}
export interface LAffine extends LBase, Bounds {
  kind: 'affine';
  /** Length 1 (scalar) or C; null = 1. */
  scale: Float32Array | null;
  /** Length 1 or C; null = 0. */
  shift: Float32Array | null;
}
export interface LBinary extends LBase, Bounds {
  kind: 'add' | 'multiply';
}
export interface LClamp extends LBase, Bounds {
  kind: 'clamp';
}
export interface LUnary extends LBase {
  kind: 'hardswish' | 'sigmoid' | 'softmax';
}
export interface LGap extends LBase {
  kind: 'gap';
}
export interface LPool extends LBase {
  kind: 'avgpool' | 'maxpool';
  pool: [number, number];
  stride: [number, number];
}
export interface LReshape extends LBase {
  kind: 'reshape';
}

export type LNode = LInput | LConv | LPad | LAffine | LBinary | LClamp | LUnary | LGap | LPool | LReshape;

/** A node before it has its id (Omit distributed over the union). */
export type NewNode<T extends LNode = LNode> = T extends LNode ? Omit<T, 'id'> : never;

export const UNBOUNDED: Bounds = Object.freeze({ min: -Infinity, max: Infinity });

/** No clamp: min -Infinity, max +Infinity. */
export function isUnbounded(b: Bounds): boolean {
  return b.min === -Infinity && b.max === Infinity;
}

export const fmtShape = (s: readonly number[]): string => `[${s.join(',')}]`;

/** What a layer's lowering uses: adding nodes, its inputs' nodes, its weights. */
export class NodeBuilder {
  readonly nodes: LNode[] = [];
  readonly byLayer = new Map<string, LNode>();

  constructor(
    private readonly weights: NamedWeights,
    /** The model file, for messages. */
    readonly file: string | undefined = undefined,
  ) {}

  add<T extends LNode = LNode>(n: NewNode<T>): T {
    const node = { ...n, id: this.nodes.length } as unknown as T;
    this.nodes.push(node);
    return node;
  }

  /** `y = x * scale + shift` (scale/shift null: 1/0), unbounded. */
  affine(name: string, x: LNode, shape: number[], scale: Float32Array | null, shift: Float32Array | null): LAffine {
    return this.add<LAffine>({ kind: 'affine', name, inputs: [x], shape, scale, shift, ...UNBOUNDED });
  }

  binary(kind: 'add' | 'multiply', name: string, a: LNode, b: LNode, shape: number[], bounds: Bounds = UNBOUNDED): LBinary {
    return this.add<LBinary>({ kind, name, inputs: [a, b], shape, min: bounds.min, max: bounds.max });
  }

  /** The node of the layer's `i`-th inbound tensor. */
  input(layer: AnalyzedLayer, i = 0): LNode {
    const src = layer.inbound[i];
    const n = src === undefined ? undefined : this.byLayer.get(src);
    if (n === undefined) throw new UnsupportedLayerError(layer.name, layer.className, `input ${i} (${src ?? 'none'}) is not available`, this.file);
    return n;
  }

  /** The layer's weight `<layer>/<short>` (matched beforehand by `matchWeights`). */
  weight(layer: AnalyzedLayer, short: string): WeightTensor {
    const full = layer.weights.find((w) => w.name === short)?.fullName ?? `${layer.name}/${short}`;
    const t = this.weights.get(full);
    if (t === undefined) {
      // matchWeights has checked every weight the analysis lists: this one the layer's lowering needs but its analysis does not list.
      throw this.mismatch(`Weights do not match model: layer '${layer.name}' (${layer.className}) needs weight ${full}, which is missing. Load the model with the weights file saved with it.`);
    }
    return t;
  }

  /** A WeightMismatchError whose message starts with `<file>: ` when the model came from a file (as matchWeights's). */
  mismatch(message: string): WeightMismatchError {
    return new WeightMismatchError(`${this.file === undefined ? '' : `${this.file}: `}${message}`);
  }

  /** The weight when the layer's specs list it, else null (e.g. a bias with use_bias false). */
  optionalWeight(layer: AnalyzedLayer, short: string): WeightTensor | null {
    return layer.weights.some((w) => w.name === short) ? this.weight(layer, short) : null;
  }
}
