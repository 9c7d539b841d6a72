/**
 * `mobilenet classify <file|dir|glob>... [options]`
 *
 * Files named on the command line are always attempted; directories are
 * walked recursively (sorted, hidden entries skipped) for files with an
 * image extension; arguments that are not existing paths and contain glob
 * characters are expanded with tinyglobby. Human output: a small table per
 * image on stdout (errors on stderr). `--json`: one JSON object per line on
 * stdout, written as results arrive. A progress bar goes to stderr only
 * when stderr is a TTY. Exit code 0 when every image was classified, 2 when
 * some failed, 1 on usage errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { glob } from 'tinyglobby';
import { classifyBatch, type BatchResult } from '../classify.js';
import { resolveWeights } from '../default-model.js';
import { ImageDecodeError } from '../errors.js';
import type { Architecture } from '../keras/types.js';
import { loadModel, type ModelOptions } from '../model.js';
import * as v from '../validate.js';
import { UsageError } from '../errors.js';
import type { CliIO } from './io.js';
import { positiveNumber } from './options.js';

export const IMAGE_EXTENSIONS = new Set([
  '.jpg', '.jpeg', '.jpe', '.jfif', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif', '.heic', '.heif', '.svg',
]);

const HELP = `Usage: mobilenet classify <file|dir|glob>... [options]

Classifies images with a MobileNet model. Directories are walked recursively
for image files (${[...IMAGE_EXTENSIONS].join(' ')}); quote globs ('photos/**/*.jpg').

Options:
  --weights <path>     model.json (or its directory), .h5 or .keras
                       (default: $MOBILENET_WEIGHTS, else the shipped MobileNet V1 0.75-224)
  --arch <a>           v1 | v2 | v3-small | v3-large (weights-only .h5 files)
  --alpha <A>          width multiplier (weights-only .h5 files)
  --resize <mode>      crop (default: shorter side to size, centre crop) | squash (whole image)
  --top <K>            predictions per image (default 5)
  --threads <N>        inference threads (default: all cores)
  --batch <B>          images per inference call (default 1)
  --backend <b>        native (default) | reference (plain TypeScript, slow; for checking)
  --labels <file>      class names for fine-tuned models (JSON array, Keras class index, or one per line)
  --json               one JSON object per line: {"file", "predictions"} or {"file", "error"}
  -h, --help           this text

