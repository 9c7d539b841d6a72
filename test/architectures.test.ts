/**
 * MobileNet V1 / V2 / V3-Small / V3-Large builders (lib/architectures) and
 * the Keras layer analysis (lib/keras/layers.ts).
 *
 * Independent references:
 *  - Keras's published parameter totals (include_top, 224x224, 1000 classes)
 *    and multiply-adds (Keras Applications docstrings / keras.io table);
 *  - layer counts from the TensorFlow transfer-learning tutorial
 *    (MobileNetV2 base: 154 layers) and the Keras 2.1.4 V1 model.json files;
 *  - every weight shape stored in the shared Keras files (TF.js manifests,
 *    the .h5 read with h5wasm) against what the builder expects;
 *  - output shapes from the published channel tables and the stride-2
 *    arithmetic of Keras's padding (computed here from first principles);
 *  - TensorFlow.js (an independent implementation of Keras layers) building
 *    each generated config: same parameter and layer counts, same outputs
 *    with the same random weights as our lowering on the reference backend;
 *  - numerics: the native backend (XNNPACK) against the pure-TypeScript
 *    reference backend on random weights; tolerance max |diff| <= 1e-4 of
 *    the output's scale (max |reference|).
 */
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  ARCHITECTURES, KERAS_ALPHAS, buildArchitecture, correctPad, identifyArchitecture, identifyArchitectureSteps, makeDivisible, mobilenetV1, mobilenetV2,
  mobilenetV3Large, mobilenetV3Small, preprocessingFor, weightShapes,
} from '../lib/architectures/index.js';
import { resolveWeightsOnly, resolveWeightsOnlySteps } from '../lib/architectures/options.js';
import { ModelFormatError, UnsupportedLayerError } from '../lib/errors.js';
import { compileGraph } from '../lib/runtime.js';
import type { Graph } from '../lib/graph.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { lowerModel } from '../lib/keras/lower.js';
import { randomWeights } from '../lib/keras/random.js';
import { formatSummary } from '../lib/keras/summary.js';
import { Model } from '../lib/model.js';
import type { Architecture, KerasModelConfig, ModelAnalysis } from '../lib/keras/types.js';
import { extractNsfwjsMobileNetV2 } from './helpers/nsfwjs.js';
import { hasShared, referenceOutput, shared } from './helpers/shared.js';
import { compareProbs, formatProbDiff, probsClose } from './helpers/compare.js';

const analyze = (arch: Architecture, o: Record<string, unknown> = {}): ModelAnalysis => analyzeModel(buildArchitecture(arch, o));
const names = (a: ModelAnalysis): Set<string> => new Set(a.layers.map((l) => l.name));
const layer = (a: ModelAnalysis, name: string) => {
  const l = a.layers.find((x) => x.name === name);
  if (!l) throw new Error(`no layer ${name}`);
  return l;
};

describe('Keras published totals (include_top, 224x224, 1000 classes)', () => {
  it.each([
    ['v1', 4_253_864],
    ['v2', 3_538_984],
    ['v3-large', 5_507_432],
    ['v3-small', 2_554_968],
  ] as const)('%s alpha 1.0 has %i parameters', (arch, total) => {
    const a = analyze(arch);
    expect(a.totalParams).toBe(total);
    expect(a.trainableParams + a.nonTrainableParams).toBe(total);
    // Non-trainable = BatchNorm moving mean + variance: 2 values per BN channel.
    const bnChannels = a.layers.filter((l) => l.className === 'BatchNormalization').reduce((s, l) => s + (l.outputShape.at(-1) as number), 0);
    expect(a.nonTrainableParams).toBe(2 * bnChannels);
    expect(a.inputShape).toEqual([224, 224, 3]);
    expect(a.outputShape).toEqual([1000]);
  });

  it('V1 0.75 / 0.25 equal the shared TF.js models (2,601,976 / 475,544), 0.5 is ~1.3M', () => {
    expect(analyze('v1', { alpha: 0.75 }).totalParams).toBe(2_601_976);
    expect(analyze('v1', { alpha: 0.25 }).totalParams).toBe(475_544);
    expect(analyze('v1', { alpha: 0.75 }).trainableParams).toBe(2_585_560);
    expect(Math.abs(analyze('v1', { alpha: 0.5 }).totalParams - 1.3e6)).toBeLessThan(0.05e6);
  });

  it('V3 minimalistic totals are near the published 3.9M (Large) and 2.0M (Small)', () => {
    expect(Math.abs(analyze('v3-large', { minimalistic: true }).totalParams - 3.9e6)).toBeLessThan(0.05e6);
    expect(Math.abs(analyze('v3-small', { minimalistic: true }).totalParams - 2.0e6)).toBeLessThan(0.06e6);
  });

  // The analysis's multiply-adds equal those counted from the lowered graph's
  // nodes (convolutions, depthwise convolutions, fully connected layers).
  it.each([
    ['v1', {}],
    ['v1', { alpha: 0.25, inputShape: [128, 128, 3] }],
    ['v2', { alpha: 1.4 }],
    ['v3-large', {}],
    ['v3-small', { minimalistic: true }],
  ] as const)('%s %j: multiply-adds equal the lowered graph\'s', (arch, o) => {
    const a = analyze(arch, o);
    const lowered = lowerModel(a, randomWeights(a, 1));
    try {
      expect(a.macs).toBeGreaterThan(0);
      expect(graphMacs(lowered.graph)).toBe(a.macs);
    } finally {
      lowered.graph.dispose();
    }
  });
});

/**
 * Multiply-adds per sample counted from a graph's nodes, independently of the
 * Keras analysis: output elements times the products per output element.
 */
function graphMacs(g: Graph): number {
  let macs = 0;
  for (const n of g.nodes) {
    const out = g.tensors[n.output]!.shape.reduce((x, y) => x * y, 1);
    if (n.op === 'conv2d') macs += out * n.attrs.kernel[0] * n.attrs.kernel[1] * n.attrs.groupInputChannels;
    else if (n.op === 'depthwiseConv2d') macs += out * n.attrs.kernel[0] * n.attrs.kernel[1];
    else if (n.op === 'fullyConnected') macs += out * n.attrs.inputChannels;
  }
  return macs;
}

