/**
 * Fuzzing of the model readers with random mutations of the shared files
 * (seeded, reproducible): >= 10,000 cases in all.
 *
 * - `model.json` of the shared V1 0.25 model: byte flips, insertions,
 *   truncations of the text; structural mutations of the parsed JSON (a
 *   field deleted, a value replaced by another type, an array element
 *   dropped or duplicated). Each case goes through the whole read path up to
 *   lowering: parseModelJson → readManifestWeights → analyzeModel →
 *   matchWeights.
 * - its shards: byte flips, truncations, extensions of one shard.
 * - the official Keras `.h5` (byte flips, mostly in the first 100 KB where
 *   the HDF5 metadata sits, and truncations) and a small full-model `.h5`
 *   written from the same weights (its `model_config` attribute included).
 *
 * HDF5 files are read by the HDF5 C library on a worker thread with a time
 * limit (3 s here): a corrupt file that sends it into an endless loop (seen
 * on a flipped byte in a vlen string reference) becomes a ModelFormatError.
 *
 * Hostile classes (issue 14), generated without the shared files: model.json
 * manifests naming special files, paths outside the directory, a shard
 * repeated thousands of times and huge declared shapes; configs nested up
 * to 200,000 deep (TF.js, .h5 model_config, .keras config.json); HDF5 files
 * with external links, soft links (cycles included), huge datasets with no
 * storage (referenced or not); `.keras` archives with flipped bytes and
 * lying sizes; images with huge declared sizes, flipped bytes, SVGs with
 * references to files and FIFOs. Each case must end in a typed error or a
 * successful read, within a bounded time, without growing memory.
 *
 * Every case must either succeed or throw ModelFormatError,
 * WeightMismatchError, UnsupportedLayerError, or a TypeError/RangeError
 * carrying the library's parameter template `Expected … for … but received …`
 * (a bare TypeError such as "Cannot read properties of undefined" is a
 * failure): no other error, no crash, no hang (each case is timed; the
 * slowest is reported and bounded).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, shared } from './helpers/shared.js';
import { parseModelJson, readManifestWeights, type ShardReader } from '../lib/formats/tfjs.js';
import { readH5, writeH5, loadH5wasm } from '../lib/formats/h5.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { matchWeights } from '../lib/keras/lower.js';
import { mulberry32 } from '../lib/keras/random.js';
import { ImageDecodeError, ModelFormatError, UnsupportedLayerError, WeightMismatchError } from '../lib/errors.js';
import { execFileSync } from 'node:child_process';
import h5wasm from 'h5wasm/node';
import { zipSync } from 'fflate';
import { readTfjs } from '../lib/formats/tfjs.js';
import { readKeras3, writeKeras3 } from '../lib/formats/keras3.js';
import { decodeImage } from '../lib/image.js';
import { pngHeaderBomb } from './helpers/png.js';
import { contiguousLayoutAt, denseKerasConfig, setExternalStorage, setVirtualLayout } from './helpers/hdf5.js';
import type { KerasModelConfig, NamedWeights } from '../lib/keras/types.js';

const LIBRARY_ERRORS = [ModelFormatError, WeightMismatchError, UnsupportedLayerError, ImageDecodeError];
/** The one parameter-error template (lib/validate.ts). */
const TEMPLATE = /^Expected .+ for .+ but received .+$/s;

function allowed(e: unknown): boolean {
  if (LIBRARY_ERRORS.some((c) => e instanceof c)) return true;
  return (e instanceof TypeError || e instanceof RangeError) && TEMPLATE.test(e.message);
}

interface Tally {
  cases: number;
  ok: number;
  errors: Map<string, number>;
  bad: string[];
  slowestMs: number;
}

function tally(): Tally {
  return { cases: 0, ok: 0, errors: new Map(), bad: [], slowestMs: 0 };
}

