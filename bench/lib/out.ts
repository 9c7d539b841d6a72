/**
 * Where benchmark results go: bench/results/local/ (untracked, the default,
 * so that a run does not modify the committed results), bench/results/ with
 * --update (to refresh the committed ones the README links), or --out DIR.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const COMMITTED_RESULTS = path.join(benchDir, 'results');
export const LOCAL_RESULTS = path.join(benchDir, 'results', 'local');

export function resultsDir(o: { update?: boolean | undefined; out?: string | undefined }): string {
  if (o.out !== undefined) return path.resolve(o.out);
  return o.update ? COMMITTED_RESULTS : LOCAL_RESULTS;
}
