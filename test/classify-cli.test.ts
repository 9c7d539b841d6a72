import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../lib/cli/index.js';
import { captureIO, type CapturedIO } from './helpers/cli-io.js';
import { hasShared, referenceOutput, repoRoot, shared, sharedLabel } from './helpers/shared.js';
import { LOG_PROB_TOL } from './helpers/compare.js';
import { pngHeaderBomb } from './helpers/png.js';

const run = promisify(execFile);

const fakeIO = (cwd: string, env: NodeJS.ProcessEnv = {}, tty = false): CapturedIO => captureIO({ cwd, env, tty });

interface Line {
  file: string;
  predictions?: Array<{ index: number; label: string; probability: number }>;
  error?: string;
}

function parseLines(text: string): Line[] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((l) => JSON.parse(l) as Line);
}

let tmp: string;
let mixed: string;
let weights025: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-cli-'));
  mixed = path.join(tmp, 'mixed');
  fs.mkdirSync(path.join(mixed, 'sub', 'deeper'), { recursive: true });
  fs.mkdirSync(path.join(mixed, '.hidden'));
  if (hasShared) {
    weights025 = shared('models', 'mobilenet_v1_0.25_224', 'model.json');
    fs.copyFileSync(shared('images', 'cat.jpg'), path.join(mixed, 'a-cat.jpg'));
    fs.copyFileSync(shared('images', 'imagenet-sample', 'n01440764_tench.JPEG'), path.join(mixed, 'sub', 'deeper', 'tench.JPEG'));
    fs.copyFileSync(shared('images', 'cat.jpg'), path.join(mixed, '.hidden', 'skipped.jpg'));
  }
  fs.writeFileSync(path.join(mixed, 'b-not-an-image.jpg'), 'hello, I am text\n');
  fs.writeFileSync(path.join(mixed, 'c-empty.png'), '');
  fs.writeFileSync(
    path.join(mixed, 'd-one-pixel.png'),
    await sharp(Buffer.from([200, 30, 30]), { raw: { width: 1, height: 1, channels: 3 } }).png().toBuffer(),
  );
  fs.writeFileSync(path.join(mixed, 'e-bomb.png'), pngHeaderBomb(20000, 20000));
  fs.symlinkSync(path.join(mixed, 'nowhere.jpg'), path.join(mixed, 'f-dangling.jpg'));
  fs.writeFileSync(path.join(mixed, 'notes.txt'), 'not an image extension: not walked');
  const noise = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919) % 251;
  const jpeg = await sharp(noise, { raw: { width: 64, height: 64, channels: 3 } }).jpeg().toBuffer();
  fs.writeFileSync(path.join(mixed, 'sub', 'g-truncated.jpg'), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!hasShared)('mobilenet classify (in process)', () => {
  it('--json on a directory with mixed files: one parseable line per file, per-file errors, exit 2', async () => {
    const f = fakeIO(tmp);
    const code = await main(['classify', 'mixed', '--weights', weights025, '--json', '--top', '3'], f.io);
    expect(code).toBe(2);
    const lines = parseLines(f.out());
    expect(lines.map((l) => l.file)).toEqual([
      path.join('mixed', 'a-cat.jpg'),
      path.join('mixed', 'b-not-an-image.jpg'),
      path.join('mixed', 'c-empty.png'),
      path.join('mixed', 'd-one-pixel.png'),
      path.join('mixed', 'e-bomb.png'),
      path.join('mixed', 'f-dangling.jpg'),
      path.join('mixed', 'sub', 'deeper', 'tench.JPEG'),
      path.join('mixed', 'sub', 'g-truncated.jpg'),
    ]);
    const byName = new Map(lines.map((l) => [path.basename(l.file), l]));
    // Good images: predictions (the TF.js reference's top-1 for cat.jpg with the 0.25 model, its probability; tench → tench).
    const catRef = referenceOutput('0.25', 'cat.jpg');
    expect(byName.get('a-cat.jpg')!.predictions!.map((p) => p.label)[0]).toBe(sharedLabel(catRef.top5[0]!));
    expect(Math.abs(byName.get('a-cat.jpg')!.predictions![0]!.probability / catRef.top5_probs[0]! - 1)).toBeLessThanOrEqual(LOG_PROB_TOL);
    expect(byName.get('a-cat.jpg')!.predictions).toHaveLength(3);
    expect(byName.get('tench.JPEG')!.predictions![0]!.index).toBe(0);
    // 1×1 works (upscaled).
    expect(byName.get('d-one-pixel.png')!.predictions).toHaveLength(3);
    // Bad ones: an error string each, no predictions.
    expect(byName.get('b-not-an-image.jpg')!.error).toMatch(/not an image/);
    expect(byName.get('c-empty.png')!.error).toMatch(/empty file/);
    expect(byName.get('e-bomb.png')!.error).toMatch(/too large|pixel limit/i);
    expect(byName.get('f-dangling.jpg')!.error).toMatch(/file not found/);
    expect(byName.get('g-truncated.jpg')!.error).toMatch(/cannot decode/);
    for (const l of lines) expect(l.predictions === undefined).toBe(l.error !== undefined);
    // Not a TTY: no progress bar; only the summary line on stderr in JSON mode.
    expect(f.err()).toMatch(/^mobilenet classify: 8 images, 5 errors, \d+\.\d images\/s \(\d+\.\d\d s\)\n$/);
  });

  it('human output: a table per image on stdout, errors on stderr, exit 2', async () => {
    const f = fakeIO(mixed);
    const code = await main(['classify', 'a-cat.jpg', 'c-empty.png', '--weights', weights025], f.io);
    expect(code).toBe(2);
    const out = f.out();
    expect(out.split('\n')[0]).toBe('a-cat.jpg');
    const catRef = referenceOutput('0.25', 'cat.jpg');
    const row = / {2}1\. {2}(\d+\.\d\d)% {3}(\d+) {2}(\S+)\n/.exec(out);
    expect(row, out).not.toBeNull();
    expect(Number(row![2])).toBe(catRef.top5[0]);
    expect(row![3]).toBe(sharedLabel(catRef.top5[0]!));
    expect(Math.abs(Number(row![1]) - catRef.top5_probs[0]! * 100)).toBeLessThanOrEqual(0.005 + 1e-9 + catRef.top5_probs[0]! * 100 * LOG_PROB_TOL);
    expect(out.match(/^ +\d\. /gm)).toHaveLength(5);
    expect(out).not.toContain('c-empty.png');
    expect(f.err()).toMatch(/^c-empty\.png: error: empty file \(0 bytes\)\nmobilenet classify: 2 images, 1 error, [\d.]+ images\/s \([\d.]+ s\)\n$/);
  });

  it('exit 0 when all succeed; globs; MOBILENET_WEIGHTS; --resize squash; --batch', async () => {
    const f = fakeIO(mixed, { MOBILENET_WEIGHTS: weights025 });
    const code = await main(['classify', 'sub/**/*.JPEG', 'a-cat.jpg', '--json', '--batch', '2', '--top', '1'], f.io);
    expect(code).toBe(0);
    const lines = parseLines(f.out());
    expect(lines.map((l) => l.file)).toEqual(['sub/deeper/tench.JPEG', 'a-cat.jpg']);
    expect(lines[0]!.predictions![0]!.label).toBe('tench');
    expect(lines[1]!.predictions).toHaveLength(1);
    expect(lines[1]!.predictions![0]!.label).toBe('kit_fox');
    // --resize squash: cat.jpg is square, so squash and crop give the same input and answer;
    // the tench photo is not, and its probabilities change.
    const g = fakeIO(mixed, { MOBILENET_WEIGHTS: weights025 });
    expect(await main(['classify', 'a-cat.jpg', 'sub/deeper/tench.JPEG', '--json', '--resize', 'squash', '--top', '1'], g.io)).toBe(0);
    const squashed = parseLines(g.out());
    expect(squashed[0]!.predictions![0]!.label).toBe('kit_fox');
    expect(squashed[0]!.predictions![0]!.probability).toBeCloseTo(lines[1]!.predictions![0]!.probability, 5);
    expect(Math.abs(squashed[1]!.predictions![0]!.probability - lines[0]!.predictions![0]!.probability)).toBeGreaterThan(1e-3);
  });

  it('a glob matching nothing is a per-argument error', async () => {
    const f = fakeIO(mixed);
    const code = await main(['classify', 'nothing/*.png', 'a-cat.jpg', '--json', '--weights', weights025], f.io);
    expect(code).toBe(2);
    const lines = parseLines(f.out());
    expect(lines).toEqual([
      { file: 'nothing/*.png', error: 'no files match this pattern' },
      expect.objectContaining({ file: 'a-cat.jpg', predictions: expect.any(Array) }),
    ]);
  });

  it('progress goes to stderr only, and only when stderr is a TTY', async () => {
    const f = fakeIO(tmp, {}, true);
    const code = await main(['classify', 'mixed', '--weights', weights025, '--json'], f.io);
    expect(code).toBe(2);
    const err = f.err();
    expect(err).toMatch(/\d+\/8 .*img\/s ETA/);
    expect(err).toContain('8/8 100%');
    const out = f.out();
    expect(out).not.toMatch(/img\/s|ETA|\r/);
    expect(out).not.toContain('\u001b');
    expect(parseLines(out)).toHaveLength(8);
  });

  it('custom labels for the model outputs', async () => {
    const labelsFile = path.join(tmp, 'labels.txt');
    fs.writeFileSync(labelsFile, Array.from({ length: 1000 }, (_, i) => `custom_${i}`).join('\n'));
    const f = fakeIO(mixed);
    expect(await main(['classify', 'a-cat.jpg', '--json', '--top', '1', '--weights', weights025, '--labels', labelsFile], f.io)).toBe(0);
    expect(parseLines(f.out())[0]!.predictions![0]!.label).toBe(`custom_${referenceOutput('0.25', 'cat.jpg').top5[0]}`);
  });

  it('usage errors exit 1 without output on stdout', async () => {
    const cases = [
      ['classify'],
      ['classify', 'a-cat.jpg', '--top', '0'],
      ['classify', 'a-cat.jpg', '--top', 'x'],
      ['classify', 'a-cat.jpg', '--batch', '-1'],
      ['classify', 'a-cat.jpg', '--resize', 'stretch'],
      ['classify', 'a-cat.jpg', '--arch', 'v9'],
      ['classify', 'a-cat.jpg', '--frobnicate'],
      ['classify', 'a-cat.jpg', '--weights', path.join(tmp, 'no-such-model.json')],
    ];
    for (const args of cases) {
      const f = fakeIO(mixed);
      expect(await main(args, f.io), args.join(' ')).toBe(1);
      expect(f.out()).toBe('');
      expect(f.err()).toMatch(/^mobilenet classify: /);
    }
    const top = fakeIO(mixed);
    await main(['classify', 'a-cat.jpg', '--top', '0', '--weights', weights025], top.io);
    expect(top.err()).toContain('Expected positive integer for --top but received "0"');
  });

  it('a directory without images: exit 2 and a message on stderr', async () => {
    const empty = path.join(tmp, 'empty-dir');
    fs.mkdirSync(path.join(empty, 'nested'), { recursive: true });
    fs.writeFileSync(path.join(empty, 'nested', 'readme.md'), '# no images here');
    const f = fakeIO(tmp);
    expect(await main(['classify', 'empty-dir', '--json', '--weights', weights025], f.io)).toBe(2);
    expect(f.out()).toBe('');
    expect(f.err()).toBe('mobilenet classify: no image files found\n');
  });

  it('--help', async () => {
    const f = fakeIO(tmp);
    expect(await main(['classify', '--help'], f.io)).toBe(0);
    expect(f.out()).toContain('Usage: mobilenet classify');
  });
});

