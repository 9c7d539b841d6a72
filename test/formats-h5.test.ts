/**
 * Keras HDF5 reader and writer (lib/formats/h5.ts).
 *
 * References: the official Keras Applications weights-only file and the
 * TF.js model of the same weights (../shared: every tensor bit-identical);
 * the Keras layout (attribute and dataset names of `hdf5_format.py` /
 * `legacy_h5_format.py`) read back with h5wasm directly, independently of
 * our reader; hand-made files in the layouts Keras writes (split
 * `layer_names0/1`, byte strings, nested weight scopes, Keras 3 names).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import h5wasm from 'h5wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, repoRoot, shared } from './helpers/shared.js';
import { readH5, readH5Config, writeH5, normalizeH5WeightName, HDF5_OBJECT_HEADER_LIMIT } from '../lib/formats/h5.js';
import { readTfjs } from '../lib/formats/tfjs.js';
import { readModelFile } from '../lib/formats/index.js';
import { buildArchitecture } from '../lib/architectures/index.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { randomWeights } from '../lib/keras/random.js';
import { ModelFormatError, WeightMismatchError } from '../lib/errors.js';
import type { NamedWeights, WeightTensor } from '../lib/keras/types.js';

type Group = InstanceType<typeof h5wasm.Group>;

let tmp: string;
beforeAll(async () => {
  await h5wasm.ready;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-h5-test-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function bytesOf(t: WeightTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function expectSameWeights(a: NamedWeights, b: NamedWeights): void {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  for (const [name, t] of a) {
    const o = b.get(name) as WeightTensor;
    expect(o.shape, name).toEqual(t.shape);
    expect(bytesOf(o).equals(bytesOf(t)), name).toBe(true);
  }
}

function attr(g: Group, name: string): unknown {
  return (g.attrs[name] as { value: unknown } | undefined)?.value;
}

describe('normalizeH5WeightName', () => {
  it('maps Keras weight_names entries to <layer>/<weight> without :0', () => {
    expect(normalizeH5WeightName('conv1', 'conv1/kernel:0')).toBe('conv1/kernel');
    expect(normalizeH5WeightName('conv_dw_1', 'conv_dw_1/depthwise_kernel:0')).toBe('conv_dw_1/depthwise_kernel');
    expect(normalizeH5WeightName('block_1_expand', 'block_1_expand/kernel:0')).toBe('block_1_expand/kernel');
    // A nested model scope in front of the layer name (Keras 2.x nested models).
    expect(normalizeH5WeightName('block_1_expand', 'mobilenetv2_1.00_224/block_1_expand/kernel:0')).toBe('block_1_expand/kernel');
    // Keras 3 legacy .h5: variable paths without :0.
    expect(normalizeH5WeightName('conv1_bn', 'conv1_bn/moving_variance')).toBe('conv1_bn/moving_variance');
    // Layer names containing '/' (Keras V3 builders: Conv/BatchNorm).
    expect(normalizeH5WeightName('Conv/BatchNorm', 'Conv/BatchNorm/gamma:0')).toBe('Conv/BatchNorm/gamma');
  });
});

describe.skipIf(!hasShared)('official Keras weights-only .h5 (MobileNet V1 0.25, no top)', () => {
  it('has 135 tensors, each bit-identical to the same-named tensor of the 0.25 TF.js model', async () => {
    const h = await readH5(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'));
    const t = await readTfjs(shared('models', 'mobilenet_v1_0.25_224', 'model.json'));
    expect(h.config).toBeUndefined();
    expect(h.kerasVersion).toBe('2.0.4');
    expect(h.backend).toBe('tensorflow');
    expect(h.layerOrder.length).toBe(83);
    expect(h.layerOrder.slice(0, 5)).toEqual(['input_1', 'conv1', 'conv1_bn', 'conv1_relu', 'conv_dw_1']);
    expect(h.layerOrder[82]).toBe('global_average_pooling2d_1');
    expect(h.weights.size).toBe(135);
    let values = 0;
    for (const [name, w] of h.weights) {
      const o = t.weights.get(name);
      expect(o, name).toBeDefined();
      expect(w.shape, name).toEqual(o!.shape);
      expect(bytesOf(w).equals(bytesOf(o!)), name).toBe(true);
      values += w.data.length;
    }
    expect(values).toBe(218544);
    expect(h.weights.get('conv1/kernel')!.shape).toEqual([3, 3, 3, 8]);
    expect(h.weights.get('conv_pw_13/kernel')!.shape).toEqual([1, 1, 256, 256]);
    expect([...t.weights.keys()].filter((k) => !h.weights.has(k)).sort()).toEqual(['conv_preds/bias', 'conv_preds/kernel']);
    expect(await readH5Config(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'))).toBeUndefined();
  });

  it('is dispatched to the HDF5 reader by readModelFile', async () => {
    const f = await readModelFile(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'));
    expect(f.format).toBe('h5');
    expect(f.config).toBeUndefined();
    expect(f.weights.size).toBe(135);
  });

  it('round-trips through the weights-only layout unchanged', async () => {
    const h = await readH5(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'));
    const out = path.join(tmp, 'weights-only.h5');
    await writeH5(out, undefined, h.weights, { kerasVersion: '2.0.4' });
    const back = await readH5(out);
    expect(back.config).toBeUndefined();
    expectSameWeights(h.weights, back.weights);
    const f = new h5wasm.File(out, 'r');
    try {
      expect(f.keys()).not.toContain('model_weights');
      expect(attr(f, 'model_config')).toBeUndefined();
      expect(attr(f, 'keras_version')).toBe('2.0.4');
      expect((f.get('conv_dw_1/conv_dw_1/depthwise_kernel:0') as InstanceType<typeof h5wasm.Dataset>).shape).toEqual([3, 3, 8, 1]);
    } finally {
      f.close();
    }
  });
});

describe.skipIf(!hasShared)('full-model .h5 written from the shared 0.75 TF.js model', () => {
  let src: Awaited<ReturnType<typeof readTfjs>>;
  let file: string;
  beforeAll(async () => {
    src = await readTfjs(shared('models', 'mobilenet_v1_0.75_224', 'model.json'));
    file = path.join(tmp, 'v1_0.75.h5');
    await writeH5(file, src.config, src.weights, { kerasVersion: '2.1.4' });
  });

  it('follows the Keras full-model layout (read with h5wasm directly)', () => {
    const f = new h5wasm.File(file, 'r');
    try {
      expect(f.keys()).toEqual(['model_weights']);
      expect(attr(f, 'keras_version')).toBe('2.1.4');
      expect(attr(f, 'backend')).toBe('tensorflow');
      const mc = JSON.parse(attr(f, 'model_config') as string) as { class_name: string; config: { layers: unknown[] } };
      expect(mc).toEqual(JSON.parse(JSON.stringify(src.config)));
      const mw = f.get('model_weights') as Group;
      const layerNames = attr(mw, 'layer_names') as string[];
      expect(layerNames).toEqual(src.config.config.layers.map((l) => l.config.name));
      expect(layerNames.length).toBe(88);
      expect(attr(mw, 'backend')).toBe('tensorflow');
      expect(attr(mw, 'keras_version')).toBe('2.1.4');
      // One group per layer, weight_names as Keras writes them, datasets at <layer>/<layer>/<weight>:0.
      expect(mw.keys().sort()).toEqual([...layerNames].sort());
      expect(attr(mw.get('conv1') as Group, 'weight_names')).toEqual(['conv1/kernel:0']);
      expect(attr(mw.get('conv1_bn') as Group, 'weight_names')).toEqual([
        'conv1_bn/gamma:0', 'conv1_bn/beta:0', 'conv1_bn/moving_mean:0', 'conv1_bn/moving_variance:0',
      ]);
      expect(attr(mw.get('conv_dw_1') as Group, 'weight_names')).toEqual(['conv_dw_1/depthwise_kernel:0']);
      expect(attr(mw.get('conv_preds') as Group, 'weight_names')).toEqual(['conv_preds/kernel:0', 'conv_preds/bias:0']);
      const empty = attr(mw.get('input_1') as Group, 'weight_names') as ArrayLike<number>;
      expect(empty.length).toBe(0);
      const k = f.get('model_weights/conv1/conv1/kernel:0') as InstanceType<typeof h5wasm.Dataset>;
      expect(k.shape).toEqual([3, 3, 3, 24]);
      expect(k.dtype).toBe('<f');
      expect(Buffer.from((k.value as Float32Array).buffer).equals(bytesOf(src.weights.get('conv1/kernel')!))).toBe(true);
      const mv = f.get('model_weights/conv_pw_13_bn/conv_pw_13_bn/moving_variance:0') as InstanceType<typeof h5wasm.Dataset>;
      expect(mv.shape).toEqual([768]);
      const bias = f.get('model_weights/conv_preds/conv_preds/bias:0') as InstanceType<typeof h5wasm.Dataset>;
      expect(bias.shape).toEqual([1000]);
    } finally {
      f.close();
    }
  });

  it('reads back the same config and bit-identical weights', async () => {
    const back = await readH5(file);
    expect(back.kerasVersion).toBe('2.1.4');
    expect(back.config).toEqual(src.config);
    expect(back.layerOrder.length).toBe(88);
    expectSameWeights(src.weights, back.weights);
    expect(await readH5Config(file)).toEqual(src.config);
  });

  it('leaves no temporary file behind and replaces an existing file atomically', async () => {
    await writeH5(file, src.config, src.weights, { kerasVersion: '2.1.4' });
    expect(fs.readdirSync(tmp).filter((n) => n.includes('.tmp-'))).toEqual([]);
  });

  it('refuses weights of layers that are not in the config', async () => {
    const w = new Map(src.weights);
    w.set('no_such_layer/kernel', { shape: [1], data: new Float32Array(1) });
    await expect(writeH5(path.join(tmp, 'x.h5'), src.config, w)).rejects.toThrow(WeightMismatchError);
    await expect(writeH5(path.join(tmp, 'x.h5'), src.config, w)).rejects.toThrow(/no_such_layer/);
    expect(fs.existsSync(path.join(tmp, 'x.h5'))).toBe(false);
  });
});

describe('layouts Keras writes', () => {
  it('round-trips a random MobileNetV3-Small whose layer names contain "/" (Conv, Conv/BatchNorm nest in HDF5)', async () => {
    const config = buildArchitecture('v3-small', { alpha: 0.75, inputShape: [96, 96, 3], classes: 10 });
    const weights = randomWeights(analyzeModel(config), 3);
    const file = path.join(tmp, 'v3.h5');
    await writeH5(file, config, weights);
    const back = await readH5(file);
    expect(back.config).toEqual(config);
    expectSameWeights(weights, back.weights);
    const f = new h5wasm.File(file, 'r');
    try {
      const names = [...weights.keys()];
      const bn = names.find((n) => n.includes('/BatchNorm/gamma'));
      expect(bn).toBeDefined();
      const layer = bn!.slice(0, bn!.lastIndexOf('/'));
      expect(attr(f.get(`model_weights/${layer}`) as Group, 'weight_names')).toContain(`${layer}/gamma:0`);
      expect((f.get(`model_weights/${layer}/${layer}/gamma:0`) as InstanceType<typeof h5wasm.Dataset>).shape).toEqual(weights.get(bn!)!.shape);
    } finally {
      f.close();
    }
  });

  it('reads layer_names split into layer_names0/1, byte strings, nested scopes and Keras 3 weight names', async () => {
    const file = path.join(tmp, 'handmade.h5');
    const f = new h5wasm.File(file, 'w');
    const kernel = Float32Array.from({ length: 2 * 3 }, (_, i) => i / 7);
    const gamma = Float32Array.from([1.5, -2.25]);
    try {
      f.create_attribute('backend', 'tensorflow', null, 'A');
      f.create_attribute('keras_version', '2.2.4', null, 'A');
      // Split list of fixed-length byte strings, as save_attributes_to_hdf5_group writes long lists.
      f.create_attribute('layer_names0', ['input_1', 'block_1_expand'], [2], 'A20');
      f.create_attribute('layer_names1', ['bn'], [1], 'A20');
      f.create_group('input_1').create_attribute('weight_names', new Float64Array(0), [0], '<d');
      const g = f.create_group('block_1_expand');
      g.create_attribute('weight_names', ['mobilenetv2_1.00_224/block_1_expand/kernel:0'], [1], 'A60');
      g.create_group('mobilenetv2_1.00_224').create_group('block_1_expand').create_dataset({ name: 'kernel:0', data: kernel, shape: [2, 3], dtype: '<f' });
      const b = f.create_group('bn');
      b.create_attribute('weight_names', ['bn/gamma'], [1], 'S10');
      b.create_group('bn').create_dataset({ name: 'gamma', data: new Float64Array(gamma), shape: [2], dtype: '<d' });
    } finally {
      f.close();
    }
    const r = await readH5(file);
    expect(r.layerOrder).toEqual(['input_1', 'block_1_expand', 'bn']);
    expect(r.kerasVersion).toBe('2.2.4');
    expect([...r.weights.keys()]).toEqual(['block_1_expand/kernel', 'bn/gamma']);
    expect(r.weights.get('block_1_expand/kernel')!.shape).toEqual([2, 3]);
    expect([...r.weights.get('block_1_expand/kernel')!.data]).toEqual([...kernel]);
    expect([...r.weights.get('bn/gamma')!.data]).toEqual([1.5, -2.25]);
  });

  it('splits layer_names above the 64512-byte HDF5 header limit, as Keras does, and reads them back', async () => {
    const weights: NamedWeights = new Map();
    const n = 700;
    const name = (i: number): string => `layer_${String(i).padStart(4, '0')}_`.padEnd(100, 'x');
    for (let i = 0; i < n; i++) weights.set(`${name(i)}/bias`, { shape: [1], data: Float32Array.of(i) });
    const file = path.join(tmp, 'split.h5');
    await writeH5(file, undefined, weights);
    const f = new h5wasm.File(file, 'r');
    let chunks: string[];
    try {
      chunks = Object.keys(f.attrs).filter((k) => k.startsWith('layer_names')).sort();
      expect(chunks).toEqual(['layer_names0', 'layer_names1']);
      const parts = chunks.map((k) => attr(f, k) as string[]);
      for (const p of parts) expect(p.length * (p[0]!.length + 1)).toBeLessThanOrEqual(HDF5_OBJECT_HEADER_LIMIT);
      expect(parts[0]!.length).toBe(350);
    } finally {
      f.close();
    }
    const back = await readH5(file);
    expect(back.layerOrder.length).toBe(n);
    expect(back.layerOrder[699]).toBe(name(699));
    expect(back.weights.get(`${name(699)}/bias`)!.data[0]).toBe(699);
  });
});

describe.skipIf(!hasShared)('the HDF5 reader worker', () => {
  it('does not keep a process alive after a read (a CLI exits when done)', () => {
    const script = path.join(tmp, 'exit-check.mts');
    const lib = pathToFileURL(path.join(repoRoot, 'lib', 'formats', 'h5.ts')).href;
    fs.writeFileSync(script, `import { readH5 } from ${JSON.stringify(lib)};\nconst r = await readH5(${JSON.stringify(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'))});\nconsole.log('tensors', r.weights.size);\n`);
    const started = Date.now();
    const res = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    expect(res.signal).toBeNull();
    expect(res.status).toBe(0);
    expect(res.stdout).toContain('tensors 135');
    expect(Date.now() - started).toBeLessThan(60_000);
  });
});

describe('the HDF5 reader runs in a process of its own', () => {
  it.skipIf(!hasShared)("reading a .h5 leaves no HDF5 memory in the caller's process once the reader has stopped", () => {
    // On a worker thread, the WebAssembly module and its compilation left 22-32 MB resident after the thread stopped
    // (malloc_trim gave none of it back); in a child process they leave with it (4-5 MB: the read's own results, code pages).
    const script = path.join(tmp, 'rss-check.mts');
    const lib = pathToFileURL(path.join(repoRoot, 'lib', 'formats', 'h5.ts')).href;
    const file = shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5');
    fs.writeFileSync(
      script,
      `import { readH5 } from ${JSON.stringify(lib)};
const gc = globalThis.gc;
const settle = async () => { for (let i = 0; i < 3; i++) { gc(); await new Promise((r) => setTimeout(r, 100)); } };
await settle();
const before = process.memoryUsage.rss();
let r = await readH5(${JSON.stringify(file)});
const n = r.weights.size;
r = null;
await new Promise((r) => setTimeout(r, 300)); // the idle reader stops after 50 ms
await settle();
console.log(JSON.stringify({ n, growth: (process.memoryUsage.rss() - before) / 2 ** 20 }));
`,
    );
    const res = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', script], { cwd: repoRoot, encoding: 'utf8', timeout: 120_000 });
    expect(res.status, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout.trim().split('\n').pop()!) as { n: number; growth: number };
    expect(out.n).toBe(135);
    expect(out.growth).toBeLessThan(15);
  });

  it.skipIf(process.platform !== 'linux')('a reader whose parent is killed while the HDF5 library is busy kills itself', async () => {
    // The reader blocked in a synchronous call (here: opening a FIFO nobody writes, which the library itself
    // refuses to read, so the request goes straight to the worker) never sees its channel close; its watchdog
    // thread notices the new parent and ends it.
    const fifo = path.join(tmp, 'busy.fifo');
    spawnSync('mkfifo', [fifo]);
    const worker = path.join(repoRoot, 'lib', 'formats', 'h5-worker.js');
    const middle = path.join(tmp, 'middle.mjs');
    fs.writeFileSync(
      middle,
      `import { fork } from 'node:child_process';
const c = fork(${JSON.stringify(worker)}, [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
c.send({ op: 'tree', id: 1, file: ${JSON.stringify(fifo)}, maxNodes: 10, maxAttrBytes: 1000 });
console.log(c.pid);
setInterval(() => {}, 1000);
`,
    );
    const m = spawn(process.execPath, [middle], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve) => m.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    try {
      // Long enough for the reader to load the HDF5 library and block in open().
      await new Promise((r) => setTimeout(r, 2000));
      expect(alive()).toBe(true);
      m.kill('SIGKILL');
      const deadline = Date.now() + 10_000;
      while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(alive()).toBe(false);
    } finally {
      m.kill('SIGKILL');
      if (alive()) process.kill(pid, 'SIGKILL');
    }
  }, 30_000);
});

describe('corrupt and non-Keras HDF5 inputs give a ModelFormatError naming the file and the problem', () => {
  it('a path that does not exist', async () => {
    const p = path.join(tmp, 'missing.h5');
    await expect(readH5(p)).rejects.toThrow(ModelFormatError);
    await expect(readH5(p)).rejects.toThrow(`${p}: file not found`);
  });

  it('a file that is not HDF5', async () => {
    const p = path.join(tmp, 'text.h5');
    fs.writeFileSync(p, 'hello, not an hdf5 file\n');
    await expect(readH5(p)).rejects.toThrow(ModelFormatError);
    await expect(readH5(p)).rejects.toThrow(/text\.h5: not an HDF5 file \(no HDF5 signature; 24 bytes\)/);
  });

  it('HDF5 that is not a Keras file', async () => {
    const p = path.join(tmp, 'plain.h5');
    const f = new h5wasm.File(p, 'w');
    f.create_dataset({ name: 'data', data: new Float32Array([1, 2, 3]), shape: [3], dtype: '<f' });
    f.close();
    await expect(readH5(p)).rejects.toThrow(ModelFormatError);
    await expect(readH5(p)).rejects.toThrow(/plain\.h5: not a Keras HDF5 file: no layer_names attribute at the root \(root holds: data\)/);
  });

  it.skipIf(!hasShared)('a truncated .h5', async () => {
    const p = path.join(tmp, 'truncated.h5');
    const bytes = fs.readFileSync(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'));
    fs.writeFileSync(p, bytes.subarray(0, 100_000));
    const err = await readH5(p).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toContain('truncated.h5: ');
    expect((err as Error).message).toMatch(/corrupt|truncated|cannot open|no dataset/);
  });

  it('a weight listed in weight_names without its dataset', async () => {
    const p = path.join(tmp, 'dangling.h5');
    const f = new h5wasm.File(p, 'w');
    f.create_attribute('layer_names', ['conv1'], [1], 'A6');
    f.create_group('conv1').create_attribute('weight_names', ['conv1/kernel:0'], [1], 'A15');
    f.close();
    await expect(readH5(p)).rejects.toThrow(/dangling\.h5: weight 'conv1\/kernel:0' listed in weight_names of layer 'conv1' has no dataset at conv1\/conv1\/kernel:0/);
  });

  it('a model_config that is not JSON', async () => {
    const p = path.join(tmp, 'badconfig.h5');
    const f = new h5wasm.File(p, 'w');
    f.create_attribute('model_config', '{"class_name": "Functional", "config": {', null, 'A');
    const mw = f.create_group('model_weights');
    mw.create_attribute('layer_names', ['x'], [1], 'A2');
    mw.create_group('x').create_attribute('weight_names', new Float64Array(0), [0], '<d');
    f.close();
    await expect(readH5(p)).rejects.toThrow(/badconfig\.h5: model_config attribute is not valid JSON/);
  });
});
