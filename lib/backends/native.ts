/**
 * The native backend: lowers the Graph IR to the addon (lib/binding.ts),
 * which builds an XNNPACK subgraph, packs the weights once and sets the
 * runtime up once. Per call: one input copy, invoke, one output copy.
 */
import type { Graph, Node } from '../graph.js';
import type { Backend, BackendRuntime } from '../runtime.js';
import { loadBinding, type NativeGraph, type NativeNode, type NativeRuntime } from '../binding.js';
import { DisposedError, XnnpackError } from '../errors.js';

interface NativeErrorShape {
  message: string;
  status?: unknown;
  node?: unknown;
  code?: unknown;
}

/** Maps errors of the addon to the library's classes (TypeError/RangeError pass through). */
export function translateNativeError(e: unknown, what = 'Runtime'): unknown {
  if (e instanceof TypeError || e instanceof RangeError || !(e instanceof Error)) return e;
  const n = e as Error & NativeErrorShape;
  if (typeof n.status === 'string') {
    return new XnnpackError(n.message, n.status, typeof n.node === 'string' && n.node !== '' ? n.node : undefined);
  }
  if (n.code === 'ERR_DISPOSED') return new DisposedError(what);
  return e;
}

function lower(node: Node, id: (t: number) => number): NativeNode {
  const name = node.name === undefined ? {} : { name: node.name };
  switch (node.op) {
    case 'conv2d':
      return {
        ...name, op: 'conv2d', input: id(node.input), filter: node.filter, bias: node.bias,
        kernel: node.kernel, stride: node.stride, dilation: node.dilation, padding: node.padding,
        groups: node.groups, groupInputChannels: node.groupInputChannels, groupOutputChannels: node.groupOutputChannels,
        outputMin: node.outputMin, outputMax: node.outputMax,
      };
    case 'depthwiseConv2d':
      return {
        ...name, op: 'depthwiseConv2d', input: id(node.input), filter: node.filter, bias: node.bias,
        kernel: node.kernel, stride: node.stride, dilation: node.dilation, padding: node.padding,
        inputChannels: node.inputChannels, depthMultiplier: node.depthMultiplier,
        outputMin: node.outputMin, outputMax: node.outputMax,
      };
    case 'add':
    case 'multiply':
      return { ...name, op: node.op, a: id(node.a), b: id(node.b), outputMin: node.outputMin, outputMax: node.outputMax };
    case 'clamp':
      return { ...name, op: 'clamp', input: id(node.input), min: node.min, max: node.max };
    case 'hardswish':
    case 'sigmoid':
    case 'softmax':
    case 'globalAveragePool':
      return { ...name, op: node.op, input: id(node.input) };
    case 'averagePool2d':
      return { ...name, op: 'averagePool2d', input: id(node.input), pool: node.pool, stride: node.stride };
    case 'maxPool2d':
      return { ...name, op: 'maxPool2d', input: id(node.input), pool: node.pool, stride: node.stride };
    case 'fullyConnected':
      return {
        ...name, op: 'fullyConnected', input: id(node.input), weights: node.weights, bias: node.bias,
        inputChannels: node.inputChannels, outputChannels: node.outputChannels,
        outputMin: node.outputMin, outputMax: node.outputMax,
      };
    case 'pad':
      return { ...name, op: 'pad', input: id(node.input), prePadding: node.prePadding, postPadding: node.postPadding, value: node.value };
    case 'reshape':
      return { ...name, op: 'reshape', input: id(node.input), shape: node.shape };
    default: {
      const unknown: never = node;
      throw new RangeError(`Expected a known node op for native backend but received ${JSON.stringify((unknown as Node).op)}`);
    }
  }
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Records `graph` in a native graph (caller disposes it). */
export function lowerToNative(graph: Graph): NativeGraph {
  const binding = loadBinding();
  const ng = new binding.Graph();
  try {
    const ids = new Map<number, number>();
    const id = (t: number): number => {
      const n = ids.get(t);
      if (n === undefined) throw new RangeError(`Expected a tensor defined before use for native backend but received tensor ${t}`);
      return n;
    };
    const input = graph.tensors[graph.inputTensor];
    if (input === undefined) throw new RangeError('Expected an input() in graph but received none');
    ids.set(input.id, ng.input(input.shape));
    for (const t of graph.tensors) {
      if (!t.batched && t.data !== undefined) ids.set(t.id, ng.constant(t.data, t.shape));
    }
    for (const node of graph.nodes) {
      const out = ng.addNode(lower(node, id));
      const expected = graph.tensors[node.output]?.shape ?? [];
      const actual = ng.shape(out);
      if (!sameShape(expected, actual)) {
        throw new XnnpackError(
          `Native shape [${actual.join(', ')}] differs from the graph's [${expected.join(', ')}] at node ${node.name ?? node.op}`,
          'shape_mismatch', node.name,
        );
      }
      ids.set(node.output, out);
    }
    ng.output(id(graph.outputTensor));
    return ng;
  } catch (e) {
    ng.dispose();
    throw translateNativeError(e, 'Graph');
  }
}

class NativeBackendRuntime implements BackendRuntime {
  readonly weightBytes: number;

  constructor(private readonly rt: NativeRuntime) {
    this.weightBytes = rt.weightBytes;
  }

  runSync(input: Float32Array, output: Float32Array): void {
    try {
      this.rt.runSync(input, output);
    } catch (e) {
      throw translateNativeError(e);
    }
  }

  async run(input: Float32Array, output: Float32Array): Promise<void> {
    try {
      await this.rt.run(input, output);
    } catch (e) {
      throw translateNativeError(e);
    }
  }

  dispose(): void {
    this.rt.dispose();
  }
}

export const nativeBackend: Backend = {
  name: 'native',
  compile(graph: Graph, batch: number, threads: number): BackendRuntime {
    const ng = lowerToNative(graph);
    try {
      return new NativeBackendRuntime(ng.compile(batch, threads));
    } catch (e) {
      throw translateNativeError(e);
    } finally {
      ng.dispose();
    }
  },
};
