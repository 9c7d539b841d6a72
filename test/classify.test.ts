import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify, classifyBatch, topK, type BatchResult, type Predictor } from '../lib/classify.js';
import { autoBatch, defaultConcurrency } from '../lib/batch.js';
import { ImageDecodeError, NotAClassifierError } from '../lib/errors.js';
import type { RawPixels } from '../lib/image.js';
import { imagenetClasses, imagenetLabels, parseClassIndex, resolveLabels } from '../lib/labels.js';
import { loadModel, type Model } from '../lib/model.js';
import { hasShared, referenceOutput, referenceOutputs, shared, sharedLabel, type ReferenceImage } from './helpers/shared.js';
import { LOG_PROB_TOL, compareProbs, formatProbDiff } from './helpers/compare.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-classify-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ImageNet labels (data/imagenet_class_index.json)', () => {
  it('has 1000 entries, keys 0..999 in order, strictly increasing wnids', () => {
    const file = path.resolve(import.meta.dirname, '..', 'data', 'imagenet_class_index.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, [string, string]>;
    expect(Object.keys(json)).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
    const classes = imagenetClasses();
    expect(classes).toHaveLength(1000);
    for (let i = 0; i < 1000; i++) {
      expect(classes[i]!.index).toBe(i);
      expect(classes[i]!.wnid).toMatch(/^n\d{8}$/);
      if (i > 0) expect(classes[i]!.wnid > classes[i - 1]!.wnid).toBe(true);
    }
    expect(new Set(classes.map((c) => c.wnid)).size).toBe(1000);
    expect(classes[0]).toEqual({ index: 0, wnid: 'n01440764', label: 'tench' });
    expect(classes[999]).toEqual({ index: 999, wnid: 'n15075141', label: 'toilet_tissue' });
    expect(classes[281]!.label).toBe('tabby');
  });

  it('only the two known label duplicates exist (crane 134/517, maillot 638/639)', () => {
    const labels = imagenetLabels();
    const seen = new Map<string, number[]>();
    labels.forEach((l, i) => seen.set(l, [...(seen.get(l) ?? []), i]));
    const dups = [...seen.entries()].filter(([, v]) => v.length > 1);
    expect(dups).toEqual([
      ['crane', [134, 517]],
      ['maillot', [638, 639]],
    ]);
  });

  it.skipIf(!hasShared)('equals the Keras class index in ../shared', () => {
    const ref = JSON.parse(fs.readFileSync(shared('models', 'imagenet_class_index.json'), 'utf8')) as Record<string, [string, string]>;
    expect(imagenetClasses().map((c) => [c.wnid, c.label])).toEqual(Object.values(ref));
  });

  it('custom class names: arrays, JSON and text files; the count must match', () => {
    expect(resolveLabels(['cat', 'dog'], 2)).toEqual(['cat', 'dog']);
    expect(resolveLabels(undefined, 3)).toEqual(['class_0', 'class_1', 'class_2']);
    expect(resolveLabels(undefined, 1000)[285]).toBe('Egyptian_cat');
    const txt = path.join(tmp, 'labels.txt');
    fs.writeFileSync(txt, 'cat\r\ndog\n\n');
    expect(resolveLabels(txt, 2)).toEqual(['cat', 'dog']);
    const arr = path.join(tmp, 'labels.json');
    fs.writeFileSync(arr, JSON.stringify(['a', 'b', 'c']));
    expect(resolveLabels(arr, 3)).toEqual(['a', 'b', 'c']);
    const idx = path.join(tmp, 'index.json');
    fs.writeFileSync(idx, JSON.stringify({ 0: ['n1', 'x'], 1: ['n2', 'y'] }));
    expect(resolveLabels(idx, 2)).toEqual(['x', 'y']);
    // A sentence, not the parameter template (which read 'Expected 2 labels (...) for labels but received "1 labels"').
    expect(() => resolveLabels(['a'], 2)).toThrow(new RangeError('The labels array has 1 label but the model has 2 outputs: give one label per output'));
    expect(() => resolveLabels([1, 2] as unknown as string[], 2)).toThrow(TypeError);
    expect(() => resolveLabels(path.join(tmp, 'nope.txt'), 2)).toThrow(RangeError);
    expect(() => parseClassIndex({ 0: ['n1', 'x'], 2: ['n2', 'y'] })).toThrow(RangeError);
  });
});

