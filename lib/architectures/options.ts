/**
 * The one list of builder options (the Keras Applications arguments, in
 * camelCase) shared by `loadModel`, `Model.fromArchitecture`,
 * `convertModel` and the CLI (which derives its flags and help from it),
 * and the one resolver of weights-only files used by all of them and by
 * `mobilenet info`.
 *
 * Weights-only files (e.g. the official Keras Applications `.h5` files) carry
 * no model config: the network is built from the options. What the options
 * leave out is read from the file (its weights' names and shapes identify
 * the family, alpha, depth multiplier, V3 minimalistic, whether the top is
 * there and its classes); what they state must agree with the file, else a
 * WeightMismatchError says what the file holds. Files that carry a model
 * config take no builder options (except `inputShape` for a config with
 * unknown dimensions, where a caller allows it).
 */
import { ModelFormatError, WeightMismatchError } from '../errors.js';
import type { Architecture, KerasModelConfig } from '../keras/types.js';
import { runSteps, type Steps } from '../cooperative.js';
import { buildArchitecture, identifyArchitectureSteps, type ArchitectureOptions, type IdentifiedArchitecture } from './index.js';

/** Builder options: every Keras Applications argument this library builds. */
export interface BuilderOptions {
  /** Width multiplier (Keras `alpha`). Default 1.0, or the file's. */
  alpha?: number;
  /** V1 depthwise depth multiplier. Default 1, or the file's. */
  depthMultiplier?: number;
  /** With the classifier. Default true for builders; for weights-only files, the file's. */
  includeTop?: boolean;
  /** Without top: null (feature map), 'avg' or 'max' global pooling. */
  pooling?: 'avg' | 'max' | null;
  /** Classifier classes. Default 1000, or the file's. */
  classes?: number;
  /** [H, W, C] per sample. Default [224, 224, 3]. */
  inputShape?: readonly number[];
  /** V3 minimalistic variant. Default false, or the file's. */
  minimalistic?: boolean;
  /** V3: the Rescaling layer that takes 0..255 input (default true). */
  includePreprocessing?: boolean;
  /** 'softmax' (default); null or 'linear' for logits. */
  classifierActivation?: string | null;
  /** V1 dropout rate before the classifier (default 0.001; no effect on inference). */
  dropout?: number;
  /** V3 dropout rate before the classifier (default 0.2; no effect on inference). */
  dropoutRate?: number;
}

export type BuilderKey = keyof BuilderOptions;

/** One builder option and its command-line flag. */
export interface BuilderOptionSpec {
  key: BuilderKey;
  /** The CLI flag (without `--`). */
  flag: string;
  /** `boolean` flags set the value in `flagValue`; others parse their argument. */
  kind: 'positive number' | 'positive integer' | 'rate' | 'choice' | 'string' | 'size' | 'boolean';
  choices?: readonly string[];
  flagValue?: boolean;
  /** The families it applies to (default: all). */
  archs?: readonly Architecture[];
  /** Argument placeholder and help text. */
  arg?: string;
  help: string;
}

const V3: readonly Architecture[] = ['v3-small', 'v3-large'];

export const BUILDER_OPTIONS: readonly BuilderOptionSpec[] = [
  { key: 'alpha', flag: 'alpha', kind: 'positive number', arg: '<A>', help: 'width multiplier (default 1.0)' },
  { key: 'depthMultiplier', flag: 'depth-multiplier', kind: 'positive integer', archs: ['v1'], arg: '<D>', help: 'V1 depthwise depth multiplier (default 1)' },
  { key: 'minimalistic', flag: 'minimalistic', kind: 'boolean', flagValue: true, archs: V3, help: 'V3 minimalistic variant' },
  { key: 'includeTop', flag: 'no-top', kind: 'boolean', flagValue: false, help: 'without the classifier (feature extractor)' },
  { key: 'pooling', flag: 'pooling', kind: 'choice', choices: ['avg', 'max'], arg: '<p>', help: 'avg | max global pooling with --no-top' },
  { key: 'classes', flag: 'classes', kind: 'positive integer', arg: '<N>', help: 'classifier classes (default 1000)' },
  { key: 'inputShape', flag: 'input-size', kind: 'size', arg: '<S>', help: 'square input size (default 224)' },
  { key: 'includePreprocessing', flag: 'no-preprocessing', kind: 'boolean', flagValue: false, archs: V3, help: 'V3 without its Rescaling layer (input x/127.5-1)' },
  { key: 'classifierActivation', flag: 'classifier-activation', kind: 'string', arg: '<f>', help: 'softmax (default) | linear (logits) | ...' },
  { key: 'dropout', flag: 'dropout', kind: 'rate', archs: ['v1'], arg: '<R>', help: 'V1 dropout rate (default 0.001)' },
  { key: 'dropoutRate', flag: 'dropout-rate', kind: 'rate', archs: V3, arg: '<R>', help: 'V3 dropout rate (default 0.2)' },
];

