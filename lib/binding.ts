/**
 * The one place that loads the native addon and types its whole surface.
 *
 * Which binary (loaded lazily, on first use):
 *  1. `MOBILENET_NATIVE_PATH`, when set (e.g. a second build against the system XNNPACK);
 *     nothing else is tried then;
 *  2. a local source build, `build/Release/mobilenet_xnnpack.node`, when there is one;
 *  3. the prebuilt addon shipped in the package, `prebuilds/<platform>-<arch>/*.node`,
 *     chosen by node-gyp-build's matching rules (platform, arch, libc: glibc vs musl).
 * An installed package has a source build only when its install script compiled
 * one: on request (`--build-from-source`), or because no prebuild matched or
 * loaded here; in a clone it is `npm run build:native`'s. Either way it is the
 * binary asked for, so it comes first (node-gyp-build's and sharp's order too);
 * otherwise the prebuild is used and nothing is compiled. When a candidate
 * fails to load (e.g. a binary needing a newer glibc), the next one is tried.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativePathOverride } from './env.js';
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
  /**
   * int8 (QS8) operators only some builds have (conv, depthwise, add, multiply, pooling,
   * clamp, pad, reshape, sigmoid and convert are in both): lib/quantize keeps the others in float.
   */
  int8: { hardswish: boolean; fullyConnected: boolean };
  /** From cpuinfo, when the build has it. */
  cpu?: { name?: string; cores: number; processors: number; features: string[] };
  /** Absolute path of the loaded `.node` file. */
  path: string;
  /** Whether that file is MOBILENET_NATIVE_PATH, a prebuild shipped in the package, or a local source build. */
  binary: NativeSource;
}

/**
 * A serialized graph (lib/graph-format.ts) parsed in native memory: the only
 * way graphs reach C++. Malformed bytes throw an Error with code
 * 'ERR_GRAPH_FORMAT'; XNNPACK failures an Error with `status` (e.g.
 * 'xnn_status_invalid_parameter') and `node`.
 */
export interface NativeGraph {
  /** For `new Graph(size)`: copies `bytes` to `offset` of the reserved serialized graph. */
  write(offset: number, bytes: Uint8Array): void;
  /** For `new Graph(size)`: parses the written bytes in place (throws 'ERR_GRAPH_FORMAT' as `new Graph(bytes)` does). */
  finish(): void;
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
  /** `new Graph(bytes)` parses a copy; `new Graph(size)` reserves native memory written with `write()` and parsed by `finish()`. */
  Graph: new (bytesOrSize: Uint8Array | number) => NativeGraph;
  xnnpackInfo(): Omit<XnnpackInfo, 'path' | 'binary'>;
  /** glibc's malloc_trim(0) on a libuv worker thread: whether memory went back to the system (false without glibc). */
  releaseFreeMemory(): Promise<boolean>;
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

/** Where a candidate binary comes from. */
export type NativeSource = 'MOBILENET_NATIVE_PATH' | 'prebuild' | 'source build';

/** node-gyp-build's matching helpers (its exported rules for `prebuilds/<platform>-<arch>/<tags>.node`). */
interface NodeGypBuild {
  parseTuple(name: string): { name: string; platform: string; architectures: string[] } | undefined;
  matchTuple(platform: string, arch: string): (t: ReturnType<NodeGypBuild['parseTuple']>) => boolean;
  compareTuples(a: { architectures: string[] }, b: { architectures: string[] }): number;
  parseTags(file: string): { file: string } | undefined;
  matchTags(runtime: string, abi: string): (t: ReturnType<NodeGypBuild['parseTags']>) => boolean;
  compareTags(runtime: string): (a: { file: string }, b: { file: string }) => number;
}

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * The prebuilt addon for this platform, architecture and libc, or null. The
 * same selection as node-gyp-build's `prebuilds/` lookup (which we cannot call
 * directly: it always prefers build/Release).
 */
export function prebuildPath(root = packageRoot()): string | null {
  const ngb = createRequire(import.meta.url)('node-gyp-build') as NodeGypBuild;
  const dir = path.join(root, 'prebuilds');
  const tuple = readdir(dir)
    .map((n) => ngb.parseTuple(n))
    .filter(ngb.matchTuple(process.platform, process.arch))
    .sort((a, b) => ngb.compareTuples(a!, b!))[0];
  if (tuple === undefined) return null;
  const winner = readdir(path.join(dir, tuple.name))
    .map((f) => ngb.parseTags(f))
    .filter(ngb.matchTags('node', process.versions.modules))
    .sort((a, b) => ngb.compareTags('node')(a!, b!))[0];
  return winner === undefined ? null : path.join(dir, tuple.name, winner.file);
}