/** Independent top-k: a full stable sort by (score desc, index asc). */
function referenceTopK(scores: number[], k: number): number[] {
  return scores
    .map((s, i) => ({ s: Number.isNaN(s) ? -Infinity : s, i }))
    .sort((a, b) => (b.s !== a.s ? b.s - a.s : a.i - b.i))
    .slice(0, k)
    .map((x) => x.i);
}

describe('topK', () => {
  it('breaks ties by the lower index', () => {
    const r = topK(Float32Array.from([0.1, 0.3, 0.3, 0.2, 0.3]), 4, ['a', 'b', 'c', 'd', 'e']);
    expect(r.map((p) => p.index)).toEqual([1, 2, 4, 3]);
    expect(r[0]).toEqual({ index: 1, label: 'b', probability: Math.fround(0.3) });
  });

  it('matches a full sort on random scores with many ties and NaNs', () => {
    let seed = 12345;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(rand() * 60);
      const scores = Array.from({ length: n }, () => (rand() < 0.05 ? NaN : Math.floor(rand() * 8) / 8));
      const k = 1 + Math.floor(rand() * n);
      const got = topK(scores, k, []).map((p) => p.index);
      expect(got).toEqual(referenceTopK(scores, k));
    }
  });

  it('reads a window of a batch output', () => {
    const scores = Float32Array.from([9, 9, 9, 0.1, 0.7, 0.2, 9]);
    expect(topK(scores, 2, ['x', 'y', 'z'], 3, 3).map((p) => [p.index, p.label])).toEqual([
      [1, 'y'],
      [2, 'z'],
    ]);
  });
});

/**
 * A small exact predictor: 3 classes whose scores are the mean red, green
 * and blue input values (then normalized), so the answer for a solid-colour
 * image is known independently of any network.
 */
class ColourPredictor implements Predictor {
  readonly inputShape = [8, 8, 3] as const;
  readonly classes = 3;
  calls: number[] = [];
  inPredict = false;
  /** predict() calls not yet settled, and the most at once. */
  active = 0;
  maxActive = 0;
  constructor(
    readonly preprocessing: 'tf' | 'none' = 'none',
    private readonly delayMs = 0,
  ) {}
  async predict(input: Float32Array, { batch }: { batch: number }): Promise<Float32Array> {
    this.calls.push(batch);
    expect(input.length).toBe(batch * 8 * 8 * 3);
    this.inPredict = true;
    this.maxActive = Math.max(this.maxActive, ++this.active);
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    this.active--;
    this.inPredict = false;
    const out = new Float32Array(batch * 3);
    for (let b = 0; b < batch; b++) {
      const sums = [0, 0, 0];
      for (let i = 0; i < 64; i++) for (let c = 0; c < 3; c++) sums[c]! += input[b * 192 + i * 3 + c]!;
      const means = sums.map((s) => (this.preprocessing === 'tf' ? (s / 64 + 1) * 127.5 : s / 64));
      const total = means[0]! + means[1]! + means[2]! || 1;
      for (let c = 0; c < 3; c++) out[b * 3 + c] = means[c]! / total;
    }
    return out;
  }
}

function solidImage(rgb: [number, number, number], w = 20, h = 12): RawPixels {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) data.set(rgb, i * 3);
  return { data, width: w, height: h, channels: 3 };
}

const COLOURS = ['red', 'green', 'blue'];

