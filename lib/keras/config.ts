/**
 * Reading values out of Keras layer configs: the parsers every layer entry of
 * the registry (`./registry.ts`) shares, so that analysis and lowering read a
 * config the same way.
 */
import { UnsupportedLayerError } from '../errors.js';
import { MAX_U32_ATTR } from '../schema.js';

export type Cfg = Record<string, unknown>;

/** A config value for an error message: JSON, at most 120 characters, safe for any nesting. */
export function show(value: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(value);
  } catch {
    s = undefined; // cyclic or nested too deep for the stack
  }
  if (s === undefined) return String(typeof value);
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

export function fail(layer: string, cls: string, detail: string): never {
  throw new UnsupportedLayerError(layer, cls, detail);
}

/** `3` or `[3, 3]` → [3, 3]; `dflt` when absent. */
export function pairOf(value: unknown, layer: string, cls: string, key: string, dflt?: [number, number]): [number, number] {
  if (value === undefined || value === null) {
    if (dflt) return dflt;
    fail(layer, cls, `missing ${key}`);
  }
  const arr = typeof value === 'number' ? [value, value] : value;
  if (!Array.isArray(arr) || arr.length !== 2 || !arr.every((d) => Number.isInteger(d) && d > 0 && d <= MAX_U32_ATTR)) {
    fail(layer, cls, `${key} must be a positive integer (at most ${MAX_U32_ATTR}) or a pair of them, got ${show(value)}`);
  }
  return [arr[0] as number, arr[1] as number];
}

export function positiveInt(value: unknown, layer: string, cls: string, key: string): number {
  if (!Number.isInteger(value) || (value as number) <= 0 || (value as number) > MAX_U32_ATTR) fail(layer, cls, `${key} must be a positive integer (at most ${MAX_U32_ATTR}), got ${show(value)}`);
  return value as number;
}

export function checkDataFormat(cfg: Cfg, layer: string, cls: string): void {
  const f = cfg.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') fail(layer, cls, `data_format ${show(f)} (only channels_last)`);
}

export function paddingMode(cfg: Cfg, layer: string, cls: string): 'same' | 'valid' {
  const p = cfg.padding ?? 'valid';
  if (p !== 'same' && p !== 'valid') fail(layer, cls, `padding ${show(p)}`);
  return p;
}

/** Output size of one spatial dimension for Keras padding 'same' / 'valid'. */
export function convOutput(size: number, kernel: number, stride: number, dilation: number, padding: string): number {
  const eff = dilation * (kernel - 1) + 1;
  if (padding === 'same') return Math.ceil(size / stride);
  return Math.floor((size - eff) / stride) + 1;
}

/**
 * TensorFlow's 'same' padding for one dimension: [before, after] (the odd
 * pixel at the end): total = max((ceil(in/s) - 1) * s + (k - 1) * d + 1 - in, 0).
 */
export function samePadding(size: number, kernel: number, stride: number, dilation = 1): [number, number] {
  const eff = dilation * (kernel - 1) + 1;
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + eff - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

/** The rank-3 (H, W, C) per-sample shape of a 2-D layer's input. */
export function spatial(shape: readonly number[], layer: string, cls: string): [number, number, number] {
  if (shape.length !== 3) fail(layer, cls, `expects a rank-3 (H, W, C) input, got [${shape.join(', ')}]`);
  return shape as [number, number, number];
}

/** Whether a BatchNormalization/Softmax axis names the last axis (`rank` = per-sample rank = the batched index of the last axis). */
export function lastAxis(axis: unknown, rank: number): boolean {
  const a = Array.isArray(axis) ? (axis.length === 1 ? axis[0] : NaN) : axis ?? -1;
  return a === -1 || a === rank;
}

/** A tensor reference inside call kwargs or an inbound node: [layerName, nodeIndex, tensorIndex]. */
export function isTensorRef(x: unknown): x is [string, number, number] {
  return Array.isArray(x) && x.length >= 3 && typeof x[0] === 'string' && Number.isInteger(x[1]) && Number.isInteger(x[2]);
}

/** ZeroPadding2D padding → [top, bottom, left, right]. */
export function zeroPadding(cfg: Cfg, layer: string, cls: string): [number, number, number, number] {
  const p = cfg.padding ?? 1;
  const nn = (d: unknown): d is number => Number.isInteger(d) && (d as number) >= 0;
  if (nn(p)) return [p, p, p, p];
  if (Array.isArray(p) && p.length === 2 && nn(p[0]) && nn(p[1])) return [p[0], p[0], p[1], p[1]];
  if (Array.isArray(p) && p.length === 2 && p.every((q) => Array.isArray(q) && q.length === 2 && nn(q[0]) && nn(q[1]))) {
    const [[t, b], [l, r]] = p as [[number, number], [number, number]];
    return [t, b, l, r];
  }
  return fail(layer, cls, `padding ${show(p)}`);
}

/** Rescaling scale/offset: a number, or one value per channel (`channels` values). */
export function scalarOrPerChannel(value: unknown, channels: number, layer: string, cls: string, key: string): Float32Array {
  if (typeof value === 'number' && Number.isFinite(value)) return Float32Array.of(value);
  if (Array.isArray(value) && (value.length === 1 || value.length === channels) && value.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    return Float32Array.from(value as number[]);
  }
  return fail(layer, cls, `${key} ${show(value)} (a number or ${channels} numbers, one per channel)`);
}
