/**
 * The engines the benchmark compares. Each one runs in its own child process
 * (bench/worker.ts), so TF.js backends, thread pools and heaps never share a
 * process and peak RSS is per engine.
 *
 * Every engine loads the *same files* the user would: the TF.js layers
 * directory (model.json + shards) for this project and TF.js, the ONNX file
 * exported from this project's lowered graph for onnxruntime-node, the graph
 * file for the raw C++ runner.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { spawnSync, spawn } from 'node:child_process';
import { makeInput } from './lib/models.js';
import { onnxInt8Storage } from './onnx/int8.js';
import { benchRunner } from '../test/helpers/env.js';
import type { Preprocessing } from '../lib/keras/types.js';

export type EngineName =
  | 'mobilenet-xnnpack'
  | 'mobilenet-xnnpack-int8'
  | 'xnnpack-cpp'
  | 'reference-ts'
  | 'tfjs-cpu'
  | 'tfjs-wasm'
  | 'onnxruntime-node'
  | 'onnxruntime-node-int8'
  | 'tfjs-node';

export const ENGINE_NAMES: readonly EngineName[] = [
  'mobilenet-xnnpack', 'mobilenet-xnnpack-int8', 'xnnpack-cpp', 'onnxruntime-node', 'onnxruntime-node-int8', 'tfjs-wasm', 'tfjs-cpu', 'reference-ts', 'tfjs-node',
];

/** What the worker is told to load. */
export interface LoadSpec {
  engine: EngineName;
  modelId: string;
  /** TF.js layers model.json. */
  modelJson: string;
  /** ONNX file exported from the lowered graph. */
  onnxFile: string;
  /** Graph file for the raw C++ runner. */
  graphFile: string;
  /** The int8 model saved by `quantizeModel` (bench/run.ts quantizes once per model), for mobilenet-xnnpack-int8. */
  int8Dir?: string;
  /** That int8 model exported to ONNX in QDQ form (bench/onnx/int8.ts), for onnxruntime-node-int8. */
  int8OnnxFile?: string;
  inputShape: number[];
  /** Input range of the model (the same deterministic input in every engine). */
  preprocessing: Preprocessing;
  threads: number;
  /** onnxruntime-node: keep its intra-op spin-waiting on (its default); bench/run.ts turns it off only when other engines' processes share its turn. */
  ortSpinning?: boolean;
}

export interface EngineInstance {
  /** Runs one batch (input holds `batch` samples) and resolves with the output. */
  run(input: Float32Array, batch: number): Promise<Float32Array>;
  /** Optional: runs the batch `runs` times and returns per-run milliseconds measured by the engine itself. */
  time?(input: Float32Array, batch: number, runs: number): Promise<number[]>;
  dispose(): Promise<void>;
  /** Notes for the results (e.g. the TF.js backend actually used). */
  notes?: string;
  /** The configuration timed, shown beside every figure (default: 'default'). */
  setting?: string;
  /** Load time measured by the engine itself (else the worker times createEngine). */
  loadMs?: number;
  /** Peak RSS of the process doing the work, when that is not the worker (MB). */
  peakRssMb?(): Promise<number>;
}

/** Whether an engine is single-threaded by construction (no thread-count knob). */
export function singleThreaded(engine: EngineName): boolean {
  return engine === 'tfjs-cpu' || engine === 'tfjs-wasm' || engine === 'reference-ts';
}

/** Engines whose batch-1 run takes seconds: fewer runs, no batch-N row. */
export function slowEngine(engine: EngineName): boolean {
  return engine === 'tfjs-cpu' || engine === 'reference-ts';
}

const require = createRequire(import.meta.url);

/** A tfjs IOHandler reading a layers model.json and its shards from disk (@tensorflow/tfjs has no file:// handler). */
function fileHandler(modelJson: string): { load: () => Promise<unknown> } {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(modelJson, 'utf8')) as {
        modelTopology: unknown;
        weightsManifest: Array<{ paths: string[]; weights: unknown[] }>;
        format?: string;
        generatedBy?: string;
        convertedBy?: string;
      };
      const buffers: Buffer[] = [];
      const specs: unknown[] = [];
      for (const g of json.weightsManifest) {
        for (const p of g.paths) buffers.push(fs.readFileSync(path.join(path.dirname(modelJson), p)));
        specs.push(...g.weights);
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: normalizeTopology(json.modelTopology).topology,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        format: json.format ?? 'layers-model',
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
      };
    },
  };
}

type Tf = typeof import('@tensorflow/tfjs');

