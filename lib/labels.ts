/**
 * Class labels: the 1000 ImageNet classes that ship with the package
 * (`data/imagenet_class_index.json`, Keras's class index, standard order),
 * or custom class names for fine-tuned models.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from './validate.js';

export interface ImageNetClass {
  index: number;
  wnid: string;
  label: string;
}

/** `data/imagenet_class_index.json`, found from `lib/` (sources) or `dist/` (built package). */
export function imagenetClassIndexPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // lib/labels.ts → ../data ; dist/labels.js → ../data
  return path.resolve(here, '..', 'data', 'imagenet_class_index.json');
}

let cached: readonly ImageNetClass[] | null = null;

/** Parses a Keras class index object `{"0": [wnid, label], ...}` (keys 0..n-1). */
export function parseClassIndex(json: unknown, source = 'class index'): ImageNetClass[] {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw v.typeError('object mapping "0".."n-1" to [wnid, label]', source, json);
  }
  const entries = Object.entries(json as Record<string, unknown>);
  const out: ImageNetClass[] = new Array(entries.length);
  for (const [key, value] of entries) {
    const index = Number(key);
    if (!Number.isInteger(index) || index < 0 || index >= entries.length || String(index) !== key) {
      throw v.rangeError(`keys "0".."${entries.length - 1}"`, source, key);
    }
    if (!Array.isArray(value) || value.length !== 2 || typeof value[0] !== 'string' || typeof value[1] !== 'string') {
      throw v.typeError('[wnid, label] pair of strings', `${source}["${key}"]`, value);
    }
    out[index] = { index, wnid: value[0], label: value[1] };
  }
  return out;
}

/** The 1000 ImageNet classes in standard order (index → wnid, label). */
export function imagenetClasses(): readonly ImageNetClass[] {
  if (cached === null) {
    const file = imagenetClassIndexPath();
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    cached = Object.freeze(parseClassIndex(json, file).map((c) => Object.freeze(c)));
  }
  return cached;
}

/** The 1000 ImageNet labels (Keras spelling, e.g. `tabby`, `Egyptian_cat`) by index. */
export function imagenetLabels(): readonly string[] {
  return imagenetClasses().map((c) => c.label);
}

/**
 * Resolves the labels to use for a model with `classes` outputs:
 * - `undefined`: ImageNet labels when `classes` is 1000, else `class_<i>`;
 * - an array of names: must have exactly `classes` strings;
 * - a path to a JSON file: either an array of names or a Keras class index
 *   object, or a text file with one name per line.
 */
export function resolveLabels(labels: readonly string[] | string | undefined, classes: number): readonly string[] {
  v.positiveInteger(classes, 'classes');
  if (labels === undefined) {
    if (classes === 1000) return imagenetLabels();
    return Array.from({ length: classes }, (_, i) => `class_${i}`);
  }
  let names: unknown;
  if (typeof labels === 'string') {
    names = readLabelsFile(labels);
  } else {
    names = labels;
  }
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
    throw v.typeError('array of strings', 'labels', names);
  }
  if (names.length !== classes) {
    const where = typeof labels === 'string' ? `The labels file ${labels}` : 'The labels array';
    throw new RangeError(`${where} has ${names.length} label${names.length === 1 ? '' : 's'} but the model has ${classes} outputs: give one label per output`);
  }
  return Object.freeze([...(names as string[])]);
}

function readLabelsFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new RangeError(`Cannot read the labels file ${file}: ${(e as Error).message}`);
  }
  if (file.toLowerCase().endsWith('.json')) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new RangeError(`The labels file ${file} is not valid JSON: ${(e as Error).message}`);
    }
    if (Array.isArray(json)) return json as string[];
    return parseClassIndex(json, file).map((c) => c.label);
  }
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.length > 0);
}