/**
 * The published multiply-adds (Keras Applications docstrings and keras.io),
 * read from the table in ../shared/reference/facts.md: rows such as
 * `| V1 0.75 / 0.5 / 0.25 at 224 | 325M / 149M / 41M | ...`.
 */
function publishedMacs(): Map<string, number> {
  const text = fs.readFileSync(shared('reference', 'facts.md'), 'utf8');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 4 || !/^[\d.]+M( \/ [\d.]+M)*$/.test(cells[2]!)) continue;
    out.set(cells[1]!, 0);
    cells[2]!.split(' / ').forEach((m, i) => out.set(`${cells[1]}#${i}`, parseFloat(m) * 1e6));
  }
  return out;
}

describe.skipIf(!hasShared)('multiply-adds against the published figures (../shared/reference/facts.md)', () => {
  // Row of the facts table, position in its "a / b / c" list, and the builder options it describes.
  const rows: Array<[string, number, Architecture, Record<string, unknown>]> = [
    ['MobileNet V1 1.0-224', 0, 'v1', {}],
    ['V1 0.75 / 0.5 / 0.25 at 224', 0, 'v1', { alpha: 0.75 }],
    ['V1 0.75 / 0.5 / 0.25 at 224', 1, 'v1', { alpha: 0.5 }],
    ['V1 0.75 / 0.5 / 0.25 at 224', 2, 'v1', { alpha: 0.25 }],
    ['V1 1.0 at 192 / 160 / 128', 0, 'v1', { inputShape: [192, 192, 3] }],
    ['V1 1.0 at 192 / 160 / 128', 1, 'v1', { inputShape: [160, 160, 3] }],
    ['V1 1.0 at 192 / 160 / 128', 2, 'v1', { inputShape: [128, 128, 3] }],
    ['MobileNet V2 1.0-224', 0, 'v2', {}],
    ['V2 1.4 / 1.3 at 224', 0, 'v2', { alpha: 1.4 }],
    ['V2 1.4 / 1.3 at 224', 1, 'v2', { alpha: 1.3 }],
    ['V3-Large 1.0-224', 0, 'v3-large', {}],
    ['V3-Large minimalistic', 0, 'v3-large', { minimalistic: true }],
  ];
  // Tolerance 2%: the published figures are rounded to 1M. (V3-Small's published 66M / 65M
  // count differently from Keras's own layers: 56.5M here, not compared.)
  it.each(rows)('%s [%i]: %s %j within 2%', (row, k, arch, o) => {
    const published = publishedMacs().get(`${row}#${k}`);
    expect(published, `row "${row}" in facts.md`).toBeDefined();
    const a = analyze(arch, o);
    expect(Math.abs(a.macs - published!) / published!).toBeLessThan(0.02);
  });
});

describe('channel rounding and padding helpers', () => {
  it('makeDivisible follows Keras _make_divisible', () => {
    // Values worked by hand from max(8, int(v + 4) // 8 * 8) (+8 when below 90% of v).
    expect(makeDivisible(32 * 0.35)).toBe(16); // 11.2 → 8 < 10.08 → 16
    expect(makeDivisible(16 * 0.35)).toBe(8);
    expect(makeDivisible(1280 * 1.4)).toBe(1792);
    expect(makeDivisible(32 * 1.3)).toBe(40);
    expect(makeDivisible(72)).toBe(72);
    expect(makeDivisible(20)).toBe(24);
    expect(makeDivisible(12)).toBe(16);
  });

  it('correctPad follows Keras correct_pad', () => {
    expect(correctPad(112, 112, 3)).toEqual([[0, 1], [0, 1]]);
    expect(correctPad(7, 7, 3)).toEqual([[1, 1], [1, 1]]);
    expect(correctPad(28, 28, 5)).toEqual([[1, 2], [1, 2]]);
    expect(correctPad(15, 16, 5)).toEqual([[2, 2], [1, 2]]);
  });
});

