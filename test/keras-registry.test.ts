/**
 * The Keras layer registry (lib/keras/registry.ts), the one nested-model
 * inliner (lib/keras/model-config.ts) and the linear-time fusion
 * (lib/keras/fuse.ts).
 *
 * References: naive float64 loops written here, run against the lowered
 * graph on the reference backend (within 1e-6 absolute, outputs of order 1);
 * the flat model a nested one is equivalent to (same analysis, same outputs
 * exactly); the README text; operation counts of the fusion (no timing).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../lib/keras/layers.js';
import { lowerModel } from '../lib/keras/lower.js';
import { LAYERS, supportedLayersMarkdown } from '../lib/keras/registry.js';
import { MAX_MODEL_NESTING } from '../lib/keras/model-config.js';
import { randomWeights, mulberry32 } from '../lib/keras/random.js';
import { buildArchitecture } from '../lib/architectures/index.js';
import { loadModel } from '../lib/model.js';
import { convertModel } from '../lib/formats/convert.js';
import { ModelFormatError, UnsupportedLayerError, WeightMismatchError } from '../lib/errors.js';
import { runCli } from './helpers/cli-io.js';
import { hasShared, shared } from './helpers/shared.js';
import type { KerasLayerConfig, KerasModelConfig, NamedWeights } from '../lib/keras/types.js';
import type { Graph } from '../lib/graph.js';
import { compileGraph } from '../lib/runtime.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-registry-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function run(graph: Graph, input: Float32Array): Promise<Float32Array> {
  const rt = await compileGraph(graph, { backend: 'reference' });
  try {
    return rt.runSync(input);
  } finally {
    rt.dispose();
  }
}

function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

type Spec = [cls: string, name: string, config: Record<string, unknown>, inputs: string[], kwargs?: Record<string, unknown>];

/** A functional config from a layer table; the first layer is the input, the last the output. */
function model(name: string, layers: Spec[]): KerasModelConfig {
  const out: KerasLayerConfig[] = layers.map(([cls, n, config, inputs, kwargs]) => ({
    class_name: cls,
    name: n,
    config: { name: n, ...config },
    inbound_nodes: inputs.length === 0 ? [] : [inputs.map((i) => [i, 0, 0, kwargs ?? {}] as [string, number, number, Record<string, unknown>])],
  }));
  return {
    class_name: 'Functional',
    config: { name, layers: out, input_layers: [[layers[0]![1], 0, 0]], output_layers: [[layers[layers.length - 1]![1], 0, 0]] },
  };
}

describe('README', () => {
  it("lists exactly the registry's layers, activations and TFOpLambda functions", () => {
    const readme = fs.readFileSync(path.join(import.meta.dirname, '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Supported Keras layers'));
    expect(section.slice(0, section.indexOf('\n## '))).toContain(supportedLayersMarkdown());
  });
});

/**
 * One small model per registered class, on a 4x5x3 input: every class the
 * analysis accepts must lower and run. Adding a class to the registry
 * without a sample here fails the coverage assertion.
 */