export const BUILDER_KEYS: readonly BuilderKey[] = BUILDER_OPTIONS.map((o) => o.key);

/** The builder options present (not undefined) in `o`. */
export function pickBuilderOptions(o: object): BuilderOptions {
  const src = o as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of BUILDER_KEYS) if (src[k] !== undefined) out[k] = src[k];
  return out as BuilderOptions;
}

/** What a caller asks for a weights-only file: the architecture (optional) and builder options. */
export interface WeightsOnlyRequest extends BuilderOptions {
  architecture?: Architecture;
}

export interface ResolvedWeightsOnly {
  architecture: Architecture;
  /** The complete options the config was built with. */
  options: ArchitectureOptions;
  config: KerasModelConfig;
  /** What the weights were recognized as (undefined: not recognized; built from the options alone). */
  identified: IdentifiedArchitecture | undefined;
}

/** How options are named in messages: API keys by default, CLI flags in the CLI. */
export type OptionNamer = (key: BuilderKey | 'architecture', value: unknown) => string;

export const apiNames: OptionNamer = (key, value) => `${key}: ${JSON.stringify(value)}`;

export const flagNames: OptionNamer = (key, value) => {
  if (key === 'architecture') return `--arch ${String(value)}`;
  const spec = BUILDER_OPTIONS.find((o) => o.key === key)!;
  if (spec.kind === 'boolean') return value === spec.flagValue ? `--${spec.flag}` : `no --${spec.flag}`;
  if (spec.kind === 'size') return `--${spec.flag} ${(value as number[])[0]}`;
  return `--${spec.flag} ${String(value)}`;
};

/** "MobileNet v1 alpha 0.25 without top" and the options that say so. */
export function describeIdentified(ident: IdentifiedArchitecture, names: OptionNamer = apiNames): { text: string; options: string } {
  const parts = [`MobileNet ${ident.architecture} alpha ${ident.alpha}`];
  const opts = [names('architecture', ident.architecture), names('alpha', ident.alpha)];
  if (ident.depthMultiplier !== undefined && ident.depthMultiplier !== 1) {
    parts.push(`depth multiplier ${ident.depthMultiplier}`);
    opts.push(names('depthMultiplier', ident.depthMultiplier));
  }
  if (ident.minimalistic) {
    parts.push('minimalistic');
    opts.push(names('minimalistic', true));
  }
  if (ident.includeTop) parts.push(`with its ${ident.classes ?? 1000}-class top`);
  else {
    parts.push('without top');
    opts.push(names('includeTop', false));
  }
  return { text: parts.join(' '), options: opts.join(', ') };
}

/**
 * Options that do not apply to a family (e.g. depthMultiplier to v2), or
 * pooling with the top: a RangeError naming them, as sentences.
 */
export function checkApplicable(architecture: Architecture, options: BuilderOptions, names: OptionNamer = apiNames): void {
  for (const spec of BUILDER_OPTIONS) {
    const value = options[spec.key];
    if (value === undefined || spec.archs === undefined || spec.archs.includes(architecture)) continue;
    throw new RangeError(`${names(spec.key, value)} applies to ${spec.archs.map((a) => names('architecture', a)).join(' or ')} only, not to ${architecture}`);
  }
  if (options.pooling !== undefined && options.pooling !== null && options.includeTop !== false) {
    throw new RangeError(`${names('pooling', options.pooling)} applies without the top only (${names('includeTop', false)})`);
  }
}

/**
 * The config of a weights-only file: options left out are read from the
 * weights (`shapes`: `<layer>/<weight>` → shape), options given must agree.
 */
export function resolveWeightsOnly(
  shapes: ReadonlyMap<string, readonly number[]>,
  request: WeightsOnlyRequest,
  file: string,
  names: OptionNamer = apiNames,
): ResolvedWeightsOnly {
  return runSteps(resolveWeightsOnlySteps(shapes, request, file, names));
}