describe('layer names and classes as Keras writes them', () => {
  it('V1', () => {
    const a = analyze('v1');
    const n = names(a);
    for (const name of ['input_1', 'conv1', 'conv1_bn', 'conv1_relu', 'conv_dw_1', 'conv_dw_1_bn', 'conv_pw_1', 'conv_pw_1_bn', 'conv_pw_13_relu',
      'conv_pad_2', 'conv_pad_4', 'conv_pad_6', 'conv_pad_12', 'global_average_pooling2d', 'dropout', 'conv_preds', 'reshape_2', 'predictions']) {
      expect(n.has(name), name).toBe(true);
    }
    expect(n.has('conv_pad_3')).toBe(false);
    expect(layer(a, 'conv_preds').className).toBe('Conv2D');
    expect(layer(a, 'conv_preds').weights.map((w) => [w.fullName, w.shape])).toEqual([
      ['conv_preds/kernel', [1, 1, 1024, 1000]], ['conv_preds/bias', [1000]],
    ]);
    expect(layer(a, 'conv_dw_2').config.padding).toBe('valid');
    expect(layer(a, 'conv_pad_2').config.padding).toEqual([[0, 1], [0, 1]]);
    expect(layer(a, 'global_average_pooling2d').outputShape).toEqual([1, 1, 1024]);
    // 1 input + conv block (3) + 13 blocks x 6 + 4 pads + top (5): the 2.1.4 files have 88 = 91 - 4 pads + reshape_1.
    expect(a.layers.length).toBe(91);
    expect(analyze('v1', { includeTop: false }).layers.length).toBe(86);
  });

  it('V2', () => {
    const a = analyze('v2');
    const n = names(a);
    for (const name of ['Conv1', 'bn_Conv1', 'Conv1_relu', 'expanded_conv_depthwise', 'expanded_conv_depthwise_BN', 'expanded_conv_project',
      'expanded_conv_project_BN', 'block_1_expand', 'block_1_expand_BN', 'block_1_pad', 'block_1_depthwise', 'block_2_add', 'block_16_project_BN',
      'Conv_1', 'Conv_1_bn', 'out_relu', 'predictions']) {
      expect(n.has(name), name).toBe(true);
    }
    expect(n.has('block_16_add')).toBe(false);
    expect(layer(a, 'predictions').className).toBe('Dense');
    expect(layer(a, 'predictions').config.activation).toBe('softmax');
    // TensorFlow's transfer-learning tutorial: "Number of layers in the base model: 154".
    expect(analyze('v2', { includeTop: false }).layers.length).toBe(154);
    expect(a.layers.filter((l) => l.className === 'Add').length).toBe(10);
  });

  it('V3 Large and Small', () => {
    const a = analyze('v3-large');
    const n = names(a);
    for (const name of ['rescaling', 'Conv', 'Conv/BatchNorm', 'expanded_conv/depthwise', 'expanded_conv/project/BatchNorm', 'expanded_conv/Add',
      'expanded_conv_1/expand', 'expanded_conv_1/depthwise/pad', 'expanded_conv_3/squeeze_excite/AvgPool', 'expanded_conv_3/squeeze_excite/Conv',
      'expanded_conv_3/squeeze_excite/Relu', 'expanded_conv_3/squeeze_excite/Conv_1', 'expanded_conv_3/squeeze_excite/Mul', 'expanded_conv_14/Add',
      'Conv_1', 'Conv_1/BatchNorm', 'Conv_2', 'Logits', 'flatten', 'dropout', 'Predictions']) {
      expect(n.has(name), name).toBe(true);
    }
    expect(layer(a, 'Conv_2').weights.map((w) => w.name)).toEqual(['kernel', 'bias']);
    expect(layer(a, 'Conv_1').weights[0]?.shape).toEqual([1, 1, 160, 960]);
    expect(layer(a, 'rescaling').config).toMatchObject({ scale: 1 / 127.5, offset: -1 });
    // hard_sigmoid = ReLU(6)(x + 3) * (1/6) as TFOpLambda layers with scalar operands.
    const adds = a.layers.filter((l) => l.className === 'TFOpLambda' && l.config.function === '__operators__.add');
    const muls = a.layers.filter((l) => l.className === 'TFOpLambda' && l.config.function === 'math.multiply');
    expect(adds.length).toBeGreaterThan(0);
    expect(adds.length).toBe(muls.length);
    expect(adds.every((l) => l.callKwargs.y === 3)).toBe(true);
    expect(muls.every((l) => l.callKwargs.y === 1 / 6)).toBe(true);
    // Large: 8 SE blocks, hard-swish after Conv, in 9 blocks (expand + depthwise, block 6..14 minus none), Conv_1 and Conv_2.
    const se = a.layers.filter((l) => l.name.endsWith('squeeze_excite/Mul')).length;
    expect(se).toBe(8);
    const s = analyze('v3-small');
    expect(layer(s, 'Conv_1').weights[0]?.shape).toEqual([1, 1, 96, 576]);
    expect(layer(s, 'Conv_2').weights[0]?.shape).toEqual([1, 1, 576, 1024]);
    expect(names(s).has('expanded_conv/squeeze_excite/Mul')).toBe(true);
    expect(names(s).has('expanded_conv_10/Add')).toBe(true);
    const min = analyze('v3-small', { minimalistic: true });
    expect(min.layers.some((l) => l.className === 'TFOpLambda' || l.name.includes('squeeze_excite'))).toBe(false);
    expect(layer(min, 'expanded_conv_3/depthwise').config.kernel_size).toEqual([3, 3]);
    expect(layer(s, 'expanded_conv_3/depthwise').config.kernel_size).toEqual([5, 5]);
    expect(names(analyze('v3-small', { includePreprocessing: false })).has('rescaling')).toBe(false);
  });

  it('preprocessing per architecture', () => {
    expect(preprocessingFor('v1')).toBe('tf');
    expect(preprocessingFor('v2')).toBe('tf');
    expect(preprocessingFor('v3-large')).toBe('none');
    expect(preprocessingFor('v3-small', { includePreprocessing: false })).toBe('tf');
  });
});

/** Spatial size after the five stride-2 stages, from Keras's padding rules. */
function finalSize(arch: Architecture, size: number): number {
  // Stem: 'same' 3x3/2 → ceil(n/2).
  let n = Math.ceil(size / 2);
  for (let i = 0; i < 4; i++) {
    // V1: ZeroPadding2D((0,1),(0,1)) + 'valid' 3x3/2 → floor((n + 1 - 3) / 2) + 1.
    // V2/V3: correct_pad + 'valid' → ceil(n/2) for k = 3 and 5, odd or even n.
    n = arch === 'v1' ? Math.floor((n - 2) / 2) + 1 : Math.ceil(n / 2);
  }
  return n;
}

/** Channels of the last feature map, from the published tables. */
const LAST_CHANNELS: Record<string, number> = {
  'v1 0.25': 256, 'v1 0.5': 512, 'v1 0.75': 768, 'v1 1': 1024,
  'v2 0.35': 1280, 'v2 0.5': 1280, 'v2 0.75': 1280, 'v2 1': 1280, 'v2 1.3': 1664, 'v2 1.4': 1792,
  'v3-small 0.75': 432, 'v3-small 1': 576, 'v3-large 0.75': 720, 'v3-large 1': 960,
};

