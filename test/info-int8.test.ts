/**
 * `mobilenet info` on a saved int8 model (a directory written by `mobilenet
 * quantize`, and its model.json): the text and `--json` output against the
 * saved model.json read independently (JSON.parse: metadata, quantization
 * record, the graph's nodes and tensors) and the files' sizes on disk; a
 * corrupt model is the typed error naming the file, as `loadModel` gives.
 *
 * The model is the small random network of test/quantize-cli.test.ts (12×12
 * input, an AveragePooling2D that the native backend keeps in float32),
 * quantized twice with different options,
 * calibrated on 3 generated PNGs, so this is fast.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli-io.js';
import { tinyNetConfig, writeNoisePngs, writeTinyNet } from './helpers/tiny-net.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-info-int8-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const floatJson = path.join(tmp, 'float', 'model.json');
const calDir = path.join(tmp, 'cal');
const nativeDir = path.join(tmp, 'int8-native');
const otherDir = path.join(tmp, 'int8-other');

const config = tinyNetConfig('info_int8_net', 5);

const cli = (...args: string[]): ReturnType<typeof runCli> => runCli(args, { cwd: tmp });

async function infoJson(...args: string[]): Promise<Record<string, unknown>> {
  const r = await cli('info', ...args, '--json');
  expect(r.err).toBe('');
  expect(r.code).toBe(0);
  const lines = r.out.trim().split('\n');
  expect(lines.length).toBe(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

interface SavedJson {
  format: string;
  generatedBy: string;
  model: { name: string; architecture: string; preprocessing: string; inputShape: number[]; outputShape: number[]; source?: string };
  quantization: { method: string; calibrationImages: number; equalization?: string; floatOps?: string[]; floatLayers?: string[]; floatHead: boolean; biasCorrection: boolean; weights: string; activations: string };
  graph: { tensors: Array<{ dtype: string; data?: [number, number]; scales?: [number, number] }>; nodes: Array<{ op: string; name?: string; output: number }> };
  weights: { file: string; bytes: number };
}

const readSaved = (dir: string): SavedJson => JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8')) as SavedJson;

/** What info should report about the graph, computed from the saved JSON alone. */
function expectedCounts(s: SavedJson): { ops: Record<string, number>; int8Nodes: number; floatNodes: number; converts: number; weightBytes: number; weightBytesByDtype: Record<string, number> } {
  const ops: Record<string, number> = {};
  let int8Nodes = 0;
  let floatNodes = 0;
  let converts = 0;
  for (const n of s.graph.nodes) {
    ops[n.op] = (ops[n.op] ?? 0) + 1;
    if (n.op === 'convert') converts++;
    else if (s.graph.tensors[n.output]!.dtype === 'qint8') int8Nodes++;
    else floatNodes++;
  }
  const byDtype: Record<string, number> = {};
  let weightBytes = 0;
  for (const t of s.graph.tensors) {
    if (t.data) byDtype[t.dtype] = (byDtype[t.dtype] ?? 0) + t.data[1];
    if (t.scales) byDtype.scales = (byDtype.scales ?? 0) + t.scales[1] * 4;
    weightBytes += (t.data?.[1] ?? 0) + (t.scales?.[1] ?? 0) * 4;
  }
  return { ops, int8Nodes, floatNodes, converts, weightBytes, weightBytesByDtype: byDtype };
}

beforeAll(async () => {
  await writeTinyNet(floatJson, config, 5);
  await writeNoisePngs(calDir, 16, 3);
  for (const [dir, flags] of [[nativeDir, ['--backend', 'native', '--method', 'mse']], [otherDir, ['--equalization', 'off', '--images', '2', '--float-layers', 'c2', '--no-bias-correction']]] as const) {
    const r = await cli('quantize', floatJson, dir, '--calibration', calDir, ...flags);
    expect(r.code, r.err).toBe(0);
  }
}, 60_000);

describe('mobilenet info <int8 dir> --json', () => {
  it.each([
    ['the directory', nativeDir, ''],
    ['its model.json', nativeDir, 'model.json'],
    ['the directory (no equalization, 2 images, c2 in float32, no bias correction)', otherDir, ''],
  ])('%s: metadata, quantization record, sizes and node counts as saved', async (_what, dir, file) => {
    const saved = readSaved(dir);
    expect(saved.format).toBe('mobilenet-xnnpack-int8');
    const j = await infoJson(path.join(dir, file));
    const modelJson = path.join(dir, 'model.json');
    expect(j).toMatchObject({
      format: 'int8',
      file: modelJson,
      precision: 'int8',
      name: saved.model.name,
      architecture: saved.model.architecture,
      preprocessing: saved.model.preprocessing,
      inputShape: saved.model.inputShape,
      outputShape: saved.model.outputShape,
      classes: saved.model.outputShape.reduce((a, b) => a * b, 1),
      source: saved.model.source,
      generatedBy: saved.generatedBy,
      modelJsonBytes: fs.statSync(modelJson).size,
      weightsFileBytes: fs.statSync(path.join(dir, 'weights.bin')).size,
      nodes: saved.graph.nodes.length,
      ...expectedCounts(saved),
    });
    expect(j.quantization).toEqual(saved.quantization);
    expect(j.weightsFileBytes).toBe(saved.weights.bytes);
    // The network's own facts, as a check on the reference above.
    expect(j).toMatchObject({ name: 'info_int8_net', inputShape: [12, 12, 3], outputShape: [5], classes: 5, source: floatJson });
  });

  it('records what each quantize run was given', async () => {
    const nat = (await infoJson(nativeDir)).quantization as SavedJson['quantization'];
    const other = (await infoJson(otherDir)).quantization as SavedJson['quantization'];
    expect(nat).toMatchObject({ method: 'mse', calibrationImages: 3, equalization: 'free', floatOps: ['averagePool2d'], biasCorrection: true });
    expect(nat.floatLayers).toBeUndefined();
    expect(other).toMatchObject({ method: 'minmax', calibrationImages: 2, equalization: 'off', floatLayers: ['c2'], biasCorrection: false });
  });
});

