/**
 * Parsers for command-line option values, shared by the subcommands. They
 * throw UsageError (exit code 1) with the library's message template.
 */
import { UsageError } from '../errors.js';
import * as v from '../validate.js';

export function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*\+?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(v.message('positive integer', `--${name}`, value));
  return n;
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