describe('output shapes', () => {
  const cases: Array<[Architecture, number, number]> = [];
  for (const arch of ARCHITECTURES) for (const alpha of KERAS_ALPHAS[arch]) for (const size of [224, 96, 97]) cases.push([arch, alpha, size]);

  it.each(cases)('%s alpha %d at %i: top, no top, avg, max', (arch, alpha, size) => {
    const c = LAST_CHANNELS[`${arch} ${alpha}`] as number;
    const s = finalSize(arch, size);
    const input = [size, size, 3];
    expect(analyze(arch, { alpha, inputShape: input }).outputShape).toEqual([1000]);
    expect(analyze(arch, { alpha, inputShape: input, classes: 7 }).outputShape).toEqual([7]);
    expect(analyze(arch, { alpha, inputShape: input, includeTop: false }).outputShape).toEqual([s, s, c]);
    expect(analyze(arch, { alpha, inputShape: input, includeTop: false, pooling: 'avg' }).outputShape).toEqual([c]);
    expect(analyze(arch, { alpha, inputShape: input, includeTop: false, pooling: 'max' }).outputShape).toEqual([c]);
  });

  it('non-square inputs and 1-channel inputs', () => {
    expect(analyze('v2', { inputShape: [160, 96, 3], includeTop: false }).outputShape).toEqual([5, 3, 1280]);
    expect(analyze('v1', { inputShape: [64, 32, 1], includeTop: false }).outputShape).toEqual([2, 1, 1024]);
    expect(layer(analyze('v1', { inputShape: [64, 64, 1] }), 'conv1').weights[0]?.shape).toEqual([3, 3, 1, 32]);
  });

  it('every alpha Keras supports builds (and others > 0), with params growing with alpha', () => {
    for (const arch of ARCHITECTURES) {
      const alphas = [...KERAS_ALPHAS[arch], 0.6, 1.1];
      const totals = alphas.sort((x, y) => x - y).map((alpha) => analyze(arch, { alpha }).totalParams);
      for (let i = 1; i < totals.length; i++) expect(totals[i]).toBeGreaterThanOrEqual(totals[i - 1] as number);
      if (arch.startsWith('v3')) for (const alpha of KERAS_ALPHAS[arch]) expect(analyze(arch, { alpha, minimalistic: true }).outputShape).toEqual([1000]);
    }
    expect(analyze('v1', { depthMultiplier: 2 }).layers.find((l) => l.name === 'conv_dw_1')?.weights[0]?.shape).toEqual([3, 3, 32, 2]);
  });
});

