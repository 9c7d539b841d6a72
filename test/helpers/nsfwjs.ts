/**
 * nsfwjs@4 ships its quantized Keras MobileNetV2 as two UMD JavaScript
 * modules: `model.min.js` exports the model.json object, `group1-shard1of1.min.js`
 * exports the weight shard as a base64 string. This helper writes them out
 * as an ordinary TF.js layers model (model.json + shard) so the library reads
 * them like any other file; nothing in the library knows about nsfwjs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { repoRoot } from './shared.js';

const require = createRequire(import.meta.url);

export const nsfwjsModelDir = path.join(repoRoot, 'node_modules', 'nsfwjs', 'dist', 'models', 'mobilenet_v2');

export interface ExtractedModel {
  dir: string;
  modelJsonPath: string;
  /** The model.json object as nsfwjs embeds it. */
  modelJson: { modelTopology: unknown; weightsManifest: Array<{ paths: string[]; weights: unknown[] }> };
  /** The concatenated weight bytes of every group, in manifest order. */
  weightData: Uint8Array;
  cleanup(): void;
}

/** Extracts nsfwjs's MobileNetV2 to a new temporary directory. */
export function extractNsfwjsMobileNetV2(): ExtractedModel {
  const modelJson = require(path.join(nsfwjsModelDir, 'model.min.js')) as ExtractedModel['modelJson'];
  if (typeof modelJson !== 'object' || modelJson === null || !Array.isArray(modelJson.weightsManifest)) {
    throw new Error('nsfwjs model.min.js did not export a model.json object');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsfwjs-mobilenet-v2-'));
  const parts: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const p of group.paths) {
      const b64 = require(path.join(nsfwjsModelDir, `${p}.min.js`)) as unknown;
      if (typeof b64 !== 'string') throw new Error(`nsfwjs ${p}.min.js did not export a base64 string`);
      const bytes = Buffer.from(b64, 'base64');
      fs.writeFileSync(path.join(dir, p), bytes);
      parts.push(bytes);
    }
  }
  const modelJsonPath = path.join(dir, 'model.json');
  fs.writeFileSync(modelJsonPath, JSON.stringify(modelJson));
  const weightData = Buffer.concat(parts);
  return { dir, modelJsonPath, modelJson, weightData, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}
