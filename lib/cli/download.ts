/**
 * `mobilenet download <arch> [--alpha A] [--input-size S] [--no-top] [--minimalistic]
 *                     [--base-url URL] [--dir DIR] [--sha256 HEX] [--force] | --list`
 *
 * Fetches an official Keras Applications weight file into the Keras cache
 * (`$KERAS_HOME/models`, default `~/.keras/models`), atomically, verified
 * against the hash Keras publishes when there is one. Prints the path.
 */
import path from 'node:path';
import { allWeightFiles, downloadWeights, kerasModelsDir, weightFile, weightUrl, KERAS_BASE_URL, type DownloadArch } from '../download.js';
import * as v from '../validate.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { parseCommandArgs } from './options.js';

const HELP = `Usage: mobilenet download <v1|v2|v3-small|v3-large> [options]
       mobilenet download --list

Downloads official Keras Applications ImageNet weights into the Keras cache
($KERAS_HOME/models, default ~/.keras/models). Only runs when you ask for it.

Options:
  --alpha <A>        width multiplier (v1: 0.25 0.5 0.75 1.0; v2: 0.35 0.5 0.75 1.0 1.3 1.4;
                     v3: 0.75 1.0) (default 1.0)
  --input-size <S>   v1: 128 160 192 224; v2: 96 128 160 192 224; v3: 224 (default 224)
  --no-top           weights without the classifier
  --minimalistic     v3 minimalistic variant
  --base-url <URL>   mirror of ${KERAS_BASE_URL}
  --dir <DIR>        target directory instead of the Keras cache
  --sha256 <HEX>     expected sha256 (Keras publishes md5s for v3 only)
  --force            download again even if the file exists
  --list             print every file name and URL, download nothing
  -h, --help         this text
`;

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    alpha: { type: 'string' },
    'input-size': { type: 'string' },
    'no-top': { type: 'boolean', default: false },
    minimalistic: { type: 'boolean', default: false },
    'base-url': { type: 'string' },
    dir: { type: 'string' },
    sha256: { type: 'string' },
    force: { type: 'boolean', default: false },
    list: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  const baseUrl = values['base-url'] ?? KERAS_BASE_URL;
  if (values.list) {
    for (const f of allWeightFiles()) {
      const hash = f.sha256 !== undefined ? `sha256:${f.sha256}` : f.md5 !== undefined ? `md5:${f.md5}` : '-';
      io.stdout.write(`${f.fileName}\t${weightUrl(f, baseUrl)}\t${hash}\n`);
    }
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(`expected one architecture (v1, v2, v3-small, v3-large)\n\n${HELP}`);
  const arch = positionals[0]!;
  const arches = ['v1', 'v2', 'v3-small', 'v3-large'];
  if (!arches.includes(arch)) throw new UsageError(v.message(`one of ${arches.join(', ')}`, 'architecture', arch));
  let alpha: number | undefined;
  if (values.alpha !== undefined) {
    alpha = Number(values.alpha);
    if (values.alpha.trim() === '' || !Number.isFinite(alpha)) throw new UsageError(v.message('number', '--alpha', values.alpha));
  }
  let inputSize: number | undefined;
  if (values['input-size'] !== undefined) {
    inputSize = /^\d+$/.test(values['input-size']) ? Number(values['input-size']) : NaN;
    if (!Number.isInteger(inputSize) || inputSize <= 0) throw new UsageError(v.message('positive integer', '--input-size', values['input-size']));
  }
  if (values.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(values.sha256)) {
    throw new UsageError(v.message('64 hex digits', '--sha256', values.sha256));
  }
  try {
    new URL(baseUrl);
  } catch {
    throw new UsageError(v.message('absolute URL', '--base-url', baseUrl));
  }
  const spec = { arch: arch as DownloadArch, alpha, inputSize, includeTop: !values['no-top'], minimalistic: values.minimalistic };
  let file;
  try {
    file = weightFile(spec);
  } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
  const dir = values.dir !== undefined ? path.resolve(io.cwd, values.dir) : kerasModelsDir(io.env);
  const url = weightUrl(file, baseUrl);
  io.stderr.write(`Downloading ${url}\n`);
  const tty = io.stderr.isTTY === true;
  let lastDraw = 0;
  try {
    const result = await downloadWeights({
      ...spec,
      baseUrl,
      dir,
      sha256: values.sha256,
      force: values.force,
      onProgress: tty
        ? (received, total) => {
            const now = Date.now();
            if (now - lastDraw < 100 && received !== total) return;
            lastDraw = now;
            const pct = total ? ` ${((received / total) * 100).toFixed(0)}%` : '';
            io.stderr.write(`\r${humanBytes(received)}${total ? ` / ${humanBytes(total)}` : ''}${pct}\x1b[K`);
          }
        : undefined,
    });
    if (tty) io.stderr.write('\r\x1b[K');
    const check =
      result.verified === 'none'
        ? 'not verified: Keras publishes no hash for this file'
        : `${result.verified} verified`;
    io.stderr.write(
      `${result.cached ? 'Already present' : 'Saved'}: ${humanBytes(result.bytes)}, sha256 ${result.sha256} (${check})\n`,
    );
    io.stdout.write(`${result.path}\n`);
    return 0;
  } catch (e) {
    if (tty) io.stderr.write('\r\x1b[K');
    io.stderr.write(`mobilenet download: ${(e as Error).message}\n`);
    return 2;
  }
}
