/**
 * What the README promises a new user, checked where a fresh install did
 * otherwise (each test failed before its fix):
 * - commands that print (download --list, info, --help) never die of an
 *   unhandled stdout 'error': EPIPE (`| head`) is a quiet stop, another
 *   failure (`> /dev/full`) exits 1 with one message;
 * - every command answers a mistyped option with a suggestion (the README's
 *   `unknown option --tpo: did you mean --top?`), not node:util's raw text;
 * - `classify` refuses a feature extractor without pooling (output [7, 7, C])
 *   with NotAClassifierError pointing to embed(), as for a pooled one;
 * - the image limits of the Security section (`allowSvg`, `maxImageBytes`, …)
 *   apply per call to classify / classifyBatch / embed / embedBatch;
 * - help columns stay separated (`--classifier-activation <f> softmax`).
 * References: the errors and reasons decodeImage itself gives for the same
 * image and options, and the option names of each command's own help text.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { classify, classifyBatch } from '../lib/classify.js';
import { builderHelp } from '../lib/cli/options.js';
import { ImageDecodeError, NotAClassifierError } from '../lib/errors.js';
import { decodeImage } from '../lib/image.js';
import { loadModel } from '../lib/model.js';
import { failingStream, runCli } from './helpers/cli-io.js';
import { hasShared, repoRoot, shared } from './helpers/shared.js';

const exec = promisify(execFile);
const jack = path.join(repoRoot, 'examples', 'jack-o-lantern.jpg');
const svg = path.join(repoRoot, 'examples', 'jack-o-lantern.svg');

const cli = (args: string[], stdout?: NodeJS.WritableStream): ReturnType<typeof runCli> => runCli(args, { cwd: repoRoot, stdout });

describe('a failing stdout is never an uncaught error', () => {
  it.each([[['download', '--list']], [['--help']], [['download', '--help']]])('%j: ENOSPC exits 1 with a message, EPIPE is a quiet 0', async (args) => {
    const full = await cli(args, failingStream('ENOSPC'));
    expect(full.code).toBe(1);
    const name = args[0] === '--help' ? '' : ` ${args[0]}`;
    expect(full.err).toBe(`mobilenet${name}: cannot write to standard output (ENOSPC: no space left on device); output was lost\n`);
    const pipe = await cli(args, failingStream('EPIPE'));
    expect(pipe.code).toBe(0);
    expect(pipe.err).toBe('');
  });

  it.skipIf(!fs.existsSync('/dev/full'))('a real process: `download --list > /dev/full` exits 1 with one line, no stack trace', async () => {
    const script = "import { main } from './lib/cli/index.ts'; process.exitCode = await main(process.argv.slice(1), { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });";
    const err = await exec('sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$0" download --list > /dev/full`, script], { cwd: repoRoot }).then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err).not.toBeNull();
    expect(err!.code).toBe(1);
    expect(err!.stderr).toBe('mobilenet download: cannot write to standard output (ENOSPC: no space left on device, write); output was lost\n');
  }, 60_000);
});

describe('mistyped options get a suggestion in every command', () => {
  it.each([
    ['train', ['photos', '--out', 'x.keras', '--epoch', '3'], '--epoch', '--epochs'],
    ['quantize', ['m.json', 'out', '--calibration', 'i', '--image', '3'], '--image', '--images'],
    ['serve', ['--max-bach', '4'], '--max-bach', '--max-batch'],
    ['worker', ['--redis', 'redis://127.0.0.1:1', '--queu', 'q'], '--queu', '--queue'],
  ])('%s', async (command, args, given, near) => {
    const r = await cli([command, ...args]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe(`mobilenet ${command}: unknown option ${given}: did you mean ${near}? (--help lists the options)\n`);
    // The suggestion is an option the command's own help lists.
    const help = await cli([command, '--help']);
    expect(help.out).toContain(`${near} `);
  });

  it('an unknown short option is a usage error in the same form', async () => {
    const r = await cli(['classify', jack, '-x']);
    expect(r.code).toBe(1);
    expect(r.err).toBe('mobilenet classify: unknown option -x (--help lists the options)\n');
  });
});

describe('help text', () => {
  it('every builder option is separated from its description', () => {
    for (const line of builderHelp().split('\n')) expect(line).toMatch(/^ {2}--\S+( <[^>]+>)? +\S/);
    expect(builderHelp()).toContain('--classifier-activation <f> softmax');
  });
});

describe.skipIf(!hasShared)('classify refuses feature extractors with NotAClassifierError', () => {
  it('a no-top model without pooling (output [7, 7, 256]): API and CLI point to embed', async () => {
    const notop = shared('models', 'keras-h5', 'mobilenet_2_5_224_tf_no_top.h5');
    const model = await loadModel(notop, { threads: 1 });
    try {
      expect(model.outputShape).toEqual([7, 7, 256]);
      const e = await classify(model, jack).then(() => null, (x: unknown) => x);
      expect(e).toBeInstanceOf(NotAClassifierError);
      expect((e as Error).message).toContain('[7, 7, 256]');
      expect((e as Error).message).toContain('model.embed()');
      // The same model embeds fine: the refusal is about classify only.
      expect((await model.embed(jack)).length).toBe(256);
    } finally {
      model.dispose();
    }
    const r = await cli(['classify', jack, '--weights', notop]);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain('mobilenet classify: NotAClassifierError: ');
    expect(r.err).toContain('`mobilenet embed`');
  });
});

describe('image limits per call (README, Security)', () => {
  it('classify, classifyBatch, embed and embedBatch take allowSvg and maxImageBytes as decodeImage does', async () => {
    // The reference: what the image module itself says for the same inputs and options.
    const svgRefusal = await decodeImage(svg, { width: 224, height: 224, allowSvg: false }).then(() => null, (e: unknown) => e as ImageDecodeError);
    expect(svgRefusal?.reason).toBe('svg-refused');
    const bytesRefusal = await decodeImage(jack, { width: 224, height: 224, maxImageBytes: 1000 }).then(() => null, (e: unknown) => e as ImageDecodeError);
    expect(bytesRefusal?.reason).toBe('too-many-bytes');

    const model = await loadModel({ threads: 1 });
    try {
      // Without the option the SVG is accepted (the default), so the option is what refuses it.
      expect((await classify(model, svg, { topK: 1 }))[0]!.index).toBe(607);
      const one = await classify(model, svg, { allowSvg: false }).then(() => null, (e: unknown) => e);
      expect(one).toBeInstanceOf(ImageDecodeError);
      expect((one as ImageDecodeError).reason).toBe('svg-refused');
      const big = await classify(model, jack, { maxImageBytes: 1000 }).then(() => null, (e: unknown) => e);
      expect((big as ImageDecodeError).reason).toBe('too-many-bytes');

      const results = [];
      for await (const r of classifyBatch(model, [jack, svg], { allowSvg: false, topK: 1 })) results.push(r);
      expect(results[0]!.predictions![0]!.index).toBe(607);
      expect((results[1]!.error as ImageDecodeError).reason).toBe('svg-refused');

      const e1 = await model.embed(svg, { allowSvg: false }).then(() => null, (e: unknown) => e);
      expect((e1 as ImageDecodeError).reason).toBe('svg-refused');
      const embedded = [];
      for await (const r of model.embedBatch([svg, jack], { maxImageBytes: 1000 })) embedded.push(r);
      expect(embedded.map((r) => (r.error as ImageDecodeError).reason)).toEqual(['too-many-bytes', 'too-many-bytes']);

      // A bad value is one error up front, with the parameter template, not one per image.
      await expect(async () => {
        for await (const r of classifyBatch(model, [jack, jack], { allowSvg: 'no' as unknown as boolean })) void r;
      }).rejects.toThrow('Expected boolean for allowSvg but received "no"');
      await expect(classify(model, jack, { maxImageBytes: -1 })).rejects.toThrow('Expected positive integer for maxImageBytes but received -1');
    } finally {
      model.dispose();
    }
  }, 60_000);
});