describe('classify / classifyBatch with an exact predictor', () => {
  it('returns [{ index, label, probability }] from the decoded pixels', async () => {
    for (const pre of ['none', 'tf'] as const) {
      const model = new ColourPredictor(pre);
      const r = await classify(model, solidImage([200, 50, 0]), { labels: COLOURS, topK: 3 });
      expect(r.map((p) => p.label)).toEqual(['red', 'green', 'blue']);
      expect(r[0]!.probability).toBeCloseTo(200 / 250, 5);
      expect(r[1]!.probability).toBeCloseTo(50 / 250, 5);
      expect(r[2]!.probability).toBe(0);
      expect(model.calls).toEqual([1]);
    }
  });

  it('topK defaults to 5 capped at the class count; invalid options are parameter errors', async () => {
    const model = new ColourPredictor();
    expect(await classify(model, solidImage([0, 0, 9]), { labels: COLOURS })).toHaveLength(3);
    expect((await classify(model, solidImage([0, 0, 9]), { labels: COLOURS, topK: 1 }))[0]!.label).toBe('blue');
    await expect(classify(model, solidImage([0, 0, 9]), { topK: 0 })).rejects.toThrow('Expected positive integer for topK but received 0');
    await expect(classify(model, solidImage([0, 0, 9]), { labels: ['a'] })).rejects.toThrow(RangeError);
    await expect(classify({} as Predictor, solidImage([0, 0, 9]))).rejects.toThrow(TypeError);
    // A feature extractor (no classifier head) is refused rather than ranked.
    const features = Object.assign(new ColourPredictor(), { outputShape: [1, 1, 3] });
    const notClassifier: unknown = await classify(features, solidImage([0, 0, 9])).catch((e: unknown) => e);
    expect(notClassifier).toBeInstanceOf(NotAClassifierError);
    expect((notClassifier as Error).message).toMatch(/output \(shape \[1, 1, 3\] per image\) is a feature map.*embed/);
    expect(await classify(Object.assign(new ColourPredictor(), { outputShape: [3] }), solidImage([0, 0, 9]), { labels: COLOURS, topK: 1 })).toHaveLength(1);
    await expect(classify(model, path.join(tmp, 'missing.png'))).rejects.toThrow(ImageDecodeError);
  });

  it('classifyBatch: input order, per-image errors as results, padded last batch', async () => {
    const bad = path.join(tmp, 'bad.jpg');
    fs.writeFileSync(bad, 'not an image');
    const pngBlue = await sharp(Buffer.from(solidImage([0, 0, 255]).data), { raw: { width: 20, height: 12, channels: 3 } }).png().toBuffer();
    const inputs = [solidImage([255, 0, 0]), bad, solidImage([0, 255, 0]), pngBlue, new Uint8Array(0), solidImage([9, 9, 200])];
    const model = new ColourPredictor();
    const results: BatchResult[] = [];
    for await (const r of classifyBatch(model, inputs, { batchSize: 4, topK: 1, labels: COLOURS })) results.push(r);
    expect(results.map((r) => r.position)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(results.map((r) => r.predictions?.[0]?.label ?? 'error')).toEqual(['red', 'error', 'green', 'blue', 'error', 'blue']);
    expect(results[1]!.error).toBeInstanceOf(ImageDecodeError);
    expect(results[1]!.error!.message).toContain(bad);
    expect(results[1]!.name).toBe(bad);
    expect(results[4]!.error).toBeInstanceOf(ImageDecodeError);
    // Two batches of 4 (the second padded): one runtime size only.
    expect(model.calls).toEqual([4, 4]);
    // The same answers as one-by-one classification.
    const single = await classify(model, inputs[5] as RawPixels, { topK: 1, labels: COLOURS });
    expect(results[5]!.predictions).toEqual(single);
  });

  it('a batch whose images all fail makes no predict call', async () => {
    const model = new ColourPredictor();
    const results: BatchResult[] = [];
    for await (const r of classifyBatch(model, [new Uint8Array(0), new Uint8Array(0)], { batchSize: 2 , labels: COLOURS })) results.push(r);
    expect(results.every((r) => r.error instanceof ImageDecodeError)).toBe(true);
    expect(model.calls).toEqual([]);
  });

  it('bounded pipeline: decoding overlaps inference and at most 3 × batchSize images are ahead (concurrency ≤ batchSize)', async () => {
    const model = new ColourPredictor('none', 30);
    const batchSize = 3;
    let pulled = 0;
    let consumed = 0;
    let maxAhead = 0;
    let pulledDuringPredict = 0;
    async function* source(): AsyncGenerator<RawPixels> {
      for (let i = 0; i < 20; i++) {
        if (model.inPredict) pulledDuringPredict++;
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - consumed);
        yield solidImage([i * 10, 0, 0]);
      }
    }
    const got: number[] = [];
    // concurrency ≤ batchSize: three batch buffers (lib/batch.ts): one decoding, one inferred, one the caller holds.
    for await (const r of classifyBatch(model, source(), { batchSize, concurrency: batchSize, labels: COLOURS })) {
      consumed++;
      got.push(r.position);
      expect(r.predictions?.[0]?.label).toBe('red');
    }
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(maxAhead).toBeLessThanOrEqual(3 * batchSize);
    expect(pulledDuringPredict).toBeGreaterThan(0);
    expect(model.calls.every((b) => b === batchSize)).toBe(true);
    expect(model.calls).toHaveLength(Math.ceil(20 / batchSize));
  });

  it('more decodes in flight than a batch: decoding runs across batch boundaries, each image keeps its own result, a slow consumer bounds what is pulled', async () => {
    const model = new ColourPredictor('none', 15);
    const batchSize = 2;
    const concurrency = 4;
    const colours: Array<[number, number, number]> = [[200, 0, 0], [0, 200, 0], [0, 0, 200]];
    let pulled = 0;
    let consumed = 0;
    let maxAhead = 0;
    let pulledDuringPredict = 0;
    async function* source(): AsyncGenerator<RawPixels> {
      for (let i = 0; i < 24; i++) {
        if (model.inPredict) pulledDuringPredict++;
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - consumed);
        yield solidImage(colours[i % 3]!);
      }
    }
    const got: Array<string | undefined> = [];
    for await (const r of classifyBatch(model, source(), { batchSize, concurrency, labels: COLOURS, topK: 1 })) {
      consumed++;
      expect(r.position).toBe(got.length);
      got.push(r.predictions?.[0]?.label);
      await new Promise((resolve) => setTimeout(resolve, 5)); // a consumer slower than the pipeline
    }
    // Every image got its own colour: no buffer was refilled while the model or the caller still used it.
    expect(got).toEqual(Array.from({ length: 24 }, (_, i) => COLOURS[i % 3]));
    expect(pulledDuringPredict).toBeGreaterThan(0);
    // lib/batch.ts: ceil(concurrency / batchSize) + 2 buffers of batchSize images.
    expect(maxAhead).toBeLessThanOrEqual((Math.ceil(concurrency / batchSize) + 2) * batchSize);
    expect(model.calls).toEqual(Array.from({ length: 12 }, () => batchSize));
  });

  it('one predict call at a time: a batch goes to the model once it finished the previous one (the runtime takes the input without copying it)', async () => {
    for (const [batchSize, concurrency] of [[1, 4], [2, 4], [3, 3]] as const) {
      const model = new ColourPredictor('none', 10);
      const images = Array.from({ length: 12 }, (_, i) => solidImage([0, 0, 10 + i]));
      const got: Array<string | undefined> = [];
      for await (const r of classifyBatch(model, images, { batchSize, concurrency, labels: COLOURS, topK: 1 })) got.push(r.predictions?.[0]?.label);
      expect(got).toEqual(images.map(() => 'blue'));
      expect(model.calls).toHaveLength(Math.ceil(12 / batchSize));
      expect(model.maxActive).toBe(1);
    }
  });

  it('autoBatch (the CLI policy): inference never takes every core from the decoders on a big run; decodes stay within libuv pool', () => {
    for (const c of [1, 2, 4, 8, 64]) {
      for (const pool of [4, 16]) {
        expect(autoBatch(1, c, pool)).toEqual({ batch: 1, concurrency: 1, threads: c });
        const few = autoBatch(5, c, pool);
        expect(few.batch).toBe(5);
        const many = autoBatch(250, c, pool);
        expect(many.concurrency).toBeLessThanOrEqual(Math.min(2 * c, pool));
        expect(many.concurrency).toBeGreaterThanOrEqual(1);
        expect(many.threads).toBeGreaterThanOrEqual(1);
        if (c >= 2) expect(many.threads).toBeLessThan(c);
        expect(many.batch).toBe(many.threads === 1 ? 1 : 4);
      }
    }
    expect(autoBatch(250, 2, 4)).toEqual({ batch: 1, concurrency: 4, threads: 1 });
    expect(defaultConcurrency(2, 4)).toBe(4);
    expect(defaultConcurrency(8, 4)).toBe(4);
  });

  it('stopping early closes the source', async () => {
    const model = new ColourPredictor();
    let closed = false;
    async function* source(): AsyncGenerator<RawPixels> {
      try {
        for (let i = 0; i < 100; i++) yield solidImage([0, 200, 0]);
      } finally {
        closed = true;
      }
    }
    for await (const r of classifyBatch(model, source(), { batchSize: 2, labels: COLOURS })) {
      expect(r.predictions?.[0]?.label).toBe('green');
      break;
    }
    expect(closed).toBe(true);
  });

  it('rejects bad batch options before reading anything', async () => {
    const model = new ColourPredictor();
    const it1 = classifyBatch(model, [solidImage([1, 2, 3])], { batchSize: 0 });
    await expect(it1.next()).rejects.toThrow('Expected positive integer for batchSize but received 0');
    const it2 = classifyBatch(model, 5 as unknown as Iterable<RawPixels>);
    await expect(it2.next()).rejects.toThrow(TypeError);
  });
});

