/**
 * A uint8-quantized Keras 2.2.4 MobileNetV2 with a custom head (ZeroPadding2D,
 * AveragePooling2D, Flatten, Dense, Dropout): the model nsfwjs@4 ships. It is
 * loaded by this library (from a plain model.json + shard extracted by
 * test/helpers/nsfwjs.ts) and by TensorFlow.js (CPU backend, from the same
 * model.json object and bytes through an in-memory IOHandler), and both are
 * run on the same inputs.
 *
 * Tolerances: dequantized weights equal tfjs-core's `io.decodeWeights` bit for
 * bit; outputs (5 softmax probabilities) compared at the logit level
 * (test/helpers/compare.ts: log-probabilities within 3e-4), identical top-1.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, shared } from './helpers/shared.js';
import { compareProbs, formatProbDiff, probsClose } from './helpers/compare.js';
import { extractNsfwjsMobileNetV2, type ExtractedModel } from './helpers/nsfwjs.js';
import { readTfjs } from '../lib/formats/tfjs.js';
import { loadModel, type Model } from '../lib/model.js';
import { testBackend } from './helpers/env.js';

const BACKEND = testBackend;

/** nsfwjs's own preprocessing: 224x224 RGB, x / 255 (here resized by sharp as ../shared/README.md says). */
async function nsfwInput(file: string): Promise<Float32Array> {
  const raw = await sharp(file).removeAlpha().toColourspace('srgb').resize(224, 224, { fit: 'cover', position: 'centre' }).raw().toBuffer();
  expect(raw.length).toBe(224 * 224 * 3);
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = (raw[i] as number) / 255;
  return out;
}

const argmax = (a: ArrayLike<number>, from: number, n: number): number => {
  let best = 0;
  for (let i = 1; i < n; i++) if ((a[from + i] as number) > (a[from + best] as number)) best = i;
  return best;
};

describe('nsfwjs MobileNetV2 (uint8-quantized TF.js layers model)', () => {
  let extracted: ExtractedModel;
  beforeAll(() => {
    extracted = extractNsfwjsMobileNetV2();
  });
  afterAll(() => extracted?.cleanup());

  it('dequantizes every weight exactly as tfjs-core io.decodeWeights', async () => {
    const ours = await readTfjs(extracted.modelJsonPath);
    expect(ours.quantization).toEqual(['uint8']);
    const specs = extracted.modelJson.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[];
    const theirs = tf.io.decodeWeights(extracted.weightData.slice().buffer, specs);
    const names = Object.keys(theirs);
    expect(names.length).toBe(266);
    expect([...ours.weights.keys()].sort()).toEqual([...names].sort());
    let compared = 0;
    for (const name of names) {
      const t = theirs[name] as tf.Tensor;
      const want = t.dataSync() as Float32Array;
      const got = ours.weights.get(name)!;
      expect(got.shape).toEqual(t.shape);
      // Bit-for-bit: compare the float32 bit patterns.
      expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength))).toBe(true);
      compared += want.length;
      t.dispose();
    }
    expect(compared).toBeGreaterThan(2_000_000);
  });

  describe.skipIf(!hasShared)('outputs against TensorFlow.js (cpu backend)', () => {
    let model: Model;
    let tfModel: tf.LayersModel;
    let files: string[];
    let inputs: Float32Array;
    const N = 8;

    beforeAll(async () => {
      model = await loadModel(extracted.modelJsonPath, { backend: BACKEND, threads: 2 });
      await tf.setBackend('cpu');
      const json = extracted.modelJson;
      tfModel = await tf.loadLayersModel({
        load: async () => ({
          modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
          weightSpecs: json.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[],
          weightData: extracted.weightData.slice().buffer,
        }),
      });
      const dir = shared('images', 'imagenet-sample');
      files = fs.readdirSync(dir).filter((f) => f.endsWith('.JPEG')).sort().filter((_, i) => i % 31 === 0).slice(0, N - 1).map((f) => path.join(dir, f));
      files.push(shared('images', 'cat.jpg'));
      expect(files.length).toBe(N);
      inputs = new Float32Array(N * 224 * 224 * 3);
      for (const [i, f] of files.entries()) inputs.set(await nsfwInput(f), i * 224 * 224 * 3);
    }, 120_000);

    afterAll(() => {
      model?.dispose();
      tfModel?.dispose();
    });

    it('detects the model and its preprocessing-free input', () => {
      expect(model.inputShape).toEqual([224, 224, 3]);
      expect(model.outputShape).toEqual([5]);
      expect(model.classes).toBe(5);
      expect(model.architecture).toBe('v2');
      // ZeroPadding2D layers folded into the following convolutions, every BatchNorm folded.
      expect(model.loweringStats.fusedPads).toBe(5);
      expect(model.loweringStats.foldedAffine).toBe(52);
    });

    it(`matches TensorFlow.js on ${N} images: log-probabilities within LOG_PROB_TOL, identical top-1`, async () => {
      const ours = await model.predict(inputs, { batch: N });
      const x = tf.tensor4d(inputs, [N, 224, 224, 3]);
      const y = tfModel.predict(x) as tf.Tensor;
      const theirs = (await y.data()) as Float32Array;
      x.dispose();
      y.dispose();
      expect(theirs.length).toBe(N * 5);
      for (let s = 0; s < N; s++) {
        const d = compareProbs(ours, theirs, { oursFrom: s * 5, theirsFrom: s * 5, n: 5, k: 5 });
        console.log(`[nsfwjs] ${BACKEND} vs tfjs cpu, ${files[s]}: ${formatProbDiff(d)}`);
        expect(probsClose(d), `${files[s]}: ${formatProbDiff(d)}`).toBe(true);
      }
      for (let s = 0; s < N; s++) {
        expect(argmax(ours, s * 5, 5), files[s]).toBe(argmax(theirs, s * 5, 5));
        let sum = 0;
        for (let c = 0; c < 5; c++) sum += ours[s * 5 + c] as number;
        expect(sum).toBeCloseTo(1, 5);
      }
    }, 120_000);
  });
});
