/**
 * A compiled graph: fixed batch and shapes, one backend instance.
 *
 * `run()` calls on one runtime are queued here (a promise chain), so at most
 * one inference of a runtime is in flight at a time and results never race.
 * Backends implement `BackendRuntime`; the native one runs on a libuv worker
 * thread (Napi::AsyncWorker), the reference one in plain TypeScript.
 */
import os from 'node:os';
import type { BackendName, CompileOptions, Graph, Shape } from './graph.js';
import { DisposedError, MobileNetError } from './errors.js';
import * as v from './validate.js';

/** What a backend provides for one compiled graph. */
export interface BackendRuntime {
  /** Computes output from input synchronously. Both have exactly the runtime's sizes. */
  runSync(input: Float32Array, output: Float32Array): void;
  /** Computes output from input off the main thread (or at least without a re-entrant call). */
  run(input: Float32Array, output: Float32Array): Promise<void>;
  /** Frees native memory. Called once. */
  dispose(): void;
  /** Bytes of weights held (packed), for reporting. */
  readonly weightBytes?: number;
}

export interface Backend {
  readonly name: BackendName;
  compile(graph: Graph, batch: number, threads: number): BackendRuntime;
}

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
  const backend = options.backend === undefined ? 'native' : v.oneOf(options.backend, 'backend', ['native', 'reference'] as const);
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

  constructor(impl: BackendRuntime, opts: ResolvedCompileOptions, inputShape: Shape, outputShape: Shape) {
    this.impl = impl;
    this.batch = opts.batch;
    this.threads = opts.threads;
    this.backend = opts.backend;
    this.inputShape = Object.freeze([opts.batch, ...inputShape]);
    this.outputShape = Object.freeze([opts.batch, ...outputShape]);
    this.inputSize = v.product(this.inputShape);
    this.outputSize = v.product(this.outputShape);
  }

  get disposed(): boolean {
    return this.impl === null;
  }

  /** Number of `run()` calls queued or running. */
  get pendingRuns(): number {
    return this.pending;
  }

  private live(): BackendRuntime {
    if (this.impl === null) throw new DisposedError('Runtime');
    return this.impl;
  }

  private checkArgs(input: unknown, output: unknown): Float32Array {
    v.float32Array(input, 'input', this.inputSize);
    if (output === undefined) return new Float32Array(this.outputSize);
    return v.float32Array(output, 'output', this.outputSize);
  }

  /**
   * Runs the graph on a worker thread. `input` has `inputSize` values
   * (NHWC); the result is written to `output` when given, else to a new
   * Float32Array. Calls are queued: concurrent calls run one after another.
   */
  run(input: Float32Array, output?: Float32Array): Promise<Float32Array> {
    try {
      const impl = this.live();
      const out = this.checkArgs(input, output);
      this.pending++;
      const result = this.queue.then(async () => {
        try {
          await impl.run(input, out);
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
    if (this.pending > 0) throw new MobileNetError('Runtime is busy: runSync() called while run() calls are pending');
    impl.runSync(input, out);
    return out;
  }

  /** Frees native memory. Safe to call twice. Pending runs finish first. */
  dispose(): void {
    const impl = this.impl;
    if (impl === null) return;
    this.impl = null;
    if (this.pending === 0) impl.dispose();
    else void this.queue.then(() => impl.dispose());
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export async function loadBackend(name: BackendName): Promise<Backend> {
  if (name === 'reference') return (await import('./backends/reference.js')).referenceBackend;
  return (await import('./backends/native.js')).nativeBackend;
}

export async function compileGraph(graph: Graph, options: CompileOptions = {}): Promise<Runtime> {
  const opts = resolveCompileOptions(options);
  graph.validateComplete();
  const backend = await loadBackend(opts.backend);
  const impl = backend.compile(graph, opts.batch, opts.threads);
  const input = graph.tensors[graph.inputTensor];
  const output = graph.tensors[graph.outputTensor];
  if (input === undefined || output === undefined) throw new RangeError('Expected a complete graph');
  return new Runtime(impl, opts, input.shape, output.shape);
}