/**
 * tfjs-layers 4.22 cannot load configs written by tf.keras >= 2.6 as they
 * are: MobileNetV3's hard-swish is saved as TFOpLambda layers
 * (`tf.__operators__.add`, `tf.math.multiply` with a scalar `y` in the
 * inbound node's kwargs), and GlobalAveragePooling2D carries `keepdims`
 * (V1 and V3 heads), which tfjs's own layer ignores. A user of such a model
 * in TF.js has to register the missing pieces; these are the two small,
 * same-math layers this benchmark registers (and says so in its notes).
 */
function registerKerasCompat(tf: Tf): string[] {
  const added: string[] = [];
  class TFOpLambda extends tf.layers.Layer {
    static className = 'TFOpLambda';
    private readonly fn: string;
    /** The scalar operand: tfjs passes the inbound node's kwargs only when the graph is built, not at predict time. */
    private y: number | null = null;
    constructor(config: { function: string; name?: string }) {
      super(config);
      this.fn = config.function;
    }
    override apply(inputs: Parameters<import('@tensorflow/tfjs').layers.Layer['apply']>[0], kwargs?: Record<string, unknown>): ReturnType<import('@tensorflow/tfjs').layers.Layer['apply']> {
      if (typeof kwargs?.y === 'number') this.y = kwargs.y;
      return super.apply(inputs, kwargs);
    }
    override computeOutputShape(inputShape: import('@tensorflow/tfjs').Shape | import('@tensorflow/tfjs').Shape[]): import('@tensorflow/tfjs').Shape | import('@tensorflow/tfjs').Shape[] {
      return inputShape;
    }
    override call(inputs: import('@tensorflow/tfjs').Tensor | import('@tensorflow/tfjs').Tensor[], kwargs: Record<string, unknown>): import('@tensorflow/tfjs').Tensor {
      const x = Array.isArray(inputs) ? (inputs[0] as import('@tensorflow/tfjs').Tensor) : inputs;
      const y = typeof kwargs?.y === 'number' ? kwargs.y : this.y;
      if (y === null) throw new Error(`TFOpLambda ${this.name}: no scalar operand`);
      // tfjs's config conversion mangles the Python names ('__operators__.add' arrives as 'Operators_.add').
      const op = this.fn.toLowerCase().replace(/[^a-z.]/g, '').split('.').pop() ?? '';
      if (op === 'add') return tf.add(x, y);
      if (op === 'multiply') return tf.mul(x, y);
      if (op === 'sub' || op === 'subtract') return tf.sub(x, y);
      if (op === 'truediv' || op === 'divide') return tf.div(x, y);
      throw new Error(`TFOpLambda function ${this.fn} not supported by the benchmark's compat layer`);
    }
    override getConfig(): import('@tensorflow/tfjs').serialization.ConfigDict {
      return { ...super.getConfig(), function: this.fn };
    }
  }
  tf.serialization.registerClass(TFOpLambda);
  added.push('TFOpLambda');
  class GlobalAveragePooling2D extends tf.layers.Layer {
    static className = 'GlobalAveragePooling2D';
    private readonly keepdims: boolean;
    constructor(config: { keepdims?: boolean; name?: string }) {
      super(config);
      this.keepdims = config.keepdims === true;
    }
    override computeOutputShape(s: import('@tensorflow/tfjs').Shape | import('@tensorflow/tfjs').Shape[]): import('@tensorflow/tfjs').Shape {
      const shape = (Array.isArray(s[0]) ? s[0] : s) as import('@tensorflow/tfjs').Shape;
      return this.keepdims ? [shape[0] as number, 1, 1, shape[3] as number] : [shape[0] as number, shape[3] as number];
    }
    override call(inputs: import('@tensorflow/tfjs').Tensor | import('@tensorflow/tfjs').Tensor[]): import('@tensorflow/tfjs').Tensor {
      const x = Array.isArray(inputs) ? (inputs[0] as import('@tensorflow/tfjs').Tensor) : inputs;
      return tf.mean(x, [1, 2], this.keepdims);
    }
    override getConfig(): import('@tensorflow/tfjs').serialization.ConfigDict {
      return { ...super.getConfig(), keepdims: this.keepdims };
    }
  }
  tf.serialization.registerClass(GlobalAveragePooling2D);
  added.push('GlobalAveragePooling2D(keepdims)');
  return added;
}

