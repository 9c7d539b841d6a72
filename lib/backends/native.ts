/**
 * The native backend: the graph is serialized (lib/graph-format.ts, the only
 * interface to C++) and parsed once by the addon, which builds an XNNPACK
 * subgraph per batch size, packs the weights (off the event loop) and sets
 * the runtime up once. Per call: one input copy at the call, invoke on the
 * runtime's worker thread, one output copy when the run settles.
 */
import type { Graph } from '../graph.js';
import type { Backend, BackendRuntime, PreparedGraph } from './types.js';
import { loadBinding, type NativeGraph, type NativeRuntime } from '../binding.js';
import { serializeGraph, serializeGraphSteps } from '../graph-format.js';
import { runStepsAsync, yieldToEventLoop } from '../cooperative.js';
import { BusyError, DisposedError, GraphFormatError, MobileNetError, XnnpackError } from '../errors.js';

interface NativeErrorShape {
  message: string;
  status?: unknown;
  node?: unknown;
  code?: unknown;
}

/** Maps errors of the addon to the library's classes (TypeError/RangeError pass through). */
export function translateNativeError(e: unknown, what = 'Runtime'): unknown {
  if (e instanceof TypeError || e instanceof RangeError || !(e instanceof Error) || e instanceof MobileNetError) return e;
  const n = e as Error & NativeErrorShape;
  if (typeof n.status === 'string') {
    return new XnnpackError(n.message, n.status, typeof n.node === 'string' && n.node !== '' ? n.node : undefined);
  }
  switch (n.code) {
    case 'ERR_DISPOSED':
      return new DisposedError(what);
    case 'ERR_BUSY':
      return new BusyError(n.message);
    case 'ERR_GRAPH_FORMAT':
      return new GraphFormatError(n.message);
    default:
      return new MobileNetError(n.message, { cause: e });
  }
}

/** The graph parsed by the addon (caller disposes it). */
export function toNativeGraph(graph: Graph): NativeGraph {
  return parseNative(serializeGraph(graph));
}

function parseNative(bytes: Uint8Array): NativeGraph {
  try {
    return new (loadBinding().Graph)(bytes);
  } catch (e) {
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

  run(input: Float32Array, output: Float32Array): Promise<void> {
    let p: Promise<void>;
    try {
      p = this.rt.run(input, output);
    } catch (e) {
      return Promise.reject(translateNativeError(e));
    }
    return p.catch((e: unknown) => {
      throw translateNativeError(e);
    });
  }

  dispose(): void {
    this.rt.dispose();
  }
}

class NativePreparedGraph implements PreparedGraph {
  readonly weightBytes: number;

  constructor(private readonly ng: NativeGraph) {
    this.weightBytes = ng.weightBytes;
  }

  async compile(batch: number, threads: number): Promise<BackendRuntime> {
    try {
      return new NativeBackendRuntime(await this.ng.compileAsync(batch, threads));
    } catch (e) {
      throw translateNativeError(e, 'Graph');
    }
  }

  compileSync(batch: number, threads: number): BackendRuntime {
    try {
      return new NativeBackendRuntime(this.ng.compile(batch, threads));
    } catch (e) {
      throw translateNativeError(e, 'Graph');
    }
  }

  dispose(): void {
    this.ng.dispose();
  }
}

export const nativeBackend: Backend = {
  name: 'native',
  prepare(graph: Graph): PreparedGraph {
    return new NativePreparedGraph(toNativeGraph(graph));
  },
  releaseFreeMemory(): Promise<boolean> {
    const b = loadBinding();
    // An addon built before this function existed (MOBILENET_NATIVE_PATH) has none.
    return typeof b.releaseFreeMemory === 'function' ? b.releaseFreeMemory().catch(() => false) : Promise.resolve(false);
  },
  async prepareAsync(graph: Graph): Promise<PreparedGraph> {
    // Serialized in steps straight into native memory, then parsed in place.
    let ng: NativeGraph | null = null;
    try {
      // The first call loads the addon (dlopen, XNNPACK's initialization): a turn of its own.
      const NativeGraphClass = loadBinding().Graph;
      await yieldToEventLoop();
      await runStepsAsync(
        serializeGraphSteps(graph, (total) => {
          ng = new NativeGraphClass(total);
          return ng;
        }),
      );
      const done = ng as unknown as NativeGraph;
      done.finish();
      return new NativePreparedGraph(done);
    } catch (e) {
      (ng as NativeGraph | null)?.dispose();
      throw translateNativeError(e, 'Graph');
    }
  },
};
