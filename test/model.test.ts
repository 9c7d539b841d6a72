/**
 * The Model API: batching, concurrency, dispose, argument errors, option
 * handling, and a fuzz of the model.json reader on mutations of a shared model.
 *
 * References: a batch of 3 equals 3 single predictions (<= 1e-6 abs; each
 * sample is computed independently), concurrent calls equal sequential ones
 * exactly; error messages verbatim.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, shared } from './helpers/shared.js';
import { Model, loadModel, detectPreprocessing } from '../lib/model.js';
import { analyzeModel } from '../lib/keras/layers.js';
import { lowerModel } from '../lib/keras/lower.js';
import { mulberry32 } from '../lib/keras/random.js';
import { buildArchitecture } from '../lib/architectures/index.js';
import { parseModelJson, readManifestWeights } from '../lib/formats/tfjs.js';
import { DisposedError, ModelFormatError, UnsupportedLayerError, WeightMismatchError } from '../lib/errors.js';
import { testBackend } from './helpers/env.js';

const BACKEND = testBackend;

function randomInput(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

describe(`Model (${BACKEND} backend, random-weight MobileNetV2 0.35 at 96x96, 10 classes)`, () => {
  let model: Model;
  const SIZE = 96 * 96 * 3;
  beforeAll(async () => {
    model = await Model.fromArchitecture('v2', { alpha: 0.35, inputShape: [96, 96, 3], classes: 10, seed: 7, backend: BACKEND, threads: 2 });
  });
  afterAll(() => model?.dispose());

  it('reports its shapes, classes, architecture and preprocessing', () => {
    expect(model.inputShape).toEqual([96, 96, 3]);
    expect(model.outputShape).toEqual([10]);
    expect(model.classes).toBe(10);
    expect(model.architecture).toBe('v2');
    expect(model.preprocessing).toBe('tf');
    expect(model.backend).toBe(BACKEND);
    expect(model.summary()).toContain('block_16_project_BN');
    expect(model.summary()).toMatch(/Total params: [\d,]+/);
  });

  it('predict with batch 3 equals 3 single predicts', async () => {
    const x = randomInput(3 * SIZE, 1);
    const all = await model.predict(x, { batch: 3 });
    expect(all.length).toBe(30);
    for (let i = 0; i < 3; i++) {
      const one = await model.predict(x.slice(i * SIZE, (i + 1) * SIZE));
      expect(maxAbsDiff(one, all.subarray(i * 10, (i + 1) * 10))).toBeLessThanOrEqual(1e-6);
      let sum = 0;
      for (const p of one) sum += p;
      expect(sum).toBeCloseTo(1, 5);
    }
    // The batch is inferred from the length, and an array of samples is accepted.
    const inferred = await model.predict(x);
    expect(maxAbsDiff(inferred, all)).toBe(0);
    const arr = await model.predict([x.slice(0, SIZE), x.slice(SIZE, 2 * SIZE), x.slice(2 * SIZE)]);
    expect(maxAbsDiff(arr, all)).toBe(0);
    expect(maxAbsDiff(model.predictSync(x, { batch: 3 }), all)).toBe(0);
    // Different samples give different outputs.
    expect(maxAbsDiff(all.subarray(0, 10), all.subarray(10, 20))).toBeGreaterThan(1e-6);
  });

  it('concurrent predicts of mixed batch sizes equal sequential ones', async () => {
    const xs = [1, 2, 1, 3, 2, 1].map((b, i) => randomInput(b * SIZE, 100 + i));
    const sequential: Float32Array[] = [];
    for (const x of xs) sequential.push(await model.predict(x));
    const concurrent = await Promise.all(xs.map((x) => model.predict(x)));
    concurrent.forEach((y, i) => expect(maxAbsDiff(y, sequential[i] as Float32Array)).toBe(0));
  });

  it('bad inputs: TypeError/RangeError with the template message, verbatim', async () => {
    await expect(model.predict(new Float32Array(10), { batch: 1 })).rejects.toThrow(
      new RangeError('Expected Float32Array of length 27648 for input but received Float32Array(10)'),
    );
    await expect(model.predict(new Float32Array(SIZE), { batch: 2 })).rejects.toThrow(
      new RangeError('Expected Float32Array of length 55296 for input but received Float32Array(27648)'),
    );
    await expect(model.predict(new Float32Array(SIZE + 1))).rejects.toThrow(
      new RangeError('Expected Float32Array with a length that is a positive multiple of 27648 for input but received Float32Array(27649)'),
    );
    await expect(model.predict(new Float32Array(0))).rejects.toThrow(RangeError);
    await expect(model.predict(new Float64Array(SIZE) as unknown as Float32Array)).rejects.toThrow(
      new TypeError('Expected Float32Array for input but received Float64Array(27648)'),
    );
    await expect(model.predict(new Float32Array(SIZE), { batch: 0 })).rejects.toThrow(new RangeError('Expected positive integer for batch but received 0'));
    await expect(model.predict(new Float32Array(SIZE), { batch: '1' as unknown as number })).rejects.toThrow(
      new TypeError('Expected positive integer for batch but received "1"'),
    );
    expect(() => model.predictSync(new Float32Array(3))).toThrow(RangeError);
  });
});

describe('Model options and dispose', () => {
  it('dispose is idempotent; use after dispose throws DisposedError; Symbol.dispose works', async () => {
    const m = await Model.fromArchitecture('v1', { alpha: 0.25, inputShape: [32, 32, 3], classes: 3, backend: 'reference' });
    const x = new Float32Array(32 * 32 * 3);
    await m.predict(x);
    m.dispose();
    m.dispose();
    expect(m.disposed).toBe(true);
    await expect(m.predict(x)).rejects.toThrow(DisposedError);
    await expect(m.predict(x)).rejects.toThrow('Model has been disposed');
    expect(() => m.predictSync(x)).toThrow(DisposedError);
    expect(() => m.summary()).toThrow(DisposedError);
    let outer: Model;
    {
      using scoped = await Model.fromArchitecture('v1', { alpha: 0.25, inputShape: [32, 32, 3], classes: 3, backend: 'reference' });
      expect(scoped.disposed).toBe(false);
      outer = scoped;
    }
    expect(outer.disposed).toBe(true);
  });

  it('a predict in flight completes when dispose is called during it', async () => {
    const m = await Model.fromArchitecture('v1', { alpha: 0.25, inputShape: [32, 32, 3], classes: 3, backend: 'reference' });
    const p = m.predict(new Float32Array(32 * 32 * 3));
    m.dispose();
    const y = await p;
    expect(y.length).toBe(3);
  });

  it('rejects bad options with the template messages', async () => {
    await expect(Model.fromArchitecture('v1', { threads: -1 })).rejects.toThrow(new RangeError('Expected positive integer for threads but received -1'));
    await expect(Model.fromArchitecture('v1', { backend: 'gpu' as 'native' })).rejects.toThrow(
      new RangeError('Expected one of "native", "reference" for backend but received "gpu"'),
    );
    await expect(Model.fromArchitecture('v4' as 'v1', {})).rejects.toThrow(RangeError);
    await expect(Model.fromArchitecture('v1', { colour: 1 } as unknown as { alpha: number })).rejects.toThrow(/for option name but received "colour"/);
    await expect(loadModel(42 as unknown as string)).rejects.toThrow(new TypeError('Expected string for path but received 42'));
  });

  it('detects the preprocessing: V3 with its Rescaling layer takes 0..255, without it and V1/V2 take x/127.5-1', () => {
    const pre = (arch: 'v1' | 'v2' | 'v3-small' | 'v3-large', o: Record<string, unknown> = {}): string =>
      detectPreprocessing(analyzeModel(buildArchitecture(arch, { inputShape: [64, 64, 3], ...o })));
    expect(pre('v1')).toBe('tf');
    expect(pre('v2')).toBe('tf');
    expect(pre('v3-small')).toBe('none');
    expect(pre('v3-large')).toBe('none');
    expect(pre('v3-large', { includePreprocessing: false })).toBe('tf');
  });
});

// ---------------------------------------------------------------------------
// Fuzz: random mutations of a real model.json, through reader → analysis → lowering.
// ---------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function isLibraryError(e: unknown): boolean {
  if (e instanceof ModelFormatError || e instanceof UnsupportedLayerError || e instanceof WeightMismatchError) return true;
  // Parameter errors of the library use the one template.
  if ((e instanceof RangeError || e instanceof TypeError) && /^Expected .* for .* but received/.test(e.message)) return true;
  return false;
}

describe.skipIf(!hasShared)('model.json fuzz (10,000 mutations of mobilenet_v1_0.25_224)', () => {
  it('every mutation is read or rejected with a library error, never a crash', async () => {
    const dir = shared('models', 'mobilenet_v1_0.25_224');
    const file = path.join(dir, 'model.json');
    const text = fs.readFileSync(file, 'utf8');
    const shards = new Map<string, Uint8Array>();
    for (const f of fs.readdirSync(dir)) if (f !== 'model.json') shards.set(path.join(dir, f), fs.readFileSync(path.join(dir, f)));
    const reader = async (p: string): Promise<Uint8Array | null> => shards.get(p) ?? null;
    const baseConfig = JSON.stringify(parseModelJson(text, file).config);
    const rand = mulberry32(20240601);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)] as T;
    const replacements: Json[] = [null, 0, -1, 1, 2.5, 1e9, -1e9, '', 'x', 'same', 'relu6', [], {}, [1], [0, 0], [[0, 1], [0, 1]], true, false, [null, 3, 3, 3]];

    /** Paths (key lists) of every value in a JSON document, computed once on the original. */
    const paths: Array<Array<string | number>> = [];
    (function walk(v: Json, at: Array<string | number>): void {
      if (Array.isArray(v)) {
        v.forEach((c, i) => {
          paths.push([...at, i]);
          walk(c, [...at, i]);
        });
      } else if (v !== null && typeof v === 'object') {
        for (const k of Object.keys(v)) {
          paths.push([...at, k]);
          walk(v[k] as Json, [...at, k]);
        }
      }
    })(JSON.parse(text) as Json, []);
    /** The container and key a path leads to in `doc`, or null when an earlier edit removed it. */
    function locate(doc: Json, p: Array<string | number>): [Record<string | number, Json>, string | number] | null {
      let c: Json = doc;
      for (let i = 0; i < p.length - 1; i++) {
        if (c === null || typeof c !== 'object') return null;
        c = (c as Record<string | number, Json>)[p[i] as string | number] as Json;
      }
      if (c === null || typeof c !== 'object') return null;
      return [c as Record<string | number, Json>, p[p.length - 1] as string | number];
    }

    const counts = { ok: 0, rejected: 0, lowered: 0 };
    const start = Date.now();
    const N = 10_000;
    for (let n = 0; n < N; n++) {
      let mutated: string;
      const mode = rand();
      if (mode < 0.3) {
        // Byte-level: truncate, flip, insert or delete.
        const bytes = Buffer.from(text);
        const at = Math.floor(rand() * bytes.length);
        const kind = Math.floor(rand() * 4);
        if (kind === 0) mutated = bytes.subarray(0, at).toString('utf8');
        else if (kind === 1) {
          for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
          mutated = bytes.toString('latin1');
        } else if (kind === 2) mutated = text.slice(0, at) + pick(['{', '}', '[', ']', ',', '"', '0', '-', 'e9', 'null']) + text.slice(at);
        else mutated = text.slice(0, at) + text.slice(at + 1 + Math.floor(rand() * 40));
      } else {
        // Structural: 1-3 edits of values anywhere in the document.
        const doc = JSON.parse(text) as Json;
        for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
          const at = locate(doc, pick(paths));
          if (at === null) continue;
          const [c, key] = at;
          const r = rand();
          if (r < 0.2 && !Array.isArray(c)) delete c[key];
          else if (r < 0.35) {
            const from = locate(doc, pick(paths));
            c[key] = from === null ? null : structuredClone(from[0][from[1]] ?? null);
          } else if (r < 0.55) {
            const cur = c[key];
            c[key] = typeof cur === 'number' ? pick([cur + 1, cur - 1, cur * 2, 0, -cur, 1e6]) : pick(replacements);
          } else c[key] = pick(replacements);
        }
        mutated = JSON.stringify(doc);
      }
      try {
        const parsed = parseModelJson(mutated, file);
        const weights = await readManifestWeights(parsed.manifest, dir, file, reader);
        const analysis = analyzeModel(parsed.config);
        // Lowering (~10 ms here) only for configs that differ from the original, at most 300 times.
        if (counts.lowered < 300 && JSON.stringify(parsed.config) !== baseConfig) {
          lowerModel(analysis, weights);
          counts.lowered++;
        }
        counts.ok++;
      } catch (e) {
        if (!isLibraryError(e)) {
          throw new Error(`case ${n}: unexpected ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack}`);
        }
        counts.rejected++;
      }
    }
    const ms = Date.now() - start;
    console.log(`[fuzz] ${N} model.json mutations in ${ms} ms: ${counts.ok} read and analyzed (${counts.lowered} changed configs also lowered), ${counts.rejected} rejected with library errors`);
    expect(counts.ok + counts.rejected).toBe(N);
    expect(counts.rejected).toBeGreaterThan(N / 10);
    expect(counts.ok).toBeGreaterThan(100);
    expect(counts.lowered).toBeGreaterThan(100);
  }, 300_000); // ~60 s alone; a shared, loaded machine needs more
});

