/**
 * Keras 3 `.keras` reader and writer (lib/formats/keras3.ts).
 *
 * References: the layout Keras 3's `saving_lib.py` writes (zip entries,
 * `metadata.json` keys, class-based `layers/<snake_case class>[_k]/vars/<i>`
 * weight paths, `__keras_tensor__` inbound nodes), checked by opening our
 * files with fflate and h5wasm directly; a hand-written archive in Keras 3's
 * own serialization (DTypePolicy objects, `module`/`registered_name`,
 * `build_config`) built in the test with h5wasm + fflate, read by our reader
 * and compared with the Keras 2 config and weights written out by hand.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the tests walk parsed JSON documents field by field */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import h5wasm from 'h5wasm/node';
import { unzipSync, zipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, shared } from './helpers/shared.js';
import { keras3LayerPaths, keras3PathMap, normalizeModelConfig, readKeras3, readKeras3Config, toSnakeCase, writeKeras3 } from '../lib/formats/keras3.js';
import { readTfjs } from '../lib/formats/tfjs.js';
import { readModelFile } from '../lib/formats/index.js';
import { buildArchitecture } from '../lib/architectures/index.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { randomWeights } from '../lib/keras/random.js';
import { ModelFormatError, UnsupportedLayerError, WeightMismatchError } from '../lib/errors.js';
import type { NamedWeights, WeightTensor } from '../lib/keras/types.js';

type Group = InstanceType<typeof h5wasm.Group>;
type Dataset = InstanceType<typeof h5wasm.Dataset>;

let tmp: string;
beforeAll(async () => {
  await h5wasm.ready;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-keras3-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function bytesOf(t: WeightTensor | Float32Array): Buffer {
  const d = t instanceof Float32Array ? t : t.data;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

function expectSameWeights(a: NamedWeights, b: NamedWeights): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    const o = b.get(name) as WeightTensor;
    expect(o.shape, name).toEqual(t.shape);
    expect(bytesOf(o).equals(bytesOf(t)), name).toBe(true);
  }
}

/** Opens model.weights.h5 of an archive with h5wasm (written to a temp file). */
function openWeights(zip: Record<string, Uint8Array>, name: string): InstanceType<typeof h5wasm.File> {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, zip['model.weights.h5']!);
  return new h5wasm.File(p, 'r');
}

describe('Keras 3 naming', () => {
  it("snake-cases class names like keras.src.utils.naming.to_snake_case", () => {
    expect(toSnakeCase('Conv2D')).toBe('conv2d');
    expect(toSnakeCase('DepthwiseConv2D')).toBe('depthwise_conv2d');
    expect(toSnakeCase('BatchNormalization')).toBe('batch_normalization');
    expect(toSnakeCase('ReLU')).toBe('re_lu');
    expect(toSnakeCase('GlobalAveragePooling2D')).toBe('global_average_pooling2d');
    expect(toSnakeCase('ZeroPadding2D')).toBe('zero_padding2d');
    expect(toSnakeCase('InputLayer')).toBe('input_layer');
    expect(toSnakeCase('Dense')).toBe('dense');
  });

  it('numbers layer paths per class in layer order', () => {
    const paths = keras3LayerPaths([{ class_name: 'InputLayer' }, { class_name: 'Conv2D' }, { class_name: 'BatchNormalization' }, { class_name: 'Conv2D' }, { class_name: 'Conv2D' }, { class_name: 'BatchNormalization' }]);
    expect(paths).toEqual(['layers/input_layer', 'layers/conv2d', 'layers/batch_normalization', 'layers/conv2d_1', 'layers/conv2d_2', 'layers/batch_normalization_1']);
  });
});