async function runCase(t: Tally, what: string, fn: () => Promise<unknown> | unknown): Promise<void> {
  const start = performance.now();
  t.cases++;
  try {
    await fn();
    t.ok++;
  } catch (e) {
    if (allowed(e)) {
      const name = (e as Error).constructor.name;
      t.errors.set(name, (t.errors.get(name) ?? 0) + 1);
      if (typeof (e as Error).message !== 'string' || (e as Error).message.length === 0) t.bad.push(`${what}: ${name} without a message`);
    } else if (t.bad.length < 10) {
      t.bad.push(`${what}: ${(e as Error)?.constructor?.name ?? typeof e}: ${String((e as Error)?.message ?? e).slice(0, 300)}`);
    }
  }
  t.slowestMs = Math.max(t.slowestMs, performance.now() - start);
}

function report(label: string, t: Tally): void {
  const errs = [...t.errors].map(([k, n]) => `${k} ${n}`).join(', ');
  console.log(`[fuzz] ${label}: ${t.cases} cases, ${t.ok} read, errors: ${errs || 'none'}; slowest case ${t.slowestMs.toFixed(0)} ms`);
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** All container paths of a JSON value. */
function containers(v: Json, at: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  if (Array.isArray(v)) {
    out.push(at);
    v.forEach((x, i) => containers(x, [...at, i], out));
  } else if (v !== null && typeof v === 'object') {
    out.push(at);
    for (const [k, x] of Object.entries(v)) containers(x, [...at, k], out);
  }
  return out;
}

function getAt(v: Json, p: Array<string | number>): Json {
  let cur = v;
  for (const k of p) cur = (cur as Record<string | number, Json>)[k] as Json;
  return cur;
}

const REPLACEMENTS: Json[] = [null, true, 0, -1, 1.5, 1e9, -1e9, '', 'x', 'float16', [], {}, [null], [1, 2], { class_name: 'X' }];

/** One structural mutation of a parsed JSON document; returns a description. */
function mutateJson(doc: Json, r: () => number): string {
  const paths = containers(doc);
  const p = paths[Math.floor(r() * paths.length)] as Array<string | number>;
  const node = getAt(doc, p);
  const where = p.join('.') || '(root)';
  if (Array.isArray(node)) {
    if (node.length === 0) {
      node.push(REPLACEMENTS[Math.floor(r() * REPLACEMENTS.length)] as Json);
      return `${where}: element added to an empty list`;
    }
    const i = Math.floor(r() * node.length);
    const k = r();
    if (k < 0.35) {
      node.splice(i, 1);
      return `${where}[${i}] removed`;
    }
    if (k < 0.5) {
      node.splice(i, 0, JSON.parse(JSON.stringify(node[i])) as Json);
      return `${where}[${i}] duplicated`;
    }
    node[i] = JSON.parse(JSON.stringify(REPLACEMENTS[Math.floor(r() * REPLACEMENTS.length)])) as Json;
    return `${where}[${i}] replaced`;
  }
  const obj = node as { [k: string]: Json };
  const keys = Object.keys(obj);
  if (keys.length === 0) {
    obj.x = 1;
    return `${where}: key added`;
  }
  const key = keys[Math.floor(r() * keys.length)] as string;
  if (r() < 0.4) {
    delete obj[key];
    return `${where}.${key} deleted`;
  }
  obj[key] = JSON.parse(JSON.stringify(REPLACEMENTS[Math.floor(r() * REPLACEMENTS.length)])) as Json;
  return `${where}.${key} = ${JSON.stringify(obj[key])}`;
}

describe.skipIf(!hasShared)('fuzzing the readers with mutations of the shared files', () => {
  let dir: string;
  let modelJsonPath: string;
  let text: string;
  const shards = new Map<string, Buffer>();
  let baseWeights: NamedWeights;
  let baseManifest: string;
  let tmp: string;
  const totals: Tally[] = [];

  beforeAll(async () => {
    dir = shared('models', 'mobilenet_v1_0.25_224');
    modelJsonPath = path.join(dir, 'model.json');
    text = fs.readFileSync(modelJsonPath, 'utf8');
    for (const f of fs.readdirSync(dir)) if (f.startsWith('group')) shards.set(path.join(dir, f), fs.readFileSync(path.join(dir, f)));
    const parsed = parseModelJson(text, modelJsonPath);
    baseManifest = JSON.stringify(parsed.manifest);
    baseWeights = await readManifestWeights(parsed.manifest, dir, modelJsonPath, async (f) => shards.get(f) ?? null);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-fuzz-'));
    await loadH5wasm();
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
    const n = totals.reduce((s, t) => s + t.cases, 0);
    console.log(`[fuzz] total ${n} cases`);
  });

  const memReader: ShardReader = async (f) => shards.get(f) ?? null;

  /** The whole read path of a model.json text up to lowering. */
  async function readText(s: string, readShard: ShardReader = memReader): Promise<void> {
    const parsed = parseModelJson(s, modelJsonPath);
    const weights = JSON.stringify(parsed.manifest) === baseManifest && readShard === memReader
      ? baseWeights
      : await readManifestWeights(parsed.manifest, dir, modelJsonPath, readShard);
    const analysis = analyzeModel(parsed.config);
    matchWeights(analysis, weights);
  }

  it('model.json: 6,400 byte-level mutations (flips, insertions, truncations)', async () => {
    const t = tally();
    const r = mulberry32(1001);
    const bytes = Buffer.from(text, 'utf8');
    for (let i = 0; i < 6400; i++) {
      const b = Buffer.from(bytes);
      const kind = r();
      let s: string;
      let what: string;
      if (kind < 0.2) {
        const n = Math.floor(r() * b.length);
        s = b.subarray(0, n).toString('utf8');
        what = `truncated to ${n} bytes`;
      } else if (kind < 0.35) {
        const at = Math.floor(r() * b.length);
        const ins = ['{', '}', '[', ']', '"', ',', ':', '-1', 'null', '1e999', '\\u0000'][Math.floor(r() * 11)] as string;
        s = b.subarray(0, at).toString('utf8') + ins + b.subarray(at).toString('utf8');
        what = `inserted ${ins} at ${at}`;
      } else {
        const n = 1 + Math.floor(r() * 4);
        const offs: number[] = [];
        for (let k = 0; k < n; k++) {
          const at = Math.floor(r() * b.length);
          // Mostly digits and structural characters, sometimes any byte.
          b[at] = r() < 0.5 ? (['0', '9', '-', '.', 'e', '"', ',', '{', '}', '[', ']', 'a'][Math.floor(r() * 12)] as string).charCodeAt(0) : Math.floor(r() * 256);
          offs.push(at);
        }
        s = b.toString('utf8');
        what = `bytes changed at ${offs.join(',')}`;
      }
      await runCase(t, `model.json ${what}`, () => readText(s));
    }
    report('model.json bytes', t);
    totals.push(t);
    expect(t.bad).toEqual([]);
    expect(t.cases).toBe(6400);
    expect(t.slowestMs).toBeLessThan(5000);
  });

  it('model.json: 2,600 structural mutations (fields deleted, types changed, elements dropped or duplicated)', async () => {
    const t = tally();
    const r = mulberry32(2002);
    const base = JSON.parse(text) as Json;
    for (let i = 0; i < 2600; i++) {
      const doc = structuredClone(base);
      const n = 1 + Math.floor(r() * 3);
      const what: string[] = [];
      for (let k = 0; k < n; k++) what.push(mutateJson(doc, r));
      const s = JSON.stringify(doc);
      await runCase(t, `model.json ${what.join('; ')}`, () => readText(s));
    }
    report('model.json structure', t);
    totals.push(t);
    expect(t.bad).toEqual([]);
    expect(t.cases).toBe(2600);
    expect(t.slowestMs).toBeLessThan(5000);
  });

  it('shards: 2,000 mutations of one shard (flips, truncations, extensions)', async () => {
    const t = tally();
    const r = mulberry32(3003);
    const names = [...shards.keys()];
    for (let i = 0; i < 2000; i++) {
      const victim = names[Math.floor(r() * names.length)] as string;
      const orig = shards.get(victim) as Buffer;
      let mutated: Buffer;
      const kind = r();
      if (kind < 0.4) mutated = orig.subarray(0, Math.floor(r() * orig.length));
      else if (kind < 0.5) mutated = Buffer.concat([orig, Buffer.alloc(1 + Math.floor(r() * 64), 0xff)]);
      else {
        mutated = Buffer.from(orig);
        const n = 1 + Math.floor(r() * 16);
        for (let k = 0; k < n; k++) mutated[Math.floor(r() * mutated.length)] = Math.floor(r() * 256);
      }
      const reader: ShardReader = async (f) => (f === victim ? mutated : (shards.get(f) ?? null));
      await runCase(t, `shard ${path.basename(victim)} (${kind < 0.4 ? 'truncated' : kind < 0.5 ? 'extended' : 'flipped'})`, () => readText(text, reader));
    }
    report('shards', t);
    totals.push(t);
    expect(t.bad).toEqual([]);
    expect(t.errors.get('ModelFormatError') ?? 0).toBeGreaterThan(0);
    expect(t.slowestMs).toBeLessThan(5000);
  });

  async function fuzzH5(label: string, orig: Buffer, cases: number, seed: number, metaBytes: number): Promise<Tally> {
    const t = tally();
    const r = mulberry32(seed);
    const file = path.join(tmp, `${label}.h5`);
    for (let i = 0; i < cases; i++) {
      let b: Buffer;
      let what: string;
      const kind = r();
      if (kind < 0.2) {
        const n = Math.floor(r() * orig.length);
        b = orig.subarray(0, n);
        what = `truncated to ${n}`;
      } else {
        b = Buffer.from(orig);
        const n = 1 + Math.floor(r() * 8);
        const offs: number[] = [];
        for (let k = 0; k < n; k++) {
          const at = r() < 0.75 ? Math.floor(r() * Math.min(metaBytes, b.length)) : Math.floor(r() * b.length);
          b[at] = Math.floor(r() * 256);
          offs.push(at);
        }
        what = `bytes changed at ${offs.join(',')}`;
      }
      fs.writeFileSync(file, b);
      await runCase(t, `${label} ${what}`, async () => {
        const h = await readH5(file, { timeoutMs: 3000 });
        if (h.config !== undefined) matchWeights(analyzeModel(h.config as KerasModelConfig), h.weights, { allowNonFinite: true });
      });
    }
    report(label, t);
    totals.push(t);
    return t;
  }

  it('official .h5: 120 mutations (flips mostly in the HDF5 metadata, truncations)', async () => {
    const orig = fs.readFileSync(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'));
    const t = await fuzzH5('official', orig, 120, 4004, 100_000);
    expect(t.bad).toEqual([]);
    expect(t.ok + [...t.errors.values()].reduce((a, b) => a + b, 0)).toBe(120);
    expect(t.slowestMs).toBeLessThan(10000);
  });

  it('full-model .h5 with model_config: 500 mutations', async () => {
    // The first blocks of the 0.25 model (input … conv_pw_2_relu) as a full-model file.
    const parsed = parseModelJson(text, modelJsonPath);
    const cut = parsed.config.config.layers.findIndex((l) => l.config.name === 'conv_pw_2_relu');
    const layers = parsed.config.config.layers.slice(0, cut + 1);
    const config: KerasModelConfig = { class_name: 'Model', config: { name: 'cut', layers, input_layers: [['input_1', 0, 0]], output_layers: [['conv_pw_2_relu', 0, 0]] } };
    const keep = new Set(layers.map((l) => l.config.name));
    const weights: NamedWeights = new Map([...baseWeights].filter(([n]) => keep.has(n.slice(0, n.lastIndexOf('/')))));
    const file = path.join(tmp, 'small-full.h5');
    await writeH5(file, config, weights);
    // The file is sound before mutation.
    const ok = await readH5(file);
    matchWeights(analyzeModel(ok.config!), ok.weights);
    const orig = fs.readFileSync(file);
    const t = await fuzzH5('small-full', orig, 500, 5005, orig.length);
    expect(t.bad).toEqual([]);
    expect(t.slowestMs).toBeLessThan(10000);
    const n = totals.reduce((s, x) => s + x.cases, 0);
    expect(n).toBeGreaterThanOrEqual(10_000);
  });
});

describe('fuzzing the hostile classes (special files, budgets, nesting, external storage, archives, images)', () => {
  let tmp: string;
  const totals: Tally[] = [];
  const rssStart = process.memoryUsage().rss;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-fuzz-hostile-'));
    await h5wasm.ready;
  });
  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
    console.log(`[fuzz] hostile total ${totals.reduce((s, t) => s + t.cases, 0)} cases; RSS grew ${((process.memoryUsage().rss - rssStart) / 2 ** 20).toFixed(0)} MiB`);
  });
  const deep = (n: number): string => '['.repeat(n) + '0' + ']'.repeat(n);
  const dense = (paths: unknown, kernel: unknown = [4, 2], extra = ''): string =>
    `{"modelTopology":{"class_name":"Sequential","config":{"name":"s","layers":[{"class_name":"Dense","config":{"name":"d","units":2,"use_bias":true,"batch_input_shape":[null,4]${extra}}}]}},` +
    `"weightsManifest":[{"paths":${JSON.stringify(paths)},"weights":[{"name":"d/kernel","shape":${JSON.stringify(kernel)},"dtype":"float32"},{"name":"d/bias","shape":[2],"dtype":"float32"}]}]}`;

  it('model.json: 200 manifests naming special files, outside paths, repeated shards, huge shapes, deep nesting', async () => {
    const r = mulberry32(1414);
    const d = path.join(tmp, 'm');
    fs.mkdirSync(d);
    fs.writeFileSync(path.join(d, 'ok.bin'), Buffer.alloc(40));
    fs.writeFileSync(path.join(d, 'big.bin'), Buffer.alloc(1 << 20));
    execFileSync('mkfifo', [path.join(d, 'fifo.bin')]);
    fs.symlinkSync('/dev/zero', path.join(d, 'zero.bin'));
    fs.symlinkSync('/proc/self/fd/0', path.join(d, 'stdin.bin'));
    fs.symlinkSync('/etc/hostname', path.join(d, 'out.bin'));
    fs.mkdirSync(path.join(d, 'sub'));
    const names = ['ok.bin', 'fifo.bin', 'zero.bin', 'stdin.bin', 'out.bin', '/etc/passwd', '../../etc/passwd', 'sub/../../m/ok.bin', 'sub', 'missing.bin', 'sub/../ok.bin', '', '.', '\u0000x'];
    const t = tally();
    totals.push(t);
    for (let i = 0; i < 200; i++) {
      const kind = i % 4;
      let text: string;
      if (kind === 0) text = dense([names[Math.floor(r() * names.length)] as string]);
      else if (kind === 1) text = dense(Array.from({ length: 1 + Math.floor(r() * 5000) }, () => 'big.bin'));
      else if (kind === 2) text = dense(['ok.bin'], [Math.floor(r() * 2 ** 20), Math.floor(r() * 2 ** 20)]);
      else text = dense(['ok.bin'], [4, 2], `,"junk":${deep(1 + Math.floor(r() * 20_000))}`);
      const f = path.join(d, 'model.json');
      fs.writeFileSync(f, text);
      const t0 = performance.now();
      await runCase(t, `model.json case ${i}`, () => readTfjs(f));
      if (performance.now() - t0 > 2000) console.log(`[fuzz] slow model.json case ${i} (kind ${kind}): ${(performance.now() - t0).toFixed(0)} ms`);
    }
    report('hostile model.json', t);
    expect(t.bad).toEqual([]);
    expect(t.slowestMs).toBeLessThan(10_000);
  });

  it('HDF5: 120 files with external links, external raw storage, virtual datasets, soft links and cycles, huge datasets without storage, deep model_config', async () => {
    const r = mulberry32(1415);
    const t = tally();
    totals.push(t);
    const other = path.join(tmp, 'other.h5');
    const o = new h5wasm.File(other, 'w');
    o.create_dataset({ name: 'x', data: new Float32Array([1, 2]), shape: [2], dtype: '<f' });
    o.close();
    // Distinct values, so that the raw bytes of each weight can be found for the external-storage cases.
    const kernel = new Float32Array([1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5]);
    const bias = new Float32Array([-1.25, -2.25]);
    const weights: NamedWeights = new Map([
      ['d/kernel', { shape: [4, 2], data: kernel }],
      ['d/bias', { shape: [2], data: bias }],
    ]);
    const groups = ['/', '/d', '/d/d'];
    execFileSync('mkfifo', [path.join(tmp, 'fifo.bin')]);
    const targets = [other, '/etc/passwd', '/dev/zero', path.join(tmp, 'fifo.bin'), '/proc/self/fd/0', path.join(tmp, 'missing.bin'), 'relative.bin'];
    for (let i = 0; i < 120; i++) {
      const p = path.join(tmp, `h${i}.h5`);
      await writeH5(p, undefined, weights);
      const f = new h5wasm.File(p, 'a');
      const edits = 1 + Math.floor(r() * 3);
      for (let e = 0; e < edits; e++) {
        const g = f.get(groups[Math.floor(r() * groups.length)] as string) as InstanceType<typeof h5wasm.Group>;
        const k = Math.floor(r() * 5);
        const name = `x${e}`;
        if (k === 0) g.create_external_link(r() < 0.5 ? other : '/etc/passwd', '/x', name);
        else if (k === 1) g.create_soft_link(groups[Math.floor(r() * groups.length)] as string, name);
        else if (k === 2) g.create_soft_link(`/${name}`, name); // self cycle or dangling
        else if (k === 3) {
          const ds = g.create_dataset({ name, data: new Float64Array(4), shape: [4], maxshape: [null], chunks: [1024], dtype: '<d' });
          (ds as unknown as { resize(s: number[]): void }).resize([Math.floor(r() * 2 ** 34)]);
        } else f.create_attribute(`model_config`, `{"class_name":"Functional","config":${deep(1 + Math.floor(r() * 20_000))}}`, null, 'S');
      }
      // Every other file: one weight re-pointed at another file (external raw storage or a virtual dataset).
      const storage = i % 2 === 1 ? Math.floor(r() * 4) : -1;
      if (storage >= 0) f.create_dataset({ name: 'pad', data: new Uint8Array(4200).fill(0x5a), shape: [4200], dtype: '<B' });
      f.close();
      if (storage >= 0) {
        const buf = fs.readFileSync(p);
        const w = storage % 2 === 0 ? kernel : bias;
        const layout = contiguousLayoutAt(buf, buf.indexOf(Buffer.from(w.buffer)), w.byteLength);
        const scratch = buf.indexOf(Buffer.alloc(4200, 0x5a));
        const target = targets[Math.floor(r() * targets.length)] as string;
        if (storage < 2) setExternalStorage(buf, layout, scratch, target, Math.floor(r() * 3) === 0 ? 2 ** 40 : w.byteLength);
        else setVirtualLayout(buf, layout, scratch, target, r() < 0.5 ? '/x' : '/d/d/kernel:0');
        fs.writeFileSync(p, buf);
      }
      await runCase(t, `h5 case ${i}`, async () => {
        const read = await readH5(p, { timeoutMs: 20_000 });
        // A weight whose values live in another file must never load.
        if (storage >= 0) t.bad.push(`h5 case ${i}: external storage class ${storage} was read: ${[...read.weights.keys()].join(', ')}`);
      });
      fs.rmSync(p);
    }
    report('hostile HDF5', t);
    expect(t.bad).toEqual([]);
    expect(t.slowestMs).toBeLessThan(20_000);
  });

  it('.keras: 200 archives with flipped bytes, lying entry sizes, deep config.json, model.weights.h5 referring to other files', async () => {
    const r = mulberry32(1416);
    const t = tally();
    totals.push(t);
    const config = denseKerasConfig;
    const good = path.join(tmp, 'good.keras');
    await writeKeras3(good, config, new Map([['d/kernel', { shape: [4, 2], data: new Float32Array(8) }], ['d/bias', { shape: [2], data: new Float32Array(2) }]]));
    const orig = fs.readFileSync(good);
    // Weights with distinct values, so that their raw bytes can be found in model.weights.h5 for the external-storage class.
    const kernel = new Float32Array([1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5]);
    const bias = new Float32Array([-1.25, -2.25]);
    await writeKeras3(good, config, new Map([['d/kernel', { shape: [4, 2], data: kernel }], ['d/bias', { shape: [2], data: bias }]]));
    const { unzipSync } = await import('fflate');
    const distinct = unzipSync(fs.readFileSync(good));
    const other = path.join(tmp, 'keras-other.h5');
    const o = new h5wasm.File(other, 'w');
    o.create_dataset({ name: 'x', data: kernel, shape: [4, 2], dtype: '<f' });
    o.close();
    const targets = [other, '/etc/passwd', '/dev/zero', '/proc/self/fd/0', path.join(tmp, 'missing.bin')];
    for (let i = 0; i < 200; i++) {
      let buf: Buffer;
      let external = -1;
      if (i % 4 === 3) buf = Buffer.from(zipSync({ 'config.json': Buffer.from(`{"class_name":"Functional","config":${deep(1 + Math.floor(r() * 20_000))}}`) }));
      else if (i % 8 === 4) {
        // model.weights.h5 whose kernel or bias lives in another file: external link, external raw storage or virtual dataset.
        external = Math.floor(r() * 3);
        const inner = path.join(tmp, `inner${i}.h5`);
        fs.writeFileSync(inner, distinct['model.weights.h5'] as Uint8Array);
        const f = new h5wasm.File(inner, 'a');
        f.create_dataset({ name: 'pad', data: new Uint8Array(4200).fill(0x5a), shape: [4200], dtype: '<B' });
        const target = targets[Math.floor(r() * targets.length)] as string;
        if (external === 0) (f.get('layers/dense/vars') as InstanceType<typeof h5wasm.Group>).create_external_link(target, '/x', '2');
        f.close();
        const h5 = fs.readFileSync(inner);
        fs.rmSync(inner);
        const w = r() < 0.5 ? kernel : bias;
        const layout = contiguousLayoutAt(h5, h5.indexOf(Buffer.from(w.buffer)), w.byteLength);
        const scratch = h5.indexOf(Buffer.alloc(4200, 0x5a));
        if (external === 1) setExternalStorage(h5, layout, scratch, target, w.byteLength);
        if (external === 2) setVirtualLayout(h5, layout, scratch, target, '/x');
        buf = Buffer.from(zipSync({ ...distinct, 'model.weights.h5': new Uint8Array(h5) }));
      } else {
        buf = Buffer.from(orig);
        const flips = 1 + Math.floor(r() * 8);
        for (let k = 0; k < flips; k++) {
          const at = r() < 0.5 ? Math.floor(r() * 200) : Math.floor(r() * buf.length);
          buf[at] = Math.floor(r() * 256);
        }
        // Lie about sizes: local header and central directory sizes set to random values.
        if (i % 4 === 1) for (let j = buf.indexOf('PK\x03\x04'); j >= 0; j = buf.indexOf('PK\x03\x04', j + 4)) buf.writeUInt32LE(Math.floor(r() * 2 ** 32), j + 22);
        if (i % 4 === 2) for (let j = buf.indexOf('PK\x01\x02'); j >= 0; j = buf.indexOf('PK\x01\x02', j + 4)) buf.writeUInt32LE(Math.floor(r() * 2 ** 32), j + 24);
      }
      const p = path.join(tmp, `k${i}.keras`);
      fs.writeFileSync(p, buf);
      await runCase(t, `keras case ${i}`, async () => {
        await readKeras3(p, { maxModelBytes: 64 << 20, timeoutMs: 20_000 });
        if (external >= 0) t.bad.push(`keras case ${i}: a model.weights.h5 referring to another file (class ${external}) was read`);
      });
      fs.rmSync(p);
    }
    report('hostile .keras', t);
    expect(t.bad).toEqual([]);
    expect(t.slowestMs).toBeLessThan(20_000);
  });

  it('images: 150 huge declared sizes, flipped bytes, SVG references to files and FIFOs', async () => {
    const r = mulberry32(1417);
    const t = tally();
    totals.push(t);
    const d = path.join(tmp, 'img');
    fs.mkdirSync(d);
    execFileSync('mkfifo', [path.join(d, 'pipe.png')]);
    const sharp = (await import('sharp')).default;
    const png = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } }).png().toBuffer();
    fs.writeFileSync(path.join(d, 'pic.png'), png);
    const gif = (w: number, h: number): Buffer =>
      Buffer.from([0x47, 0x49, 0x46, 0x38, 0x39, 0x61, w & 255, w >> 8, h & 255, h >> 8, 0x80, 0, 0, 0, 0, 0, 255, 255, 255, 0x2c, 0, 0, 0, 0, w & 255, w >> 8, h & 255, h >> 8, 0, 0x02, 0x02, 0x4c, 0x01, 0x00, 0x3b]);
    for (let i = 0; i < 150; i++) {
      let bytes: Buffer;
      const kind = i % 5;
      if (kind === 0) bytes = gif(1 + Math.floor(r() * 65535), 1 + Math.floor(r() * 65535));
      else if (kind === 1) bytes = pngHeaderBomb(1 + Math.floor(r() * 40000), 1 + Math.floor(r() * 40000));
      else if (kind === 2) {
        bytes = Buffer.from(png);
        for (let k = 0; k < 1 + Math.floor(r() * 6); k++) bytes[Math.floor(r() * bytes.length)] = Math.floor(r() * 256);
      } else if (kind === 3) {
        const href = ['pipe.png', 'pic.png', '/etc/passwd', 'file:///dev/zero', '../img/pipe.png'][Math.floor(r() * 5)];
        bytes = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${1 + Math.floor(r() * 20000)}" height="64"><image width="64" height="64" xlink:href="${href}"/></svg>`);
      } else bytes = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><g>${'<g>'.repeat(Math.floor(r() * 300))}</g></svg>`);
      const f = path.join(d, `i${i}`);
      fs.writeFileSync(f, bytes);
      const t0 = performance.now();
      await runCase(t, `image case ${i}`, () => decodeImage(f, { width: 32, height: 32, decodeTimeoutSeconds: 10, maxImageBytes: 64 << 20 }));
      if (performance.now() - t0 > 2000) console.log(`[fuzz] slow image case ${i} (kind ${kind}): ${(performance.now() - t0).toFixed(0)} ms`);
    }
    report('hostile images', t);
    expect(t.bad).toEqual([]);
    expect(t.slowestMs).toBeLessThan(20_000);
    expect(process.memoryUsage().rss - rssStart).toBeLessThan(1.5 * 1024 ** 3);
  });
});