/** The binaries `loadBinding()` tries, in order (only those that exist, except MOBILENET_NATIVE_PATH). */
export function nativeCandidates(): { file: string; source: NativeSource }[] {
  const override = nativePathOverride();
  if (override !== undefined) return [{ file: path.resolve(override), source: 'MOBILENET_NATIVE_PATH' }];
  const root = packageRoot();
  const list: { file: string; source: NativeSource }[] = [];
  const local = path.join(root, 'build', 'Release', 'mobilenet_xnnpack.node');
  if (fs.existsSync(local)) list.push({ file: local, source: 'source build' });
  const prebuild = prebuildPath(root);
  if (prebuild !== null) list.push({ file: prebuild, source: 'prebuild' });
  return list;
}

/** The `.node` file that `loadBinding()` loads first (the loaded one once loaded). */
export function nativePath(): string {
  if (cached !== null) return cached.path;
  const first = nativeCandidates()[0];
  return first?.file ?? path.join(packageRoot(), 'build', 'Release', 'mobilenet_xnnpack.node');
}

let cached: { binding: NativeBinding; path: string; source: NativeSource } | null = null;

const FIXES = [
  'if npm skipped this package\'s install script (npm 11 blocks dependency install scripts by default): `npm install-scripts approve mobilenet-xnnpack`, then `npm rebuild mobilenet-xnnpack`',
  'compile it in the package directory: `npm rebuild mobilenet-xnnpack --build-from-source`, or `npm run build:native` in a clone (needs cmake, ninja, g++ and python3: apt-get install cmake ninja-build g++ python3 xz-utils)',
  'offline: set MOBILENET_XNNPACK_ARCHIVES=<dir with the pinned XNNPACK, cpuinfo, pthreadpool and FXdiv archives> and rebuild',
  'or build against Debian\'s XNNPACK: apt-get install libxnnpack-dev libpthreadpool-dev, then MOBILENET_XNNPACK=system npm run build:native',
  'or point MOBILENET_NATIVE_PATH at a built mobilenet_xnnpack.node',
];

/** Loads the addon once; throws NativeLoadError naming what was tried and the fixes. */
export function loadBinding(): NativeBinding {
  if (cached !== null) return cached.binding;
  const candidates = nativeCandidates();
  const fixes = `Fixes:\n  - ${FIXES.join('\n  - ')}`;
  if (candidates.length === 0) {
    const root = packageRoot();
    throw new NativeLoadError(
      `The native addon is not built: no prebuilt addon for ${process.platform}-${process.arch} in ${path.join(root, 'prebuilds')} ` +
        `and ${path.join(root, 'build', 'Release', 'mobilenet_xnnpack.node')} does not exist. ${fixes}`,
    );
  }
  const failures: string[] = [];
  let firstError: unknown;
  for (const { file, source } of candidates) {
    if (!fs.existsSync(file)) {
      failures.push(`${source} ${file} does not exist`);
      continue;
    }
    try {
      const binding = createRequire(import.meta.url)(file) as NativeBinding;
      if (typeof binding?.Graph !== 'function' || typeof binding.xnnpackInfo !== 'function') {
        throw new Error('not a mobilenet-xnnpack addon');
      }
      cached = { binding, path: file, source };
      return binding;
    } catch (e) {
      firstError ??= e;
      failures.push(`${source} ${file} could not be loaded: ${(e as Error).message}`);
    }
  }
  const what = failures.length === 1 && failures[0]!.endsWith('does not exist')
    ? `The native addon is not built: ${failures[0]}.`
    : `The native addon could not be loaded: ${failures.join('; ')}.`;
  throw new NativeLoadError(`${what} ${fixes}`, firstError === undefined ? undefined : { cause: firstError });
}

/** Which XNNPACK the addon was built with (loads the addon). */
export function xnnpackInfo(): XnnpackInfo {
  const binding = loadBinding();
  return { ...binding.xnnpackInfo(), path: cached!.path, binary: cached!.source };
}