describe.skipIf(!hasShared)('.keras written from the shared 0.75 TF.js model', () => {
  let src: Awaited<ReturnType<typeof readTfjs>>;
  let file: string;
  let zip: Record<string, Uint8Array>;
  beforeAll(async () => {
    src = await readTfjs(shared('models', 'mobilenet_v1_0.75_224', 'model.json'));
    file = path.join(tmp, 'v1_0.75.keras');
    await writeKeras3(file, src.config, src.weights, { date: new Date(2026, 0, 2, 3, 4, 5) });
    zip = unzipSync(fs.readFileSync(file));
  });

  it('is a zip of config.json, metadata.json and model.weights.h5', () => {
    expect(Object.keys(zip).sort()).toEqual(['config.json', 'metadata.json', 'model.weights.h5']);
    const meta = JSON.parse(Buffer.from(zip['metadata.json']!).toString()) as Record<string, unknown>;
    expect(Object.keys(meta).sort()).toEqual(['date_saved', 'keras_version']);
    expect(meta.keras_version).toMatch(/^3\.\d+\.\d+$/);
    expect(meta.date_saved).toBe('2026-01-02@03:04:05');
  });

  it('config.json is in the Keras 3 serialization (module, registered_name, __keras_tensor__ inbound nodes)', () => {
    const cfg = JSON.parse(Buffer.from(zip['config.json']!).toString()) as {
      module: string; class_name: string; registered_name: string; config: { name: string; layers: Array<Record<string, any>>; input_layers: unknown; output_layers: unknown };
    };
    expect(cfg.class_name).toBe('Functional');
    expect(cfg.module).toBe('keras.src.models.functional');
    expect(cfg.registered_name).toBe('Functional');
    expect(cfg.config.name).toBe('mobilenet_0.75_224');
    expect(cfg.config.layers.length).toBe(88);
    expect(cfg.config.input_layers).toEqual([['input_1', 0, 0]]);
    expect(cfg.config.output_layers).toEqual([['reshape_2', 0, 0]]);
    const [input, conv1, bn] = cfg.config.layers as [Record<string, any>, Record<string, any>, Record<string, any>];
    expect(input.class_name).toBe('InputLayer');
    expect(input.config.batch_shape).toEqual([null, 224, 224, 3]);
    expect(input.inbound_nodes).toEqual([]);
    expect(conv1.module).toBe('keras.layers');
    expect(conv1.registered_name).toBeNull();
    expect(conv1.name).toBe('conv1');
    expect(conv1.config.filters).toBe(24);
    expect(conv1.config.kernel_initializer).toEqual({ module: 'keras.initializers', class_name: 'VarianceScaling', config: { distribution: 'uniform', scale: 1, seed: null, mode: 'fan_avg' }, registered_name: null });
    expect(conv1.build_config).toEqual({ input_shape: [null, 224, 224, 3] });
    expect(conv1.inbound_nodes).toEqual([
      { args: [{ class_name: '__keras_tensor__', config: { shape: [null, 224, 224, 3], dtype: 'float32', keras_history: ['input_1', 0, 0] } }], kwargs: {} },
    ]);
    expect(bn.inbound_nodes[0].args[0].config.shape).toEqual([null, 112, 112, 24]);
  });

  it('model.weights.h5 uses class-based layers/<class>[_k]/vars/<i> paths in variable order', () => {
    const f = openWeights(zip, 'w075.h5');
    const ds = (p: string): Dataset => f.get(p) as Dataset;
    try {
      expect(f.keys().sort()).toEqual(['layers', 'vars']);
      const layers = (f.get('layers') as Group).keys();
      expect(layers).toContain('conv2d');
      expect(layers).toContain('conv2d_14');
      expect(layers).not.toContain('conv2d_15');
      expect(layers).toContain('batch_normalization_26');
      expect(layers).toContain('depthwise_conv2d_12');
      expect(layers).not.toContain('conv1');
      expect(ds('layers/conv2d/vars/0').shape).toEqual([3, 3, 3, 24]);
      expect(bytesOf(ds('layers/conv2d/vars/0').value as Float32Array).equals(bytesOf(src.weights.get('conv1/kernel')!))).toBe(true);
      const bnNames = ['gamma', 'beta', 'moving_mean', 'moving_variance'];
      expect((f.get('layers/batch_normalization/vars') as Group).keys().sort()).toEqual(['0', '1', '2', '3']);
      bnNames.forEach((w, i) => expect(bytesOf(ds(`layers/batch_normalization/vars/${i}`).value as Float32Array).equals(bytesOf(src.weights.get(`conv1_bn/${w}`)!)), w).toBe(true));
      expect(bytesOf(ds('layers/depthwise_conv2d/vars/0').value as Float32Array).equals(bytesOf(src.weights.get('conv_dw_1/depthwise_kernel')!))).toBe(true);
      expect(bytesOf(ds('layers/conv2d_1/vars/0').value as Float32Array).equals(bytesOf(src.weights.get('conv_pw_1/kernel')!))).toBe(true);
      // conv_preds is the 15th Conv2D: kernel then bias.
      expect(ds('layers/conv2d_14/vars/0').shape).toEqual([1, 1, 768, 1000]);
      expect(ds('layers/conv2d_14/vars/1').shape).toEqual([1000]);
      expect((f.get('layers/re_lu') ?? f.get('layers/activation')) !== null).toBe(true);
    } finally {
      f.close();
    }
  });

  it('reads back the same config and bit-identical weights', async () => {
    const back = await readKeras3(file);
    expect(back.kerasVersion).toMatch(/^3\./);
    expect(back.dateSaved).toBe('2026-01-02@03:04:05');
    expect(back.config.config.layers).toEqual(src.config.config.layers);
    expect(back.config.config.input_layers).toEqual(src.config.config.input_layers);
    expect(back.config.config.output_layers).toEqual(src.config.config.output_layers);
    expectSameWeights(src.weights, back.weights);
    expect((await readKeras3Config(file)).config.layers.length).toBe(88);
    const viaIndex = await readModelFile(file);
    expect(viaIndex.format).toBe('keras3');
    expect(viaIndex.weights.size).toBe(137);
  });
});

