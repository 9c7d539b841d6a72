/**
 * Locates `../shared` (real weights, images, reference outputs).
 * `MOBILENET_SHARED_DIR` overrides the default `../shared`. When it is
 * absent, tests that need it skip with a visible reason; when
 * `MOBILENET_REQUIRE_SHARED=1` (CI), its absence is a failure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireShared, sharedDirSetting } from './env.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const repoRoot = root;

export const sharedDir: string | null = (() => {
  const dir = path.resolve(root, sharedDirSetting);
  if (fs.existsSync(path.join(dir, 'README.md'))) return dir;
  if (requireShared) {
    throw new Error(`MOBILENET_REQUIRE_SHARED=1 but the shared directory ${dir} is missing`);
  }
  // Visible in the test output.
  console.warn(`[mobilenet-xnnpack tests] shared data not found at ${dir}: tests that need it are skipped`);
  return null;
})();

export const hasShared = sharedDir !== null;

/** Path inside shared/; only call inside tests guarded by `hasShared`. */
export function shared(...parts: string[]): string {
  if (sharedDir === null) throw new Error('shared directory missing');
  return path.join(sharedDir, ...parts);
}

/** One image of ../shared/reference/v1_*_224.outputs.json (TF.js wasm outputs; see ../shared/README.md). */
export interface ReferenceImage {
  file: string;
  /** ImageNet class of the sample image, null for cat.jpg */
  label: number | null;
  top5: number[];
  top5_probs: number[];
  /** 1000 softmax probabilities, 7 significant digits */
  probs: number[];
}

/** The TF.js reference outputs of the V1 model of this alpha (9 images, cat.jpg last). */
export function referenceOutputs(alpha: '0.75' | '0.25'): ReferenceImage[] {
  return (JSON.parse(fs.readFileSync(shared('reference', `v1_${alpha}_224.outputs.json`), 'utf8')) as { images: ReferenceImage[] }).images;
}

/** The reference entry of one image file (`cat.jpg` or an imagenet-sample name). */
export function referenceOutput(alpha: '0.75' | '0.25', file: string): ReferenceImage {
  const img = referenceOutputs(alpha).find((i) => i.file === file);
  if (img === undefined) throw new Error(`${file} is not in reference/v1_${alpha}_224.outputs.json`);
  return img;
}

/** Keras's ImageNet class index of ../shared (class index → label). */
export function sharedLabel(index: number): string {
  const json = JSON.parse(fs.readFileSync(shared('models', 'imagenet_class_index.json'), 'utf8')) as Record<string, [string, string]>;
  const entry = json[String(index)];
  if (entry === undefined) throw new Error(`no class ${index} in imagenet_class_index.json`);
  return entry[1];
}

/**
 * The TF.js reference accuracy on the 250 sample images, read from the
 * "Reference accuracy" table of ../shared/README.md (top-1 / top-5 in percent).
 */
export function referenceAccuracy(model: 'mobilenet_v1_0.75_224' | 'mobilenet_v1_0.25_224'): { top1: number; top5: number } {
  const text = fs.readFileSync(shared('README.md'), 'utf8');
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells[1] !== 'tfjs wasm' || cells[2] !== model) continue;
    const top1 = /^([\d.]+)% \(\d+\)$/.exec(cells[5] ?? '');
    const top5 = /^([\d.]+)% \(\d+\)$/.exec(cells[6] ?? '');
    if (top1 && top5) return { top1: parseFloat(top1[1]!), top5: parseFloat(top5[1]!) };
  }
  throw new Error(`no reference accuracy row for ${model} in ${shared('README.md')}`);
}