const SAMPLES: Record<string, Spec[]> = {
  InputLayer: [],
  Conv2D: [['Conv2D', 'l', { filters: 2, kernel_size: 3, padding: 'same', activation: 'relu' }, ['in']]],
  Convolution2D: [['Convolution2D', 'l', { filters: 2, kernel_size: [2, 2], strides: 2 }, ['in']]],
  DepthwiseConv2D: [['DepthwiseConv2D', 'l', { kernel_size: 3, depth_multiplier: 2, padding: 'same' }, ['in']]],
  Dense: [['Dense', 'l', { units: 4, activation: 'tanh' }, ['in']]],
  BatchNormalization: [['BatchNormalization', 'l', { axis: -1, epsilon: 0.01 }, ['in']]],
  ReLU: [['ReLU', 'l', { max_value: 0.5 }, ['in']]],
  Activation: [['Activation', 'l', { activation: { class_name: 'function', config: { name: 'hard_sigmoid' } } }, ['in']]],
  Softmax: [['Softmax', 'l', { axis: -1 }, ['in']]],
  Rescaling: [['Rescaling', 'l', { scale: [0.5, 2, -1], offset: [0.1, 0.2, 0.3] }, ['in']]],
  Dropout: [['Dropout', 'l', { rate: 0.5 }, ['in']]],
  SpatialDropout2D: [['SpatialDropout2D', 'l', { rate: 0.5 }, ['in']]],
  GaussianNoise: [['GaussianNoise', 'l', { stddev: 1 }, ['in']]],
  GaussianDropout: [['GaussianDropout', 'l', { rate: 0.5 }, ['in']]],
  AlphaDropout: [['AlphaDropout', 'l', { rate: 0.5 }, ['in']]],
  Add: [['ReLU', 'r', {}, ['in']], ['Add', 'l', {}, ['in', 'r']]],
  Multiply: [['ReLU', 'r', {}, ['in']], ['Multiply', 'l', {}, ['in', 'r']]],
  Subtract: [['ReLU', 'r', {}, ['in']], ['Subtract', 'l', {}, ['in', 'r']]],
  Average: [['ReLU', 'r', {}, ['in']], ['Average', 'l', {}, ['in', 'r']]],
  Maximum: [['Rescaling', 'r', { scale: -0.5 }, ['in']], ['Maximum', 'l', {}, ['in', 'r']]],
  Minimum: [['Rescaling', 'r', { scale: -0.5 }, ['in']], ['Minimum', 'l', {}, ['in', 'r']]],
  TFOpLambda: [['TFOpLambda', 'l', { function: 'math.truediv' }, ['in'], { y: 4 }]],
  ZeroPadding2D: [['ZeroPadding2D', 'l', { padding: [[1, 0], [0, 2]] }, ['in']]],
  GlobalAveragePooling2D: [['GlobalAveragePooling2D', 'l', {}, ['in']]],
  GlobalMaxPooling2D: [['GlobalMaxPooling2D', 'l', { keepdims: true }, ['in']]],
  AveragePooling2D: [['AveragePooling2D', 'l', { pool_size: 2, strides: 1 }, ['in']]],
  MaxPooling2D: [['MaxPooling2D', 'l', { pool_size: [2, 2], strides: [2, 1] }, ['in']]],
  Flatten: [['Flatten', 'l', {}, ['in']]],
  Reshape: [['Reshape', 'l', { target_shape: [-1, 3] }, ['in']]],
};

