/**
 * Compiling and running graphs: `compileGraph(graph, options)` is the one
 * path that builds a `Runtime` (a Model compiles through the same
 * `prepareGraph` / `PreparedGraph.compile`).
 *
 * A Runtime has a fixed batch and shapes and one backend instance. `run()`
 * calls are queued here (a promise chain), so at most one inference of a
 * runtime is in flight and results never race. The input is copied when
 * `run()` is called (the caller may reuse or transfer its buffer at once);
 * the output is written into the caller's array on the JS thread when the run
 * settles. The native backend computes on the runtime's own worker thread,
 * the reference one in plain TypeScript.
 */
import os from 'node:os';
import type { Graph, Shape } from './graph.js';
import { BACKENDS, type Backend, type BackendName, type BackendRuntime, type CompileOptions, type PreparedGraph } from './backends/types.js';
import { BusyError, DisposedError } from './errors.js';
import * as v from './validate.js';

export type { Backend, BackendName, BackendRuntime, CompileOptions, PreparedGraph } from './backends/types.js';

export interface ResolvedCompileOptions {
  threads: number;
  batch: number;
  backend: BackendName;
}

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export function resolveCompileOptions(options: CompileOptions = {}): ResolvedCompileOptions {
  if (typeof options !== 'object' || options === null) throw v.typeError('object', 'options', options);
  const threads = options.threads === undefined ? defaultThreads() : v.positiveInteger(options.threads, 'threads');
  const batch = options.batch === undefined ? 1 : v.positiveInteger(options.batch, 'batch');
  const backend = options.backend === undefined ? 'native' : v.oneOf(options.backend, 'backend', BACKENDS);
  return { threads, batch, backend };
}

export class Runtime implements Disposable {
  readonly batch: number;
  readonly threads: number;
  readonly backend: BackendName;
  /** [batch, ...per-sample input shape] */
  readonly inputShape: readonly number[];
  /** [batch, ...per-sample output shape] */
  readonly outputShape: readonly number[];
  readonly inputSize: number;
  readonly outputSize: number;
  private impl: BackendRuntime | null;
  private queue: Promise<unknown> = Promise.resolve();
  private pending = 0;
  /** The next run's output when run() is called without one (allocated during the previous run). */
  private spare: Float32Array | null = null;

  /**
   * `extraOutputSize`: values per sample of the graph's extra outputs
   * (`Graph.addOutput`), which follow the output in the output array:
   * `outputSize` counts them, `outputShape` is the output's alone.
   */
  constructor(impl: BackendRuntime, opts: ResolvedCompileOptions, inputShape: Shape, outputShape: Shape, extraOutputSize = 0) {
    this.impl = impl;
    this.batch = opts.batch;
    this.threads = opts.threads;
    this.backend = opts.backend;
    this.inputShape = Object.freeze([opts.batch, ...inputShape]);
    this.outputShape = Object.freeze([opts.batch, ...outputShape]);
    this.inputSize = v.product(this.inputShape);
    this.outputSize = v.product(this.outputShape) + opts.batch * extraOutputSize;
  }

  get disposed(): boolean {
    return this.impl === null;
  }

  /** Number of `run()` calls queued or running. */
  get pendingRuns(): number {
    return this.pending;
  }

  /** Bytes of packed weights (native) or weight arrays (reference). */
  get weightBytes(): number {
    return this.impl?.weightBytes ?? 0;
  }

  private live(): BackendRuntime {
    if (this.impl === null) throw new DisposedError('Runtime');
    return this.impl;
  }

  private checkArgs(input: unknown, output: unknown): Float32Array {
    v.float32Array(input, 'input', this.inputSize);
    if (output === undefined) return this.freshOutput();
    return v.float32Array(output, 'output', this.outputSize);
  }

  /**
   * A new output array, never handed out before: the one allocated while the
   * previous run was in flight when there is one (allocating it costs the JS
   * thread time between runs otherwise; see refillSpare).
   */
  private freshOutput(): Float32Array {
    const spare = this.spare;
    if (spare === null) return new Float32Array(this.outputSize);
    this.spare = null;
    return spare;
  }

