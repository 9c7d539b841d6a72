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
import { ModelFormatError, UnsupportedLayerError, WeightMismatchError } from '../lib/errors.js';
import type { KerasModelConfig, NamedWeights } from '../lib/keras/types.js';

const LIBRARY_ERRORS = [ModelFormatError, WeightMismatchError, UnsupportedLayerError];
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