describe('every registered layer class is analysable and lowerable', () => {
  it('has a sample for every class of the registry', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual([...LAYERS.keys()].sort());
  });
  for (const [cls, layers] of Object.entries(SAMPLES)) {
    it(`${cls}: analysis and lowering agree on the output shape; the graph runs, fused and unfused alike`, async () => {
      const cfg = model(cls, [['InputLayer', 'in', { batch_input_shape: [null, 4, 5, 3] }, []], ...layers]);
      const a = analyzeModel(cfg);
      const w = randomWeights(a, 5);
      const fused = lowerModel(a, w);
      const plain = lowerModel(a, w, { fuse: false });
      expect(fused.outputShape).toEqual(a.outputShape);
      const x = uniform(60, 11, -2, 2);
      const y1 = await run(fused.graph, x);
      const y0 = await run(plain.graph, x);
      expect(y1.length).toBe(a.outputShape.reduce((p, d) => p * d, 1));
      expect(maxAbsDiff(y1, y0)).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('layers analysis used to accept and lowering reject (or the reverse), against naive loops', () => {
  const C = 3;
  const x = uniform(4 * 5 * C, 3, -2, 2);
  const at = (i: number): number => x[i] as number;

  it('Maximum and Minimum of three inputs with broadcasting: within 1e-6 of max/min', async () => {
    for (const [cls, f] of [['Maximum', Math.max], ['Minimum', Math.min]] as const) {
      const cfg = model(cls, [
        ['InputLayer', 'in', { batch_input_shape: [null, 4, 5, C] }, []],
        ['Rescaling', 'neg', { scale: -0.75, offset: 0.25 }, ['in']],
        ['GlobalAveragePooling2D', 'gap', { keepdims: true }, ['in']],
        [cls, 'm', {}, ['in', 'neg', 'gap']],
      ]);
      const got = await run(lowerModel(analyzeModel(cfg), new Map()).graph, x);
      const mean = [0, 1, 2].map((c) => {
        let s = 0;
        for (let p = 0; p < 20; p++) s += at(p * C + c);
        return s / 20;
      });
      const want = Array.from(x, (v, i) => f(v, v * -0.75 + 0.25, mean[i % C] as number));
      expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-6);
    }
  });

  it("Convolution2D (Keras 1's name for Conv2D) with a tanh activation: within 1e-6 of naive loops", async () => {
    const cfg = model('conv', [
      ['InputLayer', 'in', { batch_input_shape: [null, 4, 5, C] }, []],
      ['Convolution2D', 'c', { filters: 2, kernel_size: [1, 1], activation: 'tanh', use_bias: true }, ['in']],
    ]);
    const k = uniform(C * 2, 8);
    const bias = Float32Array.of(0.1, -0.3);
    const w: NamedWeights = new Map([['c/kernel', { shape: [1, 1, C, 2], data: k }], ['c/bias', { shape: [2], data: bias }]]);
    const got = await run(lowerModel(analyzeModel(cfg), w).graph, x);
    const want: number[] = [];
    for (let p = 0; p < 20; p++) {
      for (let o = 0; o < 2; o++) {
        let s = bias[o] as number;
        for (let c = 0; c < C; c++) s += at(p * C + c) * (k[c * 2 + o] as number);
        want.push(Math.tanh(s));
      }
    }
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-6);
  });

  it('per-channel Rescaling and TFOpLambda subtract of a tensor: within 1e-6 of naive loops', async () => {
    const cfg = model('rescale', [
      ['InputLayer', 'in', { batch_input_shape: [null, 4, 5, C] }, []],
      ['Rescaling', 'rs', { scale: [0.5, -2, 3], offset: [1, 0, -1] }, ['in']],
      ['TFOpLambda', 'sub', { function: 'math.subtract' }, ['rs'], { y: ['in', 0, 0] }],
    ]);
    const got = await run(lowerModel(analyzeModel(cfg), new Map()).graph, x);
    const scale = [0.5, -2, 3];
    const offset = [1, 0, -1];
    const want = Array.from(x, (v, i) => v * (scale[i % C] as number) + (offset[i % C] as number) - v);
    expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-6);
  });

  it('options the lowering cannot run are rejected by the analysis already (info and convert say so too)', () => {
    const bad = (layer: Spec): KerasModelConfig => model('bad', [['InputLayer', 'in', { batch_input_shape: [null, 5, 5, C] }, []], layer]);
    // 'same' average pooling that pads: XNNPACK would average the padding in; Keras excludes it.
    expect(() => analyzeModel(bad(['AveragePooling2D', 'ap', { pool_size: 2, padding: 'same' }, ['in']]))).toThrow(UnsupportedLayerError);
    expect(() => analyzeModel(bad(['AveragePooling2D', 'ap', { pool_size: 2, padding: 'same' }, ['in']]))).toThrow(/'ap' of class AveragePooling2D: padding "same" that pads/);
    // Division by a tensor: no divide op.
    const div = model('div', [
      ['InputLayer', 'in', { batch_input_shape: [null, 5, 5, C] }, []],
      ['ReLU', 'r', {}, ['in']],
      ['TFOpLambda', 'd', { function: 'math.truediv' }, ['in'], { y: ['r', 0, 0] }],
    ]);
    expect(() => analyzeModel(div)).toThrow(/'d' of class TFOpLambda: function "math.truediv" with a tensor y/);
    // Per-channel Rescaling with the wrong number of values.
    expect(() => analyzeModel(bad(['Rescaling', 'rs', { scale: [1, 2] }, ['in']]))).toThrow(/'rs' of class Rescaling: scale \[1,2\] \(a number or 3 numbers/);
    expect(() => analyzeModel(bad(['Activation', 'act', { activation: 'gelu' }, ['in']]))).toThrow(/'act' of class Activation: activation "gelu"/);
  });
});

// ---------------------------------------------------------------- nested models

/** The V2 0.35 base at 32x32 under a head, the base nested as `kind` ('Functional' or 'Sequential'). */
function transferModel(kind: 'Functional' | 'Sequential'): { outer: KerasModelConfig; base: KerasModelConfig } {
  const base = buildArchitecture('v2', { alpha: 0.35, inputShape: [32, 32, 3], includeTop: false });
  const inner =
    kind === 'Functional'
      ? { ...base.config, name: 'backbone' }
      : {
          name: 'backbone',
          layers: [
            { class_name: 'InputLayer', config: { name: 'seq_in', batch_input_shape: [null, 32, 32, 3] } },
            { class_name: 'Conv2D', config: { name: 'seq_conv', filters: 4, kernel_size: 3, strides: 2, padding: 'same', activation: 'relu6' } },
            { class_name: 'BatchNormalization', config: { name: 'seq_bn' } },
          ],
        };
  const outer: KerasModelConfig = {
    class_name: 'Functional',
    config: {
      name: 'tuned',
      layers: [
        { class_name: 'InputLayer', name: 'image', config: { name: 'image', batch_input_shape: [null, 32, 32, 3] }, inbound_nodes: [] },
        { class_name: kind, name: 'backbone', config: inner as never, inbound_nodes: [[['image', 0, 0, {}]]] },
        { class_name: 'GlobalAveragePooling2D', name: 'pool', config: { name: 'pool' }, inbound_nodes: [[['backbone', 1, 0, {}]]] },
        { class_name: 'Dense', name: 'head', config: { name: 'head', units: 3, activation: 'softmax' }, inbound_nodes: [[['pool', 0, 0, {}]]] },
      ],
      input_layers: [['image', 0, 0]],
      output_layers: [['head', 0, 0]],
    },
  };
  return { outer, base };
}

/**
 * An identity model with `depth` models nested in each other, as JSON text
 * (JSON.stringify itself would overflow the stack at 100k).
 */
function nestedText(depth: number): string {
  const open: string[] = [];
  const close: string[] = [];
  for (let d = depth; d >= 1; d--) {
    open.push(`{"name":"m${d}","layers":[{"class_name":"InputLayer","name":"i${d}","config":{"name":"i${d}","batch_input_shape":[null,2]},"inbound_nodes":[]},{"class_name":"Functional","name":"n${d}","config":`);
  }
  for (let d = 1; d <= depth; d++) close.push(`,"inbound_nodes":[[["i${d}",0,0,{}]]]}],"input_layers":[["i${d}",0,0]],"output_layers":[["n${d}",0,0]]}`);
  const innermost = '{"name":"m0","layers":[{"class_name":"InputLayer","name":"i0","config":{"name":"i0","batch_input_shape":[null,2]},"inbound_nodes":[]}],"input_layers":[["i0",0,0]],"output_layers":[["i0",0,0]]}';
  return `{"class_name":"Functional","config":${open.join('')}${innermost}${close.join('')}}`;
}

function writeModelJson(dir: string, text: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'model.json'), `{"format":"layers-model","modelTopology":{"model_config":${text}},"weightsManifest":[]}`);
  return path.join(dir, 'model.json');
}