/** TFOpLambda inbound nodes are saved as [[name, 0, 0, kwargs]] (one level short): wrap them as tfjs expects. */
function normalizeTopology(topology: unknown): { topology: unknown; compat: boolean } {
  const t = topology as { model_config?: { config?: { layers?: Array<{ class_name: string; config?: Record<string, unknown>; inbound_nodes?: unknown[] }> } } };
  const layers = t?.model_config?.config?.layers ?? [];
  let compat = false;
  for (const l of layers) {
    if (l.class_name === 'TFOpLambda') {
      compat = true;
      const nodes = l.inbound_nodes ?? [];
      if (nodes.length > 0 && typeof (nodes[0] as unknown[])[0] === 'string') l.inbound_nodes = [nodes];
    }
    if (l.class_name === 'GlobalAveragePooling2D' && l.config?.keepdims === true) compat = true;
  }
  return { topology, compat };
}

async function tfjsEngine(spec: LoadSpec, backend: 'cpu' | 'wasm'): Promise<EngineInstance> {
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
    wasm.setWasmPaths(dist);
  }
  const ok = await tf.setBackend(backend);
  await tf.ready();
  if (!ok || tf.getBackend() !== backend) throw new Error(`tfjs backend ${backend} could not be initialized (got ${tf.getBackend()})`);
  const rawTopology = (JSON.parse(fs.readFileSync(spec.modelJson, 'utf8')) as { modelTopology: unknown }).modelTopology;
  const needsCompat = normalizeTopology(rawTopology).compat;
  const compat = needsCompat ? registerKerasCompat(tf) : [];
  const model = await tf.loadLayersModel(fileHandler(spec.modelJson) as Parameters<typeof tf.loadLayersModel>[0]);
  let notes = `tfjs ${tf.version.tfjs}, backend ${tf.getBackend()}`;
  if (compat.length > 0) notes += `, with the bench's compat layers ${compat.join(' + ')} (tf.keras >= 2.6 config)`;
  if (backend === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    notes += `, ${wasm.getThreadsCount()} thread(s), SIMD ${String(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))}, multithread support ${String(await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT'))}`;
  }
  return {
    notes,
    async run(input, batch) {
      const x = tf.tensor(input, [batch, ...spec.inputShape]);
      const y = model.predict(x) as import('@tensorflow/tfjs').Tensor;
      const out = (await y.data()) as Float32Array;
      x.dispose();
      y.dispose();
      return out;
    },
    async dispose() {
      model.dispose();
    },
  };
}

async function mobilenetEngine(spec: LoadSpec, backend: 'native' | 'reference'): Promise<EngineInstance> {
  const { loadModel } = await import('../lib/model.js');
  const model = await loadModel(spec.modelJson, { threads: spec.threads, backend });
  return {
    notes: backend === 'native' ? `Model.predict (async, the runtime's own worker thread), ${model.threads} thread(s)` : 'Model.predict, pure TypeScript loops',
    // Model.predict's own promise, not wrapped in another one (what a caller awaits).
    run(input, batch) {
      return model.predict(input, { batch });
    },
    async dispose() {
      model.dispose();
    },
  };
}

/** The int8 model (saved once by bench/run.ts, as `mobilenet quantize` would) on XNNPACK's QS8 kernels. */
async function int8Engine(spec: LoadSpec): Promise<EngineInstance> {
  if (spec.int8Dir === undefined) throw new Error('no int8 model was prepared for this model');
  const { loadModel } = await import('../lib/model.js');
  const model = await loadModel(spec.int8Dir, { threads: spec.threads });
  const q = model.quantization;
  return {
    notes: `Model.predict on the saved int8 model (QS8/QC8 on XNNPACK, ${q?.calibrationImages ?? '?'} calibration images, ${q?.floatHead === false ? 'int8' : 'float32'} head${q?.floatOps ? `, float32 ${q.floatOps.join('/')}` : ''}), ${model.threads} thread(s)`,
    run(input, batch) {
      return model.predict(input, { batch });
    },
    async dispose() {
      model.dispose();
    },
  };
}