describe('the shared Keras files hold exactly the weights the builder expects', () => {
  describe.skipIf(!hasShared)('with ../shared', () => {
    it.each([
      ['mobilenet_v1_0.75_224', 0.75, 137],
      ['mobilenet_v1_0.25_224', 0.25, 137],
    ])('%s model.json weightsManifest', (dir, alpha, count) => {
      const json = JSON.parse(fs.readFileSync(shared('models', dir, 'model.json'), 'utf8')) as {
        modelTopology: { model_config: KerasModelConfig };
        weightsManifest: Array<{ weights: Array<{ name: string; shape: number[] }> }>;
      };
      const fileShapes = new Map(json.weightsManifest.flatMap((g) => g.weights.map((w) => [w.name, w.shape] as const)));
      expect(fileShapes.size).toBe(count);
      const built = weightShapes(analyzeModel(mobilenetV1({ alpha })));
      expect([...built.keys()].sort()).toEqual([...fileShapes.keys()].sort());
      for (const [name, shape] of built) expect(fileShapes.get(name), name).toEqual(shape);
      // The Keras 2.1.4 config itself analyzes to the same weights, totals and MACs.
      const old = analyzeModel(json.modelTopology.model_config);
      expect(weightShapes(old)).toEqual(built);
      const fresh = analyzeModel(mobilenetV1({ alpha }));
      expect(old.totalParams).toBe(fresh.totalParams);
      expect(old.macs).toBe(fresh.macs);
      expect(old.outputShape).toEqual([1000]);
      // Same output shape per shared layer name.
      for (const l of old.layers) {
        const f = fresh.layers.find((x) => x.name === l.name);
        if (f && l.className !== 'GlobalAveragePooling2D') expect(f.outputShape, l.name).toEqual(l.outputShape);
      }
      expect(identifyArchitecture(weightShapes(old))).toEqual({ architecture: 'v1', alpha, depthMultiplier: 1, includeTop: true, classes: 1000 });
    });

    it('keras-h5 mobilenet_2_5_224_tf_no_top.h5 (h5wasm: layer_names, weight_names, dataset shapes)', async () => {
      const h5wasm = (await import('h5wasm/node')).default;
      await h5wasm.ready;
      const f = new h5wasm.File(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'), 'r');
      const fileShapes = new Map<string, number[]>();
      try {
        const layerNames = Array.from(f.attrs.layer_names?.value as Iterable<string>);
        expect(layerNames.length).toBe(83);
        for (const ln of layerNames) {
          const group = f.get(ln) as { attrs: Record<string, { value: unknown }> };
          const weightNames = Array.from((group.attrs.weight_names?.value ?? []) as Iterable<string>);
          for (const wn of weightNames) {
            const ds = f.get(`${ln}/${wn}`) as { shape: number[] };
            fileShapes.set(wn.replace(/:0$/, ''), [...ds.shape]);
          }
        }
      } finally {
        f.close();
      }
      expect(fileShapes.size).toBe(135);
      const built = weightShapes(analyzeModel(mobilenetV1({ alpha: 0.25, includeTop: false })));
      expect([...built.keys()].sort()).toEqual([...fileShapes.keys()].sort());
      for (const [name, shape] of built) expect(fileShapes.get(name), name).toEqual(shape);
      expect(identifyArchitecture(fileShapes)).toEqual({ architecture: 'v1', alpha: 0.25, depthMultiplier: 1, includeTop: false });
    });
  });

  it('nsfwjs MobileNetV2 (Keras 2.2.4, custom head): analyzed, backbone recognized as V2 1.0', () => {
    const m = extractNsfwjsMobileNetV2();
    try {
      const topology = m.modelJson.modelTopology as { model_config?: KerasModelConfig } & KerasModelConfig;
      const config = topology.model_config ?? topology;
      const a = analyzeModel(config);
      const manifest = new Map(m.modelJson.weightsManifest.flatMap((g) => (g.weights as Array<{ name: string; shape: number[] }>).map((w) => [w.name, w.shape] as const)));
      const expected = weightShapes(a);
      expect([...expected.keys()].sort()).toEqual([...manifest.keys()].sort());
      for (const [name, shape] of expected) expect(manifest.get(name), name).toEqual(shape);
      expect(a.outputShape).toEqual([5]);
      expect(a.layers.some((l) => l.className === 'AveragePooling2D' && l.outputShape.join() === '1,1,1280')).toBe(true);
      expect(identifyArchitecture(expected)).toMatchObject({ architecture: 'v2', alpha: 1, includeTop: false });
      // Partly frozen backbone: as in Keras, every weight of a layer with trainable false is
      // non-trainable, plus the moving statistics of the other BatchNormalization layers.
      const size = (name: string): number => (manifest.get(name) ?? []).reduce((x, y) => x * y, 1);
      let frozen = 0;
      for (const l of config.config.layers) {
        const prefix = `${l.config.name}/`;
        const own = [...manifest.keys()].filter((k) => k.startsWith(prefix) && !k.slice(prefix.length).includes('/'));
        if (l.config.trainable === false) frozen += own.reduce((x, k) => x + size(k), 0);
        else frozen += own.filter((k) => k.endsWith('/moving_mean') || k.endsWith('/moving_variance')).reduce((x, k) => x + size(k), 0);
      }
      expect(config.config.layers.some((l) => l.config.trainable === false)).toBe(true);
      expect(a.nonTrainableParams).toBe(frozen);
    } finally {
      m.cleanup();
    }
  });
});

describe('invalid options: RangeError / TypeError with the library template', () => {
  it.each([
    [() => mobilenetV1({ alpha: 0 }), RangeError, 'Expected positive number for alpha but received 0'],
    [() => mobilenetV2({ alpha: -1 }), RangeError, 'Expected positive number for alpha but received -1'],
    [() => mobilenetV3Small({ alpha: Number.NaN }), RangeError, 'Expected positive number for alpha but received NaN'],
    [() => mobilenetV1({ alpha: '1' as unknown as number }), TypeError, 'Expected positive number for alpha but received "1"'],
    [() => mobilenetV1({ inputShape: [16, 16, 3] }), RangeError, 'Expected input size of at least 32x32 for inputShape but received [16, 16, 3]'],
    [() => mobilenetV3Large({ inputShape: [224, 31, 3] }), RangeError, 'Expected input size of at least 32x32 for inputShape but received [224, 31, 3]'],
    [() => mobilenetV2({ inputShape: [224, 224] }), RangeError, 'Expected `input_shape` as a tuple of three integers [height, width, channels] for inputShape but received [224, 224]'],
    [() => mobilenetV2({ inputShape: [224, 224.5, 3] }), RangeError, 'Expected array of 3 positive integers [height, width, channels] for inputShape but received [224, 224.5, 3]'],
    [() => mobilenetV1({ classes: 0 }), RangeError, 'Expected positive integer for classes but received 0'],
    [() => mobilenetV1({ depthMultiplier: 1.5 }), RangeError, 'Expected positive integer for depthMultiplier but received 1.5'],
    [() => mobilenetV1({ dropout: 1 }), RangeError, 'Expected number in [0, 1) for dropout but received 1'],
    [() => mobilenetV3Large({ dropoutRate: -0.1 }), RangeError, 'Expected number in [0, 1) for dropoutRate but received -0.1'],
    [() => mobilenetV2({ includeTop: false, pooling: 'mean' as 'avg' }), RangeError, 'Expected one of "avg", "max" for pooling but received "mean"'],
    [() => mobilenetV3Small({ minimalistic: 1 as unknown as boolean }), TypeError, 'Expected boolean for minimalistic but received 1'],
    [() => mobilenetV2({ classifierActivation: 'gelu' }), RangeError, 'Expected one of "softmax", "linear", "sigmoid", "relu", "relu6", "hard_sigmoid", "swish" for classifierActivation but received "gelu"'],
    [() => mobilenetV2({ depthMultiplier: 2 } as never), RangeError, 'Expected one of inputShape, alpha, includeTop, pooling, classes, classifierActivation for option name but received "depthMultiplier"'],
    [() => buildArchitecture('v4' as Architecture), RangeError, 'Expected one of "v1", "v2", "v3-small", "v3-large" for arch but received "v4"'],
    [() => mobilenetV1(null as never), TypeError, 'Expected object for options but received null'],
  ] as const)('%#', (fn, cls, msg) => {
    expect(fn).toThrow(cls);
    expect(fn).toThrow(msg);
  });

  it('analyzeModel: unsupported classes, cycles, unknown inputs, None dims', () => {
    const base = mobilenetV1({ alpha: 0.25, inputShape: [32, 32, 3] });
    const withLambda = structuredClone(base);
    const l = withLambda.config.layers[5];
    if (!l) throw new Error('layer');
    l.class_name = 'Lambda';
    expect(() => analyzeModel(withLambda)).toThrow(UnsupportedLayerError);
    expect(() => analyzeModel(withLambda)).toThrow(`Unsupported layer '${l.config.name}' of class Lambda`);
    const cyc = structuredClone(base);
    (cyc.config.layers[1] as { inbound_nodes: unknown }).inbound_nodes = [[[cyc.config.layers[3]?.config.name, 0, 0, {}]]];
    expect(() => analyzeModel(cyc)).toThrow(ModelFormatError);
    const unknown = structuredClone(base);
    (unknown.config.layers[2] as { inbound_nodes: unknown }).inbound_nodes = [[['nope', 0, 0, {}]]];
    expect(() => analyzeModel(unknown)).toThrow("takes input from unknown layer 'nope'");
    const none = structuredClone(base);
    (none.config.layers[0] as { config: Record<string, unknown> }).config.batch_input_shape = [null, null, null, 3];
    expect(() => analyzeModel(none)).toThrow(ModelFormatError);
    expect(analyzeModel(none, { inputShape: [64, 64, 3] }).outputShape).toEqual([1000]);
    const tooSmall = mobilenetV2({ inputShape: [32, 32, 3], includeTop: false });
    // A config object: the error has no file and its message no `<file>: ` prefix.
    const small = (() => {
      try {
        analyzeModel(tooSmall, { inputShape: [2, 2, 3] });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(small).toBeInstanceOf(ModelFormatError);
    expect(small).toMatchObject({ file: undefined });
    expect((small as Error).message).toBe(
      "DepthwiseConv2D layer 'block_1_depthwise' has a 3x3 kernel larger than its 2x2 input: pass a larger input shape (inputShape; --input-size on the command line)",
    );
    // With a file, analysis names it in both error classes.
    expect(() => analyzeModel(tooSmall, { inputShape: [2, 2, 3], file: 'small.h5' })).toThrow(/^small\.h5: DepthwiseConv2D layer 'block_1_depthwise' has a 3x3 kernel/);
    expect(() => analyzeModel(withLambda, { file: 'lambda.h5' })).toThrow(`lambda.h5: Unsupported layer '${l.config.name}' of class Lambda`);
  });

  it('analyzeModel inlines a nested functional model (frozen MobileNet base under a new head)', () => {
    const base = mobilenetV2({ alpha: 0.35, inputShape: [96, 96, 3], includeTop: false });
    const baseAnalysis = analyzeModel(base);
    const outer: KerasModelConfig = {
      class_name: 'Functional',
      config: {
        name: 'fine_tuned',
        layers: [
          { class_name: 'InputLayer', name: 'input_2', config: { name: 'input_2', batch_input_shape: [null, 96, 96, 3] }, inbound_nodes: [] },
          { class_name: 'Functional', name: base.config.name, config: { ...base.config, trainable: false } as never, inbound_nodes: [[['input_2', 0, 0, {}]]] },
          { class_name: 'GlobalAveragePooling2D', name: 'gap', config: { name: 'gap' }, inbound_nodes: [[[base.config.name, 1, 0, {}]]] },
          { class_name: 'Dropout', name: 'drop', config: { name: 'drop', rate: 0.2 }, inbound_nodes: [[['gap', 0, 0, {}]]] },
          { class_name: 'Dense', name: 'head', config: { name: 'head', units: 5, activation: 'softmax' }, inbound_nodes: [[['drop', 0, 0, {}]]] },
        ],
        input_layers: [['input_2', 0, 0]],
        output_layers: [['head', 0, 0]],
      },
    };
    const a = analyzeModel(outer);
    expect(a.outputShape).toEqual([5]);
    expect(a.totalParams).toBe(baseAnalysis.totalParams + 1280 * 5 + 5);
    expect(a.nonTrainableParams).toBe(baseAnalysis.totalParams);
    expect(layer(a, 'gap').inbound).toEqual(['out_relu']);
    expect(layer(a, 'Conv1').inbound).toEqual(['input_2']);
    expect(identifyArchitecture(weightShapes(a), a.inputShape)).toMatchObject({ architecture: 'v2', alpha: 0.35, includeTop: false });
    // It lowers like any flat model.
    const lowered = lowerModel(a, randomWeights(a, 3));
    expect(lowered.outputShape).toEqual([5]);
  });

  it('identifying weights-only files runs in steps (loadModel gives the event loop turns between candidates)', () => {
    // V2 0.75 is tried after V2 0.35 and 0.5 (KERAS_ALPHAS order): each candidate built and analyzed is two steps.
    const shapes = weightShapes(analyzeModel(mobilenetV2({ alpha: 0.75, includeTop: false, inputShape: [96, 96, 3] })));
    const count = <T,>(steps: Generator<void, T, void>): { value: T; yields: number } => {
      let yields = 0;
      for (;;) {
        const r = steps.next();
        if (r.done === true) return { value: r.value, yields };
        yields++;
      }
    };
    const ident = count(identifyArchitectureSteps(shapes, [96, 96, 3]));
    expect(ident.value).toEqual(identifyArchitecture(shapes, [96, 96, 3]));
    expect(ident.value).toMatchObject({ architecture: 'v2', alpha: 0.75, includeTop: false });
    expect(ident.yields).toBeGreaterThanOrEqual(2 * 3);
    const request = { inputShape: [96, 96, 3] };
    const resolved = count(resolveWeightsOnlySteps(shapes, request, 'w.h5'));
    expect(resolved.value).toEqual(resolveWeightsOnly(shapes, request, 'w.h5'));
    expect(resolved.yields).toBe(ident.yields + 1);
  });

  it('analyzeModel orders layers topologically whatever the config order', () => {
    const cfg = mobilenetV2({ alpha: 0.35, inputShape: [64, 64, 3] });
    const shuffled = structuredClone(cfg);
    // Deterministic shuffle.
    let s = 12345;
    const layers = shuffled.config.layers;
    for (let i = layers.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) % 2147483648;
      const j = s % (i + 1);
      [layers[i], layers[j]] = [layers[j] as (typeof layers)[number], layers[i] as (typeof layers)[number]];
    }
    const a = analyzeModel(cfg);
    const b = analyzeModel(shuffled);
    expect(b.totalParams).toBe(a.totalParams);
    expect(b.outputShape).toEqual(a.outputShape);
    const pos = new Map(b.layers.map((l, i) => [l.name, i]));
    for (const l of b.layers) for (const i of l.inbound) expect(pos.get(i) as number).toBeLessThan(pos.get(l.name) as number);
  });
});

describe('summary and random weights', () => {
  it('formatSummary prints every layer with shape and params, and the Keras totals', () => {
    const a = analyze('v1', { alpha: 0.25 });
    const text = formatSummary(a);
    expect(text).toContain('Model: "mobilenet_0.25_224"');
    expect(text).toContain('Total params: 475,544');
    expect(text).toContain('Trainable params: 470,072');
    expect(text).toContain('Non-trainable params: 5,472');
    expect(text).toMatch(/Multiply-adds: 41,030,272/);
    expect(text).toMatch(/conv1 \(Conv2D\)\s+\(None, 112, 112, 8\)\s+216\s/);
    expect(text).toMatch(/input_1 \(InputLayer\)\s+\[\(None, 224, 224, 3\)\]\s+0/);
    for (const l of a.layers) expect(text).toContain(`${l.name} (${l.className})`);
    const v2 = formatSummary(analyze('v2', { alpha: 0.35, inputShape: [96, 96, 3] }));
    expect(v2).toContain('Connected to');
    expect(v2).toMatch(/block_2_add \(Add\).*block_1_project_BN, block_2_project_BN/);
  });

  it('randomWeights: every expected weight, seeded, BN statistics in range', () => {
    const a = analyze('v3-small', { inputShape: [64, 64, 3] });
    const w1 = randomWeights(a, 1);
    const w2 = randomWeights(a, 1);
    const w3 = randomWeights(a, 2);
    expect(weightShapes(a)).toEqual(new Map([...w1].map(([k, t]) => [k, t.shape])));
    let total = 0;
    const same = (x: Float32Array | undefined, y: Float32Array | undefined): boolean =>
      x !== undefined && y !== undefined && Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength));
    for (const [k, t] of w1) {
      total += t.data.length;
      expect(same(t.data, w2.get(k)?.data), k).toBe(true);
      expect(t.data.every(Number.isFinite)).toBe(true);
    }
    expect(total).toBe(a.totalParams);
    expect(same(w1.get('Conv/kernel')?.data, w3.get('Conv/kernel')?.data)).toBe(false);
    const mv = w1.get('Conv/BatchNorm/moving_variance')?.data as Float32Array;
    expect(Math.min(...mv)).toBeGreaterThanOrEqual(0.5);
    expect(Math.max(...mv)).toBeLessThanOrEqual(1.5);
  });
});

/** Seeded input: uniform in [-1, 1] (V1/V2) or [0, 255] (V3 with Rescaling). */
function input(n: number, seed: number, v3: boolean): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = s / 4294967296;
    out[i] = v3 ? u * 255 : u * 2 - 1;
  }
  return out;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const x of a) m = Math.max(m, Math.abs(x));
  return m;
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe('native (XNNPACK) vs reference backend, random weights, 96x96', () => {
  // Needs the native addon; like test/ops.test.ts this does not skip when it is missing.
  it.each([
    ['v1', { alpha: 0.5 }],
    ['v2', { alpha: 0.5 }],
    ['v3-small', {}],
    ['v3-large', { alpha: 0.75 }],
    ['v3-small', { minimalistic: true }],
  ] as const)('%s %j: logits within 1e-4 of the output scale', async (arch, o) => {
    const a = analyze(arch, { ...o, inputShape: [96, 96, 3], classifierActivation: null });
    const weights = randomWeights(a, 42);
    const lowered = lowerModel(a, weights);
    const x = input(96 * 96 * 3, 7, arch.startsWith('v3'));
    const ref = await compileGraph(lowered.graph, { backend: 'reference' });
    const nat = await compileGraph(lowered.graph, { backend: 'native', threads: 2 });
    try {
      const yr = ref.runSync(x);
      const yn = await nat.run(x);
      const scale = maxAbs(yr);
      expect(scale).toBeGreaterThan(1e-3); // the random network does not collapse
      expect(scale).toBeLessThan(1e3);
      expect(maxDiff(yn, yr)).toBeLessThanOrEqual(1e-4 * scale);
      // The unfused lowering (BatchNorm and activations as separate nodes) agrees too.
      const plain = await compileGraph(lowerModel(a, weights, { fuse: false }).graph, { backend: 'reference' });
      expect(maxDiff(plain.runSync(x), yr)).toBeLessThanOrEqual(1e-4 * scale);
      plain.dispose();
    } finally {
      ref.dispose();
      nat.dispose();
    }
  }, 60_000);
});

