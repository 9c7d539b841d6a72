/**
 * An in-memory CliIO for running the `mobilenet` CLI in process
 * (`main(args, io)` or a command's `run`): stdout and stderr are captured as
 * text, each write recorded as it is made. (test/helpers/cli.ts runs the CLI
 * in a child process instead.)
 */
import { Writable } from 'node:stream';
import { main } from '../../lib/cli/index.js';
import type { CliIO } from '../../lib/cli/io.js';
import type { Env } from '../../lib/env.js';

export interface CaptureOptions {
  /** Working directory (default: the process's). */
  cwd?: string;
  /** Environment (default: empty). */
  env?: Env;
  /** Standard input, for `-` as a file name. */
  stdin?: NodeJS.ReadableStream;
  /** A stdout of the test's own instead of the captured one (e.g. `failingStream`). */
  stdout?: NodeJS.WritableStream;
  /** stderr is a TTY of 100 columns (progress output). */
  tty?: boolean;
}

export interface CapturedIO {
  io: CliIO;
  /** What was written to stdout so far. */
  out: () => string;
  /** What was written to stderr so far. */
  err: () => string;
}

function sink(into: string[]): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      into.push(chunk.toString());
      cb();
    },
  });
}

export function captureIO(options: CaptureOptions = {}): CapturedIO {
  const out: string[] = [];
  const err: string[] = [];
  const stderr = options.tty === true ? Object.assign(sink(err), { isTTY: true, columns: 100 }) : sink(err);
  const io: CliIO = {
    stdout: options.stdout ?? sink(out),
    stderr,
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    ...(options.stdin === undefined ? {} : { stdin: options.stdin }),
  };
  return { io, out: () => out.join(''), err: () => err.join('') };
}

/** `main(args)` on a captured IO: the exit code and what it wrote. */
export async function runCli(args: string[], options: CaptureOptions = {}): Promise<{ code: number; out: string; err: string }> {
  const c = captureIO(options);
  const code = await main(args, c.io);
  return { code, out: c.out(), err: c.err() };
}

/** A stdout whose every write fails with `code` (EPIPE: the reader went away; ENOSPC: a full disk). */
export function failingStream(code: 'EPIPE' | 'ENOSPC'): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb(Object.assign(new Error(code === 'EPIPE' ? 'broken pipe' : 'no space left on device'), { code }));
    },
  });
}
