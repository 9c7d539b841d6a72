/**
 * `mobilenet classify <file|dir|glob|->... [options]`
 *
 * Files named on the command line are always attempted; directories are
 * walked recursively (sorted, hidden entries skipped) for files with an
 * image extension; arguments that are not existing paths and contain glob
 * characters are expanded with tinyglobby; `-` reads one image from
 * standard input; a file reached twice is classified once (lib/cli/inputs.ts).
 * Human output: a small table per image on stdout (errors on stderr, names
 * with control characters escaped). `--json`: one JSON object per line on
 * stdout, written as results arrive. A progress bar goes to stderr when it
 * is a TTY; a summary line (images, errors, images/s) ends every run on
 * stderr (`--quiet` omits it). Many inputs are batched and decoded in
 * parallel automatically (`--batch` overrides). Exit code 0 when every image
 * was classified, 2 when some failed, 1 on usage errors and when stdout
 * fails (other than a reader that went away, EPIPE: a quiet stop).
 */
import os from 'node:os';
import path from 'node:path';
import { flagNames } from '../architectures/options.js';
import { classifyBatch, type BatchResult } from '../classify.js';
import { resolveWeights } from '../default-model.js';
import { UsageError } from '../errors.js';
import type { ImageSource } from '../image.js';
import { loadModelFile, type ModelOptions } from '../model.js';
import * as v from '../validate.js';
import { expandInputs, IMAGE_EXTENSIONS, readStdin, type Input } from './inputs.js';
import type { CliIO } from './io.js';
import { builderFlags, builderHelp, hasBuilderFlags, oneOf, parseBuilderFlags, parseCommandArgs, positiveInt } from './options.js';
import { errorText, escapeControl, OutputWatch, Progress, summaryLine, write } from './output.js';

// Shared with `mobilenet embed` (lib/cli/embed.ts).
export { expandInputs, IMAGE_EXTENSIONS } from './inputs.js';
export { errorText, Progress, write } from './output.js';

const HELP = `Usage: mobilenet classify <file|dir|glob|->... [options]

Classifies images with a MobileNet model. Directories are walked recursively
for image files (${[...IMAGE_EXTENSIONS].join(' ')}); quote globs ('photos/**/*.jpg');
- reads one image from standard input. A file named twice is classified once.

Options:
  --weights <path>          model.json (or its directory), .h5 or .keras
                            (default: $MOBILENET_WEIGHTS, else the shipped MobileNet V1 0.75-224)
  --resize <mode>           crop (default: shorter side to size, centre crop) | squash (whole image)
  --top <K>                 predictions per image (default 5; at most the model's classes)
  --threads <N>             inference threads (default: all cores)
  --batch <B>               images per inference call (default: chosen from the number of images and cores)
  --backend <b>             native (default) | reference (plain TypeScript, slow; for checking)
  --labels <file>           class names for fine-tuned models (JSON array, Keras class index, or one per line)
  --json                    one JSON object per line: {"file", "predictions"} or {"file", "error"}
  -q, --quiet               no summary line on stderr at the end
  -h, --help                this text
Architecture options, for weights-only files only (e.g. the official Keras .h5
files; left out: recognized from the weights; a file with a model config takes none):
${builderHelp()}

Exit code: 0 all images classified, 2 some failed, 1 usage error or output lost.
`;

function formatPercent(p: number): string {
  return `${(p * 100).toFixed(2).padStart(6)}%`;
}

function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/**
 * Batch size and images decoding in flight for `n` inputs on `c` cores when
 * --batch is not given. One image: batch 1, nothing to overlap. Many: a batch
 * of 8 amortizes the per-call cost, and 2 images per core decoding keeps
 * every core busy while the previous batch runs (sharp decodes on libuv's
 * pool); see docs/benchmarks.md for the measurements behind the numbers.
 */
export function autoBatch(n: number, c: number): { batch: number; concurrency: number } {
  if (n <= 1) return { batch: 1, concurrency: 1 };
  const batch = Math.min(8, n);
  return { batch, concurrency: Math.max(2, Math.min(2 * c, batch)) };
}