describe('mobilenet info <int8 dir> (text)', () => {
  const row = (key: string, value: string): RegExp => new RegExp(`^${key}:\\s+${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm');

  it('lists format, architecture, precision, calibration, equalization, float32 ops, shapes, sizes and nodes by op', async () => {
    const saved = readSaved(nativeDir);
    const q = saved.quantization;
    const c = expectedCounts(saved);
    const r = await cli('info', nativeDir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const fmt = (n: number): string => n.toLocaleString('en-US');
    expect(r.out).toMatch(row('format', `int8 (${path.join(nativeDir, 'model.json')})`));
    expect(r.out).toMatch(row('model', saved.model.name));
    expect(r.out).toMatch(row('architecture', saved.model.architecture));
    expect(r.out).toMatch(row('precision', `int8 (weights ${q.weights}; activations ${q.activations})`));
    expect(r.out).toMatch(row('calibration', `${q.method}, ${q.calibrationImages} images, bias correction on`));
    expect(r.out).toMatch(row('equalization', q.equalization!));
    expect(r.out).toMatch(row('float32 ops', `${q.floatOps!.join(', ')} (no int8 kernel on the target backend)`));
    expect(r.out).toMatch(row('float32 head', q.floatHead ? 'yes' : 'no'));
    expect(r.out).toMatch(row('source', saved.model.source!));
    expect(r.out).toMatch(row('input shape', `[${saved.model.inputShape.join(', ')}]`));
    expect(r.out).toMatch(row('output shape', `[${saved.model.outputShape.join(', ')}]`));
    expect(r.out).toMatch(row('classes', '5'));
    expect(r.out).toMatch(row('preprocessing', saved.model.preprocessing));
    expect(r.out).toMatch(row('files', `model.json ${fmt(fs.statSync(path.join(nativeDir, 'model.json')).size)} bytes, weights.bin ${fmt(saved.weights.bytes)} bytes`));
    expect(r.out).toMatch(new RegExp(`^weights:\\s+${fmt(c.weightBytes)} bytes \\(`, 'm'));
    expect(r.out).toMatch(row('nodes', `${saved.graph.nodes.length} (int8 ${c.int8Nodes}, float32 ${c.floatNodes}, convert ${c.converts})`));
    const opsLine = /^ops:\s+(.*)$/m.exec(r.out)?.[1];
    const listed = Object.fromEntries((opsLine ?? '').split(', ').map((s) => s.split(' ')).map(([op, n]) => [op, Number(n)]));
    expect(listed).toEqual(c.ops);
    expect(r.out).not.toMatch(/^float layers:/m);
    // The other model: c2 kept in float32 by request, no bias correction, no equalization.
    const other = await cli('info', otherDir);
    expect(other.out).toMatch(row('float layers', 'c2'));
    expect(other.out).toMatch(row('calibration', 'minmax, 2 images, bias correction off'));
    expect(other.out).toMatch(row('equalization', 'off'));
  });

  it('--summary adds one row per node of the int8 graph', async () => {
    const saved = readSaved(nativeDir);
    const r = await cli('info', nativeDir, '--summary');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Total nodes: ${saved.graph.nodes.length}`);
    for (const n of saved.graph.nodes) {
      if (n.name !== undefined) expect(r.out).toMatch(new RegExp(`^${n.name.replace(/[/.]/g, '\\$&')} \\(${n.op}\\)\\s.*\\b${saved.graph.tensors[n.output]!.dtype}\\b`, 'm'));
    }
  });

  it('builder flags do not apply to a saved int8 model: usage error', async () => {
    const r = await cli('info', nativeDir, '--alpha', '0.5');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain(`--alpha 0.5 does not apply to ${nativeDir}: it is a saved int8 model`);
  });
});

describe('mobilenet info on a corrupt int8 model', () => {
  const copy = (name: string): string => {
    const dir = path.join(tmp, name);
    fs.cpSync(nativeDir, dir, { recursive: true });
    return dir;
  };

  it('a truncated weights.bin: ModelFormatError naming weights.bin (text and --json)', async () => {
    const dir = copy('truncated');
    const weights = path.join(dir, 'weights.bin');
    const size = fs.statSync(weights).size;
    fs.truncateSync(weights, size - 16);
    for (const extra of [[], ['--json']]) {
      for (const target of [dir, path.join(dir, 'model.json')]) {
        const r = await cli('info', target, ...extra);
        expect(r.code).toBe(1);
        expect(r.out).toBe('');
        expect(r.err).toContain(`ModelFormatError: ${weights}: has ${size - 16} bytes, model.json says ${size}`);
      }
    }
  });

  it('an unknown op in model.json: ModelFormatError naming model.json', async () => {
    const dir = copy('bad-op');
    const file = path.join(dir, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as SavedJson;
    json.graph.nodes[0]!.op = 'bogus';
    fs.writeFileSync(file, JSON.stringify(json));
    const r = await cli('info', dir);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`ModelFormatError: ${file}: node 0 needs a known op`);
  });
});
