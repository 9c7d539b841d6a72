/**
 * The one place that loads the native addon and types its whole surface.
 *
 * The binary is `build/Release/mobilenet_xnnpack.node` under the package
 * root, or the file named by `MOBILENET_NATIVE_PATH` (e.g. a second build
 * against the system XNNPACK). It is loaded lazily, on first use.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeLoadError } from './errors.js';

/** Which XNNPACK the addon was built with. */
export interface XnnpackInfo {
  source: 'vendored' | 'system';
  /** Full commit of the vendored XNNPACK. */
  commit?: string;
  /** Debian package version of the system XNNPACK. */
  version?: string;
  napiVersion: number;
  /** Whether xnn_initialize() succeeded on this CPU. */
  initialized: boolean;
  initStatus?: string;
  /** From cpuinfo, when the build has it. */
  cpu?: { name?: string; cores: number; processors: number; features: string[] };
  /** Absolute path of the loaded `.node` file. */
  path: string;
}

/**
 * A serialized graph (lib/graph-format.ts) parsed in native memory: the only
 * way graphs reach C++. Malformed bytes throw an Error with code
 * 'ERR_GRAPH_FORMAT'; XNNPACK failures an Error with `status` (e.g.
 * 'xnn_status_invalid_parameter') and `node`.
 */
export interface NativeGraph {
  /** Builds the XNNPACK subgraph for `batch`, packs the weights, sets the runtime up once (calling thread). */
  compile(batch: number, threads: number): NativeRuntime;
  /** The same on a libuv worker thread (the event loop keeps turning). */
  compileAsync(batch: number, threads: number): Promise<NativeRuntime>;
  /** Frees the parsed graph (compiled runtimes keep what they need). Safe twice. */
  dispose(): void;
  readonly disposed: boolean;
  readonly tensorCount: number;
  readonly nodeCount: number;
  /** Bytes of constant data (weights) held. */
  readonly weightBytes: number;
  /** Per-sample shapes of the graph input and output. */
  readonly inputShape: number[];
  readonly outputShape: number[];
}

/** A compiled XNNPACK runtime with its own thread pool and preallocated buffers. */
export interface NativeRuntime {
  /** Copies input in, invokes, copies the result out, on the calling thread. */
  runSync(input: Float32Array, output: Float32Array): void;
  /**
   * Copies `input` in before returning, invokes on the runtime's worker thread,
   * copies the result into `output` on the JS thread when the promise settles
   * (rejects with code 'ERR_DETACHED' if `output` was detached meanwhile).
   * Throws synchronously (code 'ERR_BUSY') if a run is in progress.
   */
  run(input: Float32Array, output: Float32Array): Promise<void>;
  /** Safe twice; while a run is in progress, frees when it ends. */
  dispose(): void;
  readonly inputSize: number;
  readonly outputSize: number;
  readonly inputShape: number[];
  readonly outputShape: number[];
  readonly weightBytes: number;
  readonly batch: number;
  readonly threads: number;
  readonly disposed: boolean;
  readonly busy: boolean;
}

export interface NativeBinding {
  Graph: new (bytes: Uint8Array) => NativeGraph;
  xnnpackInfo(): Omit<XnnpackInfo, 'path'>;
}

function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mobilenet-xnnpack') return dir;
      } catch {
        // keep looking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
    dir = parent;
  }
}

/** The `.node` file that `loadBinding()` loads. */
export function nativePath(): string {
  const env = process.env.MOBILENET_NATIVE_PATH;
  if (env !== undefined && env !== '') return path.resolve(env);
  return path.join(packageRoot(), 'build', 'Release', 'mobilenet_xnnpack.node');
}

let cached: { binding: NativeBinding; path: string } | null = null;

/** Loads the addon once; throws NativeLoadError listing the fixes. */
export function loadBinding(): NativeBinding {
  if (cached !== null) return cached.binding;
  const file = nativePath();
  const fixes = [
    'run `npm run build:native` in the package directory (needs cmake, ninja, g++ and python3: apt-get install cmake ninja-build g++ python3 xz-utils)',
    'offline: set MOBILENET_XNNPACK_ARCHIVES=<dir with the pinned XNNPACK, cpuinfo, pthreadpool and FXdiv archives> and rebuild',
    'or build against Debian\'s XNNPACK: apt-get install libxnnpack-dev libpthreadpool-dev, then MOBILENET_XNNPACK=system npm run build:native',
    'or point MOBILENET_NATIVE_PATH at a built mobilenet_xnnpack.node',
  ];
  if (!fs.existsSync(file)) {
    throw new NativeLoadError(`The native addon is not built: ${file} does not exist. Fixes:\n  - ${fixes.join('\n  - ')}`);
  }
  try {
    const require = createRequire(import.meta.url);
    const binding = require(file) as NativeBinding;
    if (typeof binding?.Graph !== 'function' || typeof binding.xnnpackInfo !== 'function') {
      throw new Error('not a mobilenet-xnnpack addon');
    }
    cached = { binding, path: file };
    return binding;
  } catch (e) {
    throw new NativeLoadError(
      `The native addon ${file} could not be loaded: ${(e as Error).message}. Fixes:\n  - ${fixes.join('\n  - ')}`,
      { cause: e },
    );
  }
}

/** Which XNNPACK the addon was built with (loads the addon). */
export function xnnpackInfo(): XnnpackInfo {
  const binding = loadBinding();
  return { ...binding.xnnpackInfo(), path: cached?.path ?? nativePath() };
}
