/**
 * The one parameter-error template of the library:
 *   `Expected <what> for <name> but received <value>`
 * TypeError when the type is wrong, RangeError when the value is out of range.
 */

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) {
    const s = `[${value.slice(0, 8).map(describe).join(', ')}${value.length > 8 ? ', …' : ''}]`;
    return s;
  }
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name}(${(value as unknown as { length?: number }).length ?? value.byteLength})`;
  }
  if (typeof value === 'function') return 'function';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}

export function message(what: string, name: string, value: unknown): string {
  return `Expected ${what} for ${name} but received ${describe(value)}`;
}

export function typeError(what: string, name: string, value: unknown): TypeError {
  return new TypeError(message(what, name, value));
}

export function rangeError(what: string, name: string, value: unknown): RangeError {
  return new RangeError(message(what, name, value));
}

export function isInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

export function positiveInteger(v: unknown, name: string): number {
  if (typeof v !== 'number') throw typeError('positive integer', name, v);
  if (!Number.isInteger(v) || v <= 0) throw rangeError('positive integer', name, v);
  return v;
}

export function nonNegativeInteger(v: unknown, name: string): number {
  if (typeof v !== 'number') throw typeError('non-negative integer', name, v);
  if (!Number.isInteger(v) || v < 0) throw rangeError('non-negative integer', name, v);
  return v;
}

export function finiteNumber(v: unknown, name: string): number {
  if (typeof v !== 'number') throw typeError('finite number', name, v);
  if (!Number.isFinite(v)) throw rangeError('finite number', name, v);
  return v;
}

/** A number that may be ±Infinity but not NaN (activation bounds). */
export function bound(v: unknown, name: string): number {
  if (typeof v !== 'number') throw typeError('number', name, v);
  if (Number.isNaN(v)) throw rangeError('number', name, v);
  return v;
}

export function float32Array(v: unknown, name: string, length?: number): Float32Array {
  if (!(v instanceof Float32Array)) throw typeError('Float32Array', name, v);
  if (length !== undefined && v.length !== length) {
    throw rangeError(`Float32Array of length ${length}`, name, v);
  }
  return v;
}

export function shape(v: unknown, name: string, rank?: number): number[] {
  if (!Array.isArray(v)) throw typeError('array of positive integers', name, v);
  if (rank !== undefined && v.length !== rank) throw rangeError(`array of ${rank} positive integers`, name, v);
  for (const d of v) {
    if (typeof d !== 'number') throw typeError('array of positive integers', name, v);
    if (!Number.isInteger(d) || d <= 0) throw rangeError('array of positive integers', name, v);
  }
  return [...v] as number[];
}

export function pair(v: unknown, name: string, positive = true): [number, number] {
  const given = v; // reported as passed (a bad number stays a number in the message)
  if (typeof v === 'number') v = [v, v];
  const what = positive ? 'positive integer or pair of positive integers' : 'non-negative integer or pair';
  if (!Array.isArray(v) || v.length !== 2) throw typeError(what, name, given);
  for (const d of v) {
    if (typeof d !== 'number') throw typeError(what, name, given);
    if (!Number.isInteger(d) || d < (positive ? 1 : 0)) throw rangeError(what, name, given);
  }
  return [v[0] as number, v[1] as number];
}

export function oneOf<T extends string>(v: unknown, name: string, options: readonly T[]): T {
  const what = `one of ${options.map((o) => JSON.stringify(o)).join(', ')}`;
  if (typeof v !== 'string') throw typeError(what, name, v);
  if (!(options as readonly string[]).includes(v)) throw rangeError(what, name, v);
  return v as T;
}

export function product(dims: readonly number[]): number {
  let p = 1;
  for (const d of dims) p *= d;
  return p;
}