describe('Keras 3 archives as Keras 3 writes them', () => {
  const t = (name: string, shape: number[]): Record<string, unknown> => ({ class_name: '__keras_tensor__', config: { shape: [null, ...shape], dtype: 'float32', keras_history: [name, 0, 0] } });
  const policy = { module: 'keras', class_name: 'DTypePolicy', config: { name: 'float32' }, registered_name: null };
  const init = (c: string): Record<string, unknown> => ({ module: 'keras.initializers', class_name: c, config: c === 'GlorotUniform' ? { seed: null } : {}, registered_name: null });
  const layer = (cls: string, name: string, config: Record<string, unknown>, inbound: unknown[] | null, inShape?: unknown): Record<string, unknown> => ({
    module: 'keras.layers', class_name: cls, config: { name, trainable: true, dtype: policy, ...config }, registered_name: null,
    ...(inShape === undefined ? {} : { build_config: { input_shape: inShape } }), name, inbound_nodes: inbound === null ? [] : [{ args: inbound, kwargs: {} }],
  });
  const config = {
    module: 'keras.src.models.functional', class_name: 'Functional', registered_name: 'Functional', build_config: { input_shape: null }, compile_config: null,
    config: {
      name: 'tiny', trainable: true,
      layers: [
        { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 8, 8, 3], dtype: 'float32', sparse: false, name: 'input_layer' }, registered_name: null, name: 'input_layer', inbound_nodes: [] },
        layer('Conv2D', 'conv', { filters: 4, kernel_size: [3, 3], strides: [1, 1], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: true, kernel_initializer: init('GlorotUniform'), bias_initializer: init('Zeros'), kernel_regularizer: null, bias_regularizer: null, activity_regularizer: null, kernel_constraint: null, bias_constraint: null }, [t('input_layer', [8, 8, 3])], [null, 8, 8, 3]),
        layer('BatchNormalization', 'bn', { axis: -1, momentum: 0.99, epsilon: 0.001, center: true, scale: true, beta_initializer: init('Zeros'), gamma_initializer: init('Ones'), moving_mean_initializer: init('Zeros'), moving_variance_initializer: init('Ones'), beta_regularizer: null, gamma_regularizer: null, beta_constraint: null, gamma_constraint: null, synchronized: false }, [t('conv', [8, 8, 4])], [null, 8, 8, 4]),
        layer('ReLU', 'relu', { max_value: 6.0, negative_slope: 0.0, threshold: 0.0 }, [t('bn', [8, 8, 4])], [null, 8, 8, 4]),
        layer('DepthwiseConv2D', 'dw', { kernel_size: [3, 3], strides: [1, 1], padding: 'same', data_format: 'channels_last', dilation_rate: [1, 1], depth_multiplier: 1, activation: 'linear', use_bias: false, depthwise_initializer: init('GlorotUniform'), bias_initializer: init('Zeros'), depthwise_regularizer: null, bias_regularizer: null, activity_regularizer: null, depthwise_constraint: null, bias_constraint: null }, [t('relu', [8, 8, 4])], [null, 8, 8, 4]),
        layer('Add', 'add', {}, [[t('relu', [8, 8, 4]), t('dw', [8, 8, 4])]], [[null, 8, 8, 4], [null, 8, 8, 4]]),
        layer('GlobalAveragePooling2D', 'gap', { data_format: 'channels_last', keepdims: false }, [t('add', [8, 8, 4])], [null, 8, 8, 4]),
        layer('Dense', 'predictions', { units: 5, activation: 'softmax', use_bias: true, kernel_initializer: init('GlorotUniform'), bias_initializer: init('Zeros'), kernel_regularizer: null, bias_regularizer: null, kernel_constraint: null, bias_constraint: null }, [t('gap', [4])], [null, 4]),
      ],
      input_layers: [['input_layer', 0, 0]],
      output_layers: [['predictions', 0, 0]],
    },
  };
  const vars: Record<string, Array<[number[], Float32Array]>> = {};
  const rand = (n: number, s: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);
  vars['layers/conv2d'] = [[[3, 3, 3, 4], rand(108, 1)], [[4], rand(4, 2)]];
  vars['layers/batch_normalization'] = [[[4], rand(4, 3)], [[4], rand(4, 4)], [[4], rand(4, 5)], [[4], Float32Array.from([1, 2, 3, 4])]];
  vars['layers/depthwise_conv2d'] = [[[3, 3, 4, 1], rand(36, 6)]];
  vars['layers/dense'] = [[[4, 5], rand(20, 7)], [[5], rand(5, 8)]];

  function archive(name: string, opts: { weights?: boolean; dropVar?: string } = {}): string {
    const entries: Record<string, Uint8Array> = {
      'metadata.json': Buffer.from(JSON.stringify({ keras_version: '3.8.0', date_saved: '2025-03-01@10:11:12' })),
      'config.json': Buffer.from(JSON.stringify(config)),
    };
    if (opts.weights !== false) {
      const hp = path.join(tmp, `${name}.weights.h5`);
      const f = new h5wasm.File(hp, 'w');
      f.create_group('vars');
      const layers = f.create_group('layers');
      for (const p of ['input_layer', 're_lu', 'add', 'global_average_pooling2d']) layers.create_group(p).create_group('vars');
      for (const [p, list] of Object.entries(vars)) {
        const g = layers.create_group(p.slice('layers/'.length)).create_group('vars');
        list.forEach(([shape, data], i) => {
          if (`${p}/${i}` !== opts.dropVar) g.create_dataset({ name: String(i), data, shape, dtype: '<f' });
        });
      }
      f.close();
      entries['model.weights.h5'] = fs.readFileSync(hp);
    }
    const file = path.join(tmp, `${name}.keras`);
    fs.writeFileSync(file, zipSync(entries, { level: 0 }));
    return file;
  }

  it('reads the config into the Keras 2 functional form and names vars/<i> by the layer class', async () => {
    const r = await readKeras3(archive('tiny'));
    expect(r.kerasVersion).toBe('3.8.0');
    const layers = r.config.config.layers;
    expect(layers.map((l) => l.class_name)).toEqual(['InputLayer', 'Conv2D', 'BatchNormalization', 'ReLU', 'DepthwiseConv2D', 'Add', 'GlobalAveragePooling2D', 'Dense']);
    expect(layers[0]!.config).toEqual({ batch_input_shape: [null, 8, 8, 3], dtype: 'float32', sparse: false, name: 'input_layer' });
    expect(layers[1]!.config.dtype).toBe('float32');
    expect(layers[1]!.config.kernel_initializer).toEqual({ class_name: 'GlorotUniform', config: { seed: null } });
    expect(layers[1]!.inbound_nodes).toEqual([[['input_layer', 0, 0, {}]]]);
    expect(layers[5]!.inbound_nodes).toEqual([[['relu', 0, 0, {}], ['dw', 0, 0, {}]]]);
    expect(r.config.config.input_layers).toEqual([['input_layer', 0, 0]]);
    expect(r.config.config.output_layers).toEqual([['predictions', 0, 0]]);
    const expected: Record<string, [string, number]> = {
      'conv/kernel': ['layers/conv2d', 0], 'conv/bias': ['layers/conv2d', 1],
      'bn/gamma': ['layers/batch_normalization', 0], 'bn/beta': ['layers/batch_normalization', 1],
      'bn/moving_mean': ['layers/batch_normalization', 2], 'bn/moving_variance': ['layers/batch_normalization', 3],
      'dw/depthwise_kernel': ['layers/depthwise_conv2d', 0],
      'predictions/kernel': ['layers/dense', 0], 'predictions/bias': ['layers/dense', 1],
    };
    expect([...r.weights.keys()].sort()).toEqual(Object.keys(expected).sort());
    for (const [name, [p, i]] of Object.entries(expected)) {
      const [shape, data] = vars[p]![i]!;
      expect(r.weights.get(name)!.shape, name).toEqual(shape);
      expect(bytesOf(r.weights.get(name)!).equals(bytesOf(data)), name).toBe(true);
    }
    // The normalized config is a model our analysis accepts, with Keras's parameter count.
    const a = analyzeModel(r.config);
    expect(a.outputShape).toEqual([5]);
    expect(a.totalParams).toBe(108 + 4 + 16 + 36 + 20 + 5);
  });

  it('normalizes a Keras 3 Sequential config', () => {
    const seq = {
      module: 'keras', class_name: 'Sequential', registered_name: null,
      config: { name: 'seq', trainable: true, dtype: policy, layers: [
        { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 4], dtype: 'float32', sparse: false, name: 'input_layer' }, registered_name: null },
        { module: 'keras.layers', class_name: 'Dense', config: { name: 'd', trainable: true, dtype: policy, units: 2, activation: 'relu', use_bias: true }, registered_name: null, build_config: { input_shape: [null, 4] } },
      ] },
    };
    const c = normalizeModelConfig(seq, 'seq.keras');
    expect(c.config.layers.map((l) => l.class_name)).toEqual(['InputLayer', 'Dense']);
    expect(c.config.layers[1]!.inbound_nodes).toEqual([[['input_layer', 0, 0, {}]]]);
    expect(c.config.layers[1]!.config.dtype).toBe('float32');
    expect(analyzeModel(c).outputShape).toEqual([2]);
  });

  it('a .keras without model.weights.h5 is a ModelFormatError', async () => {
    const p = archive('noweights', { weights: false });
    await expect(readKeras3(p)).rejects.toThrow(ModelFormatError);
    await expect(readKeras3(p)).rejects.toThrow(/noweights\.keras: \.keras archive has no model\.weights\.h5 \(it holds metadata\.json, config\.json\)/);
  });

  it('a missing variable is a WeightMismatchError naming the layer, its path and the expected weights', async () => {
    const p = archive('missingvar', { dropVar: 'layers/dense/1' });
    const err = await readKeras3(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WeightMismatchError);
    expect((err as Error).message).toContain("layer 'predictions' (Dense, layers/dense/vars) expects 2 variables [predictions/kernel, predictions/bias] but the file has 1");
  });

  it('not a zip, a corrupt zip, a config that is not JSON, a missing file', async () => {
    const notZip = path.join(tmp, 'text.keras');
    fs.writeFileSync(notZip, 'not a zip');
    await expect(readKeras3(notZip)).rejects.toThrow(/text\.keras: not a \.keras file \(not a zip archive\)/);
    const good = fs.readFileSync(archive('tiny2'));
    const cut = path.join(tmp, 'cut.keras');
    fs.writeFileSync(cut, good.subarray(0, good.length - 100));
    await expect(readKeras3(cut)).rejects.toThrow(/cut\.keras: corrupt \.keras zip archive/);
    const badJson = path.join(tmp, 'badjson.keras');
    fs.writeFileSync(badJson, zipSync({ 'config.json': Buffer.from('{"class_name": '), 'model.weights.h5': new Uint8Array(8) }));
    await expect(readKeras3(badJson)).rejects.toThrow(/badjson\.keras: config\.json is not valid JSON/);
    await expect(readKeras3(path.join(tmp, 'nope.keras'))).rejects.toThrow(/nope\.keras: file not found/);
  });
});

