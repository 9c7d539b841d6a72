/**
 * The contract between lib/runtime.ts and the backends (lib/backends/native.ts,
 * lib/backends/reference.ts), in its own module so that neither side imports
 * the other's implementation.
 */
import type { Graph } from '../graph.js';

/** The backends (the one list: API checks and CLI flags). */
export const BACKENDS = ['native', 'reference'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface CompileOptions {
  /** Worker threads of this runtime's pool (native only). Default: all cores. */
  threads?: number;
  /** Batch size N, fixed for the runtime. Default 1. */
  batch?: number;
  /** Default 'native'. */
  backend?: BackendName;
}

/** What a backend provides for one compiled graph. */
export interface BackendRuntime {
  /** Computes output from input synchronously. Both have exactly the runtime's sizes. */
  runSync(input: Float32Array, output: Float32Array): void;
  /**
   * Computes output from input without blocking the event loop. Reads `input`
   * before returning (synchronously); writes `output` on the JS thread when it settles.
   */
  run(input: Float32Array, output: Float32Array): Promise<void>;
  /** Frees native memory. Called once. */
  dispose(): void;
  /** Bytes of weights held (packed), for reporting. */
  readonly weightBytes?: number;
}

/** A graph handed to a backend once, compiled for any number of batch sizes. */
export interface PreparedGraph {
  /** Compiles off the event loop (native: weight packing on a worker thread). */
  compile(batch: number, threads: number): Promise<BackendRuntime>;
  /** The same on the calling thread. */
  compileSync(batch: number, threads: number): BackendRuntime;
  /** Bytes of weights the prepared graph holds. */
  readonly weightBytes: number;
  /** Frees what the prepared graph holds; runtimes compiled from it stay valid. */
  dispose(): void;
}

export interface Backend {
  readonly name: BackendName;
  /** Takes what compiling needs from the graph (native: the serialized graph, parsed in C++). */
  prepare(graph: Graph): PreparedGraph;
  /** The same without stalling the event loop (native: the graph serialized in steps, lib/cooperative.ts). */
  prepareAsync(graph: Graph): Promise<PreparedGraph>;
  /** Returns the C heap's free memory to the system after a load (native: malloc_trim off the event loop). */
  releaseFreeMemory?(): Promise<boolean>;
}