function imagePath(file: string): string {
  return file === 'cat.jpg' ? shared('images', 'cat.jpg') : shared('images', 'imagenet-sample', file);
}

// Tolerance against the TensorFlow.js wasm reference (probabilities rounded to
// 7 significant digits): compared at the logit level, every class's
// log-probability within LOG_PROB_TOL (test/helpers/compare.ts).

describe.skipIf(!hasShared)('classify with the real V1 models vs the TensorFlow.js reference outputs', () => {
  let m075: Model;
  let m025: Model;
  beforeAll(async () => {
    m075 = await loadModel(shared('models', 'mobilenet_v1_0.75_224', 'model.json'), { threads: 2 });
    m025 = await loadModel(shared('models', 'mobilenet_v1_0.25_224', 'model.json'), { threads: 2 });
  });
  afterAll(() => {
    m075?.dispose();
    m025?.dispose();
  });

  it('cat.jpg: top-1 and top-2 of the 0.75 model and top-1 of the 0.25 model as in the TF.js reference, with its probability', async () => {
    const ref75 = referenceOutput('0.75', 'cat.jpg');
    const ref25 = referenceOutput('0.25', 'cat.jpg');
    const a = await classify(m075, shared('images', 'cat.jpg'));
    expect(a[0]!.index).toBe(ref75.top5[0]);
    expect(a[0]!.label).toBe(sharedLabel(ref75.top5[0]!));
    expect(Math.abs(a[0]!.probability / ref75.top5_probs[0]! - 1)).toBeLessThanOrEqual(LOG_PROB_TOL);
    expect(a[1]!.index).toBe(ref75.top5[1]);
    const b = await classify(m025, fs.readFileSync(shared('images', 'cat.jpg')), { topK: 1 });
    expect(b).toHaveLength(1);
    expect(b[0]!.label).toBe(sharedLabel(ref25.top5[0]!));
    expect(Math.abs(b[0]!.probability / ref25.top5_probs[0]! - 1)).toBeLessThanOrEqual(LOG_PROB_TOL);
  });

  for (const [name, get] of [
    ['0.75', () => m075],
    ['0.25', () => m025],
  ] as const) {
    it(`classifyBatch (batch 4) on the 9 reference images matches every probability (${name})`, async () => {
      const refs: ReferenceImage[] = referenceOutputs(name);
      expect(refs).toHaveLength(9);
      const model = get();
      let maxDiff = 0;
      let n = 0;
      for await (const r of classifyBatch(model, refs.map((x) => imagePath(x.file)), { batchSize: 4, topK: 1000 })) {
        const ref = refs[r.position]!;
        expect(r.error).toBeUndefined();
        const preds = r.predictions!;
        expect(preds).toHaveLength(1000);
        const ours = new Float64Array(1000);
        for (const p of preds) ours[p.index] = p.probability;
        const d = compareProbs(ours, ref.probs);
        expect(d.maxLogDiff, `${ref.file}: ${formatProbDiff(d)}`).toBeLessThanOrEqual(LOG_PROB_TOL);
        expect(d.topRelDiff, `${ref.file}: ${formatProbDiff(d)}`).toBeLessThanOrEqual(LOG_PROB_TOL);
        maxDiff = Math.max(maxDiff, d.maxLogDiff);
        // Top-1 always agrees (the smallest reference top-1/top-2 gap is 0.0123).
        expect(preds[0]!.index).toBe(ref.top5[0]);
        // Top-5 as a set, where the reference's ranks 5/6 are not within the tolerance of each other.
        const sorted = [...ref.probs].sort((x, y) => y - x);
        if (sorted[4]! / sorted[5]! - 1 > 2 * LOG_PROB_TOL) expect(new Set(preds.slice(0, 5).map((p) => p.index))).toEqual(new Set(ref.top5));
        n++;
      }
      expect(n).toBe(9);
      expect(maxDiff).toBeLessThanOrEqual(LOG_PROB_TOL);
    });
  }
});