describe('Keras 3 operations and activations', () => {
  const t = (name: string, shape: number[]): Record<string, unknown> => ({ class_name: '__keras_tensor__', config: { shape: [null, ...shape], dtype: 'float32', keras_history: [name, 0, 0] } });
  // What Keras 3 writes for MobileNetV3's `layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)` and for Activation('hard_sigmoid').
  const json = {
    module: 'keras.src.models.functional', class_name: 'Functional', registered_name: 'Functional',
    config: {
      name: 'ops', trainable: true,
      layers: [
        { module: 'keras.layers', class_name: 'InputLayer', config: { batch_shape: [null, 2, 2, 1], dtype: 'float32', sparse: false, name: 'input_layer' }, registered_name: null, name: 'input_layer', inbound_nodes: [] },
        { module: 'keras.src.ops.numpy', class_name: 'Add', config: { name: 'add' }, registered_name: 'Add', name: 'add', inbound_nodes: [{ args: [t('input_layer', [2, 2, 1]), 3.0], kwargs: {} }] },
        { module: 'keras.layers', class_name: 'ReLU', config: { name: 're_lu', trainable: true, dtype: 'float32', max_value: 6.0, negative_slope: 0.0, threshold: 0.0 }, registered_name: null, name: 're_lu', inbound_nodes: [{ args: [t('add', [2, 2, 1])], kwargs: {} }] },
        { module: 'keras.src.ops.numpy', class_name: 'Multiply', config: { name: 'multiply' }, registered_name: 'Multiply', name: 'multiply', inbound_nodes: [{ args: [t('re_lu', [2, 2, 1]), 0.16666666666666666], kwargs: {} }] },
        { module: 'keras.layers', class_name: 'Activation', config: { name: 'hs', trainable: true, dtype: 'float32', activation: 'hard_sigmoid' }, registered_name: null, name: 'hs', inbound_nodes: [{ args: [t('multiply', [2, 2, 1])], kwargs: {} }] },
        { module: 'keras.layers', class_name: 'Conv2D', config: { name: 'conv', trainable: true, dtype: 'float32', filters: 1, kernel_size: [1, 1], strides: [1, 1], padding: 'valid', data_format: 'channels_last', dilation_rate: [1, 1], groups: 1, activation: 'linear', use_bias: false }, registered_name: null, name: 'conv', inbound_nodes: [{ args: [t('hs', [2, 2, 1])], kwargs: {} }] },
      ],
      input_layers: [['input_layer', 0, 0]],
      output_layers: [['conv', 0, 0]],
    },
  };

  it('scalar operations become TFOpLambda layers and take no weights path; hard_sigmoid keeps its Keras 3 meaning', async () => {
    const c = normalizeModelConfig(json, 'ops.keras');
    const byName = new Map(c.config.layers.map((l) => [l.config.name, l]));
    expect(byName.get('add')).toMatchObject({ class_name: 'TFOpLambda', config: { function: '__operators__.add' }, inbound_nodes: [[['input_layer', 0, 0, { y: 3, name: null }]]] });
    expect(byName.get('multiply')).toMatchObject({ class_name: 'TFOpLambda', config: { function: 'math.multiply' }, inbound_nodes: [[['re_lu', 0, 0, { y: 1 / 6, name: null }]]] });
    // Activation('hard_sigmoid') of Keras 3 is relu6(x + 3) / 6, spelled out in the Keras 2 form.
    expect(byName.get('hs')).toMatchObject({ class_name: 'TFOpLambda', config: { function: 'math.multiply' } });
    expect(c.config.layers.map((l) => l.class_name)).toEqual(['InputLayer', 'TFOpLambda', 'ReLU', 'TFOpLambda', 'TFOpLambda', 'ReLU', 'TFOpLambda', 'Conv2D']);
    // The operations are not layers: the Conv2D is the second layer path after the InputLayer and the ReLU.
    const entries = json.config.layers.map((l) => ({ name: l.name, class_name: l.class_name, op: l.module.startsWith('keras.src.ops') }));
    expect([...keras3PathMap(entries)]).toEqual([['input_layer', 'layers/input_layer'], ['re_lu', 'layers/re_lu'], ['hs', 'layers/activation'], ['conv', 'layers/conv2d']]);
    // Numerically: y = hs(relu6(x + 3) / 6) with hs(z) = relu6(z + 3) / 6, times the 1x1 kernel 2.
    const { Model } = await import('../lib/model.js');
    const weights: NamedWeights = new Map([['conv/kernel', { shape: [1, 1, 1, 1], data: Float32Array.of(2) }]]);
    const m = await Model.fromConfig(c, weights, { backend: 'reference', preprocessing: 'none' });
    try {
      const x = Float32Array.of(-5, -1, 0.5, 4);
      const y = await m.predict(x);
      const relu6 = (z: number): number => Math.min(Math.max(z, 0), 6);
      [...x].forEach((xi, i) => expect(y[i]).toBeCloseTo(2 * (relu6(relu6(xi + 3) / 6 + 3) / 6), 6));
    } finally {
      m.dispose();
    }
  });

  it('an operation of a form we cannot express is an UnsupportedLayerError naming it', () => {
    const bad = structuredClone(json);
    (bad.config.layers[1]!.inbound_nodes[0] as { args: unknown[] }).args = [3.0, t('input_layer', [2, 2, 1]), 1];
    expect(() => normalizeModelConfig(bad, 'ops.keras')).toThrow(UnsupportedLayerError);
    expect(() => normalizeModelConfig(bad, 'ops.keras')).toThrow("Unsupported layer 'add' of class keras.src.ops.numpy.Add: operation with 1 tensor(s) and 2 other argument(s)");
  });
});