export async function run(args: string[], io: CliIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, {
    weights: { type: 'string' },
    ...builderFlags(),
    resize: { type: 'string' },
    top: { type: 'string' },
    threads: { type: 'string' },
    batch: { type: 'string' },
    labels: { type: 'string' },
    backend: { type: 'string' },
    json: { type: 'boolean', default: false },
    quiet: { type: 'boolean', short: 'q', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no images given\n\n${HELP}`);
  const resize = oneOf(values.resize, 'resize', ['crop', 'squash'] as const);
  const topArg = positiveInt(values.top, 'top');
  const threads = positiveInt(values.threads, 'threads');
  const batchArg = positiveInt(values.batch, 'batch');
  const backend = oneOf(values.backend, 'backend', ['native', 'reference'] as const);
  const request = parseBuilderFlags(values as Record<string, string | boolean | undefined>);
  const json = values.json === true;
  const labels = values.labels === undefined ? undefined : path.resolve(io.cwd, values.labels);
  if (positionals.filter((p) => p === '-').length > 1) throw new UsageError('- (standard input) may be given once');

  const weights = resolveWeights(values.weights, io.env, io.cwd);
  // Inputs first: an empty run is reported before the (slower) model load, and
  // the batch compiled is no larger than the number of images.
  const inputs = await expandInputs(positionals, io.cwd);
  if (inputs.length === 0) {
    io.stderr.write('mobilenet classify: no image files found\n');
    return 2;
  }
  const readableCount = inputs.filter((i) => i.error === undefined).length;
  const plan = autoBatch(readableCount, cores());
  const batchSize = Math.max(1, Math.min(batchArg ?? plan.batch, readableCount));
  const concurrency = batchArg === undefined ? plan.concurrency : Math.min(batchSize, cores());
  const modelOptions: ModelOptions = { ...request, batch: batchSize };
  if (threads !== undefined) modelOptions.threads = threads;
  if (backend !== undefined) modelOptions.backend = backend;
  let model;
  try {
    model = await loadModelFile(weights.path, modelOptions, flagNames);
  } catch (e) {
    // Options that do not apply to the model (e.g. --arch next to a model with a config).
    if (e instanceof RangeError && hasBuilderFlags(request)) throw new UsageError(e.message);
    throw e;
  }

  try {
    if (topArg !== undefined && topArg > model.classes) {
      throw new UsageError(v.message(`integer from 1 to ${model.classes} (the model's number of classes)`, '--top', values.top));
    }
    const top = topArg ?? Math.min(5, model.classes);
    const stdin = inputs.some((i) => i.stdin) ? await readStdin(io.stdin ?? process.stdin) : undefined;
    const progress = io.stderr.isTTY === true ? new Progress(io.stderr, inputs.length, (io.stderr as { columns?: number }).columns ?? 80) : null;
    const started = performance.now();
    let failed = 0;
    let done = 0;
    let position = 0;
    const out = new OutputWatch(io.stdout);
    const isStdoutFailed = (): boolean => out.failed;
    const stdoutIsTTY = io.stdout.isTTY === true;
    const rankWidth = String(top).length;
    const indexWidth = Math.max(4, String(model.classes - 1).length);

    const emit = async (input: Input, result: Pick<BatchResult, 'predictions' | 'error'> & { message?: string }): Promise<void> => {
      const ok = result.predictions !== undefined;
      done++;
      if (!ok) failed++;
      if (json) {
        const obj = ok
          ? { file: input.display, predictions: result.predictions }
          : { file: input.display, error: result.message ?? errorText(result.error, input.path) };
        if (stdoutIsTTY) progress?.clear();
        await write(io.stdout, `${JSON.stringify(obj)}\n`, isStdoutFailed);
      } else if (ok) {
        const rows = result.predictions!.map(
          (p, i) => `  ${String(i + 1).padStart(rankWidth)}. ${formatPercent(p.probability)}  ${String(p.index).padStart(indexWidth)}  ${escapeControl(p.label)}`,
        );
        if (stdoutIsTTY) progress?.clear();
        await write(io.stdout, `${escapeControl(input.display)}\n${rows.join('\n')}\n`, isStdoutFailed);
      } else {
        progress?.clear();
        await write(io.stderr, `${escapeControl(input.display)}: error: ${escapeControl(result.message ?? errorText(result.error, input.path))}\n`, () => false);
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
    const sources: ImageSource[] = readable.map((i) => (inputs[i]!.stdin ? stdin! : inputs[i]!.path));
    progress?.tick(true);
    for await (const r of classifyBatch(model, sources, { batchSize, concurrency, topK: top, resize, labels })) {
      if (out.failed) break;
      const k = readable[r.position]!;
      await flushErrors(k);
      position = k + 1;
      await emit(inputs[k]!, r);
    }
    if (!out.failed) await flushErrors(inputs.length);
    progress?.clear();
    await out.flush();
    out.dispose();
    if (out.brokenPipe) return failed > 0 ? 2 : 0;
    if (out.lost !== null) {
      io.stderr.write(`mobilenet classify: cannot write the results to standard output (${out.lost.code ?? out.lost.message}: ${out.lost.message}); results were lost\n`);
      return 1;
    }
    if (values.quiet !== true) {
      io.stderr.write(`mobilenet classify: ${summaryLine(done, failed, (performance.now() - started) / 1000)}\n`);
    }
    return failed > 0 ? 2 : 0;
  } finally {
    model.dispose();
  }
}
