/**
 * Emission of the live lowered nodes (`./nodes.ts`) into a `Graph`, each op
 * named after its Keras layer. The weight arrays of conv/depthwise/dense
 * nodes are the lowering's own (transposed, folded or copied from the
 * source weights in ./registry.ts): the graph adopts them instead of copying.
 */
import { adoptArray, Graph, type Padding4, type Tensor } from '../graph.js';
import type { Bounds, LNode } from './nodes.js';
import { runSteps, type Steps } from '../cooperative.js';

export function emitGraph(nodes: readonly LNode[], output: LNode): Graph {
  return runSteps(emitGraphSteps(nodes, output));
}

/** `emitGraph` in steps (lib/cooperative.ts): yields after each node (copying its weights into the graph). */
export function* emitGraphSteps(nodes: readonly LNode[], output: LNode): Steps<Graph> {
  const g = new Graph();
  const t = new Map<LNode, Tensor>();
  const get = (n: LNode | undefined): Tensor => t.get(n as LNode) as Tensor;
  const bnd = (b: Bounds): { outputMin: number; outputMax: number } => ({ outputMin: b.min, outputMax: b.max });
  for (const n of nodes) {
    if (n.dead) continue;
    const x = n.inputs[0];
    let out: Tensor;
    switch (n.kind) {
      case 'input':
        out = g.input(n.shape, n.name);
        break;
      case 'conv':
        out = g.conv2d(get(x), {
          filter: adoptArray(n.filter), bias: n.bias && adoptArray(n.bias), kernel: n.kernel, outputChannels: n.outChannels, stride: n.stride, dilation: n.dilation,
          padding: n.padding as Padding4, groups: n.groups, name: n.name, ...bnd(n),
        });
        break;
      case 'dw':
        out = g.depthwiseConv2d(get(x), {
          filter: adoptArray(n.filter), bias: n.bias && adoptArray(n.bias), kernel: n.kernel, depthMultiplier: n.depthMultiplier, stride: n.stride, dilation: n.dilation,
          padding: n.padding as Padding4, name: n.name, ...bnd(n),
        });
        break;
      case 'fc':
        out = g.fullyConnected(get(x), { weights: adoptArray(n.filter), bias: n.bias && adoptArray(n.bias), outputChannels: n.outChannels, name: n.name, ...bnd(n) });
        break;
      case 'pad': {
        const [tp, b, l, r] = n.pads;
        const rank = (x as LNode).shape.length;
        const pre = new Array<number>(rank).fill(0);
        const post = new Array<number>(rank).fill(0);
        pre[0] = tp;
        post[0] = b;
        pre[1] = l;
        post[1] = r;
        out = g.pad(get(x), { prePadding: pre, postPadding: post, name: n.name });
        break;
      }
      case 'affine': {
        let y = get(x);
        const hasShift = n.shift !== null;
        if (n.scale !== null) {
          const k = g.constant(n.scale, [n.scale.length], `${n.name}/scale`);
          y = g.multiply(y, k, hasShift ? { name: n.name } : { name: n.name, ...bnd(n) });
        }
        if (n.shift !== null) {
          const k = g.constant(n.shift, [n.shift.length], `${n.name}/shift`);
          y = g.add(y, k, { name: n.name, ...bnd(n) });
        }
        if (n.scale === null && n.shift === null) y = g.clamp(y, n.min, n.max, n.name);
        out = y;
        break;
      }
      case 'add':
        out = g.add(get(x), get(n.inputs[1]), { name: n.name, ...bnd(n) });
        break;
      case 'multiply':
        out = g.multiply(get(x), get(n.inputs[1]), { name: n.name, ...bnd(n) });
        break;
      case 'clamp':
        out = g.clamp(get(x), n.min, n.max, n.name);
        break;
      case 'hardswish':
        out = g.hardswish(get(x), n.name);
        break;
      case 'sigmoid':
        out = g.sigmoid(get(x), n.name);
        break;
      case 'softmax':
        out = g.softmax(get(x), n.name);
        break;
      case 'gap':
        out = g.globalAveragePool(get(x), n.name);
        break;
      case 'avgpool':
        out = g.averagePool2d(get(x), { pool: n.pool, stride: n.stride, name: n.name });
        break;
      case 'maxpool':
        out = g.maxPool2d(get(x), { pool: n.pool, stride: n.stride, name: n.name });
        break;
      case 'reshape':
        out = g.reshape(get(x), n.shape, n.name);
        break;
    }
    t.set(n, out);
    yield;
  }
  if (output.kind === 'input') {
    // Identity model: make the output a distinct tensor.
    g.output(g.reshape(get(output), output.shape, output.name));
  } else g.output(get(output));
  return g;
}