describe('random-weight architectures round-trip through .keras', () => {
  for (const arch of ['v2', 'v3-large'] as const) {
    it(`${arch}: config and weights unchanged`, async () => {
      const config = buildArchitecture(arch, { alpha: 0.75, inputShape: [96, 96, 3], classes: 7 });
      const weights = randomWeights(analyzeModel(config), 11);
      const file = path.join(tmp, `${arch}.keras`);
      await writeKeras3(file, config, weights);
      const back = await readKeras3(file);
      // Keras 3's InputLayer keeps only batch_shape/dtype/sparse/name; Keras 2 single-entry
      // nodes (TFOpLambda's [[layer, 0, 0, kwargs]]) come back in the list-of-entries form.
      const norm = (layers: typeof config.config.layers): unknown[] => layers.map((l) => ({
        class_name: l.class_name,
        config: l.class_name === 'InputLayer' ? { name: l.config.name, batch_input_shape: l.config.batch_input_shape, dtype: l.config.dtype } : l.config,
        inbound_nodes: l.inbound_nodes.map((n) => (typeof (n as unknown[])[0] === 'string' ? [n] : n)),
      }));
      expect(norm(back.config.config.layers)).toEqual(norm(config.config.layers));
      expect(analyzeModel(back.config).totalParams).toBe(analyzeModel(config).totalParams);
      const k3 = JSON.parse(Buffer.from(unzipSync(fs.readFileSync(file))['config.json']!).toString()) as { config: { layers: Array<{ class_name: string; module: string }> } };
      expect(k3.config.layers.some((l) => l.class_name === 'TFOpLambda')).toBe(false);
      if (arch === 'v3-large') expect(k3.config.layers.filter((l) => l.module === 'keras.src.ops.numpy').length).toBeGreaterThan(10);
      expectSameWeights(weights, back.weights);
    });
  }

  it('refuses to write weights that do not match the config', async () => {
    const config = buildArchitecture('v2', { alpha: 0.35, inputShape: [96, 96, 3], classes: 3 });
    const weights = randomWeights(analyzeModel(config), 1);
    weights.delete('Conv1/kernel');
    await expect(writeKeras3(path.join(tmp, 'bad.keras'), config, weights)).rejects.toThrow(/^cannot write \.keras: Weights do not match model '.*': 1 of the \d+ weights it expects are missing \(Conv1\/kernel \[3,3,3,16\]\)/);
    expect(fs.existsSync(path.join(tmp, 'bad.keras'))).toBe(false);
  });
});
