/**
 * TensorFlow.js as an independent reference: load a TF.js layers model from
 * disk (model.json + shards) without a file:// handler, and run it.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';

export async function tfjsLoad(modelJson: string): Promise<tf.LayersModel> {
  const file = fs.statSync(modelJson).isDirectory() ? path.join(modelJson, 'model.json') : modelJson;
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    modelTopology: tf.io.ModelArtifacts['modelTopology'];
    format?: string;
    generatedBy?: string;
    convertedBy?: string;
    userDefinedMetadata?: Record<string, unknown>;
    weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
  };
  const dir = path.dirname(file);
  return tf.loadLayersModel({
    load: async () => {
      const bytes = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p)))));
      const artifacts: tf.io.ModelArtifacts = {
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
        weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      };
      if (json.format !== undefined) artifacts.format = json.format;
      if (json.generatedBy !== undefined) artifacts.generatedBy = json.generatedBy;
      if (json.convertedBy !== undefined) artifacts.convertedBy = json.convertedBy;
      if (json.userDefinedMetadata !== undefined) artifacts.userDefinedMetadata = json.userDefinedMetadata as Record<string, never>;
      return artifacts;
    },
  });
}

/** Runs a TF.js model (or a sub-model) on NHWC input; returns the flat output. */
export function tfjsRun(model: tf.LayersModel, x: Float32Array, shape: number[]): Float32Array {
  return tf.tidy(() => (model.predict(tf.tensor(x, shape)) as tf.Tensor).dataSync() as Float32Array).slice();
}

/** ../shared/README.md's pipeline: sharp cover-resize, uint8 RGB, x / 127.5 - 1 in float32. */
export async function preprocessTf(file: string, size = 224): Promise<Float32Array> {
  const raw = await sharp(file).removeAlpha().toColourspace('srgb').resize(size, size, { fit: 'cover', position: 'centre' }).raw().toBuffer();
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = Math.fround(Math.fround((raw[i] as number) / 127.5) - 1);
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}
