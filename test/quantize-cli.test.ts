/**
 * `mobilenet quantize --equalization off|free|all`, `--backend native|reference`,
 * `--resize crop|squash`, `--float-ops op,op` and the builder flags (lib/cli/quantize.ts): each saved
 * model is byte for byte the one `quantizeModel` (called directly, the
 * independent path) saves with the same option, the options change the model,
 * the metadata records the equalization, `--backend reference` keeps none of
 * the ops `floatOpsFor('native')` keeps in float32, and bad values are
 * UsageErrors with the parameter template.
 *
 * A small random network (12×12 input) calibrated on 3 images keeps this fast:
 * conv → depthwise (the conv's output is read only by the depthwise: what
 * 'free' equalization rescales) → AveragePooling2D (no XNNPACK build has it in
 * int8: float32 for 'native', int8 for 'reference') → 1×1 conv → pooling → Dense.
 * The calibration images are 20×12, so crop and squash differ.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArchitecture } from '../lib/architectures/index.js';
import { builderHelp } from '../lib/cli/options.js';
import { run as quantizeCommand } from '../lib/cli/quantize.js';
import { UsageError } from '../lib/errors.js';
import { writeH5 } from '../lib/formats/h5.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { randomWeights } from '../lib/keras/random.js';
import { captureIO, runCli } from './helpers/cli-io.js';
import { tinyNetConfig, writeNoisePngs, writeTinyNet } from './helpers/tiny-net.js';
import { loadQuantizedModel, quantizeModel, type QuantizeOptions } from '../lib/quantize/index.js';
import { FLOAT_ONLY_OPS, QUANTIZABLE_OPS } from '../lib/quantize/quantize.js';
import type { QOp } from '../lib/quantize/qgraph.js';
import { OP_NAMES, opSpec } from '../lib/schema.js';
import { floatOpsFor } from '../lib/quantize/pipeline.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-quantize-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const modelJson = path.join(tmp, 'float', 'model.json');
const calDir = path.join(tmp, 'cal');

const config = tinyNetConfig('quantize_cli_net', 4);

beforeAll(async () => {
  await writeTinyNet(modelJson, config, 7);
  await writeNoisePngs(calDir, 20, 11);
});

const cli = (args: string[]): ReturnType<typeof runCli> => runCli(['quantize', ...args], { cwd: tmp });

interface Saved {
  json: { quantization: { equalization?: string; floatOps?: string[] }; graph: { tensors: Array<{ dtype: string }>; nodes: Array<{ op: string; output: number }> } };
  weights: Buffer;
}

function readSaved(dir: string): Saved {
  return { json: JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as Saved['json'], weights: fs.readFileSync(path.join(dir, 'weights.bin')) };
}

/** `mobilenet quantize <model> <dir> --calibration <cal> ...flags`; the saved model. */
async function viaCli(name: string, flags: string[]): Promise<Saved> {
  const dir = path.join(tmp, `cli-${name}`);
  const r = await cli([modelJson, dir, '--calibration', calDir, ...flags]);
  expect(r.code, r.err).toBe(0);
  return readSaved(dir);
}

/** `quantizeModel` with the same images and `options`, saved; the saved model. */
async function viaApi(name: string, options: Omit<QuantizeOptions, 'calibration'>): Promise<Saved> {
  const dir = path.join(tmp, `api-${name}`);
  const q = await quantizeModel(modelJson, { calibration: calDir, ...options });
  await q.save(dir);
  return readSaved(dir);
}

/** The same model: graph, quantization record and weight bytes (not generatedBy). */
function expectSame(a: Saved, b: Saved, what: string): void {
  expect(a.json.graph, what).toEqual(b.json.graph);
  expect(a.json.quantization, what).toEqual(b.json.quantization);
  expect(a.weights.equals(b.weights), what).toBe(true);
}

/** Ops of the nodes computed in float32 (conversions left out). */
function floatNodeOps(s: Saved): string[] {
  const { tensors, nodes } = s.json.graph;
  return nodes.filter((n) => n.op !== 'convert' && tensors[n.output]!.dtype === 'float32').map((n) => n.op);
}

describe('mobilenet quantize --equalization', () => {
  it('off, free (the default) and all each save the model quantizeModel saves with that option, and record it', async () => {
    const byDefault = await viaCli('eq-default', []);
    const off = await viaCli('eq-off', ['--equalization', 'off']);
    const free = await viaCli('eq-free', ['--equalization', 'free']);
    const all = await viaCli('eq-all', ['--equalization', 'all']);
    expectSame(off, await viaApi('eq-off', { equalization: 'off' }), 'off');
    expectSame(byDefault, await viaApi('eq-default', {}), 'default');
    expectSame(free, byDefault, 'free is the default');
    expectSame(all, await viaApi('eq-all', { equalization: 'all' }), 'all');
    expect(byDefault.json.quantization.equalization).toBe('free');
    expect(off.json.quantization.equalization).toBe('off');
    expect(all.json.quantization.equalization).toBe('all');
    // The option changes the model: c1's output channels are rescaled for the depthwise reading them.
    expect(off.weights.equals(byDefault.weights)).toBe(false);
  }, 60_000);
});