describe("includeTop: false, pooling: 'max' (GlobalMaxPooling2D → maxPool2d), random weights, 96x96", () => {
  // Needs the native addon, like the block above.
  it.each([
    ['v1', { alpha: 0.5 }, 512],
    ['v2', { alpha: 0.5 }, 1280],
  ] as const)('%s %j: native = reference within 1e-4 of the scale, = the channel-wise max of the pooling: undefined feature map', async (arch, o, channels) => {
    const common = { ...o, inputShape: [96, 96, 3], includeTop: false, seed: 5 } as const;
    // Model.fromArchitecture derives the weights from the analysis of its own config: the pooled and the
    // unpooled configs must give the same weights (same names, same values) for the comparison to mean anything.
    const wMax = randomWeights(analyze(arch, { ...o, inputShape: [96, 96, 3], includeTop: false, pooling: 'max' }), 5);
    const wFeat = randomWeights(analyze(arch, { ...o, inputShape: [96, 96, 3], includeTop: false }), 5);
    expect([...wMax.keys()]).toEqual([...wFeat.keys()]);
    expect(wMax.size).toBeGreaterThan(50);
    for (const [name, w] of wMax) expect(Buffer.from(w.data.buffer).equals(Buffer.from(wFeat.get(name)!.data.buffer)), name).toBe(true);
    // The lowering emits one maxPool2d over the whole 3x3 map.
    const pooledGraph = lowerModel(analyze(arch, { ...o, inputShape: [96, 96, 3], includeTop: false, pooling: 'max' }), wMax).graph;
    const pools = pooledGraph.nodes.filter((n) => n.op === 'maxPool2d');
    expect(pools).toHaveLength(1);
    expect(pools[0]).toMatchObject({ attrs: { pool: [3, 3], stride: [1, 1] } });
    pooledGraph.dispose();

    const batch = 2;
    const x = input(batch * 96 * 96 * 3, 11, false);
    const nat = await Model.fromArchitecture(arch, { ...common, pooling: 'max', backend: 'native', threads: 2, batch });
    const ref = await Model.fromArchitecture(arch, { ...common, pooling: 'max', backend: 'reference', batch });
    const feat = await Model.fromArchitecture(arch, { ...common, backend: 'reference', batch });
    try {
      expect(nat.outputShape).toEqual([channels]);
      expect(ref.outputShape).toEqual([channels]);
      expect(feat.outputShape).toEqual([3, 3, channels]);
      const yr = await ref.predict(x);
      const yn = await nat.predict(x);
      const fm = await feat.predict(x);
      const scale = maxAbs(yr);
      expect(scale).toBeGreaterThan(1e-3);
      expect(scale).toBeLessThan(1e3);
      expect(maxDiff(yn, yr)).toBeLessThanOrEqual(1e-4 * scale);
      // Independent: max over the 3x3 positions of each sample's feature map, channel by channel.
      const want = new Float32Array(batch * channels).fill(-Infinity);
      for (let b = 0; b < batch; b++) {
        for (let p = 0; p < 9; p++) {
          for (let c = 0; c < channels; c++) {
            const value = fm[(b * 9 + p) * channels + c] as number;
            if (value > (want[b * channels + c] as number)) want[b * channels + c] = value;
          }
        }
      }
      // Not a constant: the maxima differ across channels and samples.
      expect(new Set(want).size).toBeGreaterThan(channels / 2);
      expect(maxDiff(yr, want)).toBeLessThanOrEqual(1e-6 * scale);
      expect(maxDiff(yn, want)).toBeLessThanOrEqual(1e-4 * scale);
    } finally {
      nat.dispose();
      ref.dispose();
      feat.dispose();
    }
  }, 120_000);
});

