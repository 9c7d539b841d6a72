/**
 * Parsers for command-line option values, shared by the subcommands. They
 * throw UsageError (exit code 1) with the library's message template.
 */
import { UsageError } from '../errors.js';
import { ARCHITECTURES } from '../architectures/index.js';
import { BUILDER_OPTIONS, flagNames, type WeightsOnlyRequest } from '../architectures/options.js';
import { loadModelFile, type Model, type ModelOptions } from '../model.js';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import * as v from '../validate.js';

export function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*\+?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(v.message('positive integer', `--${name}`, value));
  return n;
}

export function nonNegativeInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\s*\d+\s*$/.test(value)) throw new UsageError(v.message('non-negative integer', `--${name}`, value));
  return Number(value);
}

export function positiveNumber(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) throw new UsageError(v.message('positive number', `--${name}`, value));
  return n;
}

export function oneOf<T extends string>(value: string | undefined, name: string, options: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(options as readonly string[]).includes(value)) throw new UsageError(v.message(`one of ${options.join(', ')}`, `--${name}`, value));
  return value as T;
}

/** A rate in [0, 1). */
export function rate(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n >= 1) throw new UsageError(v.message('number in [0, 1)', `--${name}`, value));
  return n;
}

type FlagSpec = { type: 'string' } | { type: 'boolean' };

/** parseArgs options of `--arch` and every builder option's flag (from the one list, BUILDER_OPTIONS). */
export function builderFlags(): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = { arch: { type: 'string' } };
  for (const o of BUILDER_OPTIONS) out[o.flag] = { type: o.kind === 'boolean' ? 'boolean' : 'string' };
  return out;
}

/**
 * A help row: `flag`, then `text` broken at spaces into lines in the description
 * column (28), at most 80 columns wide (for descriptions that name generated lists).
 */
export function helpRow(flag: string, text: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && 28 + line.length + 1 + word.length > 80) {
      lines.push(line);
      line = '';
    }
    line = line === '' ? word : `${line} ${word}`;
  }
  lines.push(line);
  return lines.map((l, i) => `${i === 0 ? `  ${flag}`.padEnd(28) : ' '.repeat(28)}${l}`).join('\n');
}

/** Help lines of `--arch` and the builder flags. */
export function builderHelp(): string {
  const rows: Array<[string, string]> = [['--arch <a>', `${ARCHITECTURES.join(' | ')} (default: recognized from the weights)`]];
  for (const o of BUILDER_OPTIONS) rows.push([`--${o.flag}${o.arg ? ` ${o.arg}` : ''}`, o.help]);
  return rows.map(([f, h]) => `  ${f.padEnd(25)} ${h}`).join('\n');
}

/** The builder options' help section of the commands that load one model for serving or embedding. */
export function builderSection(): string {
  return `Architecture options, for weights-only files only (e.g. the official Keras .h5
files; left out: recognized from the weights; a file with a model config takes
none, except --input-size):
${builderHelp()}`;
}

/** The architecture and builder options given as flags (absent flags are left out). */
export function parseBuilderFlags(values: Record<string, string | boolean | undefined>): WeightsOnlyRequest {
  const out: Record<string, unknown> = {};
  const arch = oneOf(values.arch as string | undefined, 'arch', ARCHITECTURES);
  if (arch !== undefined) out.architecture = arch;
  for (const o of BUILDER_OPTIONS) {
    const raw = values[o.flag];
    if (raw === undefined || raw === false) continue;
    let value: unknown;
    switch (o.kind) {
      case 'boolean':
        value = o.flagValue;
        break;
      case 'positive number':
        value = positiveNumber(raw as string, o.flag);
        break;
      case 'positive integer':
        value = positiveInt(raw as string, o.flag);
        break;
      case 'rate':
        value = rate(raw as string, o.flag);
        break;
      case 'choice':
        value = oneOf(raw as string, o.flag, o.choices!);
        break;
      case 'size': {
        const s = positiveInt(raw as string, o.flag)!;
        value = [s, s, 3];
        break;
      }
      case 'string':
        value = raw;
        break;
    }
    out[o.key] = value;
  }
  return out as WeightsOnlyRequest;
}

/** Whether any architecture/builder flag was given. */
export function hasBuilderFlags(request: WeightsOnlyRequest): boolean {
  return Object.keys(request).length > 0;
}

/**
 * `loadModel` for the commands that take the builder flags (`request`, from
 * `parseBuilderFlags`): messages name the flags, and a flag that does not
 * apply to the model (e.g. `--alpha` next to a model with a config,
 * `--minimalistic` on a V1 file) is a UsageError.
 */
export async function loadModelWithFlags(file: string, request: WeightsOnlyRequest, options: ModelOptions = {}): Promise<Model> {
  try {
    return await loadModelFile(file, { ...options, ...request }, flagNames);
  } catch (e) {
    if (e instanceof RangeError && hasBuilderFlags(request)) throw new UsageError(e.message);
    throw e;
  }
}

/** Edit distance (Damerau–Levenshtein, optimal string alignment): a transposition like `tpo`/`top` counts 1. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known option nearest to a mistyped one (at most 2 edits, or a unique prefix), or undefined. */
export function nearestOption(unknown: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter((k) => k.startsWith(unknown));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(unknown, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return bestD <= Math.min(2, Math.max(1, Math.floor(unknown.length / 2))) ? best : undefined;
}

/**
 * `node:util` parseArgs (strict, positionals allowed) whose unknown-option
 * error becomes a UsageError suggesting the nearest valid option.
 */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T): ReturnType<typeof parseArgs<{ args: string[]; options: T; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const m = /'(-{1,2}[^']+)'/.exec(err.message);
      const given = m?.[1];
      if (given !== undefined && given.startsWith('--')) {
        const name = given.slice(2).split('=')[0]!;
        const near = nearestOption(name, Object.keys(options));
        if (near !== undefined) throw new UsageError(`unknown option --${name}: did you mean --${near}? (--help lists the options)`);
        throw new UsageError(`unknown option --${name} (--help lists the options)`);
      }
      if (given !== undefined) throw new UsageError(`unknown option ${given.slice(0, 2)} (--help lists the options)`);
    }
    throw e;
  }
}
