/**
 * The micro-batcher and the classifier's input checks, in-process: batched
 * answers equal per-image Model.predict, batches are padded to the compiled
 * sizes, the queue bound refuses, close() answers what was queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../lib/keras/random.js';
import { Model } from '../lib/model.js';
import { MicroBatcher } from '../lib/server/batcher.js';
import { looksLikeSvg } from '../lib/image.js';
import { ClosingError, QueueFullError } from '../lib/server/errors.js';

describe('MicroBatcher', () => {
  let model: Model;
  const inputs: Float32Array[] = [];
  const singles: Float32Array[] = [];

  beforeAll(async () => {
    model = await Model.fromArchitecture('v1', { alpha: 0.25, inputShape: [64, 64, 3], classes: 10, threads: 1 });
    const rand = mulberry32(7);
    for (let i = 0; i < 7; i++) {
      const x = new Float32Array(64 * 64 * 3);
      for (let j = 0; j < x.length; j++) x[j] = rand() * 2 - 1;
      inputs.push(x);
      singles.push(await model.predict(x, { batch: 1 }));
    }
  });

  afterAll(() => model.dispose());

  it('groups concurrent images into padded batches and answers each like a batch of one', async () => {
    const b = new MicroBatcher(model, { maxBatch: 5, maxWaitMs: 10_000, maxQueue: 16 });
    expect(b.sizes).toEqual([1, 2, 4, 5]);
    expect(new MicroBatcher(model, { maxBatch: 16, maxWaitMs: 0, maxQueue: 1 }).sizes).toEqual([1, 4, 8, 16]);
    const batches: number[] = [];
    b.onBatch = (s) => batches.push(s.size);
    // Five fill a batch at once (no 10 s wait); the other two run right after it, padded to 2.
    const results = await Promise.all(inputs.map((x) => b.submit(x)));
    expect(batches).toEqual([5, 2]);
    results.forEach((r, i) => {
      expect(r).toHaveLength(10);
      for (let j = 0; j < 10; j++) expect(Math.abs(r[j]! - singles[i]![j]!)).toBeLessThan(1e-5);
    });
    // Three waiting images run as a batch padded to 4.
    const three = await Promise.all(inputs.slice(4, 7).map((x) => b.submit(x)));
    three.forEach((r, i) => {
      for (let j = 0; j < 10; j++) expect(Math.abs(r[j]! - singles[i + 4]![j]!)).toBeLessThan(1e-5);
    });
    expect(batches).toEqual([5, 2, 3]);
  });

  it('refuses beyond maxQueue, and close() answers what was queued, then refuses', async () => {
    const b = new MicroBatcher(model, { maxBatch: 8, maxWaitMs: 60_000, maxQueue: 3 });
    const queued = inputs.slice(0, 3).map((x) => b.submit(x));
    expect(b.depth).toBe(3);
    await expect(b.submit(inputs[3]!)).rejects.toBeInstanceOf(QueueFullError);
    await b.close(); // does not wait out the 60 s timer
    const results = await Promise.all(queued);
    results.forEach((r, i) => {
      for (let j = 0; j < 10; j++) expect(Math.abs(r[j]! - singles[i]![j]!)).toBeLessThan(1e-5);
    });
    await expect(b.submit(inputs[0]!)).rejects.toBeInstanceOf(ClosingError);
  });

  it('validates its options and inputs with the library message template', () => {
    expect(() => new MicroBatcher(model, { maxBatch: 0, maxWaitMs: 1, maxQueue: 1 })).toThrow('Expected positive integer for maxBatch but received 0');
    expect(() => new MicroBatcher(model, { maxBatch: 1, maxWaitMs: -1, maxQueue: 1 })).toThrow('Expected non-negative integer for maxWaitMs but received -1');
    const b = new MicroBatcher(model, { maxBatch: 1, maxWaitMs: 0, maxQueue: 1 });
    expect(() => b.submit(new Float32Array(5))).toThrow(/Expected Float32Array of length 12288 for input/);
  });
});

describe('looksLikeSvg', () => {
  it('finds SVG documents behind a BOM, whitespace or an XML prolog, and nothing else', () => {
    const yes = [
      '<svg xmlns="http://www.w3.org/2000/svg"/>',
      '\ufeff  \n<svg>',
      '<?xml version="1.0"?>\n<!DOCTYPE svg>\n<SVG width="1">',
    ];
    const no = ['<html><body>svg</body></html>', 'GIF89a<svg>', '', '   ', '<svgfoo>'];
    for (const s of yes) expect(looksLikeSvg(Buffer.from(s)), s).toBe(true);
    for (const s of no) expect(looksLikeSvg(Buffer.from(s)), s).toBe(false);
  });
});
