/**
 * The model that ships inside the package (models/default/): MobileNet V1
 * 0.75-224 ImageNet, Keras Applications weights (Google, Apache-2.0),
 * converted to a quantized TF.js layers model by `mobilenet convert`.
 * See models/default/PROVENANCE.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { weightsOverride, type Env } from './env.js';

export const DEFAULT_MODEL_NAME = 'MobileNet V1 0.75-224 ImageNet (quantized)';

/** Absolute path of the shipped model.json (from lib/ in sources, dist/ when built). */
export function defaultModelPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.resolve(here, '..', 'models', 'default', 'model.json');
}

export function hasDefaultModel(): boolean {
  return fs.existsSync(defaultModelPath());
}

/**
 * The weights a command uses: an explicit path, else `MOBILENET_WEIGHTS`,
 * else the shipped default model.
 */
export function resolveWeights(explicit: string | undefined, env: Env, cwd: string): { path: string; source: 'option' | 'env' | 'default' } {
  if (explicit !== undefined && explicit !== '') return { path: path.resolve(cwd, explicit), source: 'option' };
  const fromEnv = weightsOverride(env);
  if (fromEnv !== undefined) return { path: path.resolve(cwd, fromEnv), source: 'env' };
  return { path: defaultModelPath(), source: 'default' };
}
