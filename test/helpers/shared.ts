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
