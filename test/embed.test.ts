/**
 * Embeddings (lib/embed.ts, Model.embed / embedBatch, `mobilenet embed`).
 *
 * References:
 * - TensorFlow.js: the shared V1 models loaded with `loadLayersModel`, cut
 *   with `tf.model({ outputs: layer.output })` at their pooling layer (and a
 *   max pooling over `conv_pw_13_relu` for the max case): every value within
 *   1e-4 of ours (the whole-model probabilities agree at the logit level, see
 *   tfjs-reference.test.ts).
 * - Our own models of another structure holding the same weights: the
 *   weights-only no-top `.h5` (appended average pooling), a no-top pooled
 *   config, a V3 with its top cut vs the same weights built without a top.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, shared } from './helpers/shared.js';
import { maxAbsDiff, preprocessTf, tfjsLoad, tfjsRun } from './helpers/tfjs.js';
import { loadModel, Model } from '../lib/model.js';
import { cosineSimilarity, embeddingCut, l2Normalize } from '../lib/embed.js';
import { buildArchitecture } from '../lib/architectures/index.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { randomWeights } from '../lib/keras/random.js';
import { ModelFormatError } from '../lib/errors.js';
import type { KerasModelConfig } from '../lib/keras/types.js';
import { runCli } from './helpers/cli-io.js';

const SAMPLE = hasShared ? shared('images', 'imagenet-sample') : '';
const FILES = hasShared
  ? ['n01440764_tench.JPEG', 'n01514859_hen.JPEG', 'n01622779_great_grey_owl.JPEG', 'n02099712_Labrador_retriever.JPEG'].map((f) => path.join(SAMPLE, f))
  : [];

describe.skipIf(!hasShared)('embeddings of the shared V1 models against TensorFlow.js', () => {
  let model: Model;
  let tfModel: tf.LayersModel;
  let tfInputs: Float32Array[];

  beforeAll(async () => {
    model = await loadModel(shared('models', 'mobilenet_v1_0.25_224'), { threads: 2 });
    tfModel = await tfjsLoad(shared('models', 'mobilenet_v1_0.25_224', 'model.json'));
    tfInputs = await Promise.all(FILES.map((f) => preprocessTf(f)));
  }, 120_000);
  afterAll(() => {
    model?.dispose();
    tfModel?.dispose();
  });

  it('cuts the whole classifier at its global pooling: 256 values, equal to TF.js\'s pooling layer output within 1e-4', async () => {
    expect(model.embeddingInfo()).toEqual({ layer: 'global_average_pooling2d_1', pooling: 'avg', appended: false, dimension: 256 });
    const cut = tf.model({ inputs: tfModel.inputs, outputs: tfModel.getLayer('global_average_pooling2d_1').output as tf.SymbolicTensor });
    for (const [i, f] of FILES.entries()) {
      const ours = await model.embed(f);
      const theirs = tfjsRun(cut, tfInputs[i]!, [1, 224, 224, 3]);
      expect(ours.length).toBe(256);
      expect(maxAbsDiff(ours, theirs)).toBeLessThan(1e-4);
      // Not trivially zero: ReLU6 features averaged.
      expect(Math.max(...ours)).toBeGreaterThan(0.5);
    }
  });

  it('embedBatch gives the same vectors as embed, in input order, with per-image errors', async () => {
    const notImage = path.join(os.tmpdir(), `mobilenet-embed-${process.pid}.jpg`);
    fs.writeFileSync(notImage, 'not an image');
    try {
      const inputs = [FILES[0]!, notImage, FILES[1]!, FILES[2]!, FILES[3]!];
      const results = [];
      for await (const r of model.embedBatch(inputs, { batchSize: 3 })) results.push(r);
      expect(results.map((r) => r.position)).toEqual([0, 1, 2, 3, 4]);
      expect(results[1]!.error).toBeInstanceOf(Error);
      expect(results[1]!.embedding).toBeUndefined();
      for (const i of [0, 2, 3, 4]) {
        const single = await model.embed(inputs[i]!);
        expect(maxAbsDiff(results[i]!.embedding!, single)).toBeLessThan(1e-5);
      }
    } finally {
      fs.rmSync(notImage, { force: true });
    }
  });

  it('normalize: unit L2 norm, same direction', async () => {
    const raw = await model.embed(FILES[0]!);
    const unit = await model.embed(FILES[0]!, { normalize: true });
    const norm = Math.sqrt(unit.reduce((s, x) => s + x * x, 0));
    expect(norm).toBeCloseTo(1, 5);
    expect(cosineSimilarity(raw, unit)).toBeCloseTo(1, 5);
    const rawNorm = Math.sqrt(raw.reduce((s, x) => s + x * x, 0));
    expect(maxAbsDiff(unit, raw.map((x) => x / rawNorm))).toBeLessThan(1e-6);
    expect(Array.from(l2Normalize(new Float32Array(3)))).toEqual([0, 0, 0]);
  });

  it('similar images are closer: two birds vs a fish (cosine similarity)', async () => {
    const [fish, hen, owl] = await Promise.all(FILES.slice(0, 3).map((f) => model.embed(f, { normalize: true })));
    // A sanity property of real features, not a reference value: the checks above carry the numbers.
    expect(cosineSimilarity(hen!, owl!)).toBeGreaterThan(cosineSimilarity(hen!, fish!) - 0.2);
  });

  it('the weights-only no-top .h5 (no pooling) gets an appended average pooling: equal to the full model\'s embedding', async () => {
    const notop = await loadModel(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'), { threads: 2 });
    try {
      expect(notop.outputShape).toEqual([7, 7, 256]);
      expect(notop.embeddingInfo()).toEqual({ layer: 'embedding_pool', pooling: 'avg', appended: true, dimension: 256 });
      const a = await notop.embed(FILES[2]!);
      const b = await model.embed(FILES[2]!);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
    } finally {
      notop.dispose();
    }
  });

  it('a no-top model with pooling max is its own embedder; equals TF.js max over conv_pw_13_relu', async () => {
    const notop = await loadModel(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'), { threads: 2, includeTop: false, pooling: 'max' });
    try {
      expect(notop.outputShape).toEqual([256]);
      expect(await notop.embedder()).toBe(notop);
      expect(notop.embeddingInfo().pooling).toBe('max');
      const feature = tf.model({ inputs: tfModel.inputs, outputs: tfModel.getLayer('conv_pw_13_relu').output as tf.SymbolicTensor });
      const theirs = tf.tidy(() => (tf.max(feature.predict(tf.tensor(tfInputs[3]!, [1, 224, 224, 3])) as tf.Tensor, [1, 2]).dataSync() as Float32Array).slice());
      const ours = await notop.embed(FILES[3]!);
      // Maxima of ReLU6 features are up to 6: 1e-4 relative to the largest value.
      const scale = Math.max(...theirs.map(Math.abs));
      expect(scale).toBeGreaterThan(1);
      expect(maxAbsDiff(ours, theirs)).toBeLessThan(1e-4 * scale);
      // Max differs from average: the test would notice the wrong pooling.
      expect(maxAbsDiff(ours, await model.embed(FILES[3]!))).toBeGreaterThan(0.1);
    } finally {
      notop.dispose();
    }
  });

  it('a custom head (nested MobileNet + pooling + dropout + Dense 3) embeds like the backbone', async () => {
    const base = await readConfig(shared('models', 'mobilenet_v1_0.25_224', 'model.json'));
    // The backbone without its ImageNet head, nested as a layer (Keras transfer learning).
    const keep = base.config.layers.filter((l) => !['reshape_1', 'dropout', 'conv_preds', 'act_softmax', 'reshape_2'].includes(l.config.name));
    const backbone = { class_name: 'Model', config: { ...base.config, name: 'backbone', layers: keep, output_layers: [['global_average_pooling2d_1', 0, 0]] } };
    const config: KerasModelConfig = {
      class_name: 'Functional',
      config: {
        name: 'custom',
        layers: [
          { class_name: 'InputLayer', config: { name: 'image', batch_input_shape: [null, 224, 224, 3], dtype: 'float32' }, inbound_nodes: [] },
          { class_name: 'Model', config: backbone.config as unknown as KerasModelConfig['config'] & { name: string }, inbound_nodes: [[['image', 0, 0, {}]]] },
          { class_name: 'Dropout', config: { name: 'drop', rate: 0.2 }, inbound_nodes: [[['backbone', 0, 0, {}]]] },
          { class_name: 'Dense', config: { name: 'head', units: 3, activation: 'softmax', use_bias: true }, inbound_nodes: [[['drop', 0, 0, {}]]] },
        ],
        input_layers: [['image', 0, 0]],
        output_layers: [['head', 0, 0]],
      },
    };
    const file = await (await import('../lib/formats/index.js')).readModelFile(shared('models', 'mobilenet_v1_0.25_224'));
    const weights = new Map([...file.weights].filter(([k]) => !k.startsWith('conv_preds/')));
    weights.set('head/kernel', { shape: [256, 3], data: Float32Array.from({ length: 768 }, (_, i) => Math.sin(i)) });
    weights.set('head/bias', { shape: [3], data: new Float32Array(3) });
    const custom = await Model.fromConfig(config, weights, { threads: 2 });
    try {
      expect(custom.outputShape).toEqual([3]);
      expect(custom.embeddingInfo().layer).toBe('global_average_pooling2d_1');
      expect(maxAbsDiff(await custom.embed(FILES[0]!), await model.embed(FILES[0]!))).toBeLessThan(1e-5);
    } finally {
      custom.dispose();
    }
  });

  it('`mobilenet embed --json` prints one vector per line, equal to the API', async () => {
    const r = await runCli(['embed', '--json', '--normalize', '--weights', shared('models', 'mobilenet_v1_0.25_224'), ...FILES.map((f) => path.basename(f)), 'missing.jpg'], { cwd: SAMPLE });
    expect(r.code).toBe(2);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as { file: string; embedding?: number[]; error?: string });
    expect(lines.map((l) => l.file)).toEqual([...FILES.map((f) => path.basename(f)), 'missing.jpg']);
    expect(lines[4]!.error).toMatch(/missing\.jpg|no such file|not found/i);
    for (const [i, f] of FILES.entries()) {
      expect(lines[i]!.embedding!.length).toBe(256);
      expect(maxAbsDiff(lines[i]!.embedding!, await model.embed(f, { normalize: true }))).toBeLessThan(1e-6);
    }
  });
});

async function readConfig(modelJson: string): Promise<KerasModelConfig> {
  const json = JSON.parse(await fs.promises.readFile(modelJson, 'utf8')) as { modelTopology: { model_config: KerasModelConfig } };
  return json.modelTopology.model_config;
}

describe('embeddingCut on built architectures', () => {
  it('V3 Small: cut at the head\'s pooling (576), not at a squeeze-and-excite pooling; equals the no-top pooled model with the same weights', async () => {
    const full = buildArchitecture('v3-small', { alpha: 0.75, inputShape: [96, 96, 3] });
    const cut = embeddingCut(full);
    expect(cut.pooling).toBe('avg');
    expect(cut.appended).toBe(false);
    const analysis = analyzeModel(full);
    const seWithPool = analysis.layers.filter((l) => l.className === 'GlobalAveragePooling2D').length;
    expect(seWithPool).toBeGreaterThan(1); // SE poolings exist and were skipped
    const notopConfig = buildArchitecture('v3-small', { alpha: 0.75, inputShape: [96, 96, 3], includeTop: false, pooling: 'avg' });
    const notopAnalysis = analyzeModel(notopConfig);
    expect(cut.dimension).toBe(notopAnalysis.outputShape[0]);
    const weights = randomWeights(analysis, 7);
    const notopWeights = new Map([...weights].filter(([k]) => notopAnalysis.layers.some((l) => l.weights.some((w) => w.fullName === k))));
    const a = await Model.fromConfig(full, weights, { threads: 1 });
    const b = await Model.fromConfig(notopConfig, notopWeights, { threads: 1 });
    try {
      const x = Float32Array.from({ length: 96 * 96 * 3 }, (_, i) => ((i * 37) % 255) / 1.0);
      const raw = { data: Uint8Array.from(x), width: 96, height: 96, channels: 3 as const };
      const ea = await a.embed(raw);
      const eb = await b.embed(raw);
      expect(ea.length).toBe(cut.dimension);
      expect(maxAbsDiff(ea, eb)).toBeLessThan(1e-5);
      expect(Math.max(...ea.map(Math.abs))).toBeGreaterThan(0);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  it('V3 Small without top or pooling: the squeeze-and-excite poolings are not taken; an average pooling is appended', () => {
    const config = buildArchitecture('v3-small', { alpha: 0.75, inputShape: [96, 96, 3], includeTop: false });
    const analysis = analyzeModel(config);
    expect(analysis.layers.some((l) => l.className === 'GlobalAveragePooling2D')).toBe(true); // only SE poolings
    const cut = embeddingCut(config, analysis);
    expect(cut.appended).toBe(true);
    expect(cut.layer).toBe('embedding_pool');
    expect(cut.dimension).toBe(analysis.outputShape[2]);
    expect(analyzeModel(cut.config).outputShape).toEqual([analysis.outputShape[2]]);
  });

  it('a head without global pooling (Flatten + Dense) has no embedding: ModelFormatError', () => {
    const config: KerasModelConfig = {
      class_name: 'Functional',
      config: {
        name: 'flat',
        layers: [
          { class_name: 'InputLayer', config: { name: 'in', batch_input_shape: [null, 8, 8, 3] }, inbound_nodes: [] },
          { class_name: 'Flatten', config: { name: 'f' }, inbound_nodes: [[['in', 0, 0, {}]]] },
          { class_name: 'Dense', config: { name: 'd', units: 2, activation: 'softmax' }, inbound_nodes: [[['f', 0, 0, {}]]] },
        ],
        input_layers: [['in', 0, 0]],
        output_layers: [['d', 0, 0]],
      },
    };
    expect(() => embeddingCut(config)).toThrow(ModelFormatError);
    expect(() => embeddingCut(config)).toThrow(/no global pooling layer/);
  });

  it('V2 with its top: cut at the pooling before `predictions`, 1280 values', () => {
    const cut = embeddingCut(buildArchitecture('v2', { alpha: 0.35, inputShape: [96, 96, 3] }));
    expect(cut.dimension).toBe(1280);
    expect(cut.config.config.layers.some((l) => l.config.name === 'predictions')).toBe(false);
  });
});