describe('one nested-model inliner for analysis (info, convert) and loading', () => {
  it('a nested Sequential model is inlined by the analysis too (it used to be "no implementation for this layer class" there)', () => {
    const { outer } = transferModel('Sequential');
    const a = analyzeModel(outer);
    expect(a.nestedModels).toEqual(['backbone']);
    expect(a.layers.map((l) => l.name)).toEqual(['image', 'seq_conv', 'seq_bn', 'pool', 'head']);
    expect(a.layers.find((l) => l.name === 'seq_conv')!.inbound).toEqual(['image']);
    expect(a.layers.find((l) => l.name === 'pool')!.inbound).toEqual(['seq_bn']);
    expect(a.outputShape).toEqual([3]);
  });

  it('the weight matching (loadModel, convert) accepts weights named with the nested model in front (.h5 style); outputs equal the flat naming', async () => {
    const { outer, base } = transferModel('Functional');
    const a = analyzeModel(outer);
    const flat = randomWeights(a, 9);
    // The writers take flat configs: write the equivalent flat model, then put the nested
    // config in and rename the backbone's weights as .h5 files of nested models store them.
    const { writeTfjs } = await import('../lib/formats/tfjs-write.js');
    const dir = path.join(tmp, 'prefixed');
    const [, , pool, head] = outer.config.layers as [KerasLayerConfig, KerasLayerConfig, KerasLayerConfig, KerasLayerConfig];
    const flatConfig: KerasModelConfig = {
      class_name: 'Functional',
      config: { ...base.config, layers: [...base.config.layers, { ...pool, inbound_nodes: [[['out_relu', 0, 0, {}]]] }, head], output_layers: [['head', 0, 0]] },
    };
    await writeTfjs(dir, flatConfig, flat);
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as { modelTopology: { model_config: unknown }; weightsManifest: Array<{ weights: Array<{ name: string }> }> };
    json.modelTopology.model_config = outer;
    for (const w of json.weightsManifest.flatMap((g) => g.weights)) if (!w.name.startsWith('head/')) w.name = `backbone/${w.name}`;
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    const x = uniform(32 * 32 * 3, 4, -1, 1);
    const m = await loadModel(dir, { backend: 'reference' });
    try {
      const want = await run(lowerModel(a, flat).graph, x);
      expect(maxAbsDiff(await m.predict(x), want)).toBe(0);
    } finally {
      m.dispose();
    }
    // convert matches the same way (it used to compare the file's prefixed names with the analysis's and fail).
    const { matchWeights } = await import('../lib/keras/weights.js');
    const { readModelFile } = await import('../lib/formats/index.js');
    const file = await readModelFile(dir);
    expect([...matchWeights(analyzeModel(file.config!), file.weights).keys()].sort()).toEqual([...flat.keys()].sort());
  });

  it('the writers (TF.js, .h5, .keras) write models with nested models: inlined, they load back with equal outputs (they wrote files that could not be loaded)', async () => {
    const { writeTfjs } = await import('../lib/formats/tfjs-write.js');
    const { writeH5 } = await import('../lib/formats/h5.js');
    const { writeKeras3 } = await import('../lib/formats/keras3.js');
    for (const kind of ['Functional', 'Sequential'] as const) {
      const { outer } = transferModel(kind);
      const a = analyzeModel(outer);
      expect(a.nestedModels).toEqual(['backbone']);
      const flat = randomWeights(a, 5);
      const x = uniform(32 * 32 * 3, 6, -1, 1);
      const want = await run(lowerModel(a, flat).graph, x);
      const outputs: Array<[string, () => Promise<unknown>]> = [
        [path.join(tmp, `w-${kind}`), () => writeTfjs(path.join(tmp, `w-${kind}`), outer, flat)],
        [path.join(tmp, `w-${kind}.h5`), () => writeH5(path.join(tmp, `w-${kind}.h5`), outer, flat)],
        [path.join(tmp, `w-${kind}.keras`), () => writeKeras3(path.join(tmp, `w-${kind}.keras`), outer, flat)],
      ];
      for (const [file, write] of outputs) {
        await write();
        const m = await loadModel(file, { backend: 'reference' });
        try {
          expect(maxAbsDiff(await m.predict(x), want)).toBe(0);
        } finally {
          m.dispose();
        }
      }
    }
  });

  it('a Keras 2 full-model .h5 of a transfer-learning model (the base saved as one layer group) loads; outputs equal the flat naming', async () => {
    // Keras 2 `save_weights_to_hdf5_group`: one group per outer layer; the nested model's group lists
    // its inner layers' weights (`Conv1/kernel:0`, …). The reader used to name them all
    // `backbone/kernel`, … and fail with "weight appears twice".
    const { outer } = transferModel('Functional');
    const a = analyzeModel(outer);
    const flat = randomWeights(a, 12);
    const { loadH5wasm } = await import('../lib/formats/h5.js');
    const h5 = await loadH5wasm();
    const file = path.join(tmp, 'transfer.h5');
    const f = new h5.File(file, 'w');
    try {
      f.create_attribute('model_config', JSON.stringify(outer), null, 'S');
      f.create_attribute('keras_version', '2.13.1', null, 'S');
      f.create_attribute('backend', 'tensorflow', null, 'S');
      const mw = f.create_group('model_weights');
      const groups: Array<[string, Array<[string, string]>]> = [
        ['image', []],
        ['backbone', [...flat.keys()].filter((k) => !k.startsWith('head/')).map((k) => [k, `${k}:0`])],
        ['pool', []],
        ['head', [['head/kernel', 'head/kernel:0'], ['head/bias', 'head/bias:0']]],
      ];
      const list = (g: typeof mw, name: string, l: string[]): void => {
        if (l.length === 0) g.create_attribute(name, new Float64Array(0), [0], '<d');
        else g.create_attribute(name, l, [l.length], `S${Math.max(...l.map((x) => x.length)) + 1}`);
      };
      list(mw, 'layer_names', groups.map(([n]) => n));
      for (const [name, weights] of groups) {
        const g = mw.create_group(name);
        list(g, 'weight_names', weights.map(([, wn]) => wn));
        for (const [key, wn] of weights) {
          const [scope, dataset] = wn.split('/') as [string, string];
          const sg = (g.get(scope) as typeof mw | null) ?? g.create_group(scope);
          const t = flat.get(key)!;
          sg.create_dataset({ name: dataset, data: t.data, shape: t.shape, dtype: '<f' });
        }
      }
    } finally {
      f.close();
    }
    const x = uniform(32 * 32 * 3, 5, -1, 1);
    const m = await loadModel(file, { backend: 'reference' });
    try {
      expect(m.format).toBe('h5');
      expect(maxAbsDiff(await m.predict(x), await run(lowerModel(a, flat).graph, x))).toBe(0);
    } finally {
      m.dispose();
    }
  });

  it(`models nested more than ${MAX_MODEL_NESTING} deep, and 100,000 deep: ModelFormatError naming the file (was an untyped stack overflow)`, async () => {
    // Within the limit: loads (an identity model).
    const ok = writeModelJson(path.join(tmp, 'nest-ok'), nestedText(MAX_MODEL_NESTING));
    const m = await loadModel(ok, { backend: 'reference' });
    expect(Array.from(await m.predict(Float32Array.of(1, 2)))).toEqual([1, 2]);
    m.dispose();
    const over = writeModelJson(path.join(tmp, 'nest-over'), nestedText(MAX_MODEL_NESTING + 1));
    const e1 = await loadModel(over, { backend: 'reference' }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(ModelFormatError);
    expect((e1 as ModelFormatError).file).toBe(over);
    expect((e1 as Error).message).toBe(`${over}: models are nested more than ${MAX_MODEL_NESTING} deep (at 'n1')`);
    const deep = writeModelJson(path.join(tmp, 'nest-100k'), nestedText(100_000));
    for (const attempt of [(): Promise<unknown> => loadModel(deep, { backend: 'reference' }), (): Promise<unknown> => convertModel(deep, path.join(tmp, 'deep.keras'))]) {
      const e2 = await attempt().catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(ModelFormatError);
      expect((e2 as ModelFormatError).file).toBe(deep);
      // The reader's JSON depth limit (lib/limits.ts) or the inliner's model-nesting limit, whichever is first.
      expect((e2 as Error).message).toMatch(/^.*nest-100k\/model\.json: (JSON nested more than \d+ levels deep: refused|models are nested more than \d+ deep)/);
    }
  });

  it('`mobilenet info` on models nested too deep names the file in the error (it passed no file to the analysis)', async () => {
    const over = writeModelJson(path.join(tmp, 'nest-over-info'), nestedText(MAX_MODEL_NESTING + 1));
    const r = await runCli(['info', over], { cwd: tmp });
    expect(r.code).toBe(1);
    expect(r.err).toBe(`mobilenet info: ModelFormatError: ${over}: models are nested more than ${MAX_MODEL_NESTING} deep (at 'n1')\n`);
  });

  it('config values nested 100,000 deep: ModelFormatError naming the file (was an untyped stack overflow)', async () => {
    const deepValue = `${'['.repeat(100_000)}1${']'.repeat(100_000)}`;
    const file = writeModelJson(
      path.join(tmp, 'deep-value'),
      `{"class_name":"Functional","config":{"name":"m","layers":[{"class_name":"InputLayer","name":"i","config":{"name":"i","batch_input_shape":[null,4,4,1]},"inbound_nodes":[]},{"class_name":"Conv2D","name":"c","config":{"name":"c","filters":1,"kernel_size":${deepValue}},"inbound_nodes":[[["i",0,0,{}]]]}],"input_layers":[["i",0,0]],"output_layers":[["c",0,0]]}}`,
    );
    const err = await loadModel(file, { backend: 'reference' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).file).toBe(file);
    // The reader refuses JSON this deep (lib/limits.ts, 512) before the inliner's own 256-deep check can.
    expect((err as Error).message).toBe(`${file}: JSON nested more than 512 levels deep: refused`);
  });
});

// ---------------------------------------------------------------- linear-time lowering

/** Conv2D 1x1 → BatchNormalization → ReLU(6), repeated: `layers` layers in all. */
function chain(layers: number, reversed = false): KerasModelConfig {
  const specs: Spec[] = [['InputLayer', 'in', { batch_input_shape: [null, 1, 1, 4] }, []]];
  let prev = 'in';
  for (let i = 0; specs.length < layers; i++) {
    const name = `l${i}`;
    const k = i % 3;
    specs.push(k === 0 ? ['Conv2D', name, { filters: 4, kernel_size: 1 }, [prev]] : k === 1 ? ['BatchNormalization', name, {}, [prev]] : ['ReLU', name, { max_value: 6 }, [prev]]);
    prev = name;
  }
  const cfg = model('chain', specs);
  if (reversed) cfg.config.layers.reverse();
  return cfg;
}

describe('lowering is linear in the number of layers', () => {
  it('a 100,000-layer chain lowers with fusion work proportional to its nodes (10x the layers: 10x the work, 2 passes)', () => {
    const work = (n: number, reversed: boolean): { nodes: number; lowered: number; work: number; passes: number; folded: number; clamps: number } => {
      const a = analyzeModel(chain(n, reversed));
      expect(a.layers[0]!.name).toBe('in');
      const l = lowerModel(a, randomWeights(a, 1));
      return { nodes: l.stats.nodes, lowered: l.stats.loweredNodes, work: l.stats.fusionWork, passes: l.stats.fusionPasses, folded: l.stats.foldedAffine, clamps: l.stats.fusedClamps };
    };
    const small = work(10_000, false);
    // Config in reverse order: the topological sort is linear too (it used to take one pass per layer).
    const big = work(100_000, true);
    // Every BatchNorm folded, every ReLU fused: one conv node per 3 layers.
    expect(big.nodes).toBe(33_333);
    expect(big.folded).toBe(33_333);
    expect(big.clamps).toBe(33_333);
    expect(big.passes).toBe(2);
    // The fusion visits each node and updates each edge a bounded number of times
    // (the quadratic version rescanned all nodes per rewrite: ~n²/2 = 5e9 here).
    expect(big.work).toBeLessThanOrEqual(6 * big.lowered);
    expect(big.work / small.work).toBeGreaterThan(9);
    expect(big.work / small.work).toBeLessThan(11);
  }, 300_000);
});

// ---------------------------------------------------------------- weight mismatch messages

describe.skipIf(!hasShared)('WeightMismatchError: the shared V1 0.25 no-top .h5 weights with the config of another model', () => {
  const h5 = (): string => shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5');
  // Weights-only files are resolved against the options first (a contradiction is reported there);
  // a config that does not fit its weights (a full-model file, Model.fromConfig) reaches matchWeights.
  const load = async (arch: 'v1' | 'v2', alpha: number): Promise<unknown> => {
    const { readModelFile } = await import('../lib/formats/index.js');
    const { Model } = await import('../lib/model.js');
    const file = await readModelFile(h5());
    const config = buildArchitecture(arch, { alpha, includeTop: false });
    return Model.fromConfig(config, file.weights, { backend: 'reference' }, { format: 'h5', path: file.path }).catch((e: unknown) => e);
  };

  it('as alpha 0.5: counts the 135 mis-shaped weights, names 3, says it looks like v1 0.25 without top; the hint loads it', async () => {
    const err = await load('v1', 0.5);
    expect(err).toBeInstanceOf(WeightMismatchError);
    const msg = (err as Error).message;
    expect(msg).toBe(
      `${h5()}: Weights do not match model 'mobilenet_0.50_224': 135 of the 135 weights it expects have another shape in the file ` +
        '(conv1/kernel: expected [3,3,3,16] but the file has [3,3,3,8]; conv1_bn/gamma: expected [16] but the file has [8]; ' +
        'conv1_bn/beta: expected [16] but the file has [8]; and 132 more). ' +
        "The file looks like MobileNet v1 alpha 0.25 without top: pass { architecture: 'v1', alpha: 0.25, includeTop: false } (CLI: --arch v1 --alpha 0.25 --no-top).",
    );
    // Was 8,802 characters.
    expect(msg.length).toBeLessThan(700);
    expect((err as WeightMismatchError).details?.misShaped).toHaveLength(135);
    // Following the advice works.
    const m = await loadModel(h5(), { architecture: 'v1', alpha: 0.25, includeTop: false, backend: 'reference' });
    expect(m.outputShape).toEqual([7, 7, 256]);
    m.dispose();
  });

  it('as the wrong architecture (v2): counts missing and unused weights, names 3 of each, says what the file looks like', async () => {
    const err = await load('v2', 0.35);
    expect(err).toBeInstanceOf(WeightMismatchError);
    const msg = (err as Error).message;
    expect(msg).toContain("Weights do not match model 'mobilenetv2_0.35_224': 260 of the 260 weights it expects are missing (Conv1/kernel [3,3,3,16], bn_Conv1/gamma [16], bn_Conv1/beta [16], and 257 more)");
    expect(msg).toContain('135 weights of the file are used by no layer (conv1/kernel [3,3,3,8], conv1_bn/gamma [8], conv1_bn/beta [8], and 132 more)');
    expect(msg).toContain('The file looks like MobileNet v1 alpha 0.25 without top');
    // Was 13,775 characters.
    expect(msg.length).toBeLessThan(800);
    const d = (err as WeightMismatchError).details!;
    expect([d.missing.length, d.misShaped.length, d.extra.length]).toEqual([260, 0, 135]);
  });
});