describe.skipIf(!hasShared)('a loaded model keeps no weights: it reads them again from its unchanged file', () => {
  it('loweredGraph() equals a fresh lowering of the file (read again, not kept); a file changed since loading is a ModelFormatError', async () => {
    const dir = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'mobilenet-reload-'));
    const file = path.join(dir, 'notop.h5');
    fs.copyFileSync(shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5'), file);
    const m = await loadModel(file, { threads: 1 });
    try {
      // Independent reference: the file read and lowered here, not through the model.
      const { readModelFile } = await import('../lib/formats/index.js');
      const f = await readModelFile(file);
      const g = await m.loweredGraph();
      const ref = lowerModel(m.analysis, f.weights).graph;
      expect(g.nodes.length).toBe(ref.nodes.length);
      let maxDiff = 0;
      ref.tensors.forEach((t, i) => {
        const d = g.tensors[i]?.data;
        if (t.data === undefined) return;
        expect(d?.length).toBe(t.data.length);
        for (let k = 0; k < t.data.length; k++) maxDiff = Math.max(maxDiff, Math.abs((d![k] as number) - (t.data[k] as number)));
      });
      expect(maxDiff).toBe(0);
      // The same bytes written again with a new modification time: refused, naming the file.
      const later = new Date(Date.now() + 5000);
      fs.utimesSync(file, later, later);
      const err = await m.loweredGraph().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ModelFormatError);
      expect((err as Error).message).toContain(file);
      expect((err as Error).message).toMatch(/changed on disk since the model was loaded/);
    } finally {
      m.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
