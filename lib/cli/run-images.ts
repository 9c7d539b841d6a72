/**
 * The run loop shared by the commands that stream one result per image
 * (`classify`, `embed`): standard input for `-`, results in input order with
 * the arguments that failed to expand reported between the images around
 * them, human output (names with control characters escaped; errors on
 * stderr) or JSON lines (errors as `{"file", "error"}` on stdout), a TTY
 * progress bar, the end-of-run summary line on stderr (also when stderr is
 * not a TTY; `--quiet` omits it), and stdout failures: EPIPE (the reader went
 * away, `| head -1`) stops quietly, any other write error (ENOSPC on
 * /dev/full, EIO) is reported and the exit code is 1.
 *
 * Exit code: 0 every image succeeded, 2 some failed, 1 results were lost.
 */
import { autoBatch, cores, type BatchPlan } from '../batch.js';
import { UsageError } from '../errors.js';
import type { ImageSource } from '../image.js';
import { expandInputs, readStdin, type Input } from './inputs.js';
import type { CliIO } from './io.js';
import { positiveInt } from './options.js';
import { errorText, escapeControl, OutputWatch, progressFor, summaryLine, write, writeErrorText } from './output.js';

/** The options both commands take (parseArgs specs). */
export const IMAGE_RUN_FLAGS = {
  weights: { type: 'string' },
  resize: { type: 'string' },
  threads: { type: 'string' },
  batch: { type: 'string' },
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/**
 * The inputs and how to run them: `-` at most once, the arguments expanded
 * (before the slower model load, so that an empty run is reported first and
 * the batch compiled is no larger than the number of images), then
 * `autoBatch` with `--batch` / `--threads` as overrides. Null (after a
 * message on stderr) when there is no image at all.
 */
export async function planImageRun(
  command: string,
  positionals: readonly string[],
  values: { batch?: string | undefined; threads?: string | undefined },
  io: CliIO,
): Promise<(BatchPlan & { inputs: Input[] }) | null> {
  if (positionals.filter((p) => p === '-').length > 1) throw new UsageError('- (standard input) may be given once');
  const batchArg = positiveInt(values.batch, 'batch');
  const threadsArg = positiveInt(values.threads, 'threads');
  const inputs = await expandInputs(positionals, io.cwd);
  if (inputs.length === 0) {
    io.stderr.write(`mobilenet ${command}: no image files found\n`);
    return null;
  }
  const readable = inputs.filter((i) => i.error === undefined).length;
  const plan = autoBatch(readable, cores());
  return {
    inputs,
    batch: Math.max(1, Math.min(batchArg ?? plan.batch, readable)),
    concurrency: plan.concurrency,
    threads: threadsArg ?? plan.threads,
  };
}

/** One result of the command's pipeline; `position` indexes the sources it was given. */
export interface ImageResult<T> {
  position: number;
  value?: T | undefined;
  error?: Error | undefined;
}

export interface ImageRun<T> {
  /** The subcommand's name, for messages (`mobilenet <command>: …`). */
  command: string;
  io: CliIO;
  inputs: readonly Input[];
  json: boolean;
  quiet: boolean;
  /** Runs the pipeline over the readable inputs (paths, or the bytes of standard input for `-`). */
  results(sources: ImageSource[]): AsyncIterable<ImageResult<T>>;
  /** The fields of a JSON line after `file`. */
  toJson(value: T): Record<string, unknown>;
  /** The human output of one success, `name` already escaped; ends with a newline. */
  toText(name: string, value: T): string;
}

export async function runImages<T>(run: ImageRun<T>): Promise<number> {
  const { io, inputs, json } = run;
  const stdin = inputs.some((i) => i.stdin === true && i.error === undefined) ? await readStdin(io.stdin ?? process.stdin) : undefined;
  const progress = progressFor(io, inputs.length);
  const started = performance.now();
  const out = new OutputWatch(io.stdout);
  const isStdoutFailed = (): boolean => out.failed;
  const stdoutIsTTY = io.stdout.isTTY === true;
  let failed = 0;
  let done = 0;

  const emit = async (input: Input, value: T | undefined, message: string | undefined): Promise<void> => {
    const ok = message === undefined;
    done++;
    if (!ok) failed++;
    if (json) {
      const obj = ok ? { file: input.display, ...run.toJson(value as T) } : { file: input.display, error: message };
      if (stdoutIsTTY) progress?.clear();
      await write(io.stdout, `${JSON.stringify(obj)}\n`, isStdoutFailed);
    } else if (ok) {
      if (stdoutIsTTY) progress?.clear();
      await write(io.stdout, run.toText(escapeControl(input.display), value as T), isStdoutFailed);
    } else {
      progress?.clear();
      await write(io.stderr, `${escapeControl(input.display)}: error: ${escapeControl(message)}\n`, () => false);
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
  let position = 0;
  const flushErrors = async (before: number): Promise<void> => {
    for (; position < before; position++) {
      const e = inputs[position]!;
      if (e.error !== undefined) await emit(e, undefined, e.error);
    }
  };
  const sources: ImageSource[] = readable.map((i) => (inputs[i]!.stdin === true ? stdin! : inputs[i]!.path));
  progress?.tick(true);
  if (sources.length > 0) {
    for await (const r of run.results(sources)) {
      if (out.failed) break;
      const k = readable[r.position]!;
      await flushErrors(k);
      position = k + 1;
      const input = inputs[k]!;
      await emit(input, r.value, r.value === undefined ? errorText(r.error, input.path) : undefined);
    }
  }
  if (!out.failed) await flushErrors(inputs.length);
  progress?.clear();
  await out.flush();
  out.dispose();
  if (out.brokenPipe) return failed > 0 ? 2 : 0;
  if (out.lost !== null) {
    io.stderr.write(`mobilenet ${run.command}: cannot write the results to standard output (${writeErrorText(out.lost)}); results were lost\n`);
    return 1;
  }
  if (!run.quiet) io.stderr.write(`mobilenet ${run.command}: ${summaryLine(done, failed, (performance.now() - started) / 1000)}\n`);
  return failed > 0 ? 2 : 0;
}