describe('the shipped default model and example image (no ../shared needed)', () => {
  it("without --weights or MOBILENET_WEIGHTS: examples/jack-o-lantern.jpg is a jack-o'-lantern", async () => {
    const f = fakeIO(repoRoot, {});
    expect(await main(['classify', 'examples/jack-o-lantern.jpg', '--json', '--top', '3'], f.io)).toBe(0);
    const [line] = parseLines(f.out());
    expect(line!.file).toBe('examples/jack-o-lantern.jpg');
    expect(line!.predictions![0]!.index).toBe(607);
    expect(line!.predictions![0]!.label).toBe("jack-o'-lantern");
    expect(line!.predictions![0]!.probability).toBeGreaterThan(0.9);
    // The SVG source decodes too (sharp renders it) and gives the same answer.
    const g = fakeIO(repoRoot, {});
    expect(await main(['classify', 'examples/jack-o-lantern.svg', '--json', '--top', '1'], g.io)).toBe(0);
    expect(parseLines(g.out())[0]!.predictions![0]!.index).toBe(607);
  });

  it('MOBILENET_WEIGHTS pointing at a missing file is an error (exit 1), not a silent fallback', async () => {
    const f = fakeIO(repoRoot, { MOBILENET_WEIGHTS: path.join(tmp, 'missing', 'model.json') });
    expect(await main(['classify', 'examples/jack-o-lantern.jpg'], f.io)).toBe(1);
    expect(f.err()).toMatch(/ModelFormatError.*missing/);
  });
});