  /** Called once a run has been handed to the backend: the next run's output is allocated while this one computes. */
  private refillSpare(): void {
    if (this.spare === null && this.impl !== null) this.spare = new Float32Array(this.outputSize);
  }

  /**
   * Runs the graph off the main thread. `input` has `inputSize` values
   * (NHWC) and is copied before this returns; the result is written to
   * `output` when given, else to a new Float32Array. Calls are queued:
   * concurrent calls run one after another.
   */
  run(input: Float32Array, output?: Float32Array): Promise<Float32Array> {
    try {
      const impl = this.live();
      const out = this.checkArgs(input, output);
      if (this.pending === 0) {
        // Idle: the backend copies the input now.
        const started = impl.run(input, out);
        this.pending++;
        const result = started.then(
          () => {
            this.pending--;
            return out;
          },
          (e: unknown) => {
            this.pending--;
            throw e;
          },
        );
        this.queue = result.catch(() => undefined);
        if (output === undefined) this.refillSpare();
        return result;
      }
      // Busy: keep a copy of the input as it is now.
      const copy = input.slice();
      this.pending++;
      const result = this.queue.then(async () => {
        try {
          if (this.impl === null) throw new DisposedError('Runtime');
          await impl.run(copy, out);
          return out;
        } finally {
          this.pending--;
        }
      });
      this.queue = result.catch(() => undefined);
      return result;
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Runs the graph on the calling thread (blocks the event loop; for scripts). */
  runSync(input: Float32Array, output?: Float32Array): Float32Array {
    const impl = this.live();
    const out = this.checkArgs(input, output);
    if (this.pending > 0) throw new BusyError('Runtime is busy: runSync() called while run() calls are pending');
    impl.runSync(input, out);
    return out;
  }

  /** Frees native memory. Safe to call twice. Pending runs finish first. */
  dispose(): void {
    const impl = this.impl;
    if (impl === null) return;
    this.impl = null;
    this.spare = null;
    if (this.pending === 0) impl.dispose();
    else void this.queue.then(() => impl.dispose());
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export async function loadBackend(name: BackendName): Promise<Backend> {
  if (name === 'reference') return (await import('./backends/reference-qs8.js')).mixedReferenceBackend;
  return (await import('./backends/native.js')).nativeBackend;
}

/** Compiles a complete graph for one batch size: the one way to get a Runtime. */
export async function compileGraph(graph: Graph, options: CompileOptions = {}): Promise<Runtime> {
  const opts = resolveCompileOptions(options);
  graph.validateComplete();
  const backend = await loadBackend(opts.backend);
  const prepared = backend.prepare(graph);
  try {
    return await compilePrepared(prepared, opts, graph);
  } finally {
    prepared.dispose();
  }
}

/** A Runtime from a prepared graph (the shapes come from the graph's input and output). */
export async function compilePrepared(prepared: PreparedGraph, opts: ResolvedCompileOptions, shapes: { inputShape: Shape; outputShape: Shape } | Graph): Promise<Runtime> {
  const { inputShape, outputShape, extraOutputSize } = ioShapes(shapes);
  const impl = await prepared.compile(opts.batch, opts.threads);
  return new Runtime(impl, opts, inputShape, outputShape, extraOutputSize);
}

/** The same on the calling thread. */
export function compilePreparedSync(prepared: PreparedGraph, opts: ResolvedCompileOptions, shapes: { inputShape: Shape; outputShape: Shape } | Graph): Runtime {
  const { inputShape, outputShape, extraOutputSize } = ioShapes(shapes);
  return new Runtime(prepared.compileSync(opts.batch, opts.threads), opts, inputShape, outputShape, extraOutputSize);
}

function ioShapes(s: { inputShape: Shape; outputShape: Shape } | Graph): { inputShape: Shape; outputShape: Shape; extraOutputSize: number } {
  if (!('tensors' in s)) return { ...s, extraOutputSize: 0 };
  const input = s.tensors[s.inputTensor];
  const output = s.tensors[s.outputTensor];
  if (input === undefined || output === undefined) throw new RangeError('Expected a complete graph');
  return { inputShape: input.shape, outputShape: output.shape, extraOutputSize: s.outputSizePerSample - v.product(output.shape) };
}
