/**
 * Issue 13: one list of builder options (BUILDER_OPTIONS) for every entry
 * point that loads a model, and model-file errors that name the file.
 *
 * - Every command that loads a model (classify, embed, info, convert,
 *   quantize, serve, worker) lists every builder flag in its help.
 * - `mobilenet embed` takes them (it parsed only --arch/--alpha by hand):
 *   `--input-size 160` on the weights-only no-top `.h5` gives the
 *   embeddings of the TF.js model.json holding the same weights loaded at
 *   160 (another file format and loading path: a config, not the builder);
 *   `--pooling max` gives the model's own max pooling (checked against
 *   TF.js in embed.test.ts); flags that do not apply are UsageErrors naming
 *   the flags, mistyped ones get a suggestion. serve and worker reject a
 *   flag that does not apply before they listen / connect.
 * - A model.json whose Reshape target_shape does not hold its input, or
 *   whose InputLayer has unknown dimensions: a ModelFormatError naming the
 *   file and the layer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasShared, shared } from './helpers/shared.js';
import { maxAbsDiff } from './helpers/tfjs.js';
import { runCli } from './helpers/cli-io.js';
import { BUILDER_OPTIONS } from '../lib/architectures/options.js';
import { loadModel } from '../lib/model.js';
import { ModelFormatError } from '../lib/errors.js';

const cli = (args: string[], cwd = process.cwd()): ReturnType<typeof runCli> => runCli(args, { cwd });

describe('the one list of builder flags', () => {
  it.each(['classify', 'embed', 'info', 'convert', 'quantize', 'serve', 'worker'])('`mobilenet %s --help` lists --arch and every builder flag', async (command) => {
    const { code, out } = await cli([command, '--help']);
    expect(code).toBe(0);
    for (const flag of ['arch', ...BUILDER_OPTIONS.map((o) => o.flag)]) expect(out).toMatch(new RegExp(`^ +--${flag}\\b`, 'm'));
  });
});

describe.skipIf(!hasShared)('mobilenet embed / serve / worker with builder flags', () => {
  const H5 = hasShared ? shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5') : '';
  const JSON_DIR = hasShared ? shared('models', 'mobilenet_v1_0.25_224') : '';
  const FILES = hasShared ? ['n01440764_tench.JPEG', 'n01622779_great_grey_owl.JPEG'].map((f) => shared('images', 'imagenet-sample', f)) : [];

  const vectors = (out: string): number[][] => out.trim().split('\n').map((l) => (JSON.parse(l) as { embedding: number[] }).embedding);

  it('--input-size 160 on the weights-only .h5 embeds as the model.json with the same weights at 160', async () => {
    const r = await cli(['embed', '--json', '--threads', '1', '--weights', H5, '--input-size', '160', ...FILES]);
    expect(r.err).not.toMatch(/unknown option/);
    expect(r.code).toBe(0);
    const got = vectors(r.out);
    const ref = await loadModel(JSON_DIR, { inputShape: [160, 160, 3], threads: 1 });
    const at224 = await loadModel(JSON_DIR, { threads: 1 });
    try {
      expect(ref.inputShape).toEqual([160, 160, 3]);
      for (const [i, f] of FILES.entries()) {
        const want = await ref.embed(f);
        expect(got[i]!.length).toBe(256);
        expect(maxAbsDiff(got[i]!, want)).toBeLessThan(1e-5);
        // The size was applied: 224 gives other vectors.
        expect(maxAbsDiff(got[i]!, await at224.embed(f))).toBeGreaterThan(1e-2);
      }
    } finally {
      ref.dispose();
      at224.dispose();
    }
  }, 120_000);

  it('--arch v1 --alpha 0.25 --depth-multiplier 1 --no-top --pooling max: the max-pooled model, not an appended average', async () => {
    const r = await cli(['embed', '--json', '--threads', '1', '--weights', H5, '--arch', 'v1', '--alpha', '0.25', '--depth-multiplier', '1', '--no-top', '--pooling', 'max', FILES[0]!]);
    expect(r.err).not.toMatch(/unknown option/);
    expect(r.code).toBe(0);
    const [got] = vectors(r.out);
    const maxModel = await loadModel(H5, { pooling: 'max', threads: 1 });
    const avgModel = await loadModel(H5, { threads: 1 });
    try {
      expect(maxModel.embeddingInfo().pooling).toBe('max');
      expect(maxAbsDiff(got!, await maxModel.embed(FILES[0]!))).toBeLessThan(1e-6);
      expect(maxAbsDiff(got!, await avgModel.embed(FILES[0]!))).toBeGreaterThan(0.1);
    } finally {
      maxModel.dispose();
      avgModel.dispose();
    }
  }, 120_000);

  it('flags that do not apply are UsageErrors naming the flags; a wrong value names the file\'s; a typo gets a suggestion', async () => {
    const v3only = await cli(['embed', '--weights', H5, '--dropout-rate', '0.3', FILES[0]!]);
    expect(v3only.code).toBe(1);
    expect(v3only.err).toBe('mobilenet embed: --dropout-rate 0.3 applies to --arch v3-small or --arch v3-large only, not to v1\n');
    const withConfig = await cli(['embed', '--weights', JSON_DIR, '--alpha', '0.5', FILES[0]!]);
    expect(withConfig.code).toBe(1);
    expect(withConfig.err).toMatch(/^mobilenet embed: --alpha 0\.5 does not apply to .*model\.json: it carries its model config/);
    const mismatch = await cli(['embed', '--weights', H5, '--depth-multiplier', '2', FILES[0]!]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.err).toMatch(/WeightMismatchError: .*mobilenet_2_5_224_tf_no_top\.h5 holds the weights of MobileNet v1 alpha 0\.25 without top, which does not match --depth-multiplier 2/);
    const typo = await cli(['embed', '--depth-multiplie', '2', FILES[0]!]);
    expect(typo.err).toBe('mobilenet embed: unknown option --depth-multiplie: did you mean --depth-multiplier? (--help lists the options)\n');
  }, 120_000);

  it('serve and worker: a builder flag that does not apply is a UsageError before listening or connecting', async () => {
    const serve = await cli(['serve', '--port', '0', '--weights', JSON_DIR, '--input-size', '160', '--classes', '10']);
    expect(serve.code).toBe(1);
    expect(serve.err).toMatch(/^mobilenet serve: --classes 10 does not apply to .*model\.json: it carries its model config/);
    const worker = await cli(['worker', '--redis', 'redis://127.0.0.1:1', '--queue', 'q', '--weights', H5, '--dropout-rate', '0.3']);
    expect(worker.code).toBe(1);
    expect(worker.err).toBe('mobilenet worker: --dropout-rate 0.3 applies to --arch v3-small or --arch v3-large only, not to v1\n');
  }, 120_000);
});

describe.skipIf(!hasShared)('model-file errors name the file', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'model-file-errors-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A copy of the shared 0.25 model.json (and its shards) with `edit` applied to its layers' configs. */
  function mutated(name: string, edit: (layer: { config: Record<string, unknown> }) => void): string {
    const to = path.join(dir, name);
    fs.cpSync(shared('models', 'mobilenet_v1_0.25_224'), to, { recursive: true });
    const file = path.join(to, 'model.json');
    const json = JSON.parse(fs.readFileSync(file, 'utf8')) as { modelTopology: { model_config: { config: { layers: Array<{ config: Record<string, unknown> }> } } } };
    json.modelTopology.model_config.config.layers.forEach(edit);
    fs.writeFileSync(file, JSON.stringify(json));
    return file;
  }

  it('a Reshape target_shape that does not hold its input: ModelFormatError naming file, layer, shape', async () => {
    const file = mutated('reshape', (l) => {
      if (l.config.name === 'reshape_1') l.config.target_shape = [1, 1, 255];
    });
    const err = await loadModel(file, { threads: 1 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).file).toBe(file);
    expect((err as Error).message).toBe(`${file}: Reshape layer 'reshape_1' has target_shape [1,1,255], which does not hold the 256 elements of its input [256]`);
    const r = await cli(['info', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(file);
  });

  it('an InputLayer with unknown dimensions: ModelFormatError naming file and layer; inputShape loads it', async () => {
    const file = mutated('dynamic', (l) => {
      if (l.config.name === 'input_1') l.config.batch_input_shape = [null, null, null, 3];
    });
    const err = await loadModel(file, { threads: 1 }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as ModelFormatError).file).toBe(file);
    expect((err as Error).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: input layer 'input_1' has no static shape \\(\\[None, None, 3\\]\\): pass inputShape`));
    const m = await loadModel(file, { threads: 1, inputShape: [160, 160, 3] });
    try {
      expect(m.inputShape).toEqual([160, 160, 3]);
      expect(m.outputShape).toEqual([1000]);
    } finally {
      m.dispose();
    }
  });
});
