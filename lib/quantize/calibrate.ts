/**
 * Calibration: the float graph is run on calibration images and the range of
 * every activation is recorded. On the 'native' backend the float graph runs
 * on XNNPACK, compiled with every activation as an extra output
 * (`Graph.addOutput`), so one run returns them all; on 'reference' (and when
 * the addon is not used) on the TypeScript kernels (`reference-qs8.ts`),
 * which report each activation as it is computed.
 *
 * Method: min/max. For each activation tensor the smallest and largest value
 * seen over all calibration images is its range (no percentile clipping).
 * MobileNets bound most activations by their fused ReLU6 / clamp, so the
 * observed range of those is inside [0, 6]; the unbounded ones (V2/V3 linear
 * bottlenecks, residual sums, hard-swish, the input) get the extremes seen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { QReferenceRuntime } from '../backends/reference-qs8.js';
import type { BackendName } from '../backends/types.js';
import { QuantizationError } from '../errors.js';
import { loadImageTensor, type ResizeMode } from '../image.js';
import type { Preprocessing } from '../keras/types.js';
import { compileGraph } from '../runtime.js';
import { toGraphWithOutputs, type QGraph, type QTensor } from './qgraph.js';
import * as v from '../validate.js';
import type { Range } from './quantize.js';

/** Extensions taken from a calibration directory (others, e.g. labels.json, are skipped). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif']);

/** Calibration data: a directory of images, a list of image paths, or preprocessed samples. */
export type CalibrationSource = string | readonly string[] | readonly Float32Array[];

export interface CalibrationOptions {
  /** At most this many images (the first ones by file name for a directory). Default 100. */
  images?: number;
  /** How images are resized (default 'crop', as classify does). */
  resize?: ResizeMode;
}