Exit code: 0 all images classified, 2 some failed, 1 usage error.
`;

function parseIntOption(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(v.message('positive integer', `--${name}`, value));
  return n;
}

const GLOB_CHARS = /[*?[\]{}]/;

/** One input: the path to read and the name to print. */
interface Input {
  path: string;
  display: string;
  /** Set when the argument itself could not be expanded. */
  error?: string;
}

async function walk(dir: string, display: string, out: Input[]): Promise<void> {
  let entries: fs.Dirent[];
  try {
    entries = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (e) {
    out.push({ path: dir, display, error: `cannot read directory (${(e as Error).message})` });
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    const d = path.join(display, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      try {
        const st = await fs.promises.stat(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        isFile = true; // dangling link: reported as an unreadable file
      }
      if (isDir) continue; // do not follow directory links (cycles)
    }
    if (isDir) await walk(p, d, out);
    else if (isFile && IMAGE_EXTENSIONS.has(path.extname(e.name).toLowerCase())) out.push({ path: p, display: d });
  }
}

/** Expands files, directories and globs into the list of inputs, in argument order. */
export async function expandInputs(args: readonly string[], cwd: string): Promise<Input[]> {
  const out: Input[] = [];
  for (const arg of args) {
    const abs = path.resolve(cwd, arg);
    let st: fs.Stats | undefined;
    try {
      st = await fs.promises.stat(abs);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) {
      await walk(abs, arg, out);
    } else if (st === undefined && GLOB_CHARS.test(arg)) {
      const matches = await glob(arg, { cwd, onlyFiles: true, dot: false, expandDirectories: false });
      matches.sort();
      if (matches.length === 0) out.push({ path: abs, display: arg, error: 'no files match this pattern' });
      for (const m of matches) out.push({ path: path.resolve(cwd, m), display: m });
    } else {
      out.push({ path: abs, display: arg });
    }
  }
  return out;
}

function formatPercent(p: number): string {
  return `${(p * 100).toFixed(2).padStart(6)}%`;
}

export function errorText(e: Error | undefined, file: string): string {
  if (e === undefined) return 'unknown error';
  let msg = e.message;
  if (e instanceof ImageDecodeError && e.file !== undefined && msg.startsWith(`${e.file}: `)) msg = msg.slice(e.file.length + 2);
  else if (msg.startsWith(`${file}: `)) msg = msg.slice(file.length + 2);
  return msg;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(sec).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A one-line progress bar on a TTY stream: count, rate, ETA. */
export class Progress {
  private readonly start = performance.now();
  private last = 0;
  private shown = false;
  done = 0;
  failed = 0;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly total: number,
    private readonly width: number,
  ) {}

  line(): string {
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const frac = this.total > 0 ? this.done / this.total : 1;
    const barWidth = Math.max(10, Math.min(30, this.width - 60));
    const filled = Math.round(frac * barWidth);
    const bar = '='.repeat(filled) + (filled < barWidth ? '>' : '') + ' '.repeat(Math.max(0, barWidth - filled - 1));
    const failed = this.failed > 0 ? ` ${this.failed} failed` : '';
    return `[${bar}] ${this.done}/${this.total} ${(frac * 100).toFixed(0)}% ${rate.toFixed(1)} img/s ETA ${formatDuration(eta)}${failed}`;
  }

  tick(force = false): void {
    const now = performance.now();
    // Redraw at most every 100 ms, but at once after the line was cleared for other output.
    if (!force && this.shown && now - this.last < 100) return;
    this.last = now;
    this.stream.write(`\r${this.line()}\x1b[K`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }
}

/**
 * Writes and waits for 'drain' when the stream buffers (bounded memory for
 * huge runs). Resolves at once when the stream has failed (EPIPE: the reader
 * went away, e.g. `| head`).
 */
export function write(stream: NodeJS.WritableStream, text: string, failed: () => boolean): Promise<void> | undefined {
  if (failed()) return undefined;
  if (stream.write(text)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('error', done);
    stream.once('close', done);
  });
}

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      weights: { type: 'string' },
      arch: { type: 'string' },
      alpha: { type: 'string' },
      resize: { type: 'string' },
      top: { type: 'string' },
      threads: { type: 'string' },
      batch: { type: 'string' },
      labels: { type: 'string' },
      backend: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no images given\n\n${HELP}`);
  const arches = ['v1', 'v2', 'v3-small', 'v3-large'];
  if (values.arch !== undefined && !arches.includes(values.arch)) {
    throw new UsageError(v.message(`one of ${arches.join(', ')}`, '--arch', values.arch));
  }
  const resizes = ['crop', 'squash'] as const;
  if (values.resize !== undefined && !(resizes as readonly string[]).includes(values.resize)) {
    throw new UsageError(v.message('one of crop, squash', '--resize', values.resize));
  }
  const resize = values.resize as 'crop' | 'squash' | undefined;
  const top = parseIntOption(values.top, 'top') ?? 5;
  const threads = parseIntOption(values.threads, 'threads');
  const batch = parseIntOption(values.batch, 'batch') ?? 1;
  const alpha = positiveNumber(values.alpha, 'alpha');
  const json = values.json === true;
  const labels = values.labels === undefined ? undefined : path.resolve(io.cwd, values.labels);

  const weights = resolveWeights(values.weights, io.env, io.cwd);
  // Inputs first: an empty run is reported before the (slower) model load, and
  // the batch compiled is no larger than the number of images.
  const inputs = await expandInputs(positionals, io.cwd);
  if (inputs.length === 0) {
    io.stderr.write('mobilenet classify: no image files found\n');
    return 2;
  }
  const readableCount = inputs.filter((i) => i.error === undefined).length;
  const batchSize = Math.max(1, Math.min(batch, readableCount));
  const modelOptions: ModelOptions = { batch: batchSize };
  if (values.arch !== undefined) modelOptions.architecture = values.arch as Architecture;
  if (alpha !== undefined) modelOptions.alpha = alpha;
  if (threads !== undefined) modelOptions.threads = threads;
  if (values.backend !== undefined) {
    if (values.backend !== 'native' && values.backend !== 'reference') {
      throw new UsageError(v.message('one of native, reference', '--backend', values.backend));
    }
    modelOptions.backend = values.backend;
  }
  const model = await loadModel(weights.path, modelOptions);

  try {
    const progress = io.stderr.isTTY === true ? new Progress(io.stderr, inputs.length, (io.stderr as { columns?: number }).columns ?? 80) : null;
    let failed = 0;
    let position = 0;

    // The reader of stdout went away (EPIPE, e.g. `| head`): stop quietly.
    let stdoutFailed = false;
    const onStdoutError = (): void => {
      stdoutFailed = true;
    };
    io.stdout.on('error', onStdoutError);
    const isStdoutFailed = (): boolean => stdoutFailed;
    const stdoutIsTTY = io.stdout.isTTY === true;

    const emit = async (input: Input, result: Pick<BatchResult, 'predictions' | 'error'> & { message?: string }): Promise<void> => {
      const ok = result.predictions !== undefined;
      if (!ok) failed++;
      if (json) {
        const obj = ok
          ? { file: input.display, predictions: result.predictions }
          : { file: input.display, error: result.message ?? errorText(result.error, input.path) };
        if (stdoutIsTTY) progress?.clear();
        await write(io.stdout, `${JSON.stringify(obj)}\n`, isStdoutFailed);
      } else if (ok) {
        const rows = result.predictions!.map(
          (p, i) => `  ${String(i + 1).padStart(2)}. ${formatPercent(p.probability)}  ${String(p.index).padStart(4)}  ${p.label}`,
        );
        if (stdoutIsTTY) progress?.clear();
        await write(io.stdout, `${input.display}\n${rows.join('\n')}\n`, isStdoutFailed);
      } else {
        progress?.clear();
        await write(io.stderr, `${input.display}: error: ${result.message ?? errorText(result.error, input.path)}\n`, () => false);
      }
      if (progress !== null) {
        progress.done++;
        if (!ok) progress.failed++;
        progress.tick(progress.done === inputs.length);
      }
    };

    // Arguments that failed to expand are reported in argument order, between the images around them.
    const readable: number[] = [];
    for (let i = 0; i < inputs.length; i++) if (inputs[i]!.error === undefined) readable.push(i);
    const flushErrors = async (before: number): Promise<void> => {
      for (; position < before; position++) {
        const e = inputs[position]!;
        if (e.error !== undefined) await emit(e, { message: e.error });
      }
    };
    progress?.tick(true);
    for await (const r of classifyBatch(model, readable.map((i) => inputs[i]!.path), { batchSize, topK: top, resize, labels })) {
      if (stdoutFailed) break;
      const k = readable[r.position]!;
      await flushErrors(k);
      position = k + 1;
      await emit(inputs[k]!, r);
    }
    if (!stdoutFailed) await flushErrors(inputs.length);
    progress?.clear();
    // After EPIPE the listener stays: a late 'error' must not crash the process.
    if (!stdoutFailed) io.stdout.off('error', onStdoutError);
    return failed > 0 ? 2 : 0;
  } finally {
    model.dispose();
  }
}