async function ortEngine(spec: LoadSpec, int8 = false): Promise<EngineInstance> {
  const ort = await import('onnxruntime-node');
  const spinning = spec.ortSpinning !== false;
  if (int8 && spec.int8OnnxFile === undefined) throw new Error('no int8 ONNX file was prepared for this model');
  const session = await ort.InferenceSession.create(int8 ? spec.int8OnnxFile! : spec.onnxFile, {
    intraOpNumThreads: spec.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
    // onnxruntime's intra-op threads spin-wait for work by default; on a machine with few cores they
    // keep stealing the cores of whichever engine runs next, even while its own session is idle
    // (measured here: the raw C++ runner at 2 threads 2.35 -> 3.75 ms with an idle spinning session
    // in another process). bench/run.ts keeps the default in phase-isolated rows (no other engine
    // process alive) and at 1 thread (no pool threads), and turns it off only in interleaved multi-thread rows.
    ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
  });
  const pkg = require('onnxruntime-node/package.json') as { version: string };
  const inputName = session.inputNames[0] as string;
  const outputName = session.outputNames[0] as string;
  // The ONNX file takes NCHW, onnxruntime's native layout: the image is laid out once, outside the timed call,
  // as an onnxruntime user would do while preprocessing.
  const [h, w, c] = spec.inputShape as [number, number, number];
  type OrtTensor = InstanceType<typeof ort.Tensor>;
  const nchw = new Map<Float32Array, OrtTensor>();
  const tensor = (input: Float32Array, batch: number): OrtTensor => {
    let t = nchw.get(input);
    if (t === undefined) {
      const x = new Float32Array(input.length);
      for (let b = 0; b < batch; b++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let k = 0; k < c; k++) {
        x[((b * c + k) * h + y) * w + xx] = input[((b * h + y) * w + xx) * c + k] as number;
      }
      t = new ort.Tensor('float32', x, [batch, c, h, w]);
      nchw.set(input, t);
    }
    return t;
  };
  return {
    notes: `${int8 ? `int8 QDQ graph (the mobilenet-xnnpack-int8 model, stored as ${onnxInt8Storage()}; onnxruntime fuses it into QLinearConv), ` : ''}onnxruntime-node ${pkg.version}, CPU EP, intra-op threads ${spec.threads}, graph optimization 'all', NCHW input`,
    // With 1 intra-op thread onnxruntime creates no pool: the calling thread runs the graph, nothing spins.
    setting: spinning ? `default: intra-op spinning on${spec.threads === 1 ? ' (1 thread: no pool to spin)' : ''}` : 'intra-op spinning off',
    async run(input, batch) {
      const out = await session.run({ [inputName]: tensor(input, batch) });
      return out[outputName]!.data as Float32Array;
    },
    async dispose() {
      await session.release();
    },
  };
}

/** The raw C++ runner (bench/native/), built by the same CMake project. */
export function cppRunnerPath(): string | null {
  const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
  const candidates = [
    benchRunner,
    path.join(root, 'build', 'Release', 'xnnpack_bench_runner'),
    path.join(root, 'build', 'xnnpack_bench_runner'),
    path.join(root, 'build', 'Release', 'bench_runner'),
    path.join(root, 'build', 'bench_runner'),
    path.join(root, 'bench', 'native', 'build', 'xnnpack_bench_runner'),
  ].filter((x): x is string => typeof x === 'string' && x !== '');
  return candidates.find((c) => fs.existsSync(c)) ?? null;
}

/** One `--serve` runner process: a compiled runtime for one batch size, answering one JSON line per command. */
class CppServer {
  private readonly proc: ReturnType<typeof spawn>;
  private buffer = '';
  private waiting: Array<{ resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }> = [];
  private stderr = '';
  private closed: string | null = null;