/** `resolveWeightsOnly` in steps (lib/cooperative.ts), for loading without long stalls of the event loop. */
export function* resolveWeightsOnlySteps(
  shapes: ReadonlyMap<string, readonly number[]>,
  request: WeightsOnlyRequest,
  file: string,
  names: OptionNamer = apiNames,
): Steps<ResolvedWeightsOnly> {
  const ident = yield* identifyArchitectureSteps(shapes, request.inputShape ?? [224, 224, 3]);
  yield;
  const builder = pickBuilderOptions(request);
  if (ident === undefined) {
    if (request.architecture === undefined) {
      throw new ModelFormatError(
        'holds weights only (no model config) and they are not recognized as a MobileNet this library builds: pass the architecture options, ' +
          `e.g. ${[names('architecture', 'v1'), names('alpha', 0.25), names('includeTop', false), names('pooling', 'avg')].join(', ')}`,
        file,
      );
    }
    const options: ArchitectureOptions = { ...builder };
    checkApplicable(request.architecture, options, names);
    return { architecture: request.architecture, options, config: buildArchitecture(request.architecture, options), identified: undefined };
  }
  const conflicts: string[] = [];
  const check = (key: 'architecture' | BuilderKey, wanted: unknown, actual: unknown): void => {
    if (wanted !== undefined && actual !== undefined && wanted !== actual) conflicts.push(names(key, wanted));
  };
  check('architecture', request.architecture, ident.architecture);
  check('alpha', request.alpha, ident.alpha);
  check('depthMultiplier', request.depthMultiplier, ident.depthMultiplier ?? (ident.architecture === 'v1' ? 1 : undefined));
  check('minimalistic', request.minimalistic, ident.minimalistic ?? false);
  check('includeTop', request.includeTop, ident.includeTop);
  if (ident.includeTop && request.includeTop !== false) check('classes', request.classes, ident.classes ?? 1000);
  if (conflicts.length > 0) {
    const d = describeIdentified(ident, names);
    throw new WeightMismatchError(
      `${file} holds the weights of ${d.text}, which does not match ${conflicts.join(', ')}: ` +
        `leave these options out (they are read from the file) or pass ${d.options}`,
    );
  }
  const options: ArchitectureOptions = { ...builder, alpha: ident.alpha, includeTop: ident.includeTop };
  if (ident.depthMultiplier !== undefined) options.depthMultiplier = ident.depthMultiplier;
  if (ident.minimalistic) options.minimalistic = true;
  if (ident.includeTop && ident.classes !== undefined) options.classes = ident.classes;
  checkApplicable(ident.architecture, options, names);
  return { architecture: ident.architecture, options, config: buildArchitecture(ident.architecture, options), identified: ident };
}

/**
 * The options `request` gives, as `names` spells them (`--alpha 0.5` for the
 * CLI), except the `allow` keys and an architecture equal to `sameArchitecture`.
 */
export function givenBuilderOptions(
  request: WeightsOnlyRequest,
  names: OptionNamer = apiNames,
  allow: readonly BuilderKey[] = [],
  sameArchitecture?: Architecture | 'custom',
): string[] {
  const given: string[] = [];
  if (request.architecture !== undefined && request.architecture !== sameArchitecture) given.push(names('architecture', request.architecture));
  for (const k of BUILDER_KEYS) {
    if (!allow.includes(k) && request[k] !== undefined) given.push(names(k, request[k]));
  }
  return given;
}

/**
 * For a file that carries its model config: builder options do not apply
 * (the config fixes them); an `architecture` other than the detected one is
 * an error too. `allow` lists keys a caller still takes (e.g. inputShape).
 */
export function rejectBuilderOptions(
  request: WeightsOnlyRequest,
  file: string,
  detected: Architecture | 'custom',
  names: OptionNamer = apiNames,
  allow: readonly BuilderKey[] = [],
): void {
  const given = givenBuilderOptions(request, names, allow, detected);
  if (given.length > 0) {
    const what = detected === 'custom' ? 'a model that is not a Keras MobileNet' : `MobileNet ${detected}`;
    throw new RangeError(
      `${given.join(', ')} ${given.length === 1 ? 'does' : 'do'} not apply to ${file}: it carries its model config (${what}), ` +
        'which fixes the architecture; architecture options are for weights-only files',
    );
  }
}
