/**
 * `mobilenet info [weights] [--arch v1|v2|v3-small|v3-large] [--alpha A]
 *   [--depth-multiplier D] [--input-size S] [--minimalistic] [--no-top]
 *   [--pooling avg|max] [--classes N] [--summary] [--json]`
 *
 * Prints format, architecture, parameters (Keras-style total), multiply-adds,
 * input and output shapes of a model file or, without a file, of a builder.
 * A TF.js `model.json` (or .h5/.keras with a model config) is analyzed from
 * its config alone: weights are not loaded into the native runtime. A
 * weights-only .h5 is recognized from its weight names and shapes.
 */
import { parseArgs } from 'node:util';
import {
  ARCHITECTURES, type ArchitectureOptions, buildArchitecture, identifyArchitecture, type IdentifiedArchitecture, weightShapes,
} from '../architectures/index.js';
import { analyzeModel } from '../keras/layers.js';
import { formatCount, formatMacs, formatSummary } from '../keras/summary.js';
import type { Architecture, KerasModelConfig, ModelAnalysis } from '../keras/types.js';
import * as v from '../validate.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { positiveInt, positiveNumber } from './options.js';

const HELP = `Usage: mobilenet info [weights] [options]

Prints the format, architecture, parameter count (as Keras counts it, BatchNorm
moving statistics included), multiply-adds and input/output shapes of a model
file (TF.js model.json or its directory, Keras .h5, Keras 3 .keras), or of a
built architecture when no file is given. Files are read without running them.

Options (builder, or weights-only .h5 files):
  --arch <a>              v1 | v2 | v3-small | v3-large (default v1)
  --alpha <A>             width multiplier (default 1.0)
  --depth-multiplier <D>  V1 depthwise depth multiplier (default 1)
  --minimalistic          V3 minimalistic variant
  --no-top                without the classifier (feature extractor)
  --pooling <p>           avg | max pooling when --no-top
  --classes <N>           classifier classes (default 1000)
Options (all):
  --input-size <S>        square input size (default 224, or the file's)
  --summary               per-layer table like Keras's model.summary()
  --json                  one JSON object: format, architecture, parameters, macs, inputShape, outputShape, …
  -h, --help              this text
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
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      arch: { type: 'string' },
      alpha: { type: 'string' },
      'depth-multiplier': { type: 'string' },
      'input-size': { type: 'string' },
      minimalistic: { type: 'boolean' },
      'no-top': { type: 'boolean' },
      pooling: { type: 'string' },
      classes: { type: 'string' },
      summary: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one weights file but received ${positionals.length}: ${positionals.join(' ')}`);
  if (values.arch !== undefined && !(ARCHITECTURES as readonly string[]).includes(values.arch)) {
    throw new UsageError(v.message(`one of ${ARCHITECTURES.join(', ')}`, '--arch', values.arch));
  }
  if (values.pooling !== undefined && values.pooling !== 'avg' && values.pooling !== 'max') {
    throw new UsageError(v.message('one of avg, max', '--pooling', values.pooling));
  }
  const alpha = positiveNumber(values.alpha, 'alpha');
  const depthMultiplier = positiveInt(values['depth-multiplier'], 'depth-multiplier');
  const inputSize = positiveInt(values['input-size'], 'input-size');
  const classes = positiveInt(values.classes, 'classes');
  const file = positionals[0];

  const builderOptions = (arch: Architecture, ident?: IdentifiedArchitecture): ArchitectureOptions => {
    if (depthMultiplier !== undefined && arch !== 'v1') throw new UsageError('--depth-multiplier applies to --arch v1 only');
    if (values.minimalistic && arch !== 'v3-small' && arch !== 'v3-large') throw new UsageError('--minimalistic applies to --arch v3-small or v3-large only');
    const includeTop = values['no-top'] ? false : ident ? ident.includeTop : true;
    const o: ArchitectureOptions = { includeTop };
    const a = alpha ?? ident?.alpha;
    if (a !== undefined) o.alpha = a;
    if (inputSize !== undefined) o.inputShape = [inputSize, inputSize, 3];
    const dm = depthMultiplier ?? ident?.depthMultiplier;
    if (arch === 'v1' && dm !== undefined) o.depthMultiplier = dm;
    const min = values.minimalistic || ident?.minimalistic;
    if (min) o.minimalistic = true;
    if (!includeTop && values.pooling !== undefined) o.pooling = values.pooling as 'avg' | 'max';
    const c = classes ?? ident?.classes;
    if (includeTop && c !== undefined) o.classes = c;
    if (values.pooling !== undefined && includeTop) throw new UsageError('--pooling applies with --no-top only');
    return o;
  };

  let result: InfoResult;
  let analysis: ModelAnalysis;
  if (file === undefined) {
    const arch = (values.arch ?? 'v1') as Architecture;
    const o = builderOptions(arch);
    analysis = analyzeModel(buildArchitecture(arch, o));
    result = summarize('builder', analysis, { architecture: arch, alpha: o.alpha ?? 1, includeTop: o.includeTop !== false, ...(arch === 'v1' ? { depthMultiplier: o.depthMultiplier ?? 1 } : {}), ...(o.minimalistic ? { minimalistic: true } : {}) });
  } else {
    const formats = await import('../formats/index.js');
    const path = await formats.resolveModelPath(file);
    const format = await formats.detectFormat(path);
    const config: KerasModelConfig | undefined = await formats.readModelConfig(path);
    if (config !== undefined) {
      for (const [flag, set] of [['--arch', values.arch], ['--alpha', values.alpha], ['--depth-multiplier', values['depth-multiplier']], ['--minimalistic', values.minimalistic], ['--no-top', values['no-top']], ['--pooling', values.pooling], ['--classes', values.classes]] as const) {
        if (set !== undefined) throw new UsageError(`${flag} does not apply to a file with a model config (${path}): its architecture is read from the file`);
      }
      analysis = analyzeModel(config, inputSize === undefined ? {} : { inputShape: [inputSize, inputSize, analysisChannels(config)] });
      const ident = identifyArchitecture(weightShapes(analysis), analysis.inputShape);
      result = summarize(format, analysis, ident);
      if (ident !== undefined) result.customHead = hasCustomHead(analysis, ident);
    } else {
      // Weights-only file: recognize the architecture from the weights' names and shapes.
      for (const [flag, set] of [['--alpha', values.alpha], ['--depth-multiplier', values['depth-multiplier']], ['--minimalistic', values.minimalistic]] as const) {
        if (set !== undefined) throw new UsageError(`${flag} does not apply to a weights file (${path}): it is recognized from the weights' shapes`);
      }
      const { weights } = await formats.readModelFile(path);
      const shapes = new Map([...weights].map(([k, t]) => [k, t.shape] as [string, number[]]));
      let ident = identifyArchitecture(shapes);
      if (values.arch !== undefined && ident?.architecture !== values.arch) {
        ident = undefined;
      }
      if (ident === undefined) {
        throw new UsageError(`${path} holds weights only and they match no MobileNet${values.arch ? ` ${values.arch}` : ''} this library builds`);
      }
      const o = builderOptions(ident.architecture, ident);
      analysis = analyzeModel(buildArchitecture(ident.architecture, o));
      result = summarize(format, analysis, { ...ident, alpha: o.alpha ?? ident.alpha, includeTop: o.includeTop !== false });
    }
    result.file = path;
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
