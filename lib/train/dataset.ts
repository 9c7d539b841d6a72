/**
 * Labelled images for training: a directory with one sub-folder per class
 * (the layout Keras's `image_dataset_from_directory` reads: class names are
 * the sub-folder names in alphabetical order, each walked recursively,
 * hidden entries skipped), or a list given in code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { TrainingDataError } from '../errors.js';
import type { ImageSource } from '../image.js';
import { sourceName } from '../image.js';
import * as v from '../validate.js';

/** File extensions read as images (the same list as `mobilenet classify`). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.svg',
]);

export interface LabelledImage {
  source: ImageSource;
  /** Display name (a path relative to the data directory, or the source's name). */
  name: string;
  /** Class index into `classNames`. */
  label: number;
}

export interface Skipped {
  file: string;
  reason: string;
}

export interface Dataset {
  classNames: string[];
  items: LabelledImage[];
  /** Files that are not read (no image extension, not inside a class folder). */
  skipped: Skipped[];
}

function walk(dir: string, rel: string, out: string[], skipped: Skipped[]): void {
  const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    const r = path.join(rel, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        const st = fs.statSync(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        isFile = true; // dangling: reported when it cannot be read
      }
    }
    if (isDir) walk(p, r, out, skipped);
    else if (isFile && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push(r);
    else if (isFile) skipped.push({ file: r, reason: 'not an image file extension' });
  }
}

/** Reads `<dir>/<class>/**` into a data set. */
export function readImageFolder(dir: string): Dataset {
  if (typeof dir !== 'string' || dir.length === 0) throw v.typeError('non-empty path', 'dir', dir);
  const abs = path.resolve(dir);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new TrainingDataError(`${abs}: the training directory does not exist`);
  }
  if (!st.isDirectory()) throw new TrainingDataError(`${abs}: not a directory (expected one sub-folder of images per class)`);
  const classNames: string[] = [];
  const skipped: Skipped[] = [];
  const entries = fs.readdirSync(abs, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const isDir = e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(abs, e.name), { throwIfNoEntry: false })?.isDirectory() === true);
    if (isDir) classNames.push(e.name);
    else skipped.push({ file: e.name, reason: 'not inside a class folder' });
  }
  if (classNames.length === 0) throw new TrainingDataError(`${abs}: no class folders (expected one sub-folder of images per class, e.g. ${path.join(dir, 'cat')}/, ${path.join(dir, 'dog')}/)`);
  const items: LabelledImage[] = [];
  const empty: string[] = [];
  classNames.forEach((c, label) => {
    const files: string[] = [];
    walk(path.join(abs, c), c, files, skipped);
    if (files.length === 0) empty.push(c);
    for (const f of files) items.push({ source: path.join(abs, f), name: f, label });
  });
  if (empty.length > 0) {
    throw new TrainingDataError(`${abs}: class folder${empty.length > 1 ? 's' : ''} ${empty.map((c) => `'${c}'`).join(', ')} hold${empty.length > 1 ? '' : 's'} no images (${[...IMAGE_EXTENSIONS].join(' ')})`);
  }
  checkClassCount(classNames, abs);
  return { classNames, items, skipped };
}

export function checkClassCount(classNames: readonly string[], where: string): void {
  if (classNames.length < 2) {
    throw new TrainingDataError(`${where}: found one class ('${classNames[0]}'); a classifier needs at least two classes (one sub-folder per class)`);
  }
}

/** A data set from `[{ image, label }]` or `{ className: [images] }` (class names sorted). */
export function datasetFromList(images: unknown): Dataset {
  const pairs: Array<{ image: ImageSource; label: string }> = [];
  if (Array.isArray(images)) {
    images.forEach((p, i) => {
      if (typeof p !== 'object' || p === null || typeof (p as { label?: unknown }).label !== 'string' || !('image' in p)) {
        throw v.typeError('{ image, label } with a string label', `images[${i}]`, p);
      }
      pairs.push(p as { image: ImageSource; label: string });
    });
  } else if (typeof images === 'object' && images !== null) {
    for (const [label, list] of Object.entries(images)) {
      if (!Array.isArray(list)) throw v.typeError('array of images', `images.${label}`, list);
      if (list.length === 0) throw new TrainingDataError(`class '${label}' has no images`);
      for (const image of list) pairs.push({ image: image as ImageSource, label });
    }
  } else {
    throw v.typeError('array of { image, label } or object of class name → images', 'images', images);
  }
  const classNames = [...new Set(pairs.map((p) => p.label))].sort();
  if (classNames.length === 0) throw new TrainingDataError('no images given');
  checkClassCount(classNames, 'images');
  const index = new Map(classNames.map((c, i) => [c, i]));
  return { classNames, items: pairs.map((p) => ({ source: p.image, name: sourceName(p.image), label: index.get(p.label)! })), skipped: [] };
}

/**
 * A stratified split: in each class, `round(n × fraction)` items (at least one
 * and at most n − 1 when the class has two or more) go to validation, chosen
 * by a seeded shuffle; the rest train. Positions into `items`.
 */
export function stratifiedSplit(labels: readonly number[], classes: number, fraction: number, rand: () => number): { train: number[]; validation: number[] } {
  const train: number[] = [];
  const validation: number[] = [];
  for (let c = 0; c < classes; c++) {
    const idx = labels.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0);
    for (let i = idx.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [idx[i], idx[j]] = [idx[j]!, idx[i]!];
    }
    let nv = fraction > 0 ? Math.round(idx.length * fraction) : 0;
    if (fraction > 0 && idx.length >= 2) nv = Math.min(idx.length - 1, Math.max(1, nv));
    if (idx.length < 2) nv = 0;
    validation.push(...idx.slice(0, nv));
    train.push(...idx.slice(nv));
  }
  train.sort((a, b) => a - b);
  validation.sort((a, b) => a - b);
  return { train, validation };
}