describe('mobilenet quantize --backend', () => {
  it('reference keeps only the schema\'s float32-only ops in float32 (floatOpsFor("reference")); native keeps floatOpsFor("native"); each as quantizeModel, and each saved model loads again', async () => {
    const native = new Set<string>(floatOpsFor('native'));
    expect(native.has('averagePool2d')).toBe(true); // no XNNPACK build has an int8 average pooling (docs/int8.md)
    // The schema has no int8 average pooling: no backend gets one (it once wrote a reference
    // model with an int8 averagePool2d that loadModel / loadQuantizedModel / info then refused).
    expect([...floatOpsFor('reference')]).toEqual([...FLOAT_ONLY_OPS]);
    expect(FLOAT_ONLY_OPS.has('averagePool2d')).toBe(true);
    expect(opSpec('averagePool2d').outputDtypes ?? ['float32']).not.toContain('qint8');
    const ref = await viaCli('ref', ['--backend', 'reference']);
    const nat = await viaCli('native', ['--backend', 'native']);
    expectSame(ref, await viaApi('ref', { backend: 'reference' }), 'reference');
    expectSame(nat, await viaApi('native', { backend: 'native' }), 'native');
    expectSame(await viaCli('backend-default', []), nat, 'native is the default where the addon loads');
    expect(ref.json.quantization.floatOps).toEqual(['averagePool2d']);
    expect(nat.json.quantization.floatOps).toEqual(['averagePool2d']);
    // In the graph: both compute average pooling in float32 (between converts); the reference
    // model keeps nothing else of floatOpsFor('native') in float32.
    const refFloat = floatNodeOps(ref);
    const natFloat = floatNodeOps(nat);
    expect(natFloat).toContain('averagePool2d');
    expect(refFloat).toContain('averagePool2d');
    expect(refFloat.filter((op) => native.has(op) && !FLOAT_ONLY_OPS.has(op as QOp))).toEqual([]);
    // Each saved model loads again (the op schema validates it) and runs on the reference int8 kernels.
    for (const name of ['ref', 'native']) {
      const q = await loadQuantizedModel(path.join(tmp, `cli-${name}`));
      const out = await q.predict(new Float32Array(12 * 12 * 3).fill(0.25), { batch: 1 });
      expect(out.length).toBe(4);
      expect(Math.abs(out.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-3);
      q.dispose();
    }
  }, 60_000);
});

describe('mobilenet quantize --resize', () => {
  it('squash (whole image) and crop (the default) each save the model quantizeModel saves with that option', async () => {
    const squash = await viaCli('squash', ['--resize', 'squash']);
    expectSame(squash, await viaApi('squash', { resize: 'squash' }), 'squash');
    expectSame(await viaCli('crop', ['--resize', 'crop']), await viaApi('crop', {}), 'crop is the default');
    expect(squash.weights.equals((await viaApi('crop2', { resize: 'crop' })).weights)).toBe(false);
  }, 60_000);
});

describe('mobilenet quantize --float-ops', () => {
  it('keeps the named ops (comma-separated) in float32: the model quantizeModel saves with floatOps, not the one without the flag', async () => {
    const dw = await viaCli('float-ops-dw', ['--float-ops', 'depthwiseConv2d']);
    expectSame(dw, await viaApi('float-ops-dw', { floatOps: ['depthwiseConv2d'] }), 'depthwiseConv2d');
    const byDefault = await viaCli('float-ops-default', []);
    expect(dw.weights.equals(byDefault.weights)).toBe(false);
    expect(floatNodeOps(byDefault)).not.toContain('depthwiseConv2d');
    expect(floatNodeOps(dw)).toContain('depthwiseConv2d');
    expect(dw.json.quantization.floatOps).toEqual(['averagePool2d', 'depthwiseConv2d']);
    // A list (spaces around the names allowed); ops the network does not have change nothing.
    const two = await viaCli('float-ops-two', ['--float-ops', 'depthwiseConv2d, maxPool2d']);
    expectSame(two, await viaApi('float-ops-two', { floatOps: ['depthwiseConv2d', 'maxPool2d'] }), 'depthwiseConv2d,maxPool2d');
    expectSame(two, dw, 'maxPool2d is not in the network');
  }, 60_000);
});

describe('mobilenet quantize: builder flags for weights-only files (the list classify, info and convert take)', () => {
  // A weights-only .h5 (no model config) of a random V1 0.25 with a 4-class top.
  const h5 = path.join(tmp, 'v1-weights-only.h5');
  beforeAll(async () => {
    const v1 = buildArchitecture('v1', { alpha: 0.25, inputShape: [32, 32, 3], classes: 4 });
    await writeH5(h5, undefined, randomWeights(analyzeModel(v1), 3));
  }, 60_000);

  it('--input-size 32 --classifier-activation linear: the model quantizeModel saves with those model options (logits: no softmax)', async () => {
    const dir = path.join(tmp, 'cli-linear');
    const r = await cli([h5, dir, '--calibration', calDir, '--input-size', '32', '--classifier-activation', 'linear']);
    expect(r.code, r.err).toBe(0);
    const linear = readSaved(dir);
    const api = path.join(tmp, 'api-linear');
    await (await quantizeModel(h5, { calibration: calDir, model: { inputShape: [32, 32, 3], classifierActivation: 'linear' } })).save(api);
    expectSame(linear, readSaved(api), 'linear');
    expect(linear.json.graph.nodes.map((n) => n.op)).not.toContain('softmax');
  }, 60_000);

  it('a flag that does not apply: UsageError naming the flags', async () => {
    const r = await cli([h5, path.join(tmp, 'cli-bad-builder'), '--calibration', calDir, '--input-size', '32', '--dropout-rate', '0.3']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('mobilenet quantize: --dropout-rate 0.3 applies to --arch v3-small or --arch v3-large only, not to v1\n');
  }, 60_000);
});

describe('mobilenet quantize: bad --equalization / --backend / --resize / --method / --float-ops values', () => {
  const cases: Array<[string[], string]> = [
    [['--equalization', 'none'], 'Expected one of off, free, all for --equalization but received "none"'],
    [['--equalization', 'Free'], 'Expected one of off, free, all for --equalization but received "Free"'],
    [['--equalization', ''], 'Expected one of off, free, all for --equalization but received ""'],
    [['--backend', 'wasm'], 'Expected one of native, reference for --backend but received "wasm"'],
    [['--backend', 'xnnpack'], 'Expected one of native, reference for --backend but received "xnnpack"'],
    [['--resize', 'fit'], 'Expected one of crop, squash for --resize but received "fit"'],
    [['--method', 'percentile'], 'Expected one of minmax, mse for --method but received "percentile"'],
    // The op names quantizeModel's floatOps takes: the op schema's.
    [['--float-ops', 'conv'], `Expected one of ${OP_NAMES.join(', ')} for --float-ops but received "conv"`],
    [['--float-ops', 'depthwiseConv2d,Conv2D'], `Expected one of ${OP_NAMES.join(', ')} for --float-ops but received "Conv2D"`],
    [['--float-ops', 'depthwiseConv2d,,conv2d'], `Expected one of ${OP_NAMES.join(', ')} for --float-ops but received ""`],
    [['--float-ops', ''], `Expected one of ${OP_NAMES.join(', ')} for --float-ops but received ""`],
  ];

  it('a UsageError with the parameter template, before anything is read or written', async () => {
    for (const [flags, message] of cases) {
      const out = path.join(tmp, 'bad');
      const err = await quantizeCommand([modelJson, out, '--calibration', calDir, ...flags], captureIO({ cwd: tmp }).io).catch((e: unknown) => e);
      expect(err, flags.join(' ')).toBeInstanceOf(UsageError);
      expect((err as Error).message).toBe(message);
      // Through main: exit code 1 and the message on stderr.
      const r = await cli([modelJson, out, '--calibration', calDir, ...flags]);
      expect(r.code).toBe(1);
      expect(r.err).toBe(`mobilenet quantize: ${message}\n`);
      expect(fs.existsSync(out)).toBe(false);
    }
  });

  it('--help lists the flags with their values', async () => {
    const r = await cli(['--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/--resize <mode> .*\bcrop \(default[^]*\bsquash\b/);
    expect(r.out).toContain(builderHelp());
    expect(r.out).toMatch(/--equalization <e> .*\bfree \(default\)[^]*\ball\b[^]*\boff\b/);
    expect(r.out).toMatch(/--backend <b> .*\bnative \(default[^]*\breference\b/);
    // --float-ops names the ops with int8 kernels and the float32-only ones from the schema's lists.
    const floatOpsHelp = /^ {2}--float-ops <op,op>[^]*?(?=\n {2}--)/m.exec(r.out)?.[0] ?? '';
    for (const line of floatOpsHelp.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(floatOpsHelp.replace(/\s+/g, ' ')).toContain(`int8 kernels are ${[...QUANTIZABLE_OPS].join(', ')};`);
    expect(floatOpsHelp.replace(/\s+/g, ' ')).toContain(`(${[...FLOAT_ONLY_OPS].join(', ')}) stay float32`);
  });
});
