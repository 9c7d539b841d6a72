/**
 * `mobilenet info [weights|int8-dir] [--arch v1|v2|v3-small|v3-large] [--alpha A] [builder options]
 *   [--summary] [--json]`
 *
 * Prints format, architecture, parameters (Keras-style total), multiply-adds,
 * input and output shapes of a model file or, without a file, of a builder.
 * A TF.js `model.json` (or .h5/.keras with a model config) is analyzed from
 * its config alone: weights are not loaded into the native runtime. A
 * weights-only .h5 is recognized from its weight names and shapes. A saved
 * int8 model (`mobilenet quantize`, detected by `isInt8Model` as `loadModel`
 * detects it) is described by ./info-int8.ts.
 */
import { resolve as pathResolve } from 'node:path';
import {
  type ArchitectureOptions, buildArchitecture, identifyArchitecture, type IdentifiedArchitecture, weightShapes,
} from '../architectures/index.js';
import { checkApplicable, flagNames, givenBuilderOptions, pickBuilderOptions, rejectBuilderOptions, resolveWeightsOnly } from '../architectures/options.js';
import { resolveWeights } from '../default-model.js';
import { UsageError } from '../errors.js';
import { analyzeModel } from '../keras/layers.js';
import { formatCount, formatMacs, formatSummary } from '../keras/summary.js';
import type { Architecture, KerasModelConfig, ModelAnalysis } from '../keras/types.js';
import { detectArchitecture } from '../model.js';
import { isInt8Model } from '../quantize/format.js';
import type { CliIO } from './io.js';
import { builderFlags, builderHelp, hasBuilderFlags, parseBuilderFlags, parseCommandArgs } from './options.js';

const HELP = `Usage: mobilenet info [weights|int8-dir] [options]

Prints the format, architecture, parameter count (as Keras counts it, BatchNorm
moving statistics included), multiply-adds and input/output shapes of a model
file (TF.js model.json or its directory, Keras .h5, Keras 3 .keras). Without a
file: the model \`mobilenet classify\` uses ($MOBILENET_WEIGHTS, else the shipped
default model); with architecture options and no file: that built architecture.
Files are read without running them.

A saved int8 model (a directory written by \`mobilenet quantize\`, or its
model.json): architecture, shapes, classes, preprocessing, how it was quantized
(calibration method and images, equalization, ops kept in float32), the source
model, file sizes and weight bytes, and the int8 graph's nodes by op
(--summary: one row per node).

Options:
  --summary                 per-layer table like Keras's model.summary()
  --json                    one JSON object: format, architecture, parameters, macs, inputShape, outputShape, …
  -h, --help                this text
Architecture options (builds without a file; for weights-only .h5 files what is
left out is recognized from the weights and what is given must match them;
files with a model config take only --input-size):
${builderHelp()}
`;

export interface InfoResult {
  format: 'builder' | 'tfjs' | 'h5' | 'keras3';
  file?: string;
  name: string;
  architecture: Architecture | 'unknown';
  alpha?: number;
  depthMultiplier?: number;
  minimalistic?: boolean;
  includeTop?: boolean;
  /** A file whose layers go beyond the Keras application (fine-tuned head). */
  customHead?: boolean;
  parameters: number;
  trainableParameters: number;
  nonTrainableParameters: number;
  macs: number;
  inputShape: number[];
  outputShape: number[];
  layers: number;
}

function describeArch(r: InfoResult): string {
  if (r.architecture === 'unknown') return 'unknown (not a Keras MobileNet backbone)';
  const parts = [`alpha ${r.alpha}`];
  if (r.depthMultiplier !== undefined && r.depthMultiplier !== 1) parts.push(`depth multiplier ${r.depthMultiplier}`);
  if (r.minimalistic) parts.push('minimalistic');
  if (r.customHead) parts.push('backbone with a custom head');
  else if (r.includeTop === false) parts.push('no top');
  return `${r.architecture} (${parts.join(', ')})`;
}