describe.skipIf(!hasShared)('V1 real weights: current Keras config vs the Keras 2.1.4 model.json (reference backend)', () => {
  it('mobilenet_v1_0.25_224: same probabilities on cat.224.f32', async () => {
    const { readModelFile } = await import('../lib/formats/index.js');
    const file = await readModelFile(shared('models', 'mobilenet_v1_0.25_224', 'model.json'));
    const x = new Float32Array(new Uint8Array(fs.readFileSync(shared('reference', 'cat.224.f32'))).buffer);
    expect(x.length).toBe(224 * 224 * 3);
    const oldRt = await compileGraph(lowerModel(analyzeModel(file.config as KerasModelConfig), file.weights).graph, { backend: 'reference' });
    const newRt = await compileGraph(lowerModel(analyzeModel(mobilenetV1({ alpha: 0.25 })), file.weights).graph, { backend: 'reference' });
    const p1 = oldRt.runSync(x);
    const p2 = newRt.runSync(x);
    oldRt.dispose();
    newRt.dispose();
    expect(maxDiff(p1, p2)).toBeLessThan(1e-6);
    // And both agree with the TF.js reference output for cat.jpg at the logit level.
    const d = compareProbs(p2, referenceOutput('0.25', 'cat.jpg').probs);
    expect(probsClose(d), formatProbDiff(d)).toBe(true);
  }, 60_000);
});