/** The image files of a calibration directory, sorted by name, at most `limit`. */
export async function listCalibrationImages(dir: string, limit = Infinity): Promise<string[]> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (e) {
    throw new QuantizationError(`cannot read the calibration directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const files = entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase()))
    .map((e) => path.join(dir, e.name))
    .sort();
  return files.slice(0, limit);
}

/** Resolves a calibration source to preprocessed samples of `inputShape` (yielded one at a time). */
export async function* calibrationSamples(
  source: CalibrationSource,
  inputShape: readonly number[],
  preprocessing: Preprocessing,
  options: CalibrationOptions = {},
): AsyncGenerator<Float32Array> {
  const limit = options.images ?? 100;
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`Expected positive integer for images but received ${limit}`);
  const size = inputShape.reduce((a, b) => a * b, 1);
  let files: string[];
  if (typeof source === 'string') {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(source);
    } catch (e) {
      throw new QuantizationError(`calibration source ${source} does not exist`, { cause: e });
    }
    files = st.isDirectory() ? await listCalibrationImages(source, limit) : [source];
    if (files.length === 0) throw new QuantizationError(`the calibration directory ${source} holds no images (${[...IMAGE_EXTENSIONS].join(', ')})`);
  } else if (Array.isArray(source) && source.every((s) => s instanceof Float32Array)) {
    const samples = (source as readonly Float32Array[]).slice(0, limit);
    if (samples.length === 0) throw new QuantizationError('no calibration images were given (at least one is needed)');
    for (const [i, s] of samples.entries()) {
      if (s.length !== size) throw new QuantizationError(`calibration sample ${i} has ${s.length} values, the model input needs ${size}`);
      yield s;
    }
    return;
  } else if (Array.isArray(source) && source.every((s) => typeof s === 'string')) {
    files = (source as readonly string[]).slice(0, limit);
  } else {
    throw new TypeError(`Expected a directory, a list of image paths or a list of Float32Array for calibration but received ${typeof source}`);
  }
  if (files.length === 0) throw new QuantizationError('no calibration images were given (at least one is needed)');
  const [height, width] = inputShape as [number, number];
  for (const file of files) {
    // ImageDecodeError (naming the file) when it is not an image.
    yield await loadImageTensor(file, { width, height, preprocessing, ...(options.resize ? { resize: options.resize } : {}) });
  }
}

export interface CalibrationResult {
  ranges: Map<number, Range>;
  /** Mean of every activation tensor per channel (its last dimension), over all positions and images. */
  means: Map<number, Float64Array>;
  /** Smallest and largest value of every activation tensor per channel (its last dimension), over all images. */
  channelRanges: Map<number, { min: Float32Array; max: Float32Array }>;
  /** Images (samples) used. */
  images: number;
}

/** How activation ranges are chosen from what calibration saw (the one list: API check and `mobilenet quantize --method`). */
export const RANGE_METHODS = ['minmax', 'mse'] as const;
export type RangeMethod = (typeof RANGE_METHODS)[number];

const BINS = 2048;

/**
 * The range [lo, hi] (a shrunk copy of the observed [min, max], zero kept
 * inside) that minimizes the expected squared int8 quantization error of the
 * histogram: clipping error outside, scale²/12 rounding noise inside.
 */
export function mseRange(hist: Float64Array, min: number, max: number): Range {
  const width = (max - min) / hist.length;
  if (!(width > 0)) return { min, max };
  let best = { min, max };
  let bestErr = Infinity;
  for (let k = 100; k >= 20; k--) {
    const f = k / 100;
    const lo = min * f;
    const hi = max * f;
    const scale = (hi - lo) / 255;
    const noise = (scale * scale) / 12;
    let err = 0;
    for (let i = 0; i < hist.length; i++) {
      const n = hist[i]!;
      if (n === 0) continue;
      const x = min + (i + 0.5) * width;
      err += n * (x < lo ? (x - lo) ** 2 : x > hi ? (x - hi) ** 2 : noise);
    }
    if (err < bestErr) {
      bestErr = err;
      best = { min: lo, max: hi };
    }
  }
  return best;
}

/** Runs one sample and shows every float32 activation (the input included) to `observe`. */
interface ObservedRunner {
  run(sample: Float32Array, observe: (t: QTensor, values: Float32Array) => void): Promise<void>;
  dispose(): void;
}

function referenceRunner(fg: QGraph): ObservedRunner {
  const rt = new QReferenceRuntime(fg, 1);
  const out = new Float32Array(rt.outputSize);
  return {
    run: (sample, observe) => {
      rt.run(sample, out, observe);
      return Promise.resolve();
    },
    dispose: () => undefined,
  };
}

/** The float graph on XNNPACK with every activation an extra output: one run returns them all. */
async function nativeRunner(fg: QGraph, threads: number | undefined): Promise<ObservedRunner> {
  const activations = [...new Set(fg.nodes.map((n) => n.output))].filter((id) => id !== fg.output && fg.tensors[id]!.dtype === 'float32');
  const { graph, order } = toGraphWithOutputs(fg, activations);
  const rt = await compileGraph(graph, { backend: 'native', batch: 1, ...(threads === undefined ? {} : { threads }) });
  graph.dispose();
  const size = (id: number): number => v.product(fg.tensors[id]!.shape);
  const out = new Float32Array(rt.outputSize);
  const input = fg.tensors[fg.input]!;
  const output = fg.tensors[fg.output]!;
  return {
    run: async (sample, observe) => {
      await rt.run(sample, out);
      observe(input, sample);
      let at = size(fg.output);
      observe(output, out.subarray(0, at));
      for (const id of order) {
        const n = size(id);
        observe(fg.tensors[id]!, out.subarray(at, at + n));
        at += n;
      }
    },
    dispose: () => rt.dispose(),
  };
}

export interface CalibrateOptions {
  method?: RangeMethod;
  /** Where the float graph runs: 'native' (XNNPACK) or 'reference' (default, TypeScript). */
  backend?: BackendName;
  /** Threads of the native runtime (default: all cores). */
  threads?: number;
}

/**
 * Runs the all-float typed graph on every sample and records min/max and the
 * per-channel mean of every activation tensor. With `method: 'mse'` a second
 * pass over the same samples builds a histogram per tensor and each range is
 * shrunk to the one with the least expected quantization error (`mseRange`).
 */
export async function calibrate(fg: QGraph, samples: AsyncIterable<Float32Array>, options: CalibrateOptions = {}): Promise<CalibrationResult> {
  const runner = options.backend === 'native' ? await nativeRunner(fg, options.threads) : referenceRunner(fg);
  try {
    return await calibrateWith(fg, runner, samples, options.method ?? 'minmax');
  } finally {
    runner.dispose();
  }
}

async function calibrateWith(fg: QGraph, rt: ObservedRunner, samples: AsyncIterable<Float32Array>, method: RangeMethod): Promise<CalibrationResult> {
  const kept: Float32Array[] = [];
  const ranges = new Map<number, Range>();
  const sums = new Map<number, Float64Array>();
  const counts = new Map<number, number>();
  const channelRanges = new Map<number, { min: Float32Array; max: Float32Array }>();
  let images = 0;
  for await (const sample of samples) {
    await rt.run(sample, (t, values) => {
      const channels = t.shape.length > 0 ? t.shape[t.shape.length - 1]! : 1;
      let sum = sums.get(t.id);
      if (sum === undefined) {
        sum = new Float64Array(channels);
        sums.set(t.id, sum);
      }
      let cr = channelRanges.get(t.id);
      if (cr === undefined) {
        cr = { min: new Float32Array(channels).fill(Infinity), max: new Float32Array(channels).fill(-Infinity) };
        channelRanges.set(t.id, cr);
      }
      const cMin = cr.min;
      const cMax = cr.max;
      for (let i = 0, c = 0; i < values.length; i++) {
        const v = values[i]!;
        if (v < cMin[c]!) cMin[c] = v;
        if (v > cMax[c]!) cMax[c] = v;
        sum[c]! += v;
        if (++c === channels) c = 0;
      }
      counts.set(t.id, (counts.get(t.id) ?? 0) + values.length / channels);
    });
    images++;
    if (method === 'mse') kept.push(sample);
    // Let other work (timers, I/O) run between images.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (images === 0) throw new QuantizationError('no calibration images were given (at least one is needed)');
  // A tensor's range: the extremes of its channels' ranges.
  for (const [id, cr] of channelRanges) {
    let min = Infinity;
    let max = -Infinity;
    for (let c = 0; c < cr.min.length; c++) {
      if (cr.min[c]! < min) min = cr.min[c]!;
      if (cr.max[c]! > max) max = cr.max[c]!;
    }
    ranges.set(id, { min, max });
  }
  for (const [id, r] of ranges) {
    if (!Number.isFinite(r.min) || !Number.isFinite(r.max)) {
      throw new QuantizationError(`calibration produced a non-finite value in tensor ${fg.tensors[id]?.name ?? id}`);
    }
  }
  if (method === 'mse') {
    const hists = new Map<number, Float64Array>();
    for (const sample of kept) {
      await rt.run(sample, (t, values) => {
        const r = ranges.get(t.id)!;
        const lo = Math.min(r.min, 0);
        const hi = Math.max(r.max, 0);
        let h = hists.get(t.id);
        if (h === undefined) {
          h = new Float64Array(BINS);
          hists.set(t.id, h);
        }
        const k = hi > lo ? BINS / (hi - lo) : 0;
        for (let i = 0; i < values.length; i++) h[Math.min(BINS - 1, Math.floor((values[i]! - lo) * k))]!++;
      });
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    for (const [id, h] of hists) {
      const r = ranges.get(id)!;
      ranges.set(id, mseRange(h, Math.min(r.min, 0), Math.max(r.max, 0)));
    }
  }
  const means = new Map<number, Float64Array>();
  for (const [id, sum] of sums) means.set(id, sum.map((x) => x / counts.get(id)!));
  return { ranges, means, channelRanges, images };
}