describe.skipIf(!hasShared)('bin/mobilenet.js (built package, real process)', () => {
  beforeAll(async () => {
    // bin/mobilenet.js imports dist/. tsc emits even when some other file has a type error
    // (that is the typecheck's job to report), so only a missing output fails here.
    const started = Date.now();
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repoRoot, timeout: 240_000 }).catch(() => undefined);
    const built = path.join(repoRoot, 'dist', 'cli', 'classify.js');
    expect(fs.existsSync(built)).toBe(true);
    expect(fs.statSync(built).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
  }, 300_000);

  it('classify --json: stdout is JSON lines only, exit code 2 with a bad file', async () => {
    const bin = path.join(repoRoot, 'bin', 'mobilenet.js');
    const err = await run(process.execPath, [bin, 'classify', path.join(mixed, 'a-cat.jpg'), path.join(mixed, 'c-empty.png'), '--json', '--weights', weights025], {
      cwd: tmp,
      env: { ...process.env, MOBILENET_WEIGHTS: '' },
    }).then(
      () => null,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe(2);
    const lines = parseLines(err!.stdout);
    expect(lines[0]!.predictions![0]!.label).toBe('kit_fox');
    expect(lines[1]!.error).toMatch(/empty file/);
    // The summary line is printed when stderr is not a TTY too.
    expect(err!.stderr).toMatch(/^mobilenet classify: 2 images, 1 error, [\d.]+ images\/s \([\d.]+ s\)\n$/);
  });

  it('classify with all images good: exit 0', async () => {
    const bin = path.join(repoRoot, 'bin', 'mobilenet.js');
    const { stdout } = await run(process.execPath, [bin, 'classify', 'a-cat.jpg', '--top', '2', '--weights', weights025], { cwd: mixed });
    expect(stdout.split('\n')[0]).toBe('a-cat.jpg');
    expect(stdout).toContain('kit_fox');
  });

  it("README's API snippet runs as written in a fresh ESM project (the package linked in as node_modules/mobilenet-xnnpack)", async () => {
    const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
    const api = readme.slice(readme.indexOf('\n## API\n'));
    const snippet = /```js\n([\s\S]*?)```/.exec(api)?.[1];
    expect(snippet).toBeDefined();
    const project = fs.mkdtempSync(path.join(os.tmpdir(), 'mobilenet-readme-'));
    try {
      fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'readme-example', version: '1.0.0', type: 'module' }));
      fs.mkdirSync(path.join(project, 'node_modules'));
      fs.symlinkSync(repoRoot, path.join(project, 'node_modules', 'mobilenet-xnnpack'), 'dir');
      fs.writeFileSync(path.join(project, 'example.mjs'), snippet!);
      const env = { ...process.env };
      delete env.MOBILENET_WEIGHTS;
      const { stdout } = await run(process.execPath, ['example.mjs'], { cwd: project, env, timeout: 120_000 });
      // The shipped model's class for the example image (as the other tests of the default model), then the batch:
      // the image's top-1 and the missing file as a result with an error.
      expect(stdout).toMatch(/index: 607,\s+label: "jack-o'-lantern"/);
      expect(stdout).toMatch(/jack-o-lantern\.jpg \[\s*\{\s*index: 607,/);
      expect(stdout).toMatch(/missing\.jpg .*(no such file|not found|ENOENT|cannot read)/i);
    } finally {
      fs.rmSync(project, { recursive: true, force: true });
    }
  }, 180_000);

  it('the built package finds its labels and default model (dist/ → data/, models/default/)', async () => {
    const bin = path.join(repoRoot, 'bin', 'mobilenet.js');
    const env = { ...process.env };
    delete env.MOBILENET_WEIGHTS;
    const { stdout, stderr } = await run(process.execPath, [bin, 'classify', path.join(repoRoot, 'examples', 'jack-o-lantern.jpg'), '--json', '--top', '1', '--quiet'], { cwd: tmp, env });
    expect(stderr).toBe('');
    const [line] = parseLines(stdout);
    expect(line!.predictions![0]).toMatchObject({ index: 607, label: "jack-o'-lantern" });
  });

  it('a reader that goes away (EPIPE, like `| head -1`) stops the run quietly, no crash', async () => {
    const bin = path.join(repoRoot, 'bin', 'mobilenet.js');
    const child = spawn(process.execPath, [bin, 'classify', shared('images', 'imagenet-sample'), '--json', '--weights', weights025], { cwd: tmp });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let first = '';
    child.stdout.once('data', (d: Buffer) => {
      first = d.toString();
      child.stdout.destroy();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(JSON.parse(first.split('\n')[0]!).file).toMatch(/n01440764_tench\.JPEG$/);
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