/*
 * TensorFlow.js layers lacks two tf.keras 2.x features the configs use:
 * TFOpLambda (`x + 3`, `x * (1/6)` with the scalar in the inbound node's
 * kwargs) and GlobalAveragePooling2D(keepdims=True). These two small shims
 * give them tf.keras semantics; everything else is TF.js's own Keras code.
 */
class TfjsTFOpLambda extends tf.layers.Layer {
  static className = 'TFOpLambda';
  private readonly fn: string;
  private y: number | undefined;
  constructor(config: { function: string } & Record<string, unknown>) {
    super(config as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    this.fn = config.function;
  }
  override apply(inputs: tf.Tensor | tf.Tensor[] | tf.SymbolicTensor | tf.SymbolicTensor[], kwargs?: Record<string, unknown>): tf.Tensor | tf.Tensor[] | tf.SymbolicTensor | tf.SymbolicTensor[] {
    if (typeof kwargs?.y === 'number') this.y = kwargs.y;
    return super.apply(inputs, kwargs);
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs;
    if (this.y === undefined) throw new Error('TFOpLambda without a scalar operand');
    // TF.js rewrites the config string ('__operators__.add' → 'Operators_.add').
    if (/add/i.test(this.fn)) return tf.add(x, this.y);
    if (/multiply/i.test(this.fn)) return tf.mul(x, this.y);
    throw new Error(`TFOpLambda ${this.fn}`);
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), function: this.fn };
  }
}

class TfjsGlobalAveragePooling2D extends tf.layers.Layer {
  static className = 'GlobalAveragePooling2D';
  private readonly keepdims: boolean;
  constructor(config: { keepdims?: boolean } & Record<string, unknown>) {
    super(config as unknown as ConstructorParameters<typeof tf.layers.Layer>[0]);
    this.keepdims = config.keepdims === true;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.mean(Array.isArray(inputs) ? (inputs[0] as tf.Tensor) : inputs, [1, 2], this.keepdims);
  }
  override computeOutputShape(s: tf.Shape | tf.Shape[]): tf.Shape {
    const shape = (Array.isArray(s[0]) ? s[0] : s) as tf.Shape;
    return this.keepdims ? [shape[0] ?? null, 1, 1, shape[3] ?? null] : [shape[0] ?? null, shape[3] ?? null];
  }
  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), keepdims: this.keepdims };
  }
}

describe('TensorFlow.js builds the same networks from the generated configs', () => {
  it.each([
    ['v1', { alpha: 0.25 }],
    ['v2', { alpha: 0.35 }],
    ['v3-small', { alpha: 0.75 }],
    ['v3-large', { alpha: 0.75 }],
  ] as const)('%s %j at 48x48: params, layers and outputs (random weights) agree', async (arch, o) => {
    tf.serialization.registerClass(TfjsTFOpLambda);
    tf.serialization.registerClass(TfjsGlobalAveragePooling2D);
    await tf.setBackend('cpu');
    const config = buildArchitecture(arch, { ...o, inputShape: [48, 48, 3], classifierActivation: null });
    const a = analyzeModel(config);
    // TF.js reads Keras 2 nodes in the wrapped form only; TFOpLambda's is unwrapped in tf.keras 2.x.
    const forTfjs = structuredClone(config) as unknown as { config: { layers: Array<{ class_name: string; inbound_nodes: unknown }> } };
    for (const l of forTfjs.config.layers) if (l.class_name === 'TFOpLambda') l.inbound_nodes = [l.inbound_nodes];
    const model = await tf.models.modelFromJSON({ modelTopology: forTfjs as unknown as tf.io.ModelJSON['modelTopology'] });
    try {
      expect(model.countParams()).toBe(a.totalParams);
      expect(model.layers.length).toBe(a.layers.length);
      expect(model.outputs[0]?.shape.slice(1)).toEqual(a.outputShape);
      const weights = randomWeights(a, 11);
      for (const l of model.layers) {
        if (l.weights.length === 0) continue;
        l.setWeights(l.weights.map((v) => {
          const t = weights.get(v.originalName);
          if (t === undefined) throw new Error(`no weight ${v.originalName}`);
          return tf.tensor(t.data, t.shape);
        }));
      }
      const x = input(48 * 48 * 3, 5, arch.startsWith('v3'));
      const yt = tf.tidy(() => (model.predict(tf.tensor(x, [1, 48, 48, 3])) as tf.Tensor).dataSync() as Float32Array);
      const rt = await compileGraph(lowerModel(a, weights).graph, { backend: 'reference' });
      const yr = rt.runSync(x);
      rt.dispose();
      const scale = maxAbs(yt);
      expect(scale).toBeGreaterThan(1e-3);
      expect(maxDiff(yr, yt)).toBeLessThanOrEqual(1e-4 * scale);
    } finally {
      model.dispose();
    }
  }, 60_000);
});