  constructor(exe: string, args: string[]) {
    this.proc = spawn(exe, [...args, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.buffer += d.toString();
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        const w = this.waiting.shift();
        if (!w) continue;
        try {
          const json = JSON.parse(line) as Record<string, unknown>;
          if (typeof json.error === 'string') w.reject(new Error(json.error));
          else w.resolve(json);
        } catch (e) {
          w.reject(new Error(`runner printed no JSON: ${(e as Error).message}: ${line.slice(0, 200)}`));
        }
      }
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-2000)));
    const fail = (why: string): void => {
      this.closed = why;
      for (const w of this.waiting.splice(0)) w.reject(new Error(why));
    };
    this.proc.on('error', (e) => fail(`runner could not start: ${e.message}`));
    this.proc.on('close', (code) => fail(`runner exited ${code}: ${this.stderr.trim().split('\n').slice(-2).join(' | ')}`));
  }

  /** Resolves with the next JSON line (the first one is the ready line). */
  next(): Promise<Record<string, unknown>> {
    if (this.closed !== null) return Promise.reject(new Error(this.closed));
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  call(cmd: string): Promise<Record<string, unknown>> {
    const p = this.next();
    this.proc.stdin!.write(`${cmd}\n`);
    return p;
  }

  /** Stops the runner and resolves once its process is gone (a phase-isolated row starts only after that). */
  close(): Promise<void> {
    if (this.proc.pid === undefined || this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve();
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    if (this.closed === null) {
      this.proc.stdin!.end('quit\n');
      this.proc.kill();
    }
    return gone;
  }
}

async function cppEngine(spec: LoadSpec): Promise<EngineInstance> {
  const exe = cppRunnerPath();
  if (exe === null) throw new Error('raw C++ runner not built (bench/native/runner.cc: `npm run build:native` builds it)');
  const dir = fs.mkdtempSync(path.join(path.dirname(spec.graphFile), 'cpp-input-'));
  const servers = new Map<number, CppServer>();
  const readyLoad = new Map<number, number>();
  const server = async (input: Float32Array, batch: number): Promise<CppServer> => {
    let s = servers.get(batch);
    if (s === undefined) {
      const f = path.join(dir, `input-${batch}.f32`);
      fs.writeFileSync(f, Buffer.from(input.buffer, input.byteOffset, input.byteLength));
      s = new CppServer(exe, ['--graph', spec.graphFile, '--threads', String(spec.threads), '--batch', String(batch), '--input', f, '--warmup', '2']);
      servers.set(batch, s);
      const ready = await s.next();
      readyLoad.set(batch, Number(ready.load_ms));
    }
    return s;
  };
  // Start the batch-1 runtime now: load time = read graph + define subgraph + pack weights + set up, as the runner measures it.
  await server(makeInput(spec.inputShape, spec.preprocessing, 1), 1);
  const ready = readyLoad.get(1);
  return {
    ...(ready === undefined ? {} : { loadMs: ready }),
    async peakRssMb() {
      let peak = 0;
      for (const s of servers.values()) peak = Math.max(peak, Number((await s.call('rss')).peak_rss_mb));
      return peak;
    },
    notes: `${path.basename(exe)} --serve: one process per batch size, xnn_invoke_runtime timed in C++ (steady_clock), no JavaScript in the loop`,
    async run(input, batch) {
      const r = await (await server(input, batch)).call('output');
      return Float32Array.from(r.output as number[]);
    },
    async time(input, batch, runs) {
      const r = await (await server(input, batch)).call(`time ${runs}`);
      const times = r.times_ms as number[];
      if (!Array.isArray(times) || times.length !== runs) throw new Error('C++ runner printed no per-run times');
      return times;
    },
    async dispose() {
      await Promise.all([...servers.values()].map((s) => s.close()));
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createEngine(spec: LoadSpec): Promise<EngineInstance> {
  switch (spec.engine) {
    case 'mobilenet-xnnpack':
      return mobilenetEngine(spec, 'native');
    case 'mobilenet-xnnpack-int8':
      return int8Engine(spec);
    case 'reference-ts':
      return mobilenetEngine(spec, 'reference');
    case 'tfjs-cpu':
      return tfjsEngine(spec, 'cpu');
    case 'tfjs-wasm':
      return tfjsEngine(spec, 'wasm');
    case 'onnxruntime-node':
      return ortEngine(spec);
    case 'onnxruntime-node-int8':
      return ortEngine(spec, true);
    case 'xnnpack-cpp':
      return cppEngine(spec);
    case 'tfjs-node':
      throw new Error(tfjsNodeStatus());
    default:
      throw new RangeError(`Expected one of ${ENGINE_NAMES.join(', ')} for engine but received ${JSON.stringify(spec.engine)}`);
  }
}

let tfjsNodeCache: string | null = null;

/**
 * @tensorflow/tfjs-node is not a dependency: its install script downloads
 * libtensorflow from outside the npm registry. Checked, not assumed: is it
 * importable here, and does the registry know it (a short `npm view`)?
 */
export function tfjsNodeStatus(): string {
  if (tfjsNodeCache !== null) return tfjsNodeCache;
  try {
    require.resolve('@tensorflow/tfjs-node');
    tfjsNodeCache = '@tensorflow/tfjs-node is installed but was not loaded by this benchmark';
    return tfjsNodeCache;
  } catch {
    // not installed: expected
  }
  const view = spawnSync('npm', ['view', '@tensorflow/tfjs-node', 'version', 'scripts.install'], { encoding: 'utf8', timeout: 20_000 });
  const known = view.status === 0 && /\d+\.\d+\.\d+/.test(view.stdout);
  const install = /install\s*=\s*'([^']+)'/.exec(view.stdout)?.[1];
  tfjsNodeCache = known
    ? `not installable without network: @tensorflow/tfjs-node@${/\d+\.\d+\.\d+/.exec(view.stdout)?.[0]} runs '${install ?? 'node scripts/install.js'}' at install time, which downloads a prebuilt libtensorflow from outside the npm registry`
    : 'not installable without network: its install script downloads libtensorflow (registry lookup failed too)';
  return tfjsNodeCache;
}
