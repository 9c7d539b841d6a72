/**
 * Conversion among the three model formats: TF.js layers (`model.json` +
 * shards), Keras HDF5 (`.h5`, full-model layout) and Keras 3 (`.keras`).
 *
 * The input is read with `readModelFile` (format from the file's bytes). A
 * weights-only input (such as the official Keras Applications `.h5` files)
 * is resolved as `loadModel` does (`resolveWeightsOnly`): the architecture is
 * recognized from the weights, builder options given must agree with them. Before anything is written the weights are matched
 * against the config (every missing, extra or mis-shaped weight is listed in
 * a WeightMismatchError), so a converted file always loads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { apiNames, rejectBuilderOptions, resolveWeightsOnly, type BuilderOptions, type OptionNamer } from '../architectures/options.js';
import type { Architecture, KerasModelConfig, NamedWeights } from '../keras/types.js';
import * as v from '../validate.js';
import { readModelFile, type ModelFormat } from './index.js';

export type TargetFormat = 'tfjs' | 'h5' | 'keras';

export interface ConvertOptions extends BuilderOptions {
  /** Output format; default: from the output path (`.h5`/`.hdf5` → h5, `.keras` → keras, `.json`, a directory or no extension → tfjs). */
  to?: TargetFormat;
  /** TF.js output only. */
  quantize?: 'uint8' | 'uint16' | 'float16';
  /** For weights-only inputs: the family (default: recognized from the weights); builder options likewise. */
  architecture?: Architecture;
  /** How option names read in messages (the CLI passes its flags). */
  optionNames?: OptionNamer;
}

export interface ConvertResult {
  from: ModelFormat;
  to: TargetFormat;
  input: string;
  /** The file written (model.json for TF.js). */
  output: string;
  weights: number;
  parameters: number;
  /** Whether the config was built from the architecture options (weights-only input). */
  builtConfig: boolean;
  /** The family built for a weights-only input. */
  architecture?: Architecture;
}

const TARGETS: readonly TargetFormat[] = ['tfjs', 'h5', 'keras'];

/** The output format implied by a path. */
export function inferTarget(out: string): TargetFormat {
  const lower = out.toLowerCase();
  if (lower.endsWith('.h5') || lower.endsWith('.hdf5')) return 'h5';
  if (lower.endsWith('.keras')) return 'keras';
  if (lower.endsWith('.json')) return 'tfjs';
  try {
    if (fs.statSync(out).isDirectory()) return 'tfjs';
  } catch {
    // does not exist yet
  }
  // A new directory: no extension, or a name like `v1-0.25-uint8` whose "extension" is not a file type.
  const ext = path.extname(out);
  if (ext === '' || !/^\.[a-z]+$/i.test(ext)) return 'tfjs';
  throw new RangeError(v.message('an output ending in .h5, .keras or .json, or a directory (or --to tfjs|h5|keras)', 'output', out));
}

/** Reads `input`, checks its weights against its (or the built) config, and writes `output`. */
export async function convertModel(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  if (typeof input !== 'string') throw v.typeError('string', 'input', input);
  if (typeof output !== 'string') throw v.typeError('string', 'output', output);
  if (output.length === 0) throw v.rangeError('non-empty path', 'output', output);
  const to = options.to === undefined ? inferTarget(output) : v.oneOf(options.to, 'to', TARGETS);
  if (options.quantize !== undefined) {
    v.oneOf(options.quantize, 'quantize', ['uint8', 'uint16', 'float16'] as const);
    if (to !== 'tfjs') throw new RangeError(`quantize ${JSON.stringify(options.quantize)} applies to TF.js output only, not to ${to}: quantization is a TF.js format feature`);
  }
  const file = await readModelFile(input);
  let config: KerasModelConfig | undefined = file.config;
  let builtConfig = false;
  let architecture: Architecture | undefined;
  const names = options.optionNames ?? apiNames;
  if (config === undefined) {
    const shapes = new Map([...file.weights].map(([k, t]) => [k, t.shape] as [string, number[]]));
    const r = resolveWeightsOnly(shapes, options, file.path, names);
    config = r.config;
    architecture = r.architecture;
    builtConfig = true;
  } else {
    const { detectArchitecture } = await import('../model.js');
    rejectBuilderOptions(options, file.path, detectArchitecture(config), names);
  }
  const { analyzeModel } = await import('../keras/layers.js');
  const { matchWeights } = await import('../keras/weights.js');
  const { describeWeights } = await import('../architectures/index.js');
  const analysis = analyzeModel(config, { file: file.path });
  // Every weight present with its shape; non-finite values are kept as they are (a conversion, not a load).
  // Weights are written under the names the analysis gives them (nested-model prefixes removed).
  const weights: NamedWeights = matchWeights(analysis, file.weights, { allowNonFinite: true, file: file.path, identify: (shapes) => describeWeights(shapes, analysis.inputShape) });
  let written: string;
  if (to === 'tfjs') {
    const { writeTfjs } = await import('./tfjs-write.js');
    const r = await writeTfjs(output, config, weights, {
      ...(options.quantize === undefined ? {} : { quantize: options.quantize }),
      ...(file.classNames === undefined ? {} : { classNames: file.classNames }),
    });
    written = r.modelJson;
  } else if (to === 'h5') {
    const { writeH5 } = await import('./h5.js');
    await writeH5(output, config, weights, file.classNames === undefined ? {} : { classNames: file.classNames });
    written = path.resolve(output);
  } else {
    const { writeKeras3 } = await import('./keras3.js');
    await writeKeras3(output, config, weights, file.classNames === undefined ? {} : { classNames: file.classNames });
    written = path.resolve(output);
  }
  return { from: file.format, to, input: file.path, output: written, weights: weights.size, parameters: analysis.totalParams, builtConfig, ...(architecture === undefined ? {} : { architecture }) };
}
