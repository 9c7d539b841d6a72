/** The images `npm run test:arm64` classifies natively and under emulation (a dozen: emulation is ~300x slower). */
import fs from 'node:fs';
import { shared } from '../helpers/shared.js';

export function arm64Images(): string[] {
  const dir = shared('images', 'imagenet-sample');
  const sample = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort().filter((_, i) => i % 23 === 0).slice(0, 11);
  return [...sample.map((f) => `${dir}/${f}`), shared('images', 'cat.jpg')];
}

/** One image's result on one machine. */
export interface ImageResult {
  file: string;
  top5: number[];
  probs: number[];
  /** The preprocessed input (raw float32), written by the x86-64 side. */
  input?: string;
}

export const THREADS = 2;

/** Indices of the 5 highest probabilities, ties broken by the lower index. */
export function top5(probs: ArrayLike<number>): number[] {
  return Array.from({ length: probs.length }, (_, i) => i)
    .sort((a, b) => (probs[b] as number) - (probs[a] as number) || a - b)
    .slice(0, 5);
}