function text(r: InfoResult): string {
  const rows: Array<[string, string]> = [
    ['format', r.format === 'builder' ? 'builder' : `${r.format}${r.file ? ` (${r.file})` : ''}`],
    ['model', r.name],
    ['architecture', describeArch(r)],
    ['parameters', `${formatCount(r.parameters)} (trainable ${formatCount(r.trainableParameters)}, non-trainable ${formatCount(r.nonTrainableParameters)})`],
    ['multiply-adds', `${formatMacs(r.macs)} (${formatCount(r.macs)})`],
    ['input shape', `[${r.inputShape.join(', ')}]`],
    ['output shape', `[${r.outputShape.join(', ')}]`],
    ['layers', String(r.layers)],
  ];
  return rows.map(([k, val]) => `${`${k}:`.padEnd(15)}${val}`).join('\n') + '\n';
}

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    ...builderFlags(),
    summary: { type: 'boolean' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one weights file but received ${positionals.length}: ${positionals.join(' ')}`);
  const request = parseBuilderFlags(values);
  let file = positionals[0];
  if (file === undefined && !hasBuilderFlags(request)) file = resolveWeights(undefined, io.env, io.cwd).path;

  // A saved int8 model (`mobilenet quantize`): recognized as loadModel recognizes it.
  if (file !== undefined && (await isInt8Model(file))) {
    const abs = pathResolve(file);
    const given = givenBuilderOptions(request, flagNames);
    if (given.length > 0) {
      throw new UsageError(`${given.join(', ')} ${given.length === 1 ? 'does' : 'do'} not apply to ${abs}: it is a saved int8 model, whose graph fixes the architecture and input shape`);
    }
    const { int8Info, int8Text } = await import('./info-int8.js');
    const { result, summary } = await int8Info(abs);
    if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      io.stdout.write(int8Text(result));
      if (values.summary) io.stdout.write(`\n${summary}`);
    }
    return 0;
  }

  let result: InfoResult;
  let analysis: ModelAnalysis;
  try {
    if (file === undefined) {
      const arch = request.architecture ?? 'v1';
      const o: ArchitectureOptions = pickBuilderOptions(request);
      checkApplicable(arch, o, flagNames);
      analysis = analyzeModel(buildArchitecture(arch, o));
      result = summarize('builder', analysis, { architecture: arch, alpha: o.alpha ?? 1, includeTop: o.includeTop !== false, ...(arch === 'v1' ? { depthMultiplier: o.depthMultiplier ?? 1 } : {}), ...(o.minimalistic ? { minimalistic: true } : {}) });
    } else {
      const formats = await import('../formats/index.js');
      const path = await formats.resolveModelPath(file);
      const format = await formats.detectFormat(path);
      const config: KerasModelConfig | undefined = await formats.readModelConfig(path);
      const inputSize = request.inputShape?.[0];
      if (config !== undefined) {
        rejectBuilderOptions(request, path, detectArchitecture(config), flagNames, ['inputShape']);
        analysis = analyzeModel(config, { file: path, ...(inputSize === undefined ? {} : { inputShape: [inputSize, inputSize, analysisChannels(config)] }) });
        const ident = identifyArchitecture(weightShapes(analysis), analysis.inputShape);
        result = summarize(format, analysis, ident);
        if (ident !== undefined) result.customHead = hasCustomHead(analysis, ident);
      } else {
        // Weights-only file: the same resolver as loadModel and convert.
        const { weights } = await formats.readModelFile(path);
        const shapes = new Map([...weights].map(([k, t]) => [k, t.shape] as [string, number[]]));
        const r = resolveWeightsOnly(shapes, request, path, flagNames);
        analysis = analyzeModel(r.config, { file: path });
        const base = r.identified ?? { architecture: r.architecture, alpha: r.options.alpha ?? 1 };
        result = summarize(format, analysis, { ...base, alpha: r.options.alpha ?? 1, includeTop: r.options.includeTop !== false });
      }
      result.file = path;
    }
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
  if (values.json) io.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    io.stdout.write(text(result));
    if (values.summary) io.stdout.write(`\n${formatSummary(analysis)}`);
  }
  return 0;
}

/** Whether a file's model has layers beyond the Keras application it was recognized as (top, or no top with optional pooling). */
function hasCustomHead(analysis: ModelAnalysis, ident: IdentifiedArchitecture): boolean {
  const base: ArchitectureOptions = { alpha: ident.alpha, inputShape: [Math.max(32, analysis.inputShape[0] ?? 224), Math.max(32, analysis.inputShape[1] ?? 224), analysis.inputShape[2] ?? 3] };
  if (ident.depthMultiplier !== undefined) base.depthMultiplier = ident.depthMultiplier;
  if (ident.minimalistic) base.minimalistic = true;
  const variants: ArchitectureOptions[] = ident.includeTop
    ? [{ ...base, classes: ident.classes ?? 1000 }]
    : [{ ...base, includeTop: false }, { ...base, includeTop: false, pooling: 'avg' }, { ...base, includeTop: false, pooling: 'max' }];
  const fileNames = analysis.layers.filter((l) => l.weights.length > 0).length;
  return !variants.some((o) => {
    const ref = analyzeModel(buildArchitecture(ident.architecture, o));
    return ref.layers.filter((l) => l.weights.length > 0).length === fileNames && ref.outputShape.length === analysis.outputShape.length;
  });
}

function analysisChannels(config: KerasModelConfig): number {
  const input = config.config.layers.find((l) => l.class_name === 'InputLayer');
  const s = (input?.config.batch_input_shape ?? input?.config.batch_shape) as unknown;
  const c = Array.isArray(s) ? s[s.length - 1] : undefined;
  return typeof c === 'number' && c > 0 ? c : 3;
}

function summarize(
  format: InfoResult['format'],
  analysis: ModelAnalysis,
  ident: Partial<IdentifiedArchitecture> & { architecture?: Architecture } | undefined,
): InfoResult {
  const r: InfoResult = {
    format,
    name: analysis.name,
    architecture: ident?.architecture ?? 'unknown',
    parameters: analysis.totalParams,
    trainableParameters: analysis.trainableParams,
    nonTrainableParameters: analysis.nonTrainableParams,
    macs: analysis.macs,
    inputShape: analysis.inputShape,
    outputShape: analysis.outputShape,
    layers: analysis.layers.length,
  };
  if (ident?.architecture !== undefined) {
    if (ident.alpha !== undefined) r.alpha = ident.alpha;
    if (ident.depthMultiplier !== undefined) r.depthMultiplier = ident.depthMultiplier;
    if (ident.minimalistic !== undefined) r.minimalistic = ident.minimalistic;
    if (ident.includeTop !== undefined) r.includeTop = ident.includeTop;
  }
  return r;
}
