/**
 * What a `mobilenet` subcommand talks to: its output streams, environment
 * and working directory (the real process in bin/mobilenet.js, in-memory
 * streams in tests). Each subcommand module exports a `Command`.
 */
import type { Env } from '../env.js';

export interface CliIO {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Optional: standard input, for `-` as a file name (default: process.stdin). */
  stdin?: NodeJS.ReadableStream;
  env: Env;
  cwd: string;
}

/** `run(args, io)` resolves to the exit code: 0 success, 1 usage error, 2 some inputs failed. */
export type Command = (args: string[], io: CliIO) => Promise<number>;

/**
 * Resolves after the first SIGTERM or SIGINT once `close()` has settled:
 * prints `mobilenet <command>: <signal>: <what>` to stderr, then runs
 * `close()` (its error is printed, not thrown: the process still exits
 * cleanly). Used by the long-running `serve` and `worker` commands.
 */
export function untilSignal(io: CliIO, command: string, what: string, close: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      io.stderr.write(`mobilenet ${command}: ${signal}: ${what}\n`);
      close().then(resolve, (e: unknown) => {
        io.stderr.write(`mobilenet ${command}: error while closing: ${(e as Error).message}\n`);
        resolve();
      });
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
