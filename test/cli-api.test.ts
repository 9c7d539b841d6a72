/**
 * Issue 13 (CLI/API): each symptom a new user hit, as a test that failed
 * before the fix. The CLI runs in-process through `main()` with in-memory
 * streams, except where a real process is the point (/dev/full). References:
 * the same images classified through another path (the file vs stdin, the
 * default model through its path), the shipped model's known class for the
 * example image (607 jack-o'-lantern), Keras's architecture of the shared
 * weights-only file (../shared/README.md: V1 alpha 0.25 without top).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../lib/classify.js';
import { nearestOption } from '../lib/cli/options.js';
import { defaultModelPath } from '../lib/default-model.js';
import { NotAClassifierError, WeightMismatchError } from '../lib/errors.js';
import { loadModel, Model } from '../lib/model.js';
import { failingStream, runCli } from './helpers/cli-io.js';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const exec = promisify(execFile);
const jack = path.join(repoRoot, 'examples', 'jack-o-lantern.jpg');

const cli = (args: string[], cwd = repoRoot, stdin?: NodeJS.ReadableStream): ReturnType<typeof runCli> => runCli(args, { cwd, stdin });

interface Line {
  file: string;
  predictions?: Array<{ index: number; label: string; probability: number }>;
  error?: string;
}

const lines = (text: string): Line[] => text.trim().split('\n').map((l) => JSON.parse(l) as Line);

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-13-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('wrong or misleading output', () => {
  it.skipIf(!hasShared)('a pooled feature extractor is refused by classify, pointing to the embedding API (was "448.42% class_219")', async () => {
    const notop = shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5');
    const r = await cli(['classify', jack, '--weights', notop, '--pooling', 'avg']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain('mobilenet classify: NotAClassifierError: ');
    expect(r.err).toContain('is not a probability distribution over classes');
    expect(r.err).toContain('model.embed()');
    expect(r.err).toContain('`mobilenet embed`');
    const model = await loadModel(notop, { pooling: 'avg', threads: 1 });
    try {
      expect(model.outputShape).toEqual([256]);
      expect(model.outputActivation).toBeNull();
      await expect(classify(model, jack)).rejects.toThrow(NotAClassifierError);
    } finally {
      model.dispose();
    }
    // A classifier with a softmax head is accepted.
    const def = await loadModel({ threads: 1 });
    try {
      expect(def.outputActivation).toBe('softmax');
    } finally {
      def.dispose();
    }
  });

  it('--arch next to the default model (which has a config) is an error, not ignored', async () => {
    const r = await cli(['classify', jack, '--arch', 'v2']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(
      `mobilenet classify: --arch v2 does not apply to ${defaultModelPath()}: it carries its model config (MobileNet v1), which fixes the architecture; architecture options are for weights-only files\n`,
    );
    // The API says the same with its option names.
    await expect(loadModel({ architecture: 'v2' })).rejects.toThrow(`architecture: "v2" does not apply to ${defaultModelPath()}`);
    await expect(loadModel({ alpha: 0.5 })).rejects.toThrow(RangeError);
  });

  it('--top above the number of classes is an error (was clamped, last row misaligned); --top 1000 rows align', async () => {
    const r = await cli(['classify', jack, '--top', '1001']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('mobilenet classify: Expected integer from 1 to 1000 (the model\'s number of classes) for --top but received "1001"\n');
    const all = await cli(['classify', jack, '--top', '1000', '--quiet']);
    expect(all.code).toBe(0);
    const rows = all.out.split('\n').slice(1, -1);
    expect(rows).toHaveLength(1000);
    // Every row has its rank right-aligned to the same width, so the columns line up.
    const starts = new Set(rows.map((row) => /^ +\d+\. +\d+\.\d\d% +\d+ {2}/.exec(row)?.[0].length));
    expect(starts.has(undefined)).toBe(false);
    const percentColumn = new Set(rows.map((row) => row.indexOf('%')));
    expect(percentColumn.size).toBe(1);
    expect(rows[999]).toMatch(/^ {2}1000\. /);
    expect(rows[0]).toMatch(/^ {5}1\. +\d+\.\d\d% +607 {2}jack-o'-lantern$/);
  });

  it('a file named on the command line and inside a named directory is classified once', async () => {
    const dir = path.join(tmp, 'dup');
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    fs.copyFileSync(jack, path.join(dir, 'a.jpg'));
    fs.copyFileSync(jack, path.join(dir, 'sub', 'b.jpg'));
    const r = await cli(['classify', 'a.jpg', '.', './sub/b.jpg', 'sub', '--json', '--top', '1'], dir);
    expect(r.code).toBe(0);
    expect(lines(r.out).map((l) => l.file)).toEqual(['a.jpg', path.join('sub', 'b.jpg')]);
    expect(r.err).toMatch(/^mobilenet classify: 2 images, 0 errors, /);
  });

  it('`mobilenet info` with no arguments describes the default model classify uses (was the V1 1.0 builder)', async () => {
    const r = await cli(['info', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j).toMatchObject({ format: 'tfjs', file: defaultModelPath(), architecture: 'v1', alpha: 0.75, outputShape: [1000] });
    // MOBILENET_WEIGHTS is honoured like classify does.
    if (hasShared) {
      const r = await runCli(['info', '--json'], { cwd: repoRoot, env: { MOBILENET_WEIGHTS: shared('models', 'mobilenet_v1_0.25_224', 'model.json') } });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.out)).toMatchObject({ alpha: 0.25 });
    }
  });
});

describe('errors people can act on', () => {
  it('a mistyped flag suggests the nearest valid one', async () => {
    const r = await cli(['classify', jack, '--tpo', '3']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('mobilenet classify: unknown option --tpo: did you mean --top? (--help lists the options)\n');
    const c = await cli(['convert', 'a', 'b', '--quantise', 'uint8']);
    expect(c.err).toBe('mobilenet convert: unknown option --quantise: did you mean --quantize? (--help lists the options)\n');
    expect(nearestOption('wieghts', ['weights', 'top', 'json'])).toBe('weights');
    expect(nearestOption('xyz', ['weights', 'top', 'json'])).toBeUndefined();
  });
});

describe.skipIf(!hasShared)('one resolver for weights-only files', () => {
  const notop = (): string => shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5');

  it("{ architecture: 'v1', alpha: 0.25 } on a no-top file: the file's includeTop (documented); includeTop: true is an error saying what the file holds", async () => {
    const m = await loadModel(notop(), { architecture: 'v1', alpha: 0.25, threads: 1 });
    try {
      expect(m.outputShape).toEqual([7, 7, 256]);
    } finally {
      m.dispose();
    }
    await expect(loadModel(notop(), { architecture: 'v1', alpha: 0.25, includeTop: true })).rejects.toThrow(
      new WeightMismatchError(
        `${notop()} holds the weights of MobileNet v1 alpha 0.25 without top, which does not match includeTop: true: leave these options out (they are read from the file) or pass architecture: "v1", alpha: 0.25, includeTop: false`,
      ),
    );
  });

  it('dropoutRate (V3) and dropout (V1) can be passed; options of another family are errors', async () => {
    const m = await Model.fromArchitecture('v3-small', { inputShape: [32, 32, 3], classes: 3, dropoutRate: 0.5, backend: 'reference' });
    try {
      expect(m.analysis.layers.find((l) => l.className === 'Dropout')?.config.rate).toBe(0.5);
    } finally {
      m.dispose();
    }
    const r = await cli(['info', '--arch', 'v3-small', '--dropout-rate', '0.3', '--summary']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('(Dropout)');
    const bad = await cli(['info', '--arch', 'v1', '--dropout-rate', '0.3']);
    expect(bad.code).toBe(1);
    expect(bad.err).toBe('mobilenet info: --dropout-rate 0.3 applies to --arch v3-small or --arch v3-large only, not to v1\n');
    await expect(Model.fromArchitecture('v2', { dropout: 0.1 })).rejects.toThrow(new RangeError('dropout: 0.1 applies to architecture: "v1" only, not to v2'));
  });
});

describe('features', () => {
  it('loadModel() and loadModel({ threads }) load the shipped default model', async () => {
    const a = await loadModel();
    const b = await loadModel({ threads: 1 });
    const c = await loadModel(defaultModelPath(), { threads: 1 });
    try {
      expect(a.path).toBe(defaultModelPath());
      expect(b.threads).toBe(1);
      const [pa, pb, pc] = await Promise.all([classify(a, jack, { topK: 1 }), classify(b, jack, { topK: 1 }), classify(c, jack, { topK: 1 })]);
      expect(pa[0]!.index).toBe(607);
      expect(pb[0]!.probability).toBeCloseTo(pc[0]!.probability, 6);
      expect(pa[0]!.probability).toBeCloseTo(pc[0]!.probability, 5);
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });

  it('- reads an image from standard input: the same predictions as the file', async () => {
    const stdin = new PassThrough();
    stdin.end(fs.readFileSync(jack));
    const r = await cli(['classify', '-', '--json', '--top', '3'], repoRoot, stdin);
    expect(r.code).toBe(0);
    const fromFile = await cli(['classify', jack, '--json', '--top', '3']);
    const [a] = lines(r.out);
    const [b] = lines(fromFile.out);
    expect(a!.file).toBe('-');
    expect(a!.predictions).toEqual(b!.predictions);
    expect(r.err).toMatch(/^mobilenet classify: 1 image, 0 errors, [\d.]+ images\/s \([\d.]+ s\)\n$/);
  });

  it('control characters in file names are escaped in human output (no terminal escape sequences)', async () => {
    const evil = 'evil\x1b]0;pwned\x07\x1b[2J.jpg';
    fs.copyFileSync(jack, path.join(tmp, evil));
    const r = await cli(['classify', evil, '--top', '1', '--quiet'], tmp);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toBe('evil\\x1b]0;pwned\\x07\\x1b[2J.jpg');
    // eslint-disable-next-line no-control-regex
    expect(r.out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    // JSON output keeps the real name (JSON escapes it).
    const j = await cli(['classify', evil, '--top', '1', '--json', '--quiet'], tmp);
    expect(lines(j.out)[0]!.file).toBe(evil);
  });

  it('a stdout that fails (not EPIPE) exits 1 with a message instead of 0 with every result lost', async () => {
    const r = await runCli(['classify', jack, '--json'], { cwd: repoRoot, stdout: failingStream('ENOSPC') });
    expect(r.code).toBe(1);
    expect(r.err).toBe('mobilenet classify: cannot write the results to standard output (ENOSPC: no space left on device); results were lost\n');
  });

  it.skipIf(!fs.existsSync('/dev/full'))('the same for a real process writing to /dev/full', async () => {
    const script = "import { main } from './lib/cli/index.ts'; process.exitCode = await main(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });";
    // A shell redirection, as a user would type it.
    const err = await exec('sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$0" classify "${jack}" --json > /dev/full`, script], { cwd: repoRoot }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe(1);
    expect(err!.stderr).toContain('mobilenet classify: cannot write the results to standard output (ENOSPC');
  }, 60_000);

  // `mobilenet embed` shares classify's run loop (lib/cli/run-images.ts): the same summary line,
  // escaping and stdout failure handling. The vectors themselves are checked against the API in
  // test/embed.test.ts; here, the same image embedded from the file and from stdin agree.
  it('embed ends with the summary line on stderr (not a TTY), like classify', async () => {
    const stdin = new PassThrough();
    stdin.end(fs.readFileSync(jack));
    const r = await cli(['embed', jack, '-', path.join(tmp, 'missing.jpg'), '--json'], repoRoot, stdin);
    expect(r.code).toBe(2);
    const [a, b, c] = r.out.trim().split('\n').map((l) => JSON.parse(l) as { file: string; embedding?: number[]; error?: string });
    expect(a!.embedding!.length).toBeGreaterThan(0);
    expect(b!.file).toBe('-');
    expect(b!.embedding).toEqual(a!.embedding);
    expect(c!.error).toMatch(/missing\.jpg|no such file|not found/i);
    expect(r.err).toMatch(/^mobilenet embed: 3 images, 1 error, [\d.]+ images\/s \([\d.]+ s\)\n$/);
    const quiet = await cli(['embed', jack, '--json', '--quiet']);
    expect(quiet.code).toBe(0);
    expect(quiet.err).toBe('');
  });

  it('embed escapes control characters in file names in human output', async () => {
    const evil = 'evil\x1b]0;pwned\x07\x1b[2J.jpg';
    fs.copyFileSync(jack, path.join(tmp, evil));
    const r = await cli(['embed', evil, 'no\x1b[31mne.jpg', '--quiet'], tmp);
    expect(r.code).toBe(2);
    const [name, values] = r.out.split('\n')[0]!.split('\t');
    expect(name).toBe('evil\\x1b]0;pwned\\x07\\x1b[2J.jpg');
    expect(values!.split(' ').every((x) => Number.isFinite(Number(x)))).toBe(true);
    // eslint-disable-next-line no-control-regex
    expect(r.out + r.err).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
    expect(r.err).toMatch(/^no\\x1b\[31mne\.jpg: error: /);
  });

  it('embed: a stdout that fails (not EPIPE) exits 1 with a message; EPIPE stops quietly', async () => {
    const full = await runCli(['embed', jack, '--json'], { cwd: repoRoot, stdout: failingStream('ENOSPC') });
    expect(full.code).toBe(1);
    expect(full.err).toBe('mobilenet embed: cannot write the results to standard output (ENOSPC: no space left on device); results were lost\n');
    const pipe = await runCli(['embed', jack, '--json'], { cwd: repoRoot, stdout: failingStream('EPIPE') });
    // The reader went away: no message, no summary, exit 0 (as classify).
    expect(pipe.code).toBe(0);
    expect(pipe.err).toBe('');
  });

  it.skipIf(!fs.existsSync('/dev/full'))('embed in a real process writing to /dev/full exits 1 with the message', async () => {
    const script = "import { main } from './lib/cli/index.ts'; process.exitCode = await main(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });";
    const err = await exec('sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$0" embed "${jack}" > /dev/full`, script], { cwd: repoRoot }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe(1);
    expect(err!.stderr).toContain('mobilenet embed: cannot write the results to standard output (ENOSPC');
  }, 60_000);
});
